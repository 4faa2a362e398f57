/**
 * `fault-injection`: answer a share of the requests directly with a fixed status and body (Stop),
 * the others go on untouched. The conf is the Go runner's (`cmd/go-runner/plugins/fault_injection.go`):
 *
 *   {"http_status": 503, "body": "injected", "percentage": 20}
 *
 * - `http_status` (required): integer from 200 to 599 (the Go runner also rejects anything below 200).
 * - `body`: string, default none (`""` is no body, as in Go).
 * - `percentage`: integer from 0 to 100 of the requests to stop, default 100.
 */
import { definePlugin, type Plugin } from '../plugin.js';
import { optionalInteger, optionalString, parseObject } from './conf-check.js';

export interface FaultInjectionConf {
  readonly httpStatus: number;
  /** Encoded once here, not per stopped request. */
  readonly body: Buffer | undefined;
  readonly percentage: number;
}

export interface FaultInjectionOptions {
  /** A number in [0, 1), like `Math.random` (the default); tests pass a seeded one. */
  random?: () => number;
}

export function createFaultInjection({ random = Math.random }: FaultInjectionOptions = {}): Plugin<FaultInjectionConf> {
  return definePlugin<FaultInjectionConf>({
    name: 'fault-injection',
    parseConf(value) {
      const raw = parseObject(value, ['body', 'http_status', 'percentage']);
      const httpStatus = optionalInteger(raw.http_status, 'http_status', 200, 599, 'an integer HTTP status');
      if (httpStatus === undefined) throw new TypeError('"http_status" is required: the status to answer the injected requests with');
      const body = optionalString(raw.body, 'body');
      const percentage = optionalInteger(raw.percentage, 'percentage', 0, 100) ?? 100;
      return { httpStatus, body: body ? Buffer.from(body, 'utf8') : undefined, percentage };
    },
    requestFilter(conf, _req, res) {
      // The bounds need no random draw, which also keeps 0 and 100 exact whatever the source.
      if (conf.percentage === 0) return;
      if (conf.percentage < 100 && random() * 100 >= conf.percentage) return;
      res.stop(conf.httpStatus, undefined, conf.body);
    },
  });
}

export default createFaultInjection();
