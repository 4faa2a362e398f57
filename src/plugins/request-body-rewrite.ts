/**
 * `request-body-rewrite`: replace the request body sent upstream (Rewrite `body`, APISIX >= 3.6;
 * older gateways ignore it). Conf, as in the Go runner (`cmd/go-runner/plugins/request_body_rewrite.go`):
 *
 *   {"new_body": "{\"replaced\": true}"}
 *
 * - `new_body` (required): a non-empty string. The Go runner treats `""` as "do nothing"; here it
 *   is a conf error, because the gateway cannot set an empty body and a plugin that never acts is
 *   a mistake worth hearing about.
 *
 * Only the body changes: a `Content-Type` that no longer fits is the route's business (pair with
 * `header-rewrite`). The gateway recomputes `Content-Length`.
 */
import { definePlugin } from '../plugin.js';
import { optionalString, parseObject } from './conf-check.js';

export interface RequestBodyRewriteConf {
  /** Encoded once here, not per request. */
  readonly newBody: Buffer;
}

export default definePlugin<RequestBodyRewriteConf>({
  name: 'request-body-rewrite',
  parseConf(value) {
    const newBody = optionalString(parseObject(value, ['new_body']).new_body, 'new_body');
    if (newBody === undefined) throw new TypeError('"new_body" is required: the body to send upstream');
    if (newBody === '') throw new TypeError('"new_body" must not be empty: the gateway cannot replace a body with an empty one');
    return { newBody: Buffer.from(newBody, 'utf8') };
  },
  requestFilter(conf, _req, res) {
    res.setBody(conf.newBody);
  },
});
