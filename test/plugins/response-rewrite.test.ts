/** `response-rewrite` through the real response runtime (ext-plugin-post-resp). */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import responseRewrite from '../../src/plugins/response-rewrite.js';
import { pairs, roundTripResponse, runResponse, step, text, type ResponseInit } from '../support/plugin-harness.js';

const upstream: ResponseInit = {
  status: 502,
  headers: [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '17'],
    ['Set-Cookie', 'a=1; Path=/'],
    ['Connection', 'keep-alive'],
    ['Set-Cookie', 'b=2; Path=/'],
  ],
};

test('the Go conf {status, headers, body}: no body read, repeated upstream headers survive', async () => {
  const conf = { status: 200, headers: { 'X-Server-Id': '9527' }, body: 'response rewrite' };
  const { call, port } = await runResponse([step(responseRewrite, conf)], upstream, { respBody: 'hello world world' });
  assert.equal(port.count('respBody'), 0);
  const wire = roundTripResponse(call);
  assert.equal(wire.id, 9);
  assert.equal(wire.status, 200);
  assert.equal(text(wire.body), 'response rewrite');
  // The full set minus framing headers: Content-Length goes because the body changed.
  assert.deepEqual(pairs(wire.headers), [
    ['Content-Type', 'text/plain'],
    ['Set-Cookie', 'a=1; Path=/'],
    ['Set-Cookie', 'b=2; Path=/'],
    ['X-Server-Id', '9527'],
  ]);
});

test('status alone changes the status only, and reads no body', async () => {
  const { call, port } = await runResponse([step(responseRewrite, { status: 404 })], upstream, { respBody: 'x' });
  assert.equal(port.count('respBody'), 0);
  const reply = call.toReply();
  assert.equal(reply.status, 404);
  assert.equal(reply.body, null);
  assert.deepEqual(pairs(reply.headers), [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '17'],
    ['Set-Cookie', 'a=1; Path=/'],
    ['Set-Cookie', 'b=2; Path=/'],
  ]);
});

test('a header given as an array replaces every upstream value with the list', async () => {
  const { call } = await runResponse([step(responseRewrite, { headers: { 'set-cookie': ['x=1', 'y=2'] } })], upstream);
  assert.deepEqual(
    pairs(roundTripResponse(call).headers)!.filter(([name]) => name.toLowerCase() === 'set-cookie'),
    [
      ['set-cookie', 'x=1'],
      ['set-cookie', 'y=2'],
    ],
  );
});

test('Go filters: "global" replaces every match, "once" the first; the body is read once', async () => {
  for (const [scope, expected] of [
    ['global', 'hello golang golang'],
    ['once', 'hello golang world'],
  ] as const) {
    const conf = { filters: [{ regex: 'world', scope, replace: 'golang' }] };
    const { call, port } = await runResponse([step(responseRewrite, conf)], { status: 200 }, { respBody: 'hello world world' });
    assert.equal(port.count('respBody'), 1, scope);
    const wire = roundTripResponse(call);
    assert.equal(wire.status, 0, scope);
    assert.equal(text(wire.body), expected, scope);
  }
});

test('scope defaults to "once"', async () => {
  const conf = { filters: [{ regex: 'o', replace: '0' }] };
  const { call } = await runResponse([step(responseRewrite, conf)], {}, { respBody: 'foo' });
  assert.equal(text(call.toReply().body), 'f0o');
});

test('filters apply in order, and chained plugins share one body read', async () => {
  const first = { filters: [{ regex: 'a+', scope: 'global', replace: 'b' }, { regex: 'bb', scope: 'once', replace: 'c' }] };
  const second = { filters: [{ regex: '\\d', scope: 'global', replace: '#' }] };
  const { call, port } = await runResponse([step(responseRewrite, first), step(responseRewrite, second)], upstream, { respBody: 'a1 aa2 bb3' });
  assert.equal(port.count('respBody'), 1);
  const wire = roundTripResponse(call);
  assert.equal(text(wire.body), 'b# b# c#');
  assert.equal(wire.status, 0);
  assert.ok(!pairs(wire.headers)!.some(([name]) => name === 'Content-Length'));
});

test('replace is literal text: $1 and $& are not expanded', async () => {
  const conf = { filters: [{ regex: '(\\w+)@example\\.com', scope: 'global', replace: '$1 at $& for $$5' }] };
  const { call } = await runResponse([step(responseRewrite, conf)], {}, { respBody: 'mail joe@example.com' });
  assert.equal(text(call.toReply().body), 'mail $1 at $& for $$5');
});

test('no match, no body, or a body that is not UTF-8: the body is left alone', async () => {
  const conf = { filters: [{ regex: 'zzz', scope: 'global', replace: 'y' }] };
  const cases: Array<string | Uint8Array | undefined> = ['no match here', undefined, Uint8Array.of(0x7a, 0x7a, 0x7a, 0xff)];
  for (const respBody of cases) {
    const { call, port } = await runResponse([step(responseRewrite, conf)], upstream, respBody === undefined ? {} : { respBody });
    assert.equal(port.count('respBody'), 1);
    const wire = roundTripResponse(call);
    assert.equal(wire.body, null);
    assert.equal(wire.status, 0);
    // Body unchanged: its Content-Length is still right and stays; Connection never goes back.
    assert.deepEqual(pairs(wire.headers)?.map(([name]) => name), ['Content-Type', 'Content-Length', 'Set-Cookie', 'Set-Cookie']);
  }
});

test('a bad conf is rejected with a message naming the field', () => {
  const bad: Array<[string, RegExp]> = [
    ['{}', /conf changes nothing: set at least one of status, headers, body, filters/],
    ['{"status": 700}', /"status" must be an integer HTTP status from 100 to 599 \(got 700\)/],
    ['{"body": ""}', /"body" must not be empty/],
    ['{"body": 3}', /"body" must be a string/],
    ['{"headers": []}', /"headers" must be an object/],
    ['{"headers": {"X-A": 1}}', /"headers"\["X-A"\] must be a string/],
    ['{"headers": {"X A": "1"}}', /"headers": header name "X A" is not an RFC 9110 token/],
    ['{"headers": {"X-A": "1\\r\\nX-B: 2"}}', /"headers"\["X-A"\]: the value of header "X-A" has 0x0d \(CR\) at byte 1/],
    ['{"headers": {"X-A": "\\t1"}}', /"headers"\["X-A"\]: the value of header "X-A" starts with 0x09 \(HTAB\)/],
    ['{"headers": {"X-A": "1", "x-a": "2"}}', /"headers" names "x-a" twice/],
    ['{"headers": {"Content-Length": "1"}}', /"headers" cannot set "Content-Length": framing headers belong to the gateway/],
    ['{"headers": {"Transfer-Encoding": "chunked"}}', /"Transfer-Encoding"/],
    ['{"filters": []}', /"filters" must be a non-empty array/],
    ['{"filters": ["x"]}', /"filters\[0\]" must be an object/],
    ['{"filters": [{"regex": "(", "replace": ""}]}', /"filters\[0\]\.regex" does not compile: /],
    ['{"filters": [{"regex": "", "replace": "x"}]}', /"filters\[0\]\.regex" must be a non-empty string/],
    ['{"filters": [{"regex": "a", "replace": "b"}, {"regex": "a", "scope": "all", "replace": "b"}]}', /"filters\[1\]\.scope" must be "once" or "global" \(got "all"\)/],
    ['{"filters": [{"regex": "a"}]}', /"filters\[0\]\.replace" is required/],
    ['{"filters": [{"regex": "a", "replace": "b", "options": "jo"}]}', /"filters\[0\]": unknown field "options"/],
    ['{"body": "x", "filters": [{"regex": "a", "replace": "b"}]}', /"body" and "filters" cannot both be set/],
    ['{"status_code": 200}', /unknown field "status_code"/],
  ];
  for (const [value, message] of bad) assert.throws(() => responseRewrite.parseConf(value), message, value);
});
