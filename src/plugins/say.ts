/**
 * `say`: answer the request directly (Stop) instead of calling the upstream, as the Go runner's
 * example plugin does. Conf, every field optional:
 *
 *   {"body": "hello", "status": 200, "headers": {"X-Resp": "a", "Set-Cookie": ["a=1", "b=2"]}}
 *
 * As in the Go runner, an empty `body` lets the request through unchanged.
 */
import { definePlugin } from '../plugin.js';
import { headerMap, optionalInteger, optionalString, parseObject } from './conf-check.js';

export interface SayConf {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, Buffer]>;
  /** Encoded once here: every call hands on the same bytes. */
  readonly body: Buffer;
}

export default definePlugin<SayConf>({
  name: 'say',
  parseConf(value) {
    const raw = parseObject(value, ['body', 'status', 'headers']);
    const body = optionalString(raw.body, 'body') ?? '';
    const status = optionalInteger(raw.status, 'status', 100, 599, 'an HTTP status') ?? 200;
    const headers = raw.headers === undefined ? [] : headerMap(raw.headers, 'headers', true);
    return {
      status,
      headers: headers.flatMap(({ name, values }) => values.map((v) => [name, v] as const)),
      body: Buffer.from(body, 'utf8'),
    };
  },
  requestFilter(conf, _req, res) {
    if (conf.body.byteLength === 0) return;
    res.stop(conf.status, conf.headers, conf.body);
  },
});
