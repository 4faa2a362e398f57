/**
 * doctor's verdicts on a running runner's `/stats`: each performance consideration of the gateway's
 * guidance for external plugins that the runner can observe, as pass / warn / fail with the figure
 * and the fix. What it cannot observe is advice, marked "not observed", never a pass.
 * docs/observability.md lists every check with its thresholds; they are the constants below.
 */
import { formatCount, formatRatio, formatUs } from './format.js';
import type { RunnerStats } from './stats.js';

export type Verdict = 'pass' | 'warn' | 'fail' | 'not observed';

export interface Check {
  /** Stable id (docs/observability.md), e.g. `conf-token-caching`. */
  id: string;
  /** What was checked and the figure, e.g. `conf token caching: 3 PrepareConf for 1.2M calls`. */
  text: string;
  verdict: Verdict;
  /** What to do (for warn and fail), or the advice (for not observed). */
  fix: string | null;
}

/** Fewer calls than this and the ratios say nothing yet. */
export const MIN_CALLS = 100;
export const PREPARE_RATIO_FAIL = 0.5;
export const PREPARE_RATIO_WARN = 0.01;
export const NOT_FOUND_RATIO_WARN = 0.01;
export const REUSE_FAIL = 2;
export const REUSE_WARN = 10;
export const ERROR_RATIO_FAIL = 0.01;
export const INLINE_PLUGIN_P99_WARN_US = 1_000;
export const INLINE_PLUGIN_P99_FAIL_US = 10_000;
export const POOL_PLUGIN_P99_WARN_US = 10_000;
export const EXTRA_INFO_PER_CALL_WARN = 1;
/** 10 s of event-loop samples (one per 20 ms): fewer, and the p99 is a handful of values. */
export const MIN_EVENT_LOOP_SAMPLES = 500;
export const EVENT_LOOP_P99_WARN_US = 10_000;
export const EVENT_LOOP_P99_FAIL_US = 50_000;
export const SHED_RATIO_FAIL = 0.01;
/** The gateway SIGKILLs the runner 1 s after its SIGTERM; the drain must end well before. */
export const DRAIN_FAIL_MS = 900;

/** One line of doctor's report. */
export function formatCheck(check: Check): string {
  return `${check.text}: ${check.verdict}${check.fix === null ? '' : `: ${check.fix}`}`;
}

function check(id: string, text: string, verdict: Verdict, fix: string | null = null): Check {
  return { id, text, verdict, fix: verdict === 'pass' ? null : fix };
}

export function judgeStats(stats: RunnerStats): Check[] {
  const http = stats.confTokens.httpCalls;
  const answered = Object.values(stats.calls).reduce((a, b) => a + b, 0);
  const checks: Check[] = [];

  // Conf token caching: PrepareConf once per conf change, not per request.
  {
    const { prepareConf } = stats.confTokens;
    const text = `conf token caching: ${formatCount(prepareConf)} PrepareConf for ${formatCount(http)} calls`;
    const ratio = http > 0 ? prepareConf / http : 0;
    if (http < MIN_CALLS) checks.push(check('conf-token-caching', text, 'not observed', `too few calls to judge (fewer than ${MIN_CALLS})`));
    else if (ratio >= PREPARE_RATIO_FAIL) {
      checks.push(
        check(
          'conf-token-caching',
          text,
          'fail',
          'the gateway prepares the conf again for (almost) every request: its token cache is not kept; keep each route\'s ext-plugin conf stable between requests, and check for CONF_TOKEN_NOT_FOUND loops below',
        ),
      );
    } else if (ratio >= PREPARE_RATIO_WARN) {
      checks.push(
        check('conf-token-caching', text, 'warn', `more than 1 PrepareConf per ${Math.round(1 / PREPARE_RATIO_WARN)} calls: confs changing often, or tokens expiring (${stats.runner.config.confExpireSeconds} s) or evicted (${stats.confTokens.live} live of --max-tokens ${stats.runner.config.maxTokens})`),
      );
    } else checks.push(check('conf-token-caching', text, 'pass'));
  }

  // Expired or unknown tokens: each costs the gateway a flush, a PrepareConf and a retry.
  {
    const { notFound } = stats.confTokens;
    const text = `conf tokens not found: ${formatCount(notFound)} CONF_TOKEN_NOT_FOUND for ${formatCount(http)} calls`;
    if (http < MIN_CALLS && notFound === 0) checks.push(check('conf-token-not-found', text, 'not observed', `too few calls to judge (fewer than ${MIN_CALLS})`));
    else if (notFound > Math.max(1, http * NOT_FOUND_RATIO_WARN)) {
      checks.push(
        check(
          'conf-token-not-found',
          text,
          'warn',
          `tokens expire after 1.2 x ${stats.runner.config.confExpireSeconds} s unused and a restarted runner knows none: set the same APISIX_CONF_EXPIRE_TIME for the gateway and the runner, raise --max-tokens if ${stats.confTokens.live} live tokens is near ${stats.runner.config.maxTokens}`,
        ),
      );
    } else checks.push(check('conf-token-not-found', text, 'pass'));
  }

  // Connection reuse: the gateway keeps ext-plugin connections alive (setkeepalive, 32 per worker).
  {
    const per = stats.connections.callsPerConnection ?? 0;
    const text = `connection reuse: ${formatRatio(per)} calls per connection`;
    const errors = stats.errorReplies.bad_request + stats.errorReplies.service_unavailable + stats.errorReplies.conf_token_not_found + stats.errorReplies.other;
    const why = errors > 0 ? ` (the gateway also closes a connection after each error reply: ${formatCount(errors)} so far)` : '';
    if (answered < MIN_CALLS) checks.push(check('connection-reuse', text, 'not observed', `too few calls to judge (fewer than ${MIN_CALLS})`));
    else if (per < REUSE_FAIL) checks.push(check('connection-reuse', text, 'fail', `the gateway is closing connections, check keepalive${why}`));
    else if (per < REUSE_WARN) checks.push(check('connection-reuse', text, 'warn', `connections are short-lived, check keepalive${why}`));
    else checks.push(check('connection-reuse', text, 'pass'));
  }

  // Error replies other than CONF_TOKEN_NOT_FOUND (judged above).
  {
    const { bad_request: bad, service_unavailable: unavailable, other } = stats.errorReplies;
    const errors = bad + unavailable + other;
    const text = `error replies: ${formatCount(errors)} for ${formatCount(answered)} calls (${formatCount(unavailable)} SERVICE_UNAVAILABLE, ${formatCount(bad)} BAD_REQUEST)`;
    const fix =
      unavailable >= bad
        ? 'plugins failing or passing their deadline, or calls shed: the runner logs each at warn (once a second per plugin)'
        : 'BAD_REQUEST means frames the runner cannot read: a gateway speaking another protocol version';
    if (answered === 0) checks.push(check('error-replies', text, 'not observed', 'no calls yet'));
    else if (errors === 0) checks.push(check('error-replies', text, 'pass'));
    else checks.push(check('error-replies', text, errors / answered >= ERROR_RATIO_FAIL ? 'fail' : 'warn', fix));
  }

  // Calls the gateway gave up on (its 60 s read timeout, or a worker exit) while they ran.
  {
    const text = `abandoned calls: ${formatCount(stats.callsAbandoned)} closed by the gateway before the reply`;
    if (stats.callsAbandoned === 0) checks.push(check('abandoned-calls', text, 'pass'));
    else checks.push(check('abandoned-calls', text, 'warn', 'calls outlived the gateway\'s 60 s timeout or its connection: see the slowest plugin below, and --call-timeout-ms'));
  }

  // The slowest plugin: heavy work on the hot path, worst on the main thread.
  {
    let worst: { name: string; phase: string; where: string | null; p99: number } | null = null;
    for (const p of stats.plugins) {
      for (const [phase, s] of Object.entries(p.phases)) {
        if (s !== undefined && s.latencyUs.count > 0 && (worst === null || s.latencyUs.p99 > worst.p99)) worst = { name: p.name, phase, where: p.where, p99: s.latencyUs.p99 };
      }
    }
    if (worst === null) checks.push(check('slowest-plugin', 'slowest plugin: no filter has run yet', 'not observed', 'send some traffic first'));
    else {
      const onPool = worst.where === 'pool';
      const text = `slowest plugin p99 ${formatUs(worst.p99)}: ${worst.name} (${worst.phase}) on the ${onPool ? 'pool' : 'main thread'}`;
      if (onPool) {
        checks.push(
          check('slowest-plugin', text, worst.p99 >= POOL_PLUGIN_P99_WARN_US ? 'warn' : 'pass', 'heavy work on the request path: cache its results, or do the work in parseConf (once per conf) instead of per call'),
        );
      } else {
        const verdict = worst.p99 >= INLINE_PLUGIN_P99_FAIL_US ? 'fail' : worst.p99 >= INLINE_PLUGIN_P99_WARN_US ? 'warn' : 'pass';
        checks.push(check('slowest-plugin', text, verdict, "on the main thread it holds up every connection that long: give it placement 'pool' (or 'auto'), and move heavy work off the request path"));
      }
    }
  }

  // ExtraInfo round trips asked from inside filters.
  {
    let worst: { name: string; per: number; where: string | null; needs: boolean } | null = null;
    for (const p of stats.plugins) {
      for (const s of Object.values(p.phases)) {
        const per = s?.extraInfoPerCall ?? 0;
        if (per > 0 && (worst === null || per > worst.per)) worst = { name: p.name, per, where: p.where, needs: p.declaresNeeds };
      }
    }
    if (http < MIN_CALLS && worst === null) checks.push(check('extra-info', 'ExtraInfo: too few calls to judge', 'not observed', `fewer than ${MIN_CALLS} calls`));
    else if (worst === null) {
      const text = `ExtraInfo: ${formatRatio(stats.extraInfo.perHttpCall ?? 0)} round trips per call${stats.extraInfo.prefetched > 0 ? ', all declared in needs' : ''}`;
      checks.push(check('extra-info', text, 'pass'));
    } else {
      const text = `ExtraInfo: ${formatRatio(worst.per)} round trips per call for ${worst.name}`;
      const fix =
        worst.where === 'pool'
          ? 'declare its vars (needs.vars, needs.body): they are then fetched before the hand-off, without a thread round trip each'
          : 'each variable or body read is one round trip to the gateway: read only what the route needs, once per call';
      checks.push(check('extra-info', text, worst.per >= EXTRA_INFO_PER_CALL_WARN ? 'warn' : 'pass', fix));
    }
  }

  // The main thread's event loop: a blocking plugin delays every connection.
  {
    const loop = stats.eventLoopDelayUs;
    const text = `event-loop delay p99 ${formatUs(loop.p99)} (max ${formatUs(loop.max)})`;
    if (loop.count < MIN_EVENT_LOOP_SAMPLES) checks.push(check('event-loop-delay', text, 'not observed', `too short to judge (${loop.count} samples, 20 ms apart; ${MIN_EVENT_LOOP_SAMPLES} needed)`));
    else {
      const verdict = loop.p99 >= EVENT_LOOP_P99_FAIL_US ? 'fail' : loop.p99 >= EVENT_LOOP_P99_WARN_US ? 'warn' : 'pass';
      checks.push(check('event-loop-delay', text, verdict, "a plugin blocks the main thread: see the slowest plugin; give it placement 'pool'"));
    }
  }

  // Overload: calls shed by the pool, threads lost.
  {
    const pool = stats.pool;
    if (pool === null) checks.push(check('calls-shed', 'calls shed: no worker pool (--threads 0)', 'pass'));
    else {
      const text = `calls shed: ${formatCount(pool.shed)} for ${formatCount(http)} calls`;
      const verdict = pool.shed === 0 ? 'pass' : http > 0 && pool.shed / http >= SHED_RATIO_FAIL ? 'fail' : 'warn';
      checks.push(check('calls-shed', text, verdict, `the pool held --max-queue ${stats.runner.config.maxQueue} calls: add threads (--threads, now ${pool.threads}), or make the pool's plugins cheaper`));
      checks.push(
        check('worker-restarts', `worker restarts: ${formatCount(pool.workerRestarts)}`, pool.workerRestarts === 0 ? 'pass' : 'warn', 'a plugin crashed a worker thread or passed its deadline on one: the runner logs which at warn'),
      );
    }
  }

  // Shutdown within the gateway's 1 s grace (the runner logs its own shutdown duration at exit).
  {
    const { drainMs } = stats.runner.config;
    const text = `fast shutdown: drain window ${drainMs} ms of the gateway's 1 s grace`;
    checks.push(check('fast-shutdown', text, drainMs > DRAIN_FAIL_MS ? 'fail' : 'pass', 'the gateway SIGKILLs the runner 1 s after SIGTERM: --drain-ms 800 or less'));
  }

  // Socket mode: the gateway's workers (nobody when its master runs as root) must be able to connect.
  {
    const mode = Number.parseInt(stats.runner.config.socketMode, 8);
    const text = `socket mode ${stats.runner.config.socketMode} on ${stats.runner.socketPath}`;
    checks.push(check('socket-mode', text, (mode & 0o002) !== 0 ? 'pass' : 'warn', "other users cannot connect, and the gateway's workers often run as nobody: --socket-mode 0766 (the default)"));
  }

  // Logging per request.
  {
    const level = stats.runner.config.logLevel ?? 'unknown';
    const verbose = level === 'debug' || level === 'trace';
    checks.push(check('log-level', `log level: ${level}`, verbose ? 'warn' : 'pass', 'debug logs lines per call, and the gateway copies them into its error.log: use warn in production'));
  }

  checks.push(...advice());
  return checks;
}

/** What the runner can never observe: printed as advice. */
export function advice(): Check[] {
  return [
    check(
      'unix-socket',
      'Unix socket rather than TCP',
      'not observed',
      'the gateway always connects over a Unix socket (ext-plugin has no TCP mode): nothing to tune',
    ),
    check(
      'allow-degradation',
      'allow_degradation',
      'not observed',
      "a route setting the runner never sees: set allow_degradation: true on the ext-plugin-* of routes whose plugins are not critical, so a runner failure lets requests through; keep it off (or the plugin's onError: 'deny') for auth",
    ),
  ];
}
