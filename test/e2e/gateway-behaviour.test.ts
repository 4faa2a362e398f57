/**
 * How the gateway drives a runner, beyond single messages: Lua pairs() order, the nested
 * PrepareConf connection, the CONF_TOKEN_NOT_FOUND retry across a runner restart, connection reuse,
 * frames split at random points.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import {
  decodePrepareConfResp,
  encodeHttpReqCallReq,
  encodeHttpRespCallReq,
  encodePrepareConfReq,
  readHttpReqCallReq,
} from '../../src/protocol/codec.js';
import { RpcType } from '../../src/protocol/constants.js';
import { routeConf, type GatewayRequest } from '../support/gateway.js';
import { entryPairs, EVENT_WAIT_MS, expectOk, startTestRunner, testSeed } from './harness.js';

const text = (b: Uint8Array) => Buffer.from(b).toString();

describe('Lua pairs() order', () => {
  test('shuffled header and arg order does not change what the Rewrite does', async (t) => {
    const r = await startTestRunner(t);
    const request: GatewayRequest = {
      headers: [
        ['host', 'h.example'],
        ['x-a', '1'],
        ['x-multi', 'first'],
        ['x-b', '2'],
        ['x-multi', 'second'],
        ['x-c', '3'],
        ['x-del', 'gone'],
        ['cookie', 'c=1'],
      ],
      args: [
        ['p', '1'],
        ['q', 'a'],
        ['q', 'b'],
        ['r', null],
        ['s', ''],
        ['t', 'x'],
      ],
    };
    const route = routeConf('route#1#ext-plugin-pre-req#1', [
      [
        'e2e-script',
        {
          req: [
            ['echoHeader', 'x-multi'],
            ['echoArg', 'q'],
            ['setHeader', 'x-a', '1'],
            ['setHeader', 'x-b', 'changed'],
            ['deleteHeader', 'x-del'],
            ['setArg', 'q', ['a', 'b', 'c']],
            ['deleteArg', 't'],
            ['setArg', 'p', '1'],
          ],
        },
      ],
    ]);
    const seed = testSeed();
    const orders = new Set<string>();
    let reference: unknown = null;
    for (let i = 0; i < 12; i++) {
      const gw = r.gateway({ seed: seed + i });
      const result = expectOk(await gw.httpReqCall(route, request));
      const sent = readHttpReqCallReq(result.sent!.subarray(4));
      orders.add(sent.headers!.map((e) => text(e.name)).join(',') + ';' + sent.args!.map((e) => text(e.name)).join(','));
      // Values of one repeated name keep their relative order in every permutation.
      assert.deepEqual(sent.headers!.filter((e) => text(e.name) === 'x-multi').map((e) => text(e.value!)), ['first', 'second']);
      const semantic = {
        headers: entryPairs(result.rewrite!.headers).sort(),
        args: entryPairs(result.rewrite!.args),
        upstream: result.upstreamRequest,
      };
      if (reference === null) reference = semantic;
      else assert.deepEqual(semantic, reference, `seed ${seed + i}`);
    }
    assert.ok(orders.size > 1, `the simulator did shuffle (seed ${seed})`);
    const ref = reference as { headers: Array<[string, string | null]>; upstream: { headers: Record<string, string[]>; args: Record<string, unknown> } };
    assert.deepEqual(ref.headers, [
      ['x-b', 'changed'],
      ['x-del', null],
      ['x-echo-arg-q', '["a","b"]'],
      ['x-echo-x-multi', 'first|second'],
    ]);
    assert.deepEqual(ref.upstream.args, { p: ['1'], q: ['a', 'b', 'c'], r: [null], s: [''] });
  });
});

describe('connections', () => {
  test('a token miss prepares on a second connection while the call connection waits; no deadlock', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-script', { req: [['setHeader', 'x', '1']] }]]);
    const first = expectOk(await gw.httpReqCall(route, {}));
    assert.equal(gw.stats.connectionsOpened, 2, 'the call connection and the nested PrepareConf connection');
    assert.equal(gw.stats.prepareConfSent, 1);
    assert.equal(first.connectionId, Math.min(...gw.idleConnections.map((c) => c.id)), 'the call went out on the connection opened first');

    // Cached token, pooled connections: nothing new.
    for (let i = 0; i < 10; i++) expectOk(await gw.httpReqCall(route, {}));
    assert.equal(gw.stats.connectionsOpened, 2);
    assert.equal(gw.stats.prepareConfSent, 1);
    assert.equal(gw.stats.tokenCacheHits, 10);

    // A cold cache and many concurrent requests: every one holds a connection open while the lock
    // admits one PrepareConf per route; the others find the token on their re-check.
    const cold = r.gateway();
    const routes = [route, routeConf('route#2#ext-plugin-pre-req#1', [['e2e-extra', { vars: ['route_id'] }]])];
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) => cold.httpReqCall(routes[i % 2], { vars: { route_id: String(i % 2) } })),
    );
    for (const result of results) expectOk(result);
    assert.equal(cold.stats.prepareConfSent, 2, 'one PrepareConf per route');
    assert.ok(cold.stats.connectionsOpened >= 24, 'one connection per request in flight');
  });

  test('many calls back to back on one connection, mixing every message type', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway({ poolSize: 1 });
    const conn = await gw.connect();
    const reqRoute = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-extra', { vars: ['a', 'b'], reqBody: true }]]);
    const respRoute = routeConf('route#1#ext-plugin-post-resp#1', [['e2e-extra', { respBody: 1, appendBody: '+' }]]);
    const prepare = async (route: typeof reqRoute) => {
      const result = await gw.rawCall(encodePrepareConfReq({ key: route.key, conf: route.conf }), { connection: conn });
      return decodePrepareConfResp(result.reply!.payload).confToken;
    };
    const reqToken = await prepare(reqRoute);
    const respToken = await prepare(respRoute);
    for (let i = 0; i < 20; i++) {
      // rawCall with `connection`: every frame on `conn`, ExtraInfo answered like the gateway does.
      const req = await gw.rawCall(
        encodeHttpReqCallReq({ id: i, srcIp: null, method: 'GET', path: '/', args: [], headers: [], confToken: reqToken }),
        { connection: conn, request: { vars: { a: `a${i}` }, body: `body${i}` } },
      );
      assert.ok(req.ok, req.error ?? '');
      assert.equal(req.reply!.type, RpcType.HttpReqCall);
      assert.equal(req.extraInfo.length, 3);
      const resp = await gw.rawCall(encodeHttpRespCallReq({ id: 1000 + i, status: 200, headers: [], confToken: respToken }), {
        connection: conn,
        response: { status: 200, body: `r${i}` },
      });
      assert.ok(resp.ok, resp.error ?? '');
      assert.equal(resp.reply!.type, RpcType.HttpRespCall);
    }
    assert.ok(!conn.closed);
    assert.equal(r.runner.tokens, 2);
    conn.close();
  });

  test('several frames in one write are all answered, in order', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const conn = await gw.connect();
    const frames = [1, 2, 3].map((i) => encodePrepareConfReq({ key: `k${i}`, conf: [{ name: 'e2e-script', value: `{"req":[["setHeader","n","${i}"]]}` }] }));
    await conn.send(Buffer.concat(frames));
    const tokens: number[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await conn.receive(EVENT_WAIT_MS);
      assert.equal(reply.type, RpcType.PrepareConf);
      tokens.push(decodePrepareConfResp(reply.payload).confToken);
    }
    assert.equal(new Set(tokens).size, 3);
    conn.close();
  });

  test('frames split at random points, many calls back to back, same results as unsplit', async (t) => {
    const r = await startTestRunner(t);
    const whole = r.gateway({ shuffle: false });
    const split = r.gateway({ shuffle: false, splitFrames: true });
    const route = routeConf('route#1#ext-plugin-pre-req#1', [
      ['e2e-extra', { vars: ['route_id', 'missing'], reqBody: true }],
      ['e2e-script', { req: [['echoRequest'], ['echoHeader', 'x-h'], ['setArg', 'a', ['1', '2']], ['setRespHeader', 'Set-Cookie', 'x=1']] }],
    ]);
    const respRoute = routeConf('route#1#ext-plugin-post-resp#1', [['e2e-extra', { respBody: 1, appendBody: '!', vars: ['v'] }]]);
    const request: GatewayRequest = {
      method: 'PUT',
      path: '/split/me',
      srcIp: '2001:db8::7',
      headers: [
        ['x-h', 'v1'],
        ['x-h', 'v2'],
      ],
      args: [['a', '0']],
      vars: { route_id: '9' },
      body: 'x'.repeat(3000),
    };
    const response = { status: 200, headers: [['Content-Length', '4'] as const, ['X-U', 'u'] as const], body: 'resp' };
    for (let i = 0; i < 15; i++) {
      const a = expectOk(await whole.httpReqCall(route, request, { id: i }));
      const b = expectOk(await split.httpReqCall(route, request, { id: i }));
      assert.deepEqual(b.reply, a.reply, `seed ${split.seed}`);
      const c = expectOk(await whole.httpRespCall(respRoute, response, { vars: { v: String(i) } }, { id: i }));
      const d = expectOk(await split.httpRespCall(respRoute, response, { vars: { v: String(i) } }, { id: i }));
      assert.deepEqual(d.reply, c.reply, `seed ${split.seed}`);
    }
    assert.equal(split.stats.connectionsOpened, 2, 'the split calls reused their connections');
  });

  test('CONF_TOKEN_NOT_FOUND after a runner restart: the gateway flushes, re-prepares and retries', async (t) => {
    const first = await startTestRunner(t);
    const gw = first.gateway();
    const route = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-script', { req: [['setHeader', 'x-run', 'ok']] }]]);
    const before = expectOk(await gw.httpReqCall(route, {}));
    assert.equal(before.attempts, 1);
    const oldToken = gw.tokenFor(route);
    assert.equal(oldToken, before.confToken);

    // The runner goes away (its shutdown closes the pooled connections), a new one takes the path.
    const pooled = [...gw.idleConnections];
    await first.runner.shutdown('restart');
    await Promise.all(pooled.map((c) => c.whenClosed));
    assert.equal(gw.idleConnections.length, 0);
    const second = await startTestRunner(t, { socketPath: first.socketPath });
    const after = expectOk(await gw.httpReqCall(route, {}));
    assert.equal(after.attempts, 2, 'one retry');
    assert.equal(gw.stats.retries, 1);
    assert.equal(gw.stats.prepareConfSent, 2);
    assert.notEqual(after.confToken, oldToken, 'a restarted runner does not reissue the old token');
    assert.deepEqual(entryPairs(after.rewrite!.headers), [['x-run', 'ok']]);
    assert.equal(second.runner.tokens, 1);
  });

  test('with maxTokens 1, evicted tokens self-heal through the retry; a token is never mapped to another conf', async (t) => {
    const r = await startTestRunner(t, { maxTokens: 1 });
    const gw = r.gateway();
    const a = routeConf('route#a#ext-plugin-pre-req#1', [['e2e-script', { req: [['setHeader', 'x-route', 'a']] }]]);
    const b = routeConf('route#b#ext-plugin-pre-req#1', [['e2e-script', { req: [['setHeader', 'x-route', 'b']] }]]);
    const header = (result: { rewrite: { headers: unknown } | null }) =>
      Object.fromEntries(entryPairs((result.rewrite as { headers: Parameters<typeof entryPairs>[0] }).headers))['x-route'];
    for (let i = 0; i < 4; i++) {
      const ra = expectOk(await gw.httpReqCall(a, {}));
      assert.equal(header(ra), 'a');
      const rb = expectOk(await gw.httpReqCall(b, {}));
      assert.equal(header(rb), 'b');
      if (i > 0) {
        assert.equal(ra.attempts, 2, 'a was evicted by b: one retry');
        assert.equal(rb.attempts, 1, "the retry flushed b's token too: b re-prepares without a failed call");
      }
    }
    assert.equal(gw.stats.retries, 3);
    assert.equal(gw.stats.prepareConfSent, 8);
    assert.equal(r.runner.tokens, 1);
  });
});
