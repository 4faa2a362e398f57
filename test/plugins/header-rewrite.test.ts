/** `header-rewrite` through the real request runtime. */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import headerRewrite from '../../src/plugins/header-rewrite.js';
import say from '../../src/plugins/say.js';
import { pairs, roundTripRequest, runRequest, step } from '../support/plugin-harness.js';

const full = {
  set: { 'X-Api-Version': '2', 'X-Same': 'same' },
  remove: ['X-Debug'],
  resp_set: { 'Cache-Control': 'no-store', 'Set-Cookie': ['a=1', 'b=2'] },
  resp_add: { Vary: ['Accept', 'Origin'] },
  resp_remove: ['X-Frame-Options'],
};

test('request headers go in the Rewrite diff, response headers in resp_headers, on the wire', async () => {
  const headers = [
    ['x-debug', '1'],
    ['x-keep', 'k'],
    ['x-same', 'same'],
  ] as const;
  const { call, port } = await runRequest([step(headerRewrite, full)], { headers });
  const wire = roundTripRequest(call);
  assert.equal(wire.action?.type, 'rewrite');
  if (wire.action?.type !== 'rewrite') return;
  // Untouched headers are not re-sent (x-keep); a removal is an absent value, never "". A set to
  // the current value is still sent when nothing read the headers (checking would cost a decode).
  assert.deepEqual(pairs(wire.action.headers), [
    ['x-debug', null],
    ['x-api-version', '2'],
    ['x-same', 'same'],
  ]);
  assert.deepEqual(pairs(wire.action.respHeaders), [
    ['x-frame-options', null],
    ['Cache-Control', 'no-store'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['Vary', 'Accept'],
    ['Vary', 'Origin'],
  ]);
  assert.equal(wire.action.path, null);
  assert.equal(wire.action.args, null);
  assert.equal(wire.action.body, null);
  assert.equal(port.queries.length, 0);
});

test('a later plugin sees the rewritten request headers', async () => {
  const { call } = await runRequest([step(headerRewrite, full)], { headers: [['x-debug', '1']] });
  assert.equal(call.headers.get('X-Api-Version'), '2');
  assert.equal(call.headers.has('x-debug'), false);
});

test('response headers carry into a later Stop, repeated set-cookie values included', async () => {
  const chain = [step(headerRewrite, { resp_set: { 'Set-Cookie': ['a=1', 'b=2'] } }), step(say, { body: 'hi', headers: { 'X-Resp': 'x' } })];
  const { call } = await runRequest(chain);
  const wire = roundTripRequest(call);
  assert.equal(wire.action?.type, 'stop');
  if (wire.action?.type !== 'stop') return;
  assert.deepEqual(pairs(wire.action.headers), [
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['X-Resp', 'x'],
  ]);
});

test('resp_add appends to values set earlier in the chain', async () => {
  const chain = [step(headerRewrite, { resp_set: { Vary: 'Accept' } }), step(headerRewrite, { resp_add: { Vary: 'Origin' } })];
  const { call } = await runRequest(chain);
  const action = call.toAction();
  assert.equal(action?.type, 'rewrite');
  if (action?.type !== 'rewrite') return;
  assert.deepEqual(pairs(action.respHeaders), [
    ['Vary', 'Accept'],
    ['Vary', 'Origin'],
  ]);
});

test('a response header the gateway ignores in resp_headers is a conf error that says why', () => {
  for (const [field, value] of [
    ['resp_set', { 'Content-Type': 'text/html' }],
    ['resp_add', { location: '/x' }],
    ['resp_remove', ['Server']],
    ['resp_set', { 'WWW-Authenticate': 'Basic' }],
  ] as const) {
    assert.throws(
      () => headerRewrite.parseConf(JSON.stringify({ [field]: value })),
      new RegExp(`^TypeError: "${field}" names ".+", which the gateway silently ignores in a request-phase rewrite's response headers; change it in the response phase`),
      field,
    );
  }
});

test('a bad conf is rejected with a message naming the field', () => {
  const bad: Array<[string, RegExp]> = [
    ['{}', /conf changes nothing: set at least one of set, remove, resp_set, resp_add, resp_remove/],
    ['{"set": {"X-A": ["1", "2"]}}', /"set"\["X-A"\] must be a string/],
    ['{"set": {"X-A": 1}}', /"set"\["X-A"\] must be a string \(got 1\)/],
    ['{"set": ["X-A"]}', /"set" must be an object of header names to strings/],
    ['{"set": {"X-A": "a\\nb"}}', /"set"\["X-A"\]: the value of header "X-A" has 0x0a \(LF\) at byte 1/],
    ['{"set": {"X-A": "a\\u0001b"}}', /"set"\["X-A"\]: the value of header "X-A" has 0x01 at byte 1/],
    ['{"set": {"X-A": "a "}}', /"set"\["X-A"\]: the value of header "X-A" ends with 0x20 \(space\)/],
    ['{"set": {"X:A": "1"}}', /"set": header name "X:A" is not an RFC 9110 token: ":" \(0x3a\) at index 1/],
    ['{"set": {"": "1"}}', /"set": a header name must not be empty/],
    ['{"resp_add": {"X-A": ["ok", "a\\r\\nset-cookie: s=1"]}}', /"resp_add"\["X-A"\]\[1\]: the value of header "X-A" has 0x0d \(CR\) at byte 1/],
    ['{"remove": "X-A"}', /"remove" must be an array of header names/],
    ['{"remove": [1]}', /"remove"\[0\] must be a string/],
    ['{"remove": ["x y"]}', /"remove"\[0\]: header name "x y" is not an RFC 9110 token: 0x20 \(space\) at index 1/],
    ['{"resp_remove": ["x\\u0000"]}', /"resp_remove"\[0\]: header name "x\\u0000" is not an RFC 9110 token: 0x00 \(NUL\) at index 1/],
    ['{"remove": ["X-A", "x-a"]}', /"remove" names "x-a" twice/],
    ['{"resp_set": {"X-A": []}}', /"resp_set"\["X-A"\] must not be an empty array/],
    ['{"resp_add": {"X-A": ["ok", 2]}}', /"resp_add"\["X-A"\]\[1\] must be a string/],
    ['{"set": {"X-A": "1"}, "remove": ["x-a"]}', /"set" and "remove" both name "x-a"/],
    ['{"resp_set": {"X-A": "1"}, "resp_remove": ["X-A"]}', /"resp_set" and "resp_remove" both name "x-a"/],
    ['{"resp_add": {"X-A": "1"}, "resp_remove": ["x-a"]}', /"resp_add" and "resp_remove" both name "x-a"/],
    ['{"add": {"X-A": "1"}}', /unknown field "add"/],
  ];
  for (const [value, message] of bad) assert.throws(() => headerRewrite.parseConf(value), message, value);
});
