/**
 * The golden frames (test/fixtures/vectors/, README there) through the codec, both ways.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { decodeToExpected, encodeFromExpected, loadVectors, ROOTS } from '../support/vectors.js';

const vectors = loadVectors();
const pythonBuilt = vectors.filter((v) => !v.label.startsWith('gateway_lua/'));

test('the fixture set is complete: 23 Python-built frames and 7 gateway (Lua) frames', () => {
  assert.equal(pythonBuilt.length, 23);
  assert.deepEqual(
    vectors.filter((v) => v.label.startsWith('gateway_lua/')).map((v) => v.name.slice(0, 2)),
    ['01', '02', '05', '06', '16', '17', '18'],
  );
});

test('every frame decodes to its expected/*.json', async (t) => {
  for (const v of vectors) {
    await t.test(v.label, () => {
      assert.equal(v.expected.root, ROOTS[v.direction][v.type], 'root follows from type and direction');
      assert.equal(v.expected.payload_len, v.frame.readUIntBE(1, 3), 'payload_len is the header length');
      assert.deepEqual(decodeToExpected(v.frame, v.direction), v.expected);
    });
  }
});

test('runner-side encoders reproduce 03, 04, 11, 20, 21, 22 and 23 byte for byte', () => {
  const targets = ['03', '04', '11', '20', '21', '22', '23'];
  for (const v of pythonBuilt.filter((x) => targets.includes(x.name.slice(0, 2)))) {
    assert.equal(encodeFromExpected(v.expected.root, v.expected.fields).toString('hex'), v.frame.toString('hex'), v.name);
  }
});

test('runner-side encoders round-trip every other runner->gateway vector', () => {
  const others = pythonBuilt.filter(
    (v) => v.direction === 'runner->gateway' && !['03', '04', '11', '20', '21', '22', '23'].includes(v.name.slice(0, 2)),
  );
  assert.deepEqual(
    others.map((v) => v.name.slice(0, 2)),
    ['07', '08', '09', '10', '12', '13', '14', '15', '19'],
  );
  for (const v of others) {
    const frame = encodeFromExpected(v.expected.root, v.expected.fields);
    assert.deepEqual(decodeToExpected(frame, v.direction), v.expected, v.name);
  }
});

test('gateway-side encoders round-trip 01, 02, 05, 06, 16, 17 and 18', () => {
  const requests = pythonBuilt.filter((v) => v.direction === 'gateway->runner');
  assert.equal(requests.length, 7);
  for (const v of requests) {
    const frame = encodeFromExpected(v.expected.root, v.expected.fields);
    assert.deepEqual(decodeToExpected(frame, v.direction), v.expected, v.name);
  }
});

// Stronger than the README asks (it expects byte equality only for the small replies): calling
// the JS builder in the peers' order reproduces every Python-built frame. If this fails while
// the round trips pass, the layout changed, not the meaning.
test('every encoder reproduces every Python-built frame byte for byte', () => {
  for (const v of pythonBuilt) {
    assert.equal(encodeFromExpected(v.expected.root, v.expected.fields).toString('hex'), v.frame.toString('hex'), v.name);
  }
});
