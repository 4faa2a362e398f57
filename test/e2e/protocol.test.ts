/**
 * Every message type through a running server (in-process runner, real Unix socket, the gateway
 * simulator as the client).
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import {
  decodeErrResp,
  decodePrepareConfResp,
  encodeHttpReqCallReq,
  encodeHttpRespCallReq,
  encodePrepareConfReq,
} from '../../src/protocol/codec.js';
import { ErrCode, RpcType } from '../../src/protocol/constants.js';
import { buildFrame } from '../../src/protocol/frame.js';
import { fieldPos, rootTable } from '../../src/protocol/table-reader.js';
import { routeConf, type GatewayConnection, type GatewayRequest, type GatewayUpstreamResponse } from '../support/gateway.js';
import { entryPairs, EVENT_WAIT_MS, expectFailure, expectOk, startTestRunner } from './harness.js';

const script = (key: string, conf: object) => routeConf(key, [['e2e-script', conf]]);

/** Sends one frame on a raw connection and returns the reply frame. */
async function roundTrip(conn: GatewayConnection, frame: Uint8Array) {
  await conn.send(frame);
  return conn.receive(EVENT_WAIT_MS);
}

function errCodeOf(frame: { type: number; payload: Buffer }): number {
  assert.equal(frame.type, RpcType.Error, `expected an error reply, got type ${frame.type}`);
  return decodeErrResp(frame.payload).code;
}

describe('PrepareConf', () => {
  test('answers a non-zero token with or without conf; same key and conf -> same token; changed conf or key -> new token', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const a = script('route#1#ext-plugin-pre-req#1', { req: [] });
    const t1 = await gw.prepareConf(a);
    assert.notEqual(t1, 0);
    assert.equal(await gw.prepareConf(a), t1, 'same idempotent key, same conf');
    const t2 = await gw.prepareConf(script('route#1#ext-plugin-pre-req#1', { req: [['setHeader', 'x', '1']] }));
    assert.notEqual(t2, t1, 'same key, different conf');
    const t3 = await gw.prepareConf(script('route#2#ext-plugin-pre-req#1', { req: [] }));
    assert.notEqual(t3, t1, 'different key');
    const noConf = routeConf('route#3#ext-plugin-post-req#1', null);
    const t4 = await gw.prepareConf(noConf);
    assert.notEqual(t4, 0);
    assert.equal(new Set([t1, t2, t3, t4]).size, 4);

    // A token without conf runs an empty chain: no action.
    const call = expectOk(await gw.httpReqCall(noConf, { path: '/x' }));
    assert.equal(call.action, 'none');
    assert.equal(call.confToken, t4);

    // The key is optional on the wire (deprecated); a PrepareConf without it still gets a token.
    const raw = await gw.rawCall(encodePrepareConfReq({ key: null, conf: [{ name: 'e2e-script', value: '{}' }] }));
    assert.ok(raw.ok && raw.reply !== null);
    assert.equal(raw.reply.type, RpcType.PrepareConf);
    assert.notEqual(decodePrepareConfResp(raw.reply.payload).confToken, 0);
  });
});

describe('HTTPReqCall', () => {
  test('no action: only the id is echoed', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const result = expectOk(await gw.httpReqCall(script('route#1#ext-plugin-pre-req#1', { req: [] }), { path: '/a' }, { id: 0x00400005 }));
    assert.equal(result.action, 'none');
    assert.equal(result.reply.id, 0x00400005);
    assert.equal(result.reply.actionType, 0);
    assert.equal(result.upstreamRequest?.path, '/a');
  });

  test('Stop: status, repeated set-cookie as set-then-add, body; no status means 200', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const stop = expectOk(
      await gw.httpReqCall(
        script('route#1#ext-plugin-pre-req#1', {
          req: [
            ['setRespHeader', 'X-Earlier', 'kept'],
            ['stop', 403, { 'Set-Cookie': ['a=1', 'b=2'], 'x-reason': 'no' }, 'denied'],
            ['setHeader', 'x-after-stop', 'ignored'],
          ],
        }),
      ),
    );
    assert.equal(stop.action, 'stop');
    assert.equal(stop.stop?.status, 403);
    assert.deepEqual(stop.clientResponse, {
      status: 403,
      headers: [
        ['x-earlier', 'kept'],
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['x-reason', 'no'],
      ],
      body: Buffer.from('denied'),
    });
    // Repeated names are repeated entries, first one first.
    const cookies = entryPairs(stop.stop!.headers).filter(([n]) => n.toLowerCase() === 'set-cookie');
    assert.deepEqual(cookies.map(([, v]) => v), ['a=1', 'b=2']);

    const bare = expectOk(await gw.httpReqCall(script('route#2#ext-plugin-pre-req#1', { req: [['stop']] })));
    assert.equal(bare.action, 'stop');
    assert.equal(bare.clientResponse?.status, 200);
    assert.equal(bare.clientResponse?.body, null, 'an empty body is sent as absent');
  });

  test('Rewrite: path, header set/delete, arg set/append/delete, resp headers, body; only the diff is sent', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const request: GatewayRequest = {
      method: 'POST',
      path: '/old',
      headers: [
        ['host', 'example.com'],
        ['x-keep', 'k'],
        ['x-del', 'd'],
        ['x-set', 'old'],
        ['x-same', 'v'],
        ['x-multi', 'm1'],
        ['x-multi', 'm2'],
      ],
      args: [
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
        ['c', '4'],
        ['flag', null],
        ['empty', ''],
      ],
    };
    const route = script('route#1#ext-plugin-pre-req#1', {
      req: [
        ['setPath', '/new path'],
        ['setHeader', 'x-set', 'new'],
        ['deleteHeader', 'x-del'],
        ['setHeader', 'x-same', 'v'],
        ['setHeader', 'X-Added', 'added'],
        ['setHeader', 'x-multi', ['j1', 'j2']],
        ['setArg', 'a', '10'],
        ['setArg', 'c', ['3', '4', '5']],
        ['deleteArg', 'b'],
        ['setArg', 'new', ''],
        ['setRespHeader', 'Set-Cookie', 's=1'],
        ['addRespHeader', 'Set-Cookie', 't=2'],
        ['setRespHeader', 'X-Resp', 'r'],
        ['setBody', 'new body'],
      ],
    });
    const result = expectOk(await gw.httpReqCall(route, request));
    assert.equal(result.action, 'rewrite');
    const rw = result.rewrite!;
    assert.equal(Buffer.from(rw.path!).toString(), '/new path');
    const headers = new Map(entryPairs(rw.headers));
    // A set to the current value may be sent or dropped (the runner only compares when the headers
    // were read anyway); sent, it changes nothing. Untouched headers are never sent.
    if (headers.has('x-same')) assert.equal(headers.get('x-same'), 'v');
    headers.delete('x-same');
    assert.deepEqual([...headers.keys()].sort(), ['x-added', 'x-del', 'x-multi', 'x-set'], 'untouched headers (x-keep) are not re-sent');
    assert.equal(headers.get('x-del'), null, 'a delete is an absent value, never ""');
    assert.equal(headers.get('x-set'), 'new');
    assert.equal(headers.get('x-multi'), 'j1, j2', 'a request header list is sent as one joined value');
    const args = entryPairs(rw.args);
    assert.deepEqual(
      args.filter(([n]) => n === 'c'),
      [
        ['c', '3'],
        ['c', '4'],
        ['c', '5'],
      ],
      'an appended arg repeats every value',
    );
    assert.deepEqual(args.find(([n]) => n === 'b'), ['b', null]);
    assert.ok(!args.some(([n]) => n === 'flag' || n === 'empty'), 'untouched args are not re-sent');
    assert.deepEqual(entryPairs(rw.respHeaders), [
      ['Set-Cookie', 's=1'],
      ['Set-Cookie', 't=2'],
      ['X-Resp', 'r'],
    ]);
    assert.equal(Buffer.from(rw.body!).toString(), 'new body');

    // What goes upstream after the gateway applied it.
    assert.deepEqual(result.upstreamRequest, {
      path: '/new path',
      pathRewritten: true,
      headers: {
        host: ['example.com'],
        'x-added': ['added'],
        'x-keep': ['k'],
        'x-multi': ['j1, j2'],
        'x-same': ['v'],
        'x-set': ['new'],
      },
      host: 'example.com',
      args: { a: ['10'], c: ['3', '4', '5'], empty: [''], flag: [null], new: [''] },
      body: Buffer.from('new body'),
      respHeaderOps: [
        { op: 'set', name: 'set-cookie', value: 's=1' },
        { op: 'add', name: 'set-cookie', value: 't=2' },
        { op: 'set', name: 'x-resp', value: 'r' },
      ],
    });
  });

  test('the plugin sees the request as sent: method, path, src_ip (IPv4, IPv6, unix:), repeated headers and args, host', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = script('route#1#ext-plugin-pre-req#1', {
      req: [['echoRequest'], ['echoHeader', 'x-req'], ['echoHeader', 'host'], ['echoArg', 'xx'], ['echoArg', 'z'], ['echoArg', 'y']],
    });
    const cases: Array<[GatewayRequest['srcIp'], string]> = [
      ['10.1.2.3', '10.1.2.3'],
      ['2001:db8::1', '2001:db8::1'],
      ['unix:', 'unix:'],
    ];
    for (const [srcIp, shown] of cases) {
      const result = expectOk(
        await gw.httpReqCall(route, {
          method: 'PATCH',
          path: '/p/ä',
          srcIp,
          headers: [
            ['Host', 'client.example'],
            ['X-Req', 'foo'],
            ['x-req', 'bar'],
          ],
          upstreamHost: 'upstream.example',
          args: [
            ['xx', 'y'],
            ['xx', 'z'],
            ['y', ''],
            ['z', null],
          ],
        }),
      );
      const headers = Object.fromEntries(entryPairs(result.rewrite!.headers));
      assert.deepEqual(headers, {
        'x-echo-method': 'PATCH',
        'x-echo-path': '/p/ä',
        'x-echo-src-ip': shown,
        'x-echo-x-req': 'foo|bar',
        'x-echo-host': 'upstream.example',
        'x-echo-arg-xx': '["y","z"]',
        'x-echo-arg-z': '[""]',
        'x-echo-arg-y': '[""]',
      });
    }
  });
});

describe('HTTPRespCall', () => {
  const upstream: GatewayUpstreamResponse = {
    status: 200,
    headers: [
      ['Content-Type', 'text/plain'],
      ['Content-Length', '5'],
      ['Connection', 'keep-alive'],
      ['Keep-Alive', 'timeout=5'],
      ['Transfer-Encoding', 'chunked'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
      ['Server', 'upstream'],
    ],
    body: 'hello',
  };
  const kept = [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '5'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
    ['Server', 'upstream'],
  ];
  const sortPairs = (pairs: Array<[string, string | null]>) => [...pairs].sort((x, y) => (x[0] + x[1]).localeCompare(y[0] + y[1]));

  test('no change: the full upstream header set is sent back, without connection/keep-alive/transfer-encoding', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const result = expectOk(await gw.httpRespCall(script('route#1#ext-plugin-post-resp#1', { resp: [] }), upstream, {}, { id: 77 }));
    assert.equal(result.reply.id, 77);
    assert.equal(result.reply.status, 0, 'status unchanged');
    assert.equal(result.reply.body, null, 'body unchanged');
    assert.deepEqual(sortPairs(entryPairs(result.reply.headers)), sortPairs(kept as Array<[string, string]>));
    // set-cookie keeps its relative order whatever the order the gateway sent the names in.
    assert.deepEqual(
      entryPairs(result.reply.headers).filter(([n]) => n === 'Set-Cookie').map(([, v]) => v),
      ['a=1', 'b=2'],
    );
    assert.equal(result.clientResponse.status, 200);
    assert.equal(result.clientResponse.body?.toString(), 'hello');
    assert.equal(result.respBodyReads, 0);
  });

  test('status, header and body changes; content-length dropped only when the body changed', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const headerOnly = expectOk(
      await gw.httpRespCall(
        script('route#1#ext-plugin-post-resp#1', {
          resp: [
            ['setStatus', 201],
            ['setHeader', 'X-New', '1'],
            ['addHeader', 'Set-Cookie', 'c=3'],
            ['deleteHeader', 'server'],
          ],
        }),
        upstream,
      ),
    );
    assert.equal(headerOnly.reply.status, 201);
    assert.equal(headerOnly.reply.body, null);
    const names = entryPairs(headerOnly.reply.headers).map(([n]) => n.toLowerCase());
    assert.ok(names.includes('content-length'), 'body unchanged: content-length kept');
    assert.ok(!names.includes('server'));
    assert.deepEqual(
      headerOnly.clientResponse.headers.filter(([n]) => n === 'set-cookie').map(([, v]) => v),
      ['a=1', 'b=2', 'c=3'],
    );
    assert.equal(headerOnly.clientResponse.status, 201);
    assert.equal(headerOnly.clientResponse.body?.toString(), 'hello');

    const bodyChanged = expectOk(
      await gw.httpRespCall(script('route#2#ext-plugin-post-resp#1', { resp: [['setBody', 'changed!']] }), upstream),
    );
    assert.equal(bodyChanged.reply.status, 0);
    assert.equal(Buffer.from(bodyChanged.reply.body!).toString(), 'changed!');
    const changedNames = entryPairs(bodyChanged.reply.headers).map(([n]) => n.toLowerCase());
    assert.ok(!changedNames.includes('content-length'), 'body changed: content-length dropped');
    assert.ok(changedNames.includes('content-type'));
    assert.equal(bodyChanged.clientResponse.status, 200);
  });

  test('the body is read from the gateway at most once per call, across plugins and repeated reads', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = routeConf('route#1#ext-plugin-post-resp#1', [
      ['e2e-extra', { respBody: 2 }],
      ['e2e-extra', { respBody: 1, appendBody: '!' }],
    ]);
    const result = expectOk(await gw.httpRespCall(route, upstream));
    assert.equal(result.respBodyReads, 1);
    assert.deepEqual(result.extraInfo.map((x) => x.query), ['respBody']);
    assert.equal(Buffer.from(result.reply.body!).toString(), 'hello!');
    assert.deepEqual(
      entryPairs(result.reply.headers).filter(([n]) => n === 'X-Resp-Body'),
      [['X-Resp-Body', 'hello']],
    );

    // Read without changing it: the client still gets the original body (the gateway's cached chunks).
    const readOnly = expectOk(await gw.httpRespCall(routeConf('route#2#ext-plugin-post-resp#1', [['e2e-extra', { respBody: 3 }]]), upstream));
    assert.equal(readOnly.respBodyReads, 1);
    assert.equal(readOnly.reply.body, null);
    assert.equal(readOnly.clientResponse.body?.toString(), 'hello');
  });
});

describe('ExtraInfo', () => {
  test('Var, ReqBody in several strictly alternating rounds of one call; absent vs empty results', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const vars = ['route_id', 'remote_addr', 'arg_x', 'http_x_h', 'no_such_var', 'empty_var', 'route_id'];
    const request: GatewayRequest = {
      args: [['x', 'y']],
      headers: [['x-h', 'hv']],
      vars: { route_id: '1', empty_var: '' },
      body: 'payload',
    };
    for (const parallel of [false, true]) {
      const result = expectOk(
        await gw.httpReqCall(routeConf(`route#1#ext-plugin-pre-req#${parallel}`, [['e2e-extra', { vars, reqBody: true, parallel }]]), request),
      );
      assert.deepEqual(
        result.extraInfo.map((x) => [x.query, x.name ?? null, x.result === null ? null : x.result.toString()]).sort(),
        [
          ['reqBody', null, 'payload'],
          ['var', 'arg_x', 'y'],
          ['var', 'empty_var', ''],
          ['var', 'http_x_h', 'hv'],
          ['var', 'no_such_var', null],
          ['var', 'remote_addr', '127.0.0.1'],
          ['var', 'route_id', '1'],
        ],
        'one round per distinct variable (cached per call), plus the body',
      );
      if (!parallel) {
        assert.deepEqual(
          result.extraInfo.map((x) => x.name ?? x.query),
          ['route_id', 'remote_addr', 'arg_x', 'http_x_h', 'no_such_var', 'empty_var', 'reqBody'],
          'sequential reads arrive in order',
        );
      }
      assert.deepEqual(Object.fromEntries(entryPairs(result.rewrite!.headers)), {
        'x-var-route_id': '1',
        'x-var-remote_addr': '127.0.0.1',
        'x-var-arg_x': 'y',
        'x-var-http_x_h': 'hv',
        'x-var-no_such_var': '(absent)',
        'x-var-empty_var': '',
        'x-req-body': 'payload',
      });
    }
    assert.equal(gw.stats.pipelinedQueries, 0, 'no query was sent before the previous one was answered');

    // No request body: absent.
    const noBody = expectOk(await gw.httpReqCall(routeConf('route#2#ext-plugin-pre-req#1', [['e2e-extra', { reqBody: true }]]), {}));
    assert.equal(Object.fromEntries(entryPairs(noBody.rewrite!.headers))['x-req-body'], '(absent)');
  });

  test('RespBody and Var in one HTTPRespCall', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const result = expectOk(
      await gw.httpRespCall(
        routeConf('route#1#ext-plugin-post-resp#1', [['e2e-extra', { vars: ['upstream_status', 'nope'], respBody: 1 }]]),
        { status: 502, headers: [['X-U', '1']], body: 'bad gateway' },
        { vars: { upstream_status: 502 } },
      ),
    );
    assert.deepEqual(
      result.extraInfo.map((x) => [x.query, x.name ?? null]),
      [
        ['var', 'upstream_status'],
        ['var', 'nope'],
        ['respBody', null],
      ],
    );
    const headers = Object.fromEntries(entryPairs(result.reply.headers));
    assert.equal(headers['X-Var-upstream_status'], '502');
    assert.equal(headers['X-Var-nope'], '(absent)');
    assert.equal(headers['X-Resp-Body'], 'bad gateway');
    assert.equal(headers['X-U'], '1');
    assert.equal(result.clientResponse.status, 502);
  });
});

describe('size limit', () => {
  test('a reply that would pass the 16 MiB frame limit answers SERVICE_UNAVAILABLE instead', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const nineMiB = 'x'.repeat(9 * 1024 * 1024);
    // Each ExtraInfo answer fits a frame; the reply echoing both does not.
    const route = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-extra', { vars: ['big'], reqBody: true }]]);
    const failed = expectFailure(await gw.httpReqCall(route, { vars: { big: nineMiB }, body: nineMiB }));
    assert.equal(failed.error, 'service unavailable');
    assert.equal(failed.extraInfo.length, 2);
    // Just under the limit together: answered.
    const fourMiB = 'y'.repeat(4 * 1024 * 1024);
    const ok = expectOk(await gw.httpReqCall(route, { vars: { big: fourMiB }, body: fourMiB }));
    assert.equal(Object.fromEntries(entryPairs(ok.rewrite!.headers))['x-req-body']?.length, fourMiB.length);
  });
});

describe('malformed input', () => {
  test('unknown RPC types and garbage payloads answer BAD_REQUEST and the connection stays usable', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const conn = await gw.connect();
    const valid = encodePrepareConfReq({ key: 'k', conf: [{ name: 'e2e-script', value: '{}' }] });
    const payload = valid.subarray(4);
    const garbage = Buffer.from('ffffffff00000000deadbeef', 'hex');
    const cases: Array<[string, Uint8Array]> = [
      ['type 9', buildFrame(9, payload)],
      ['type 255', buildFrame(255, payload)],
      ['type 0 (never a request)', buildFrame(RpcType.Error, payload)],
      ['type 3 outside a call', buildFrame(RpcType.ExtraInfo, payload)],
      ['PrepareConf with a garbage payload', buildFrame(RpcType.PrepareConf, garbage)],
      ['HTTPReqCall with a garbage payload', buildFrame(RpcType.HttpReqCall, garbage)],
      ['HTTPRespCall with a garbage payload', buildFrame(RpcType.HttpRespCall, garbage)],
      ['PrepareConf of 3 bytes', buildFrame(RpcType.PrepareConf, Buffer.from([1, 2, 3]))],
    ];
    for (const [name, frame] of cases) {
      assert.equal(errCodeOf(await roundTrip(conn, frame)), ErrCode.BadRequest, name);
    }
    // Still in sync: a valid PrepareConf and a call on the same connection work.
    const reply = await roundTrip(conn, valid);
    assert.equal(reply.type, RpcType.PrepareConf);
    const token = decodePrepareConfResp(reply.payload).confToken;
    const call = await roundTrip(
      conn,
      encodeHttpReqCallReq({ id: 5, srcIp: null, method: 0, path: '/', args: [], headers: [], confToken: token }),
    );
    assert.equal(call.type, RpcType.HttpReqCall);
    assert.ok(!conn.closed);
    conn.close();
  });

  test('zero-length payloads answer BAD_REQUEST (types 1, 2, 3, 4) and the connection stays usable', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const conn = await gw.connect();
    for (const type of [RpcType.PrepareConf, RpcType.HttpReqCall, RpcType.ExtraInfo, RpcType.HttpRespCall]) {
      const reply = await roundTrip(conn, Buffer.from([type, 0, 0, 0]));
      assert.equal(errCodeOf(reply), ErrCode.BadRequest, `type ${type}`);
      assert.ok(reply.payload.length > 0, 'the error reply itself is never empty');
    }
    const reply = await roundTrip(conn, encodePrepareConfReq({ key: null, conf: null }));
    assert.equal(reply.type, RpcType.PrepareConf);
    conn.close();
  });

  test('a field that is out of range, found only when a plugin reads it, answers BAD_REQUEST', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = script('route#1#ext-plugin-pre-req#1', { req: [['echoHeader', 'x-a']] });
    const token = await gw.prepareConf(route);
    const frame = encodeHttpReqCallReq({
      id: 9,
      srcIp: null,
      method: 0,
      path: '/',
      args: [],
      headers: [{ name: 'x-a', value: '1' }],
      confToken: token,
    });
    const payload = frame.subarray(4);
    const headersField = fieldPos(payload, rootTable(payload), 5);
    assert.notEqual(headersField, 0);
    payload.writeUInt32LE(0x00ffff00, headersField); // the headers vector now points far outside
    const conn = await gw.connect();
    assert.equal(errCodeOf(await roundTrip(conn, frame)), ErrCode.BadRequest);
    // Same connection, intact frame: fine.
    const good = await roundTrip(
      conn,
      encodeHttpReqCallReq({ id: 10, srcIp: null, method: 0, path: '/', args: [], headers: [{ name: 'x-a', value: '1' }], confToken: token }),
    );
    assert.equal(good.type, RpcType.HttpReqCall);
    conn.close();
  });

  test('an unknown token answers CONF_TOKEN_NOT_FOUND for both call types', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const conn = await gw.connect();
    const token = await gw.prepareConf(routeConf('k', null));
    const unknown = (token + 1000) >>> 0 || 1;
    const req = await roundTrip(conn, encodeHttpReqCallReq({ id: 1, srcIp: null, method: 0, path: '/', args: [], headers: [], confToken: unknown }));
    assert.equal(errCodeOf(req), ErrCode.ConfTokenNotFound);
    const resp = await roundTrip(conn, encodeHttpRespCallReq({ id: 2, status: 200, headers: [], confToken: unknown }));
    assert.equal(errCodeOf(resp), ErrCode.ConfTokenNotFound);
    const zero = await roundTrip(conn, encodeHttpReqCallReq({ id: 3, srcIp: null, method: 0, path: '/', args: [], headers: [], confToken: 0 }));
    assert.equal(errCodeOf(zero), ErrCode.ConfTokenNotFound);
    conn.close();
  });

  test('the gateway closes after an error reply; the runner serves its next connection', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const failed = expectFailure(await gw.httpReqCall(routeConf('route#1#ext-plugin-pre-req#1', [['e2e-throws', '{}']])));
    assert.equal(failed.error, 'service unavailable');
    assert.equal(failed.errCode, ErrCode.ServiceUnavailable);
    const ok = expectOk(await gw.httpReqCall(script('route#2#ext-plugin-pre-req#1', { req: [] })));
    assert.notEqual(ok.connectionId, failed.connectionId, 'a new connection after the error');
  });
});
