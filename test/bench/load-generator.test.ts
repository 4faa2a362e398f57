/**
 * The load generator counts what a server gets wrong as errors, never as successes: each test runs
 * the real generator process against a deliberately wrong server process over a Unix socket.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { decodeHistogram } from '../../src/bench/histogram.js';
import { LoadGenerator, spawnLoadGenerator } from '../../src/bench/load-generator.js';
import type { LoadResult } from '../../src/bench/types.js';
import { quickConfig, startFake, type FakeServer } from './support/helpers.js';

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function runAgainst(mode: string, overrides = {}, workload = {}): Promise<LoadResult> {
  const server = await startFake(mode);
  servers.push(server);
  return spawnLoadGenerator(quickConfig(server.socketPath, overrides, workload), { cpus: null });
}

function assertOnlyErrors(r: LoadResult, kind: string): void {
  assert.ok(r.requests > 0, 'calls were made');
  assert.equal(r.successes, 0, 'no call counts as a success');
  assert.equal(r.throughput, 0);
  assert.equal(decodeHistogram(r.histogram).totalCount, 0, 'no latency recorded for failed calls');
  assert.equal(r.errors, r.requests, 'every measured call is an error');
  assert.deepEqual(Object.keys(r.errorKinds), [kind]);
  assert.equal(r.errorKinds[kind as keyof LoadResult['errorKinds']], r.errors);
  assert.match(r.errorSamples[0], new RegExp(`^${kind}: `));
}

test('a correct server: every call succeeds and is measured', async () => {
  const r = await runAgainst('good');
  assert.ok(r.successes > 50, `successes ${r.successes}`);
  assert.equal(r.errors, 0);
  assert.equal(r.requests, r.successes);
  assert.equal(decodeHistogram(r.histogram).totalCount, r.successes);
  assert.ok(r.throughput > 0);
  assert.equal(r.prepareConfs, 1, 'PrepareConf once');
});

test('a reply with the wrong id is an error', async () => {
  assertOnlyErrors(await runAgainst('wrong-id'), 'wrong-id');
});

test('a reply with another action than expected is an error', async () => {
  const r = await runAgainst('wrong-action');
  assertOnlyErrors(r, 'wrong-action');
  assert.match(r.errorSamples[0], /action rewrite .*expected stop/);
});

test('the same Rewrite reply is a success when any action is expected', async () => {
  const r = await runAgainst('wrong-action', {}, { expect: 'any' });
  assert.equal(r.errors, 0);
  assert.ok(r.successes > 0);
});

test('an error frame is an error', async () => {
  assertOnlyErrors(await runAgainst('error-frame'), 'error-frame');
});

test('a truncated frame followed by a close is an error, and the generator reconnects', async () => {
  const r = await runAgainst('truncate');
  assertOnlyErrors(r, 'truncated');
  assert.ok(r.errors > 2, 'more calls after reconnecting');
  assert.ok(r.reconnects >= r.errors - 2);
});

test('CONF_TOKEN_NOT_FOUND: PrepareConf again and retry the call, as the gateway does', async () => {
  const r = await runAgainst('token-once', { connections: 4 });
  assert.equal(r.errors, 0, JSON.stringify(r.errorSamples));
  assert.ok(r.successes > 10);
  assert.ok(r.confTokenNotFound >= 1);
  assert.equal(r.prepareConfs, 2, 'one shared re-prepare for all connections');
});

test('CONF_TOKEN_NOT_FOUND on every attempt: an error after 3 attempts', async () => {
  const r = await runAgainst('token-always', { connections: 1 });
  assertOnlyErrors(r, 'token');
  assert.match(r.errorSamples[0], /after 3 attempts/);
  // Each failed call saw 3 error replies, and re-prepared in between.
  assert.ok(r.confTokenNotFound >= 3 * r.errors, `${r.confTokenNotFound} error replies for ${r.errors} calls`);
  assert.ok(r.prepareConfs >= 2 * r.errors);
});

test('ExtraInfo queries are answered from the workload (var and request body)', async () => {
  const server = await startFake('extra', { expectVar: '1', expectBodyBytes: 1024 });
  servers.push(server);
  const ok = await spawnLoadGenerator(quickConfig(server.socketPath, {}, { reqBodyBytes: 1024 }), { cpus: null });
  assert.equal(ok.errors, 0, JSON.stringify(ok.errorSamples));
  assert.ok(ok.successes > 10);
  assert.equal(ok.extraInfoQueries, 2 * ok.requests, 'two queries per call');
  // The fake answers Stop 500 when the answers do not match; the bench only checks the action kind,
  // so run it once more with other answers to see the fake really checks them (Stop either way).
  const wrong = await spawnLoadGenerator(quickConfig(server.socketPath, {}, { reqBodyBytes: 1024, vars: { route_id: '2' } }), { cpus: null });
  assert.equal(wrong.errors, 0);
});

test('a server that is not there fails the run with a clear message', async () => {
  await assert.rejects(spawnLoadGenerator(quickConfig('/nonexistent/dir/x.sock'), { cpus: null }), /load generator .*ENOENT|connect/);
});

test('open loop sends at the requested rate and bounds the run by count', async () => {
  const server = await startFake('good');
  servers.push(server);
  const r = await spawnLoadGenerator(quickConfig(server.socketPath, { mode: 'open', rate: 500, durationMs: 5000, maxRequests: 200, warmupMs: 100 }), { cpus: null });
  assert.equal(r.errors, 0);
  assert.equal(r.requests, 200, 'stopped after 200 measured calls');
  assert.equal(r.successes, 200);
  // At 500/s the 200th measured call is due 398 ms into the window: never sent before (how much
  // later depends on the machine, and is what the latencies record).
  assert.ok(r.measuredMs >= 397.9, `measured ${r.measuredMs} ms`);
  assert.ok(r.sendLagHistogram !== null);
});

test('open loop bounded by count: calls still waiting for a connection when the count is reached are not sent', async () => {
  // The server stalls 200 ms on the first call: about 200 calls fall due on the one connection
  // meanwhile, far more than the 50 the run is bounded to.
  const server = await startFake('stall', { stallMs: 200, stallAfterMs: 0 });
  servers.push(server);
  const r = await spawnLoadGenerator(quickConfig(server.socketPath, { mode: 'open', rate: 1000, connections: 1, durationMs: 5000, maxRequests: 50 }), { cpus: null });
  assert.ok(r.maxBacklog > 50, `a backlog when the count was reached (max ${r.maxBacklog})`);
  assert.equal(r.errors, 0, JSON.stringify(r.errorSamples));
  assert.equal(r.requests, 50);
  assert.equal(r.successes, 50);
  assert.equal(decodeHistogram(r.histogram).totalCount, 50);
});

test('open loop: calls that fell due while the generator itself was held up at the end of the window are part of the run', async () => {
  const server = await startFake('good');
  servers.push(server);
  const rate = 1000;
  const durationMs = 300;
  // 150 ms into the window, right after a tick of the generator, the process blocks until 150 ms
  // past its end: the end timer then runs before the next tick could queue the calls due since.
  const blocked = new Int32Array(new SharedArrayBuffer(4));
  const gen = new LoadGenerator(quickConfig(server.socketPath, { mode: 'open', rate, durationMs, connections: 4 }), {
    onWindow: (edge) => {
      if (edge === 'start') setTimeout(() => setImmediate(() => Atomics.wait(blocked, 0, 0, 300)), 150);
    },
  });
  const r = await gen.run();
  assert.equal(r.errors, 0, JSON.stringify(r.errorSamples));
  // One call per millisecond of the window (one more or less where the clock meets its edges).
  assert.ok(Math.abs(r.requests - (rate * durationMs) / 1000) <= 1, `${r.requests} calls`);
  assert.equal(r.successes, r.requests);
});
