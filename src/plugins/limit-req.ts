/**
 * `limit-req`: a token bucket per route conf; a request that finds the bucket empty is answered
 * 503 (Stop, no body), as the Go runner's over-limit answer. Conf, as in the Go runner
 * (`cmd/go-runner/plugins/limit_req.go`):
 *
 *   {"rate": 5, "burst": 10}
 *
 * - `rate` (required): tokens added per second, a number greater than 0 (fractions allowed: 0.5 is
 *   one request every two seconds).
 * - `burst` (required): the bucket size, an integer of at least 1: how many requests may pass at
 *   once after a quiet period. The bucket starts full.
 *
 * Difference from the Go runner: its limiter makes an over-rate request *wait* for its token
 * (`Reserve` + `time.Sleep`) and only answers 503 when `burst` is 0. Here an over-rate request is
 * answered 503 at once: waiting would hold the gateway's connection and run into the call's
 * deadline. `burst` 0, which in Go rejects every request, is refused as a conf error.
 *
 * The limit is per runner process: the bucket lives on the parsed conf object, one per route conf
 * (a route's conf that is prepared again, e.g. after its token expired, starts a full bucket).
 * It declares `placement: 'inline'` (DECISIONS 15): a bucket per worker thread would multiply the limit.
 */
import { definePlugin, type Plugin } from '../plugin.js';
import { parseObject, show } from './conf-check.js';

export interface LimitReqConf {
  /** Tokens per millisecond (the clock's unit). */
  readonly ratePerMs: number;
  readonly burst: number;
  /** Mutable per-route state: tokens left at `last` (clock time, ms). */
  readonly bucket: { tokens: number; last: number };
}

export interface LimitReqOptions {
  /** Monotonic clock in milliseconds; default `performance.now`. Tests pass a fake one. */
  now?: () => number;
}

export function createLimitReq({ now = () => performance.now() }: LimitReqOptions = {}): Plugin<LimitReqConf> {
  return definePlugin<LimitReqConf>({
    name: 'limit-req',
    placement: 'inline',
    parseConf(value) {
      const raw = parseObject(value, ['burst', 'rate']);
      const { rate, burst } = raw;
      if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) {
        throw new TypeError(`"rate" must be a number of requests per second greater than 0 (got ${show(rate)})`);
      }
      if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1) {
        throw new TypeError(`"burst" must be an integer of at least 1: the number of requests allowed at once (got ${show(burst)})`);
      }
      return { ratePerMs: rate / 1000, burst, bucket: { tokens: burst, last: now() } };
    },
    requestFilter(conf, _req, res) {
      const { bucket } = conf;
      const t = now();
      // max(): a clock that steps back must not drain the bucket.
      bucket.tokens = Math.min(conf.burst, bucket.tokens + Math.max(0, t - bucket.last) * conf.ratePerMs);
      bucket.last = t;
      if (bucket.tokens >= 1) bucket.tokens -= 1;
      else res.stop(503);
    },
  });
}

export default createLimitReq();
