import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { createHistogram } from 'node:perf_hooks';
import { formatCheck, judgeStats, type Check } from '../../src/metrics/doctor-checks.js';
import { EVENT_LOOP_RESOLUTION_MS, eventLoopDelaySummary } from '../../src/metrics/runner-metrics.js';
import type { HistogramSummary, PluginStats, RunnerStats } from '../../src/metrics/stats.js';

function summary(p99: number, count = 1000): HistogramSummary {
  return { count, mean: p99 / 2, p50: p99 / 2, p90: p99 * 0.8, p99, p99_9: p99, max: p99 };
}

const STAGES = { total: summary(50), decode: summary(1), queue: summary(0, 0), chain: summary(10), extra_info: summary(0, 0), encode_write: summary(5) };

/** A healthy runner: 3 PrepareConf for 1.2M calls over 40 connections. */
function healthy(): RunnerStats {
  return {
    runner: {
      version: '0.1.0',
      pid: 1,
      uptimeSeconds: 3600,
      socketPath: '/tmp/runner.sock',
      config: { socketMode: '0766', threads: 2, maxQueue: 4096, drainMs: 800, callTimeoutMs: 56_000, confExpireSeconds: 3600, maxTokens: 100_000, logLevel: 'warn', summaryIntervalS: 0 },
    },
    calls: { prepare_conf: 3, http_req_call: 1_200_000, http_resp_call: 0, other: 0 },
    callsAbandoned: 0,
    errorReplies: { bad_request: 0, service_unavailable: 0, conf_token_not_found: 0, other: 0 },
    confTokens: { live: 3, prepareConf: 3, httpCalls: 1_200_000, prepareConfPerHttpCall: 3 / 1_200_000, notFound: 0 },
    connections: { opened: 40, closed: 8, open: 32, callsPerConnection: 30_000, callsPerClosedConnection: summary(30_000, 8) },
    extraInfo: { roundTrips: 0, perHttpCall: 0, callsWithExtraInfo: 0, prefetched: 0 },
    pool: { threads: 2, batches: 1000, calls: 5000, shed: 0, workerRestarts: 0, callsPerBatch: 5 },
    pluginsByPlacement: { inline: 1, pool: 1 },
    plugins: [plugin('say', 'inline', 40), plugin('jwt-auth', 'pool', 4100)],
    latencyUs: { prepare_conf: STAGES, http_req_call: STAGES, http_resp_call: STAGES, other: STAGES },
    eventLoopDelayUs: summary(1200, 100_000),
    lateWorkerSnapshots: 0,
  };
}

function plugin(name: string, where: 'inline' | 'pool', p99: number, extraInfoPerCall = 0, declaresNeeds = false): PluginStats {
  return {
    name,
    mode: where,
    where,
    declaresNeeds,
    averageCpuUs: null,
    moves: 0,
    phases: { request: { latencyUs: summary(p99, 1000), extraInfoRoundTrips: extraInfoPerCall * 1000, extraInfoPerCall: extraInfoPerCall || null } },
  };
}

function line(checks: Check[], id: string): string {
  const found = checks.find((c) => c.id === id);
  assert.ok(found, id);
  return formatCheck(found);
}

describe('doctor\'s verdicts on /stats', () => {
  test('a healthy runner: the issue\'s wording, nothing failed, the unobservable as advice', () => {
    const checks = judgeStats(healthy());
    assert.equal(line(checks, 'conf-token-caching'), 'conf token caching: 3 PrepareConf for 1.2M calls: pass');
    assert.equal(line(checks, 'connection-reuse'), 'connection reuse: 30000 calls per connection: pass');
    assert.equal(line(checks, 'slowest-plugin'), 'slowest plugin p99 4.1 ms: jwt-auth (request) on the pool: pass');
    assert.equal(line(checks, 'extra-info'), 'ExtraInfo: 0.0 round trips per call: pass');
    assert.equal(line(checks, 'event-loop-delay'), 'event-loop delay p99 1.2 ms (max 1.2 ms): pass');
    assert.equal(line(checks, 'fast-shutdown'), "fast shutdown: drain window 800 ms of the gateway's 1 s grace: pass");
    assert.equal(line(checks, 'calls-shed'), 'calls shed: 0 for 1.2M calls: pass');
    assert.equal(line(checks, 'worker-restarts'), 'worker restarts: 0: pass');
    assert.equal(line(checks, 'socket-mode'), 'socket mode 0766 on /tmp/runner.sock: pass');
    assert.match(line(checks, 'unix-socket'), /^Unix socket rather than TCP: not observed: /);
    assert.match(line(checks, 'allow-degradation'), /^allow_degradation: not observed: /);
    assert.deepEqual(checks.filter((c) => c.verdict !== 'pass' && c.verdict !== 'not observed'), []);
  });

  test('an idle runner\'s event-loop samples: delay under 1 ms, no warning (the 20 ms sampling period is not delay)', () => {
    // What monitorEventLoopDelay records on an idle loop (measured: 19.1-21.9 ms): the time between
    // two ticks of its 20 ms timer, a tick up to 1 ms early (libuv's millisecond clock) or a little
    // late. Fed by hand, so the figures do not depend on how busy this machine is.
    const idle = createHistogram();
    for (let i = 0; i < 1000; i++) idle.record(Math.round((EVENT_LOOP_RESOLUTION_MS + (i % 10) * 0.08) * 1e6));
    for (let i = 0; i < 50; i++) idle.record(Math.round(19.1 * 1e6));
    const { sum, ...loop } = eventLoopDelaySummary(idle, EVENT_LOOP_RESOLUTION_MS);
    assert.equal(loop.count, 1050);
    for (const key of ['mean', 'p50', 'p90', 'p99', 'p99_9', 'max'] as const) {
      assert.ok(loop[key] >= 0 && loop[key] < 1000, `${key} ${loop[key]} us`);
    }
    assert.ok(sum >= 0 && sum < 1050 * 1000, `sum ${sum} us`);
    const s = healthy();
    s.eventLoopDelayUs = loop;
    assert.match(line(judgeStats(s), 'event-loop-delay'), /^event-loop delay p99 \d+ us \(max \d+ us\): pass$/);
  });

  test('the issue\'s failing examples', () => {
    const s = healthy();
    s.connections.callsPerConnection = 1;
    s.errorReplies.service_unavailable = 0;
    s.plugins = [plugin('request-id', 'pool', 300, 3)];
    s.eventLoopDelayUs = summary(12_000, 5000);
    const checks = judgeStats(s);
    assert.equal(line(checks, 'connection-reuse'), 'connection reuse: 1.0 calls per connection: fail: the gateway is closing connections, check keepalive');
    assert.equal(
      line(checks, 'extra-info'),
      'ExtraInfo: 3.0 round trips per call for request-id: warn: declare its vars (needs.vars, needs.body): they are then fetched before the hand-off, without a thread round trip each',
    );
    assert.match(line(checks, 'event-loop-delay'), /^event-loop delay p99 12 ms \(max 12 ms\): warn: a plugin blocks the main thread/);
  });

  test('thresholds on both sides', () => {
    const at = (mutate: (s: RunnerStats) => void, id: string): string => {
      const s = healthy();
      mutate(s);
      return judgeStats(s).find((c) => c.id === id)!.verdict;
    };
    const prepare = (n: number) => (s: RunnerStats) => {
      s.calls.prepare_conf = s.confTokens.prepareConf = n;
      s.confTokens.httpCalls = s.calls.http_req_call = 1000;
    };
    assert.equal(at(prepare(9), 'conf-token-caching'), 'pass');
    assert.equal(at(prepare(10), 'conf-token-caching'), 'warn');
    assert.equal(at(prepare(499), 'conf-token-caching'), 'warn');
    assert.equal(at(prepare(500), 'conf-token-caching'), 'fail');
    assert.equal(at((s) => (s.confTokens.httpCalls = 99), 'conf-token-caching'), 'not observed');
    const reuse = (n: number) => (s: RunnerStats) => (s.connections.callsPerConnection = n);
    assert.equal(at(reuse(1.9), 'connection-reuse'), 'fail');
    assert.equal(at(reuse(2), 'connection-reuse'), 'warn');
    assert.equal(at(reuse(10), 'connection-reuse'), 'pass');
    const errors = (n: number) => (s: RunnerStats) => (s.errorReplies.service_unavailable = n);
    assert.equal(at(errors(1), 'error-replies'), 'warn');
    assert.equal(at(errors(13_000), 'error-replies'), 'fail');
    const notFound = (n: number) => (s: RunnerStats) => (s.confTokens.notFound = n);
    assert.equal(at(notFound(12_000), 'conf-token-not-found'), 'pass');
    assert.equal(at(notFound(12_001), 'conf-token-not-found'), 'warn');
    const inline = (p99: number) => (s: RunnerStats) => (s.plugins = [plugin('x', 'inline', p99)]);
    assert.equal(at(inline(999), 'slowest-plugin'), 'pass');
    assert.equal(at(inline(1000), 'slowest-plugin'), 'warn');
    assert.equal(at(inline(10_000), 'slowest-plugin'), 'fail');
    const pool = (p99: number) => (s: RunnerStats) => (s.plugins = [plugin('x', 'pool', p99)]);
    assert.equal(at(pool(9999), 'slowest-plugin'), 'pass');
    assert.equal(at(pool(10_000), 'slowest-plugin'), 'warn');
    assert.equal(at((s) => (s.plugins = []), 'slowest-plugin'), 'not observed');
    const loop = (p99: number) => (s: RunnerStats) => (s.eventLoopDelayUs = summary(p99, 500));
    assert.equal(at((s) => (s.eventLoopDelayUs = summary(90_000, 499)), 'event-loop-delay'), 'not observed');
    assert.equal(at(loop(9999), 'event-loop-delay'), 'pass');
    assert.equal(at(loop(10_000), 'event-loop-delay'), 'warn');
    assert.equal(at(loop(50_000), 'event-loop-delay'), 'fail');
    const shed = (n: number) => (s: RunnerStats) => (s.pool!.shed = n);
    assert.equal(at(shed(1), 'calls-shed'), 'warn');
    assert.equal(at(shed(12_000), 'calls-shed'), 'fail');
    assert.equal(at((s) => (s.pool!.workerRestarts = 1), 'worker-restarts'), 'warn');
    assert.equal(at((s) => (s.runner.config.drainMs = 901), 'fast-shutdown'), 'fail');
    assert.equal(at((s) => (s.runner.config.socketMode = '0700'), 'socket-mode'), 'warn');
    assert.equal(at((s) => (s.runner.config.logLevel = 'debug'), 'log-level'), 'warn');
    assert.equal(at((s) => (s.callsAbandoned = 1), 'abandoned-calls'), 'warn');
    const extra = (per: number, where: 'inline' | 'pool') => (s: RunnerStats) => (s.plugins = [plugin('v', where, 10, per)]);
    assert.equal(at(extra(0.5, 'pool'), 'extra-info'), 'pass');
    assert.equal(at(extra(1, 'inline'), 'extra-info'), 'warn');
  });

  test('without a pool: nothing shed, no worker line', () => {
    const s = healthy();
    s.pool = null;
    const checks = judgeStats(s);
    assert.equal(line(checks, 'calls-shed'), 'calls shed: no worker pool (--threads 0): pass');
    assert.ok(!checks.some((c) => c.id === 'worker-restarts'));
  });
});
