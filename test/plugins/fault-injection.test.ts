/** `fault-injection` through the real request runtime, with an injected random source. */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import faultInjection, { createFaultInjection } from '../../src/plugins/fault-injection.js';
import { roundTripRequest, runRequest, step, text } from '../support/plugin-harness.js';
import { seededRandom } from '../support/prng.js';

const noRandom = (): number => {
  throw new Error('the random source must not be used');
};


test('the Go conf {"http_status", "body"} stops every request (percentage defaults to 100)', async () => {
  const plugin = createFaultInjection({ random: noRandom });
  const { call, port } = await runRequest([step(plugin, { http_status: 400, body: 'hello' })]);
  const wire = roundTripRequest(call);
  assert.equal(wire.action?.type, 'stop');
  if (wire.action?.type !== 'stop') return;
  assert.equal(wire.action.status, 400);
  assert.equal(text(wire.action.body), 'hello');
  assert.equal(wire.action.headers, null);
  assert.equal(port.queries.length, 0);
});

test('percentage 0 never stops and draws no random number', async () => {
  const plugin = createFaultInjection({ random: noRandom });
  const { call } = await runRequest([step(plugin, { http_status: 400, percentage: 0 })]);
  assert.equal(call.toAction(), null);
  assert.equal(roundTripRequest(call).action, null);
});

test('an empty body is a Stop with the status alone, as in Go', async () => {
  const plugin = createFaultInjection({ random: noRandom });
  const { call } = await runRequest([step(plugin, { http_status: 503, body: '' })]);
  assert.deepEqual(call.toAction(), { type: 'stop', status: 503, headers: null, body: null });
});

test('a draw below the percentage stops, one at it passes', async () => {
  for (const [draw, stopped] of [
    [0.2999, true],
    [0.3, false],
    [0.99, false],
    [0, true],
  ] as const) {
    const plugin = createFaultInjection({ random: () => draw });
    const { call } = await runRequest([step(plugin, { http_status: 500, percentage: 30 })]);
    assert.equal(call.stopped, stopped, `draw ${draw}`);
  }
});

test('with a seeded source the share of stopped requests follows the percentage', async () => {
  const n = 2000;
  const draws = seededRandom(42);
  const expected = Array.from({ length: n }, () => draws() * 100 < 25).filter(Boolean).length;
  const chain = [step(createFaultInjection({ random: seededRandom(42) }), { http_status: 503, percentage: 25 })];
  let stopped = 0;
  for (let i = 0; i < n; i++) if ((await runRequest(chain)).call.stopped) stopped++;
  assert.equal(stopped, expected);
  assert.ok(stopped > 0.2 * n && stopped < 0.3 * n, `${stopped} of ${n}`);
});

test('a bad conf is rejected with a message naming the field', () => {
  const bad: Array<[string, RegExp]> = [
    ['{}', /"http_status" is required/],
    ['{"http_status": 199}', /"http_status" must be an integer HTTP status from 200 to 599 \(got 199\)/],
    ['{"http_status": "500"}', /"http_status"/],
    ['{"http_status": 500, "percentage": 101}', /"percentage" must be an integer from 0 to 100/],
    ['{"http_status": 500, "percentage": 12.5}', /"percentage"/],
    ['{"http_status": 500, "body": 1}', /"body" must be a string/],
    ['{"http-status": 500}', /unknown field "http-status" \(the fields are body, http_status, percentage\)/],
    ['{"http_status": 500', /conf is not valid JSON/],
    ['[500]', /conf must be a JSON object/],
  ];
  for (const [value, message] of bad) assert.throws(() => faultInjection.parseConf(value), message, value);
});
