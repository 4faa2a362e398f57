/**
 * Coordinated omission: a server that stalls once for 200 ms. The open loop measures each call from
 * its intended send time, so every call due during the stall carries part of it and the p99 shows
 * it; the closed loop only sees the few calls that were in flight, and its p99 hides it (its max
 * does not).
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { decodeHistogram } from '../../src/bench/histogram.js';
import { spawnLoadGenerator } from '../../src/bench/load-generator.js';
import { quickConfig, startFake, type FakeServer } from './support/helpers.js';

const STALL_MS = 200;
const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function stallServer(): Promise<FakeServer> {
  const s = await startFake('stall', { stallMs: STALL_MS, stallAfterMs: 700 });
  servers.push(s);
  return s;
}

test('open loop: the stall shows in p99 (latency from the intended send time)', async () => {
  const server = await stallServer();
  // 1000 calls/s for 1.5 s measured: about 200 of the 1500 calls are due during the stall.
  const r = await spawnLoadGenerator(quickConfig(server.socketPath, { mode: 'open', rate: 1000, connections: 4, warmupMs: 200, durationMs: 1500 }), {
    cpus: null,
  });
  assert.equal(r.errors, 0, JSON.stringify(r.errorSamples));
  const h = decodeHistogram(r.histogram);
  assert.ok(r.successes > 1200, `successes ${r.successes}`);
  const p99 = h.getValueAtPercentile(99);
  const p90 = h.getValueAtPercentile(90);
  assert.ok(h.maxValue >= STALL_MS * 1000 * 0.9, `max ${h.maxValue} us`);
  assert.ok(p99 >= STALL_MS * 1000 * 0.5, `p99 ${p99} us should carry the ${STALL_MS} ms stall`);
  assert.ok(p90 >= 5_000, `about 13% of the calls were delayed: p90 ${p90} us`);
  assert.ok(r.maxBacklog > 100, `calls queued for a free connection during the stall: ${r.maxBacklog}`);
});

test('closed loop: the same stall is hidden from p99, visible only in the max', async () => {
  const server = await stallServer();
  const r = await spawnLoadGenerator(quickConfig(server.socketPath, { mode: 'closed', connections: 4, warmupMs: 200, durationMs: 1500 }), { cpus: null });
  assert.equal(r.errors, 0, JSON.stringify(r.errorSamples));
  const h = decodeHistogram(r.histogram);
  assert.ok(r.successes > 2000, `successes ${r.successes}`);
  assert.ok(h.maxValue >= STALL_MS * 1000 * 0.9, `max ${h.maxValue} us`);
  assert.ok(h.getValueAtPercentile(99) < 50_000, `p99 ${h.getValueAtPercentile(99)} us: only the 4 calls in flight saw the stall`);
});
