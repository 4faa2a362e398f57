/** `say` through the real request runtime. */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import say from '../../src/plugins/say.js';
import { pairs, roundTripRequest, runRequest, step, text } from '../support/plugin-harness.js';

test('the Go conf {"body"} answers 200 with the body, on the wire too', async () => {
  const { call, port } = await runRequest([step(say, { body: 'hello' })]);
  const action = call.toAction();
  assert.equal(action?.type, 'stop');
  const wire = roundTripRequest(call);
  assert.equal(wire.id, 7);
  assert.equal(wire.action?.type, 'stop');
  if (wire.action?.type !== 'stop') return;
  assert.equal(wire.action.status, 200);
  assert.equal(text(wire.action.body), 'hello');
  assert.equal(wire.action.headers, null);
  assert.equal(port.queries.length, 0);
});

test('status and headers are sent with the Stop', async () => {
  const { call } = await runRequest([step(say, { body: 'gone', status: 410, headers: { 'X-Resp': 'a' } })]);
  const wire = roundTripRequest(call);
  assert.equal(wire.action?.type, 'stop');
  if (wire.action?.type !== 'stop') return;
  assert.equal(wire.action.status, 410);
  assert.deepEqual(pairs(wire.action.headers), [['X-Resp', 'a']]);
});

test('an empty body lets the request through unchanged, as the Go runner\'s say does', async () => {
  for (const value of ['', '{}', '{"body": "", "status": 403}']) {
    const { call } = await runRequest([step(say, value)]);
    assert.equal(call.stopped, false, value);
    assert.equal(call.toAction(), null, value);
  }
});

test('headers may repeat (arrays), names must be tokens, values must not split the header', async () => {
  const { call } = await runRequest([step(say, '{"body": "x", "headers": {"Set-Cookie": ["a=1", "b=2"], "X-One": "1"}}')]);
  const action = call.toAction();
  assert.equal(action?.type, 'stop');
  assert.deepEqual(
    action.headers?.map((h) => [String(h.name), Buffer.from(h.value as Uint8Array).toString()]),
    [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2'], ['X-One', '1']],
  );
  assert.throws(() => say.parseConf('{"headers": {"bad name": "1"}}'), { code: 'ANR_ERR_INVALID_HEADER', header: 'bad name', rule: 'name-not-token' });
  assert.throws(() => say.parseConf('{"headers": {"x": "a\\r\\nInjected: 1"}}'), { code: 'ANR_ERR_INVALID_HEADER', header: 'x', rule: 'value-forbidden-byte' });
  assert.throws(() => say.parseConf('{"headers": {"x": ["ok", "a\\u007f"]}}'), { code: 'ANR_ERR_INVALID_HEADER', header: 'x', rule: 'value-forbidden-byte' });
  // obs-text (UTF-8 here) and a tab inside are field-value characters.
  assert.doesNotThrow(() => say.parseConf('{"body": "x", "headers": {"x": "caf\\u00e9\\tau lait"}}'));
  assert.throws(() => say.parseConf('{"headers": ["xy"]}'), /"headers"/);
  assert.throws(() => say.parseConf('{"bdy": "x"}'), /unknown field "bdy"/);
});

test('a bad conf is rejected with a message naming the field', () => {
  assert.throws(() => say.parseConf('{"status": 99}'), /"status"/);
  assert.throws(() => say.parseConf('{"body": 1}'), /"body"/);
  assert.throws(() => say.parseConf('{"headers": {"a": 1}}'), /"headers"/);
  assert.throws(() => say.parseConf('[]'), /JSON object/);
});
