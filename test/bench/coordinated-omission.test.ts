/**
 * Coordinated omission: a server that stalls once for 200 ms. The open loop measures each call from
 * its intended send time, so every call due during the stall carries part of it; the closed loop
 * only sees the few calls that were in flight, one per connection.
 *
 * Only what the stall forces is asserted: the server answers nothing for 200 ms, so latencies can
 * only be longer than these bounds, never shorter, however busy the machine. How well a closed loop's
 * p99 hides the stall on a quiet machine is a measurement: `node .build/bench/coordinated-omission.js`.
 */
import { strict as assert } from 'node:assert';
import { after, test } from 'node:test';
import { countAtLeast, decodeHistogram } from '../../src/bench/histogram.js';
import { spawnLoadGenerator } from '../../src/bench/load-generator.js';
import { quickConfig, startFake, type FakeServer } from './support/helpers.js';

const STALL_MS = 200;
const HALF_STALL_US = (STALL_MS * 1000) / 2;
const RATE = 1000;
const DURATION_MS = 1500;
const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function stallServer(): Promise<FakeServer> {
  const s = await startFake('stall', { stallMs: STALL_MS, stallAfterMs: 700 });
  servers.push(s);
  return s;
}

test('the same stall: the open loop records it on every call due during it, the closed loop only on the calls in flight', async (t) => {
  const server = await stallServer();
  const open = await spawnLoadGenerator(quickConfig(server.socketPath, { mode: 'open', rate: RATE, connections: 4, warmupMs: 200, durationMs: DURATION_MS }), {
    cpus: null,
  });
  assert.equal(open.errors, 0, JSON.stringify(open.errorSamples));
  // The schedule, not the server or the machine, sets the count (one more or less at the edges).
  const due = (RATE * DURATION_MS) / 1000;
  assert.ok(Math.abs(open.requests - due) <= 1, `${open.requests} calls, ${due} due`);
  assert.equal(open.successes, open.requests);
  const o = decodeHistogram(open.histogram);
  // The ~100 calls due in the stall's first half waited at least its second half: the stall is in p99.
  const openSlow = countAtLeast(o, HALF_STALL_US);
  assert.ok(openSlow >= 90, `${openSlow} calls of at least ${STALL_MS / 2} ms`);
  assert.ok(o.getValueAtPercentile(99) >= HALF_STALL_US, `p99 ${o.getValueAtPercentile(99)} us should carry the ${STALL_MS} ms stall`);
  assert.ok(o.maxValue >= STALL_MS * 1000 * 0.9, `max ${o.maxValue} us`);
  assert.ok(open.maxBacklog > 100, `calls queued for a free connection during the stall: ${open.maxBacklog}`);

  const closed = await spawnLoadGenerator(quickConfig((await stallServer()).socketPath, { mode: 'closed', connections: 4, warmupMs: 200, durationMs: DURATION_MS }), {
    cpus: null,
  });
  assert.equal(closed.errors, 0, JSON.stringify(closed.errorSamples));
  const c = decodeHistogram(closed.histogram);
  assert.ok(c.maxValue >= STALL_MS * 1000 * 0.9, `the stall shows in the closed loop's max: ${c.maxValue} us`);
  // No call is sent while every connection waits, so the stall lands on the 4 in flight (and on any
  // a pause of the machine holds as long), far from the ~100 the open loop records.
  const closedSlow = countAtLeast(c, HALF_STALL_US);
  t.diagnostic(`calls of at least ${STALL_MS / 2} ms: open loop ${openSlow} of ${open.requests}, closed loop ${closedSlow} of ${closed.requests}`);
  assert.ok(closedSlow >= 1 && closedSlow * 4 < openSlow, `${closedSlow} closed-loop calls of at least ${STALL_MS / 2} ms, ${openSlow} in the open loop`);
});
