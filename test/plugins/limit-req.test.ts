/** `limit-req` through the real request runtime, on a fake clock (no sleeps). */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import limitReq, { createLimitReq } from '../../src/plugins/limit-req.js';
import type { PreparedPlugin } from '../../src/workers/chain.js';
import { roundTripRequest, runRequest, step } from '../support/plugin-harness.js';

function clock(): { now: () => number; at: (ms: number) => void } {
  let t = 0;
  return { now: () => t, at: (ms) => void (t = ms) };
}

/** One request through the chain: true when it passed, false when it was answered 503. */
async function pass(chain: readonly PreparedPlugin[]): Promise<boolean> {
  const action = (await runRequest(chain)).call.toAction();
  if (action === null) return true;
  assert.deepEqual(action, { type: 'stop', status: 503, headers: null, body: null });
  return false;
}

async function passes(chain: readonly PreparedPlugin[], n: number): Promise<boolean[]> {
  const out: boolean[] = [];
  for (let i = 0; i < n; i++) out.push(await pass(chain));
  return out;
}

test('allows burst requests at once, rejects the next, refills at rate', async () => {
  const c = clock();
  const chain = [step(createLimitReq({ now: c.now }), { rate: 2, burst: 3 })];
  assert.deepEqual(await passes(chain, 4), [true, true, true, false]);
  c.at(400); // 0.8 token: still empty
  assert.equal(await pass(chain), false);
  c.at(600); // 1.2 tokens
  assert.deepEqual(await passes(chain, 2), [true, false]);
  c.at(60_000); // a long pause refills to burst, not beyond
  assert.deepEqual(await passes(chain, 4), [true, true, true, false]);
});

test('a fractional rate works: 0.5 is one request every two seconds', async () => {
  const c = clock();
  const chain = [step(createLimitReq({ now: c.now }), { rate: 0.5, burst: 1 })];
  assert.deepEqual(await passes(chain, 2), [true, false]);
  c.at(1500);
  assert.equal(await pass(chain), false);
  c.at(2100);
  assert.equal(await pass(chain), true);
});

test('the 503 goes on the wire as a Stop without a body', async () => {
  const c = clock();
  const chain = [step(createLimitReq({ now: c.now }), { rate: 1, burst: 1 })];
  await runRequest(chain);
  const { call, port } = await runRequest(chain);
  const wire = roundTripRequest(call);
  assert.equal(wire.action?.type, 'stop');
  if (wire.action?.type !== 'stop') return;
  assert.equal(wire.action.status, 503);
  assert.equal(wire.action.body, null);
  assert.equal(wire.action.headers, null);
  assert.equal(port.queries.length, 0);
});

test('each parsed conf has its own bucket', async () => {
  const c = clock();
  const plugin = createLimitReq({ now: c.now });
  const routeA = [step(plugin, '{"rate": 1, "burst": 1}')];
  const routeB = [step(plugin, '{"rate": 1, "burst": 1}')];
  assert.deepEqual(await passes(routeA, 2), [true, false]);
  assert.equal(await pass(routeB), true);
});

test('a clock that steps back does not drain the bucket', async () => {
  const c = clock();
  c.at(10_000);
  const chain = [step(createLimitReq({ now: c.now }), { rate: 1, burst: 2 })];
  assert.equal(await pass(chain), true);
  c.at(5_000);
  assert.equal(await pass(chain), true);
  assert.equal(await pass(chain), false);
});

test('a bad conf is rejected with a message naming the field', () => {
  const bad: Array<[string, RegExp]> = [
    ['{"burst": 1}', /"rate" must be a number of requests per second greater than 0 \(got nothing\)/],
    ['{"rate": 0, "burst": 1}', /"rate"/],
    ['{"rate": -1, "burst": 1}', /"rate"/],
    ['{"rate": "5", "burst": 1}', /"rate" .*\(got "5"\)/],
    ['{"rate": 1}', /"burst" must be an integer of at least 1/],
    ['{"rate": 1, "burst": 0}', /"burst"/],
    ['{"rate": 1, "burst": 1.5}', /"burst"/],
    ['{"rate": 1, "burst": 1, "count": 3}', /unknown field "count"/],
  ];
  for (const [value, message] of bad) assert.throws(() => limitReq.parseConf(value), message, value);
});
