/**
 * Observability end to end: a real runner on a real Unix socket, the gateway simulator playing
 * scripted loads, the metrics endpoint read over real HTTP, its Prometheus output checked by an
 * independent parser, and doctor's verdicts on healthy and misconfigured gateway behaviour.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat, { type ParsedMetric } from 'parse-prometheus-text-format';
import { formatCheck, judgeStats, type Check } from '../../src/metrics/doctor-checks.js';
import type { RunnerStats } from '../../src/metrics/stats.js';
import { encodeHttpReqCallReq } from '../../src/protocol/codec.js';
import { routeConf } from '../support/gateway.js';
import { RunnerProcess } from '../support/runner-process.js';
import { runDoctor } from '../metrics/doctor-cli.js';
import { validateExposition } from '../metrics/exposition-grammar.js';
import { EVENT_WAIT_MS, FIXTURE_PLUGINS, expectOk, memoryLogger, startTestRunner, until, type TestRunner } from './harness.js';

const METRICS_FIXTURES = fileURLToPath(new URL('../../../test/metrics/fixtures/', import.meta.url));

interface HttpAnswer {
  status: number;
  type: string;
  body: string;
}

function get(url: string, path: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    // A connection per request: a kept-alive one would hide whether the endpoint still accepts.
    const req = request(`${url}${path}`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function stats(t: TestRunner): Promise<RunnerStats> {
  const answer = await get(t.runner.metricsUrl!, '/stats');
  assert.equal(answer.status, 200);
  assert.match(answer.type, /^application\/json/);
  return JSON.parse(answer.body) as RunnerStats;
}

/**
 * One labelled histogram series, parsed by parse-prometheus-text-format. That parser folds every
 * series of a histogram family into one (it reads `_sum`/`_count` only without labels), so the
 * series is cut out first: its family header, and its lines with `labels` taken off (`le` kept).
 */
function histogramSeries(text: string, family: string, labels: string): ParsedMetric | undefined {
  const lines = text.split('\n');
  const header = lines.filter((l) => l === `# TYPE ${family} histogram` || l.startsWith(`# HELP ${family} `));
  const own = lines
    .filter((l) => l.startsWith(`${family}_`) && (l.includes(`{${labels},`) || l.includes(`{${labels}}`)))
    .map((l) => l.replace(`{${labels}}`, '').replace(`{${labels},`, '{'));
  assert.ok(own.length > 3, `series ${family}{${labels}} in the exposition`);
  const parsed = parsePrometheusTextFormat(`${[...header, ...own].join('\n')}\n`);
  assert.equal(parsed.length, 1);
  return parsed[0].metrics[0];
}

function verdict(checks: Check[], id: string): Check {
  const found = checks.find((c) => c.id === id);
  assert.ok(found, `check ${id} in ${JSON.stringify(checks.map((c) => c.id))}`);
  return found;
}

const SAY = routeConf('route#say', [['say', { body: 'hello' }]]);

describe('metrics of a runner under a scripted load', () => {
  test('1 PrepareConf and 1,000 calls: ratio 1/1000, exact per-plugin counts, one connection reused', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port: 0 } });
    assert.match(runner.runner.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+$/);
    const gw = runner.gateway();
    await gw.prepareConf(SAY);
    for (let i = 0; i < 1000; i++) expectOk(await gw.httpReqCall(SAY));
    assert.equal(gw.stats.prepareConfSent, 1);

    const s = await stats(runner);
    assert.equal(s.calls.prepare_conf, 1);
    assert.equal(s.calls.http_req_call, 1000);
    assert.equal(s.confTokens.prepareConfPerHttpCall, 1 / 1000);
    assert.equal(s.confTokens.live, 1);
    const say = s.plugins.find((p) => p.name === 'say');
    assert.equal(say?.phases.request?.latencyUs.count, 1000, 'the say histogram counts every call');
    assert.equal(say?.where, 'inline');
    assert.equal(s.latencyUs.http_req_call.total.count, 1000);
    for (const stage of ['decode', 'chain', 'encode_write'] as const) assert.equal(s.latencyUs.http_req_call[stage].count, 1000, stage);
    assert.equal(s.latencyUs.http_req_call.queue.count, 0, 'no pool, no queue');
    assert.equal(s.latencyUs.prepare_conf.total.count, 1);
    const total = s.latencyUs.http_req_call.total;
    assert.ok(total.p50 <= total.p90 && total.p90 <= total.p99 && total.p99 <= total.p99_9 && total.p99_9 <= total.max);
    // The simulator prepares on its own connection, then reuses one pooled connection for every call.
    assert.equal(gw.stats.connectionsOpened, s.connections.opened);
    assert.ok(s.connections.callsPerConnection! >= 1001 / 2, `calls per connection ${s.connections.callsPerConnection}`);
    assert.equal(s.errorReplies.conf_token_not_found, 0);
    assert.equal(s.extraInfo.roundTrips, 0);
    assert.ok(s.eventLoopDelayUs.count > 0 || s.runner.uptimeSeconds < 0.1);

    const checks = judgeStats(s);
    assert.equal(verdict(checks, 'conf-token-caching').verdict, 'pass');
    assert.equal(formatCheck(verdict(checks, 'conf-token-caching')), 'conf token caching: 1 PrepareConf for 1k calls: pass');
    assert.equal(verdict(checks, 'connection-reuse').verdict, 'pass');
    assert.equal(verdict(checks, 'error-replies').verdict, 'pass');
    // Its verdict is a judgement of speed (a pause of the machine lands in a filter's p99): only what it names.
    assert.match(verdict(checks, 'slowest-plugin').text, /^slowest plugin p99 \d+(\.\d)? (us|ms): say \(request\) on the main thread$/);
    assert.equal(verdict(checks, 'unix-socket').verdict, 'not observed');
    assert.equal(verdict(checks, 'allow-degradation').verdict, 'not observed');
    // The event-loop delay and the slowest plugin are left out: they judge speed, and a loaded
    // machine pauses for milliseconds at times.
    assert.ok(checks.every((c) => c.verdict !== 'fail' || c.id === 'event-loop-delay' || c.id === 'slowest-plugin'), checks.map(formatCheck).join('\n'));

    // The embedder API reads the same figures.
    const direct = await runner.runner.stats();
    assert.equal(direct?.calls.http_req_call, 1000);
  });

  test('error replies by code, CONF_TOKEN_NOT_FOUND, and a plugin that fails', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port: 0 } });
    const gw = runner.gateway({ maxAttempts: 1 });
    const throws = routeConf('route#throws', [['e2e-throws', {}]]);
    for (let i = 0; i < 3; i++) assert.equal((await gw.httpReqCall(throws)).ok, false);
    // A token this runner never issued: CONF_TOKEN_NOT_FOUND.
    const unknown = await gw.rawCall(unknownTokenFrame());
    assert.equal(unknown.ok, false);
    const s = await stats(runner);
    assert.equal(s.errorReplies.service_unavailable, 3);
    assert.equal(s.errorReplies.conf_token_not_found, 1);
    assert.equal(s.confTokens.notFound, 1);
    assert.equal(s.calls.http_req_call, 4);
    // The failed calls ran no complete chain: no stage figures for them, the total only.
    assert.equal(s.latencyUs.http_req_call.total.count, 4);
    assert.equal(s.latencyUs.http_req_call.chain.count, 0);
  });

  test('a pool plugin: worker threads\' histograms merged exactly, queue wait recorded, ExtraInfo blamed on the plugin', async (t) => {
    const runner = await startTestRunner(t, {
      threads: 2,
      pluginPaths: [FIXTURE_PLUGINS, METRICS_FIXTURES],
      metricsAddr: { host: '127.0.0.1', port: 0 },
    });
    const gw = runner.gateway();
    const tag = routeConf('route#pool', [['metrics-pool-tag', {}]]);
    const vars = routeConf('route#vars', [['metrics-pool-var', { vars: ['a', 'b'] }]]);
    for (let i = 0; i < 300; i++) expectOk(await gw.httpReqCall(tag));
    for (let i = 0; i < 50; i++) expectOk(await gw.httpReqCall(vars, { vars: { a: '1', b: '2' } }));

    const s = await stats(runner);
    assert.equal(s.lateWorkerSnapshots, 0);
    const pooled = s.plugins.find((p) => p.name === 'metrics-pool-tag');
    assert.equal(pooled?.where, 'pool');
    assert.equal(pooled?.phases.request?.latencyUs.count, 300, 'every call counted once, from the worker threads');
    const reader = s.plugins.find((p) => p.name === 'metrics-pool-var');
    assert.equal(reader?.phases.request?.latencyUs.count, 50);
    assert.equal(reader?.phases.request?.extraInfoRoundTrips, 100);
    assert.equal(reader?.phases.request?.extraInfoPerCall, 2);
    assert.equal(s.extraInfo.roundTrips, 100);
    assert.equal(s.extraInfo.callsWithExtraInfo, 50);
    assert.equal(s.latencyUs.http_req_call.queue.count, 350, 'every pool call waited in the queue');
    assert.equal(s.latencyUs.http_req_call.extra_info.count, 50);
    assert.equal(s.pool?.threads, 2);
    assert.equal(s.pool?.calls, 350);
    assert.equal(s.pluginsByPlacement.pool >= 2, true);

    const checks = judgeStats(s);
    const extra = verdict(checks, 'extra-info');
    assert.equal(formatCheck(extra), 'ExtraInfo: 2.0 round trips per call for metrics-pool-var: warn: declare its vars (needs.vars, needs.body): they are then fetched before the hand-off, without a thread round trip each');
    assert.equal(verdict(checks, 'calls-shed').verdict, 'pass');
    assert.equal(verdict(checks, 'worker-restarts').verdict, 'pass');

    // A second read: the threads' figures were deltas, nothing is counted twice.
    const again = await stats(runner);
    assert.equal(again.plugins.find((p) => p.name === 'metrics-pool-tag')?.phases.request?.latencyUs.count, 300);
  });
});

describe('the metrics endpoint', () => {
  test('/metrics parses with an independent parser and a strict grammar; names, types and values match /stats', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port: 0 } });
    const gw = runner.gateway();
    const started = performance.now();
    for (let i = 0; i < 25; i++) expectOk(await gw.httpReqCall(SAY));
    expectOk(await gw.httpReqCall(routeConf('route#quote', [['e2e-script', { req: [['setHeader', 'x-a', '"\\']] }]])));
    const elapsedS = (performance.now() - started) / 1000;
    const answer = await get(runner.runner.metricsUrl!, '/metrics');
    assert.equal(answer.status, 200);
    assert.equal(answer.type, 'text/plain; version=0.0.4; charset=utf-8');
    validateExposition(answer.body);

    const families = new Map(parsePrometheusTextFormat(answer.body).map((f) => [f.name, f]));
    const calls = families.get('anr_calls_total');
    assert.equal(calls?.type, 'COUNTER');
    assert.equal(Number(calls?.metrics.find((m) => m.labels?.type === 'http_req_call')?.value), 26);
    assert.equal(Number(calls?.metrics.find((m) => m.labels?.type === 'prepare_conf')?.value), 2);

    assert.equal(families.get('anr_call_duration_seconds')?.type, 'HISTOGRAM');
    const req = histogramSeries(answer.body, 'anr_call_duration_seconds', 'type="http_req_call"');
    assert.equal(Number(req?.count), 26);
    // In seconds: the calls ran one after another, so the runner's time for them fits in the wall
    // time the test saw them take (microseconds would be a thousand times more).
    assert.ok(Number(req?.sum) > 0 && Number(req?.sum) <= elapsedS, `sum ${req?.sum} s of ${elapsedS} s`);
    // Sorted: integer-like keys ("1", "5") come first in a JS object whatever the order of the lines.
    const buckets = Object.entries(req?.buckets ?? {})
      .map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), Number(n)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'cumulative buckets');
    assert.deepEqual(buckets.at(-1), [Infinity, 26]);
    assert.equal(buckets.at(-2)?.[1], 26, 'the last finite bucket (60 s) holds every call');
    assert.equal(buckets.length, 22);

    const say = histogramSeries(answer.body, 'anr_plugin_filter_duration_seconds', 'plugin="say",phase="request"');
    assert.equal(Number(say?.count), 25);
    const loop = families.get('anr_event_loop_delay_seconds');
    assert.equal(loop?.type, 'SUMMARY');
    assert.deepEqual(Object.keys(loop?.metrics[0].quantiles ?? {}), ['0.5', '0.9', '0.99', '0.999']);
    assert.ok(Number(loop?.metrics[0].count) >= 0);
    assert.equal(families.get('anr_conf_tokens')?.type, 'GAUGE');
    assert.equal(Number(families.get('anr_conf_tokens')?.metrics[0].value), 2);
    for (const name of ['anr_connections_opened_total', 'anr_error_replies_total', 'anr_calls_shed_total', 'anr_worker_restarts_total', 'anr_plugins', 'anr_extra_info_round_trips_total']) {
      assert.ok(families.has(name), `${name} is exported`);
    }
  });

  test('/healthz is ready while serving, the endpoint closes first thing in a shutdown; unknown paths 404, other methods 405', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, drainMs: 400, metricsAddr: { host: '127.0.0.1', port: 0 } });
    const url = runner.runner.metricsUrl!;
    assert.deepEqual(await get(url, '/healthz'), { status: 200, type: 'text/plain; charset=utf-8', body: 'ok\n' });
    assert.equal((await get(url, '/nope')).status, 404);
    const post = await new Promise<number>((resolve, reject) => {
      const req = request(`${url}/stats`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(post, 405);
    // An open gateway connection keeps the drain going for drainMs; the endpoint is already closed,
    // so the next runner of a gateway reload can bind its port.
    const gw = runner.gateway();
    expectOk(await gw.httpReqCall(SAY));
    const stopping = runner.runner.shutdown('test');
    await assert.rejects(get(url, '/healthz'), /ECONNREFUSED/);
    await stopping;
  });

  test('a port in use is retried for 2 s, then the startup fails with ANR_ERR_METRICS_ENDPOINT', async (t) => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const dir = mkdtempSync(join(tmpdir(), 'anr-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const started = performance.now();
    await assert.rejects(
      startTestRunner(null, { threads: 0, socketPath: join(dir, 'r.sock'), metricsAddr: { host: '127.0.0.1', port } }),
      (err: Error & { code?: string }) => err.code === 'ANR_ERR_METRICS_ENDPOINT' && err.message.includes(`127.0.0.1:${port}`) && err.message.includes('in use'),
    );
    assert.ok(performance.now() - started >= 1900, 'retried before giving up');
    assert.equal(existsSync(join(dir, 'r.sock')), false, 'the socket file is removed again');
    // Freed within the retry window (right after an attempt found it in use), the port is taken.
    const log = memoryLogger();
    const late = startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port } }, log);
    await until(() => log.lines.some((l) => l.msg.includes('address is in use, retrying')), EVENT_WAIT_MS, 'a failed attempt');
    holder.close();
    assert.equal((await late).runner.metricsUrl, `http://127.0.0.1:${port}`);
  });

  test('the summary line at info, periodic and final', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, summaryIntervalS: 1 });
    const gw = runner.gateway();
    for (let i = 0; i < 10; i++) expectOk(await gw.httpReqCall(SAY));
    await until(() => runner.logs.some((l) => l.summary === 'periodic'), EVENT_WAIT_MS, 'a periodic summary line');
    const line = runner.logs.find((l) => l.summary === 'periodic')!;
    assert.equal(line.level, 30);
    assert.match(line.msg, /^summary \([\d.]+ s\): 10 HTTP calls/);
    assert.equal((line.calls as Record<string, number>).http_req_call, 10);
    expectOk(await gw.httpReqCall(SAY));
    await runner.stop();
    const final = runner.logs.find((l) => l.summary === 'final');
    assert.ok(final, 'a final summary line at shutdown');
    assert.equal((final.calls as Record<string, number>).http_req_call, 1, 'the final line covers the time since the previous one');
  });

  test('metrics are off by default: no endpoint, no stats', async (t) => {
    const runner = await startTestRunner(t, { threads: 0 });
    assert.equal(runner.runner.metricsUrl, null);
    assert.equal(await runner.runner.stats(), null);
  });

  test('the CLI: the summary line at --log-level info, none at the default warn; the startup line names the endpoint', async (t) => {
    const quiet = await RunnerProcess.start({ args: ['--summary-interval-s', '1', '--threads', '0'] });
    t.after(() => quiet.cleanup());
    const chatty = await RunnerProcess.start({ args: ['--summary-interval-s', '1', '--log-level', 'info', '--threads', '0', '--metrics-addr', '127.0.0.1:0'] });
    t.after(() => chatty.cleanup());
    const startup = chatty.logs().find((l) => String(l.msg).includes('listening on'))!;
    assert.match(String(startup.msg), /, metrics on http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(String(startup.metricsUrl), /^http:\/\/127\.0\.0\.1:\d+$/);
    await chatty.waitForLog((l) => l.summary === 'periodic');
    const stop = await chatty.stop();
    assert.equal(stop.code, 0);
    assert.ok(chatty.logs().some((l) => l.summary === 'final' && l.level === 'info'), 'the final summary line');
    assert.ok(chatty.logs().some((l) => l.level === 'warn' && typeof l.durationMs === 'number' && String(l.msg).includes('stopped')), 'the shutdown line with its duration');
    await quiet.stop();
    assert.ok(!quiet.logs().some((l) => l.summary !== undefined), 'no summary line at warn');
  });
});

describe('doctor on a running runner', () => {
  test('a gateway that closes the connection after every call fails connection reuse', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port: 0 } });
    const gw = runner.gateway();
    for (let i = 0; i < 120; i++) {
      expectOk(await gw.httpReqCall(SAY));
      gw.closeIdle();
    }
    const s = await stats(runner);
    const reuse = verdict(judgeStats(s), 'connection-reuse');
    assert.equal(reuse.verdict, 'fail');
    assert.match(formatCheck(reuse), /^connection reuse: 1\.0 calls per connection: fail: the gateway is closing connections, check keepalive$/);
    assert.equal(verdict(judgeStats(s), 'conf-token-caching').verdict, 'pass');
  });

  test('a gateway that prepares again for every call fails conf token caching', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port: 0 } });
    const gw = runner.gateway();
    for (let i = 0; i < 120; i++) {
      gw.flushTokens();
      expectOk(await gw.httpReqCall(SAY));
    }
    const s = await stats(runner);
    assert.equal(s.calls.prepare_conf, 120);
    const caching = verdict(judgeStats(s), 'conf-token-caching');
    assert.equal(caching.verdict, 'fail');
    assert.match(formatCheck(caching), /^conf token caching: 120 PrepareConf for 120 calls: fail: the gateway prepares the conf again/);
    assert.equal(verdict(judgeStats(s), 'connection-reuse').verdict, 'pass');
  });

  test('a plugin blocking the main thread shows as the slowest plugin and in the event-loop delay', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, pluginPaths: [FIXTURE_PLUGINS, METRICS_FIXTURES], metricsAddr: { host: '127.0.0.1', port: 0 } });
    const gw = runner.gateway();
    // Each block longer than the monitor's 20 ms period: a shorter one can fall between two ticks
    // and delay neither, while a sample spanning a 40 ms block is >= 40 ms, >= 20 ms once the
    // period is subtracted.
    const busy = routeConf('route#busy', [['metrics-busy', { ms: 40 }]]);
    for (let i = 0; i < 20; i++) expectOk(await gw.httpReqCall(busy));
    const s = await stats(runner);
    const checks = judgeStats(s);
    const slowest = verdict(checks, 'slowest-plugin');
    assert.equal(slowest.verdict, 'fail');
    assert.match(slowest.text, /^slowest plugin p99 \d+(\.\d)? ms: metrics-busy \(request\) on the main thread$/);
    // Each call held the main thread 40 ms: the event-loop monitor saw it (too few samples for a verdict yet).
    assert.ok(s.eventLoopDelayUs.max >= 10_000, `event-loop delay max ${s.eventLoopDelayUs.max} us`);
    assert.match(formatCheck(verdict(checks, 'event-loop-delay')), /^event-loop delay p99 .*: not observed: too short to judge \(\d+ samples/);
  });

  test('the doctor command reads the endpoint of a healthy runner and exits 0', async (t) => {
    const runner = await startTestRunner(t, { threads: 0, metricsAddr: { host: '127.0.0.1', port: 0 } });
    const gw = runner.gateway();
    await gw.prepareConf(SAY);
    for (let i = 0; i < 200; i++) expectOk(await gw.httpReqCall(SAY));
    const port = new URL(runner.runner.metricsUrl!).port;
    const { code, stdout, stderr } = await runDoctor(['--metrics-addr', `127.0.0.1:${port}`]);
    assert.equal(stderr, '');
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^runner unknown \\(pid ${process.pid}\\) on unix:${runner.socketPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, up \\d+ s, figures from http://127\\.0\\.0\\.1:${port}/stats$`));
    assert.ok(lines.includes('conf token caching: 1 PrepareConf for 200 calls: pass'), stdout);
    assert.ok(lines.some((l) => /^connection reuse: \d+ calls per connection: pass$/.test(l)), stdout);
    assert.ok(lines.some((l) => l.startsWith('allow_degradation: not observed: ')), stdout);
    assert.ok(lines.some((l) => l.startsWith('Unix socket rather than TCP: not observed: ')), stdout);
    // On a loaded 2-core machine (the suite runs files in parallel) a pause can push the event-loop
    // delay or a filter's p99 over its threshold; nothing else may fail, and the exit code says so.
    const failed = lines.filter((l) => /: fail(: |$)/.test(l));
    assert.ok(failed.every((l) => l.startsWith('event-loop delay') || l.startsWith('slowest plugin')), stdout);
    assert.equal(code, failed.length === 0 ? 0 : 1, stdout);
  });
});

/** An HTTPReqCall frame with a token this runner never issued (the simulator only sends its own). */
function unknownTokenFrame(): Buffer {
  return encodeHttpReqCallReq({ id: 7, srcIp: Buffer.from([127, 0, 0, 1]), method: 0, path: '/', args: [], headers: [], confToken: 0xfffffff0 });
}
