/** `request-body-rewrite` through the real request runtime. */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { definePlugin } from '../../src/plugin.js';
import requestBodyRewrite from '../../src/plugins/request-body-rewrite.js';
import { roundTripRequest, runRequest, step, text } from '../support/plugin-harness.js';

test('the Go conf {"new_body"} rewrites only the body, without reading the original', async () => {
  const { call, port } = await runRequest([step(requestBodyRewrite, { new_body: 'héllo wörld' })], { method: 'POST' }, { reqBody: 'original' });
  const wire = roundTripRequest(call);
  assert.equal(wire.action?.type, 'rewrite');
  if (wire.action?.type !== 'rewrite') return;
  assert.equal(text(wire.action.body), 'héllo wörld');
  assert.deepEqual(Buffer.from(wire.action.body!), Buffer.from('héllo wörld', 'utf8'));
  assert.equal(wire.action.path, null);
  assert.equal(wire.action.headers, null);
  assert.equal(wire.action.args, null);
  assert.equal(wire.action.respHeaders, null);
  assert.equal(port.count('reqBody'), 0);
});

test('a later plugin in the chain reads the new body, with no gateway query', async () => {
  let seen: string | null = null;
  const probe = definePlugin({
    name: 'probe',
    async requestFilter(_conf, req) {
      seen = await req.text();
    },
  });
  const { port } = await runRequest([step(requestBodyRewrite, { new_body: 'new' }), step(probe, '')], { method: 'POST' }, { reqBody: 'old' });
  assert.equal(seen, 'new');
  assert.equal(port.count('reqBody'), 0);
});

test('a bad conf is rejected with a message naming the field', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /"new_body" is required/],
    ['{"new_body": ""}', /"new_body" must not be empty: the gateway cannot replace a body with an empty one/],
    ['{"new_body": 5}', /"new_body" must be a string \(got 5\)/],
    ['{"newBody": "x"}', /unknown field "newBody" \(the fields are new_body\)/],
  ];
  for (const [value, message] of bad) assert.throws(() => requestBodyRewrite.parseConf(value), message, value);
});
