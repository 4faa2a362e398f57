/**
 * Codec semantics beyond the golden frames: absent vs empty, raw bytes, lazy decoding, union
 * tolerance, the frame size limit, and malformed input.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Builder } from 'flatbuffers';
import { FrameTooLargeError, MalformedPayloadError } from '../../src/errors.js';
import {
  decodeErrResp,
  decodeExtraInfoReq,
  decodeExtraInfoResp,
  decodeHttpReqCallResp,
  decodeHttpRespCallReq,
  decodeHttpRespCallResp,
  decodePrepareConfReq,
  encodeErrResp,
  encodeExtraInfoReq,
  encodeExtraInfoResp,
  encodeHttpReqCallReq,
  encodeHttpReqCallResp,
  encodeHttpRespCallReq,
  encodeHttpRespCallResp,
  encodePrepareConfReq,
  encodePrepareConfResp,
  readHttpReqCallReq,
} from '../../src/protocol/codec.js';
import { ErrCode, MAX_PAYLOAD_BYTES, METHODS, type Method } from '../../src/protocol/constants.js';
import type { HttpReqCallReqInput, RawEntry } from '../../src/protocol/messages.js';
import { fieldPos, rootTable, tableField } from '../../src/protocol/table-reader.js';
import { guardedBytes } from '../support/guarded-bytes.js';
import { decodeFields, loadVectors, ROOTS, type Vector } from '../support/vectors.js';
import { seededRandom } from '../support/prng.js';

const vectors = loadVectors();
const byLabel = (label: string): Vector => {
  const v = vectors.find((x) => x.label === label);
  assert.ok(v, label);
  return v;
};
const payloadOf = (frame: Buffer): Buffer => frame.subarray(4);
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const str = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('latin1'));

const REQ_05 = ['05_http_req_call_req_get_ipv4', 'gateway_lua/05_http_req_call_req_get_ipv4'];

const baseReq: HttpReqCallReqInput = {
  id: 1,
  srcIp: bytes(127, 0, 0, 1),
  method: 0,
  path: '/',
  args: [],
  headers: [],
  confToken: 1,
};

test('05: an arg with an empty value keeps it (y=""), a flag arg has none (z)', () => {
  for (const label of REQ_05) {
    const args = readHttpReqCallReq(byLabel(label).payload).args;
    assert.ok(args, label);
    assert.equal(str(args[2].name), 'y');
    assert.ok(args[2].value instanceof Uint8Array, `${label}: y has a value`);
    assert.equal(args[2].value.length, 0);
    assert.equal(str(args[3].name), 'z');
    assert.equal(args[3].value, null, `${label}: z has no value`);
  }
});

test('an absent method reads as GET; 06 carries PUT', () => {
  const get = readHttpReqCallReq(byLabel('05_http_req_call_req_get_ipv4').payload);
  assert.equal(get.method, 0);
  assert.equal(METHODS[get.method], 'GET');
  assert.equal(METHODS[readHttpReqCallReq(byLabel('06_http_req_call_req_put_ipv6').payload).method], 'PUT');
});

test('06: an empty args vector is present ([]), unlike an absent one (null)', () => {
  assert.deepEqual(readHttpReqCallReq(byLabel('06_http_req_call_req_put_ipv6').payload).args, []);
  const absent = readHttpReqCallReq(payloadOf(encodeHttpReqCallReq({ ...baseReq, args: null, headers: null })));
  assert.equal(absent.args, null);
  assert.equal(absent.headers, null);
});

test('src_ip of 4, 16 and 5 (`unix:`) bytes round-trips', () => {
  const v4 = readHttpReqCallReq(byLabel('05_http_req_call_req_get_ipv4').payload).srcIp;
  assert.deepEqual(v4 && [...v4], [127, 0, 0, 1]);
  const v6 = readHttpReqCallReq(byLabel('06_http_req_call_req_put_ipv6').payload).srcIp;
  assert.equal(v6 && Buffer.from(v6).toString('hex'), '20010db8000000000000000000000001');
  for (const ip of [bytes(10, 0, 0, 1), Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from('unix:')]) {
    const srcIp = readHttpReqCallReq(payloadOf(encodeHttpReqCallReq({ ...baseReq, srcIp: ip }))).srcIp;
    assert.ok(srcIp);
    assert.equal(Buffer.compare(srcIp, ip), 0, `${ip.length} bytes`);
  }
});

test('non-UTF-8 bytes round-trip exactly through every encoder and decoder', () => {
  const odd = bytes(0xff, 0xfe, 0x80, 0x00, 0x41);
  const path = bytes(0x2f, 0xff, 0xfe);
  const entries = [{ name: bytes(0x78, 0xff), value: odd }, { name: 'plain', value: bytes(0xfe) }];
  const same = (a: Uint8Array | null, b: Uint8Array): void => {
    assert.ok(a);
    assert.equal(Buffer.compare(a, b), 0);
  };
  const sameEntries = (got: RawEntry[] | null): void => {
    assert.ok(got);
    same(got[0].name, entries[0].name as Uint8Array);
    same(got[0].value, odd);
    same(got[1].name, Buffer.from('plain'));
    same(got[1].value, bytes(0xfe));
  };

  const req = readHttpReqCallReq(payloadOf(encodeHttpReqCallReq({ ...baseReq, path, args: entries, headers: entries })));
  same(req.path, path);
  sameEntries(req.args);
  sameEntries(req.headers);

  sameEntries(decodePrepareConfReq(payloadOf(encodePrepareConfReq({ conf: entries, key: odd }))).conf);
  sameEntries(decodeHttpRespCallReq(payloadOf(encodeHttpRespCallReq({ id: 1, status: 200, headers: entries, confToken: 1 }))).headers);
  same(decodeExtraInfoResp(payloadOf(encodeExtraInfoResp({ result: odd }))).result, odd);

  const stop = decodeHttpReqCallResp(
    payloadOf(encodeHttpReqCallResp({ id: 1, action: { type: 'stop', status: 403, headers: entries, body: odd } })),
  ).action;
  assert.equal(stop?.type, 'stop');
  sameEntries(stop.headers);
  same(stop.body, odd);

  const rewrite = decodeHttpReqCallResp(
    payloadOf(
      encodeHttpReqCallResp({
        id: 1,
        action: { type: 'rewrite', path, headers: entries, args: entries, respHeaders: entries, body: odd },
      }),
    ),
  ).action;
  assert.equal(rewrite?.type, 'rewrite');
  same(rewrite.path, path);
  sameEntries(rewrite.headers);
  sameEntries(rewrite.args);
  sameEntries(rewrite.respHeaders);
  same(rewrite.body, odd);

  const resp = decodeHttpRespCallResp(payloadOf(encodeHttpRespCallResp({ id: 1, status: 200, headers: entries, body: odd })));
  sameEntries(resp.headers);
  same(resp.body, odd);

  const info = decodeExtraInfoReq(payloadOf(encodeExtraInfoReq({ type: 'var', name: odd }))).info;
  assert.equal(info?.type, 'var');
  same(info.name, odd);
});

test('JS strings are written as UTF-8', () => {
  const req = readHttpReqCallReq(payloadOf(encodeHttpReqCallReq({ ...baseReq, path: '/é', headers: [{ name: 'x', value: '€' }] })));
  assert.equal(Buffer.from(req.path ?? []).toString('hex'), '2fc3a9');
  assert.equal(Buffer.from(req.headers?.[0].value ?? []).toString('hex'), 'e282ac');
});

test('a null value is written as absent ("delete"), "" as a present empty string', () => {
  const frame = encodeHttpReqCallResp({
    id: 1,
    action: {
      type: 'rewrite',
      path: null,
      headers: [{ name: 'x-gone', value: null }, { name: 'x-empty', value: '' }],
      args: null,
      respHeaders: null,
      body: null,
    },
  });
  const action = decodeHttpReqCallResp(payloadOf(frame)).action;
  assert.equal(action?.type, 'rewrite');
  assert.equal(action.headers?.[0].value, null);
  assert.equal(action.headers?.[1].value?.length, 0);
});

test('empty bodies and Stop status 0 are left out; headers [] is an empty vector, null none', () => {
  for (const body of [null, new Uint8Array(0)]) {
    const payload = payloadOf(encodeHttpReqCallResp({ id: 1, action: { type: 'stop', status: 0, headers: [], body } }));
    const stop = tableField(payload, rootTable(payload), 2);
    assert.equal(fieldPos(payload, stop, 0), 0, 'status 0 is absent');
    assert.equal(fieldPos(payload, stop, 2), 0, 'empty body is absent');
    const action = decodeHttpReqCallResp(payload).action;
    assert.equal(action?.type, 'stop');
    assert.equal(action.status, 0);
    assert.deepEqual(action.headers, []);
    assert.equal(action.body, null);

    const rewrite = decodeHttpReqCallResp(
      payloadOf(encodeHttpReqCallResp({ id: 1, action: { type: 'rewrite', path: '/', headers: null, args: null, respHeaders: null, body } })),
    ).action;
    assert.equal(rewrite?.type, 'rewrite');
    assert.equal(rewrite.body, null);

    const resp = decodeHttpRespCallResp(payloadOf(encodeHttpRespCallResp({ id: 1, status: 0, headers: null, body })));
    assert.deepEqual(resp, { id: 1, status: 0, headers: null, body: null });
  }
  // DECISIONS.md 7: an empty header list is not the same as none for HTTPRespCall.
  assert.deepEqual(decodeHttpRespCallResp(payloadOf(encodeHttpRespCallResp({ id: 1, status: 0, headers: [], body: null }))).headers, []);
});

test('an ExtraInfo result of "" is an empty vector, null is absent', () => {
  assert.equal(decodeExtraInfoResp(payloadOf(encodeExtraInfoResp({ result: '' }))).result?.length, 0);
  assert.equal(decodeExtraInfoResp(payloadOf(encodeExtraInfoResp({ result: null }))).result, null);
});

test('the lazy HTTPReqCall view reads in place and caches what it decoded', () => {
  const payload = byLabel('05_http_req_call_req_get_ipv4').payload;
  const req = readHttpReqCallReq(payload);
  assert.equal(req.id, 4194309);
  assert.equal(req.confToken, 233);
  const headers = req.headers;
  assert.equal(req.headers, headers, 'decoded once');
  assert.equal(req.args, req.args);
  assert.equal(req.path, req.path);
  assert.equal(req.srcIp, req.srcIp);
  const path = req.path;
  assert.ok(path && headers);
  for (const view of [path, headers[0].name, headers[0].value]) {
    assert.ok(view);
    assert.equal(view.buffer, payload.buffer, 'a view, not a copy');
    assert.ok(view.byteOffset >= payload.byteOffset && view.byteOffset + view.length <= payload.byteOffset + payload.length);
  }
});

test('the lazy view checks the root eagerly and each field when first read', () => {
  assert.throws(() => readHttpReqCallReq(new Uint8Array(0)), MalformedPayloadError);
  const payload = Buffer.from(byLabel('05_http_req_call_req_get_ipv4').payload);
  // Slot 3 (path) lives at table+12 = payload offset 36 (annotated/05): point it past the end.
  payload.writeUInt32LE(0x7fffffff, 36);
  const req = readHttpReqCallReq(payload);
  assert.equal(req.id, 4194309);
  assert.throws(() => req.path, MalformedPayloadError);
  assert.ok(req.headers);
});

test('unknown or table-less union tags decode as no action / no info', () => {
  const build = (slots: 2 | 3, tagSlot: number, tag: number): Uint8Array => {
    const b = new Builder(64);
    b.startObject(slots);
    b.addFieldInt8(tagSlot, tag, 0);
    b.finish(b.endObject());
    return b.asUint8Array();
  };
  assert.deepEqual(decodeHttpReqCallResp(build(3, 1, 1)), { id: 0, actionType: 1, action: null });
  assert.deepEqual(decodeHttpReqCallResp(build(3, 1, 7)), { id: 0, actionType: 7, action: null });
  assert.deepEqual(decodeExtraInfoReq(build(2, 0, 2)), { infoType: 2, info: null });

  const stop = Buffer.from(byLabel('07_http_req_call_resp_stop_403').payload);
  stop[27] = 9; // action_type (annotated/07)
  assert.deepEqual(decodeHttpReqCallResp(stop), { id: 4194309, actionType: 9, action: null });
  const query = Buffer.from(byLabel('12_extra_info_req_var_request_time').payload);
  query[21] = 200; // info_type (annotated/12)
  assert.deepEqual(decodeExtraInfoReq(query), { infoType: 200, info: null });
});

test('error replies: the three codes are the golden frames, other codes still encode', () => {
  assert.equal(encodeErrResp(ErrCode.BadRequest).toString('hex'), byLabel('23_err_bad_request').frame.toString('hex'));
  assert.equal(encodeErrResp(ErrCode.ServiceUnavailable).toString('hex'), byLabel('22_err_service_unavailable').frame.toString('hex'));
  assert.equal(encodeErrResp(ErrCode.ConfTokenNotFound).toString('hex'), byLabel('21_err_conf_token_not_found').frame.toString('hex'));
  assert.deepEqual(decodeErrResp(payloadOf(encodeErrResp(5))), { code: 5 });
});

test('each encode returns its own frame: the shared builder does not alias earlier results', () => {
  const first = encodePrepareConfResp(1);
  encodePrepareConfResp(233);
  encodeHttpRespCallResp({ id: 2, status: 500, headers: [{ name: 'a', value: 'b' }], body: bytes(1, 2, 3) });
  assert.equal(first.toString('hex'), byLabel('03_prepare_conf_resp_token_1').frame.toString('hex'));
});

test('a method may be given by name; a name outside A6.Method is refused', () => {
  assert.equal(readHttpReqCallReq(payloadOf(encodeHttpReqCallReq({ ...baseReq, method: 'PATCH' }))).method, 13);
  assert.throws(() => encodeHttpReqCallReq({ ...baseReq, method: 'CONNECT' as Method }), RangeError);
});

test('every encoder output is a complete frame with a non-empty payload', () => {
  const frames = [
    encodePrepareConfResp(0),
    encodeHttpReqCallResp({ id: 0, action: null }),
    encodeHttpRespCallResp({ id: 0, status: 0, headers: null, body: null }),
    encodeExtraInfoReq({ type: 'reqBody' }),
    encodeErrResp(0),
    encodePrepareConfReq({ conf: null, key: null }),
    encodeHttpReqCallReq({ ...baseReq, id: 0, srcIp: null, path: null, args: null, headers: null, confToken: 0 }),
    encodeHttpRespCallReq({ id: 0, status: 0, headers: null, confToken: 0 }),
    encodeExtraInfoResp({ result: null }),
  ];
  for (const frame of frames) {
    assert.ok(frame.length > 4);
    assert.equal(frame.readUIntBE(1, 3), frame.length - 4);
  }
});

// ---- the 2^24-1 limit ---------------------------------------------------------------------

// A FlatBuffers payload is always a multiple of its largest alignment (4: every table starts
// with an int32 soffset), so the largest payload an encoder can produce is 2^24-4. The exact
// 2^24-1 boundary is tested on buildFrame (frame.test.ts); here the encoders
// are taken to the last size that fits and the first that does not.
const LARGEST_ENCODABLE = MAX_PAYLOAD_BYTES - 3;

function limitCase(name: string, encode: (size: number) => Buffer): void {
  test(`${name}: the largest payload that fits encodes, 4 bytes more throws FrameTooLargeError`, () => {
    const overhead = encode(4000).length - 4 - 4000;
    assert.equal(overhead % 4, 0);
    const fits = encode(LARGEST_ENCODABLE - overhead);
    assert.equal(fits.length - 4, LARGEST_ENCODABLE);
    assert.equal(fits.readUIntBE(1, 3), LARGEST_ENCODABLE);
    assert.throws(() => encode(LARGEST_ENCODABLE - overhead + 1), (err) => {
      assert.ok(err instanceof FrameTooLargeError);
      assert.equal(err.payloadBytes, MAX_PAYLOAD_BYTES + 1);
      return true;
    });
    assert.throws(() => encode(MAX_PAYLOAD_BYTES + 1), FrameTooLargeError, 'rejected before building');
    assert.equal(encodePrepareConfResp(1).toString('hex'), byLabel('03_prepare_conf_resp_token_1').frame.toString('hex'));
  });
}

limitCase('HTTPRespCall reply body', (size) => encodeHttpRespCallResp({ id: 1, status: 200, headers: null, body: Buffer.alloc(size, 0x61) }));
limitCase('Stop body', (size) =>
  encodeHttpReqCallResp({ id: 1, action: { type: 'stop', status: 200, headers: null, body: Buffer.alloc(size, 0x61) } }),
);
limitCase('ExtraInfo result (gateway side)', (size) => encodeExtraInfoResp({ result: Buffer.alloc(size, 0x61) }));

// ---- malformed input ----------------------------------------------------------------------

/** Decodes through the out-of-bounds guard, so a read past the payload fails the test. */
function decodeOrMalformed(root: string, payload: Uint8Array, context: string): 'ok' | 'malformed' {
  try {
    decodeFields(root, guardedBytes(payload));
    return 'ok';
  } catch (err) {
    if (err instanceof MalformedPayloadError) return 'malformed';
    assert.fail(`${context}: ${root} threw ${String(err)}`);
  }
}

test('every truncation of every gateway->runner payload decodes or throws MalformedPayloadError', () => {
  let malformed = 0;
  for (const v of vectors.filter((x) => x.direction === 'gateway->runner')) {
    const root = ROOTS[v.direction][v.type];
    for (let length = 0; length < v.payload.length; length++) {
      // A copy, so nothing past `length` is even addressable through the view's buffer.
      const truncated = new Uint8Array(v.payload.subarray(0, length));
      if (decodeOrMalformed(root, truncated, `${v.label}[0..${length})`) === 'malformed') malformed++;
    }
  }
  assert.ok(malformed > 1000);
});


test('seeded random mutations of every frame decode or throw MalformedPayloadError', () => {
  const random = seededRandom(0x5eed);
  const outcomes = { ok: 0, malformed: 0 };
  for (const v of vectors) {
    const root = ROOTS[v.direction][v.type];
    for (let round = 0; round < 200; round++) {
      const payload = Buffer.from(v.payload);
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * payload.length);
        // Half the edits write bytes that make large or negative offsets likely.
        payload[at] = random() < 0.5 ? Math.floor(random() * 256) : [0x00, 0x7f, 0x80, 0xff][Math.floor(random() * 4)];
      }
      outcomes[decodeOrMalformed(root, payload, `${v.label} round ${round}`)]++;
    }
  }
  assert.equal(outcomes.ok + outcomes.malformed, 30 * 200);
  assert.ok(outcomes.ok > 500 && outcomes.malformed > 500, JSON.stringify(outcomes));
});

test('random garbage payloads decode or throw MalformedPayloadError for every root', () => {
  const random = seededRandom(42);
  const roots = [...Object.values(ROOTS['gateway->runner']), ...Object.values(ROOTS['runner->gateway'])];
  for (let round = 0; round < 2000; round++) {
    const payload = new Uint8Array(Math.floor(random() * 64));
    for (let i = 0; i < payload.length; i++) payload[i] = random() < 0.7 ? Math.floor(random() * 16) : Math.floor(random() * 256);
    for (const root of roots) decodeOrMalformed(root, payload, `garbage round ${round}`);
  }
});
