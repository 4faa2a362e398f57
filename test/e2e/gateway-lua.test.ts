/**
 * The frames a real APISIX emits (test/fixtures/vectors/gateway_lua/, built with the gateway's own
 * Lua FlatBuffers stack), replayed byte for byte against a running server. Only the conf_token of
 * the recorded calls is replaced, because the recording's tokens belong to another runner.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { decodeErrResp, decodeHttpReqCallResp, decodeHttpRespCallResp, decodePrepareConfResp } from '../../src/protocol/codec.js';
import { ErrCode, RpcType } from '../../src/protocol/constants.js';
import { GatewaySimulator, routeConf, type RawCallResult } from '../support/gateway.js';
import { entryPairs, startTestRunner } from './harness.js';

const FRAMES = {
  prepareTwo: '01_prepare_conf_req_two_entries',
  prepareNoConf: '02_prepare_conf_req_no_conf',
  getIpv4: '05_http_req_call_req_get_ipv4',
  putIpv6: '06_http_req_call_req_put_ipv6',
  resultOne: '16_extra_info_resp_result_1',
  noResult: '17_extra_info_resp_no_result',
  resp200: '18_http_resp_call_req_200',
} as const;

function reply(result: RawCallResult) {
  assert.ok(result.reply, `a reply frame (error: ${result.error})`);
  return result.reply;
}

const ECHO_ALL = {
  req: [
    ['echoRequest'],
    ['echoHeader', 'host'],
    ['echoHeader', 'x-req'],
    ['echoHeader', 'user-agent'],
    ['echoHeader', 'content-type'],
    ['echoArg', 'xx'],
    ['echoArg', 'y'],
    ['echoArg', 'z'],
  ],
};

test('PrepareConf frames 01 and 02 get tokens; a call with 01\'s token runs its chain [say, limit-req]', async (t) => {
  const r = await startTestRunner(t);
  const gw = r.gateway();
  const two = reply(await gw.replayLuaFrame(FRAMES.prepareTwo));
  assert.equal(two.type, RpcType.PrepareConf);
  const sayToken = decodePrepareConfResp(two.payload).confToken;
  assert.notEqual(sayToken, 0);
  const none = reply(await gw.replayLuaFrame(FRAMES.prepareNoConf));
  assert.equal(none.type, RpcType.PrepareConf);
  const emptyToken = decodePrepareConfResp(none.payload).confToken;
  assert.notEqual(emptyToken, 0);
  assert.notEqual(emptyToken, sayToken);
  // Replaying 01 again: same key, same conf -> same token.
  assert.equal(decodePrepareConfResp(reply(await gw.replayLuaFrame(FRAMES.prepareTwo)).payload).confToken, sayToken);

  // conf = [say {"body":"hello"}, limit-req {...}]: say answers and ends the chain; if limit-req is
  // not a loaded plugin, the conf fails closed instead.
  const answered = reply(await gw.replayLuaFrame(FRAMES.getIpv4, { confToken: sayToken }));
  assert.equal(answered.type, RpcType.HttpReqCall);
  const action = decodeHttpReqCallResp(answered.payload).action;
  assert.equal(action?.type, 'stop');
  if (r.runner.pluginNames.includes('limit-req')) {
    assert.equal(action.status, 200);
    assert.equal(Buffer.from(action.body!).toString(), 'hello');
  } else {
    assert.equal(action.status, 503);
    assert.match(Buffer.from(action.body!).toString(), /plugin "limit-req" is not loaded/);
  }

  // The empty chain: no action, id echoed.
  const empty = reply(await gw.replayLuaFrame(FRAMES.getIpv4, { confToken: emptyToken }));
  const decoded = decodeHttpReqCallResp(empty.payload);
  assert.equal(decoded.id, 4194309);
  assert.equal(decoded.action, null);
});

test('HTTPReqCall frames 05 (GET, IPv4, "/0/0" empty-string quirk) and 06 (PUT, IPv6) decode as the gateway meant them', async (t) => {
  const r = await startTestRunner(t);
  const gw = r.gateway();
  const token = await gw.prepareConf(routeConf('route#1#ext-plugin-pre-req#1', [['e2e-script', ECHO_ALL]]));

  const get = decodeHttpReqCallResp(reply(await gw.replayLuaFrame(FRAMES.getIpv4, { confToken: token })).payload);
  assert.equal(get.id, 4194309);
  assert.equal(get.action?.type, 'rewrite');
  assert.deepEqual(Object.fromEntries(entryPairs(get.action.headers)), {
    'x-echo-method': 'GET',
    'x-echo-path': '/hello',
    'x-echo-src-ip': '127.0.0.1',
    'x-echo-host': 'localhost',
    'x-echo-x-req': 'foo|bar',
    'x-echo-user-agent': 'curl/8.5.0',
    'x-echo-content-type': '(absent)',
    'x-echo-arg-xx': '["y","z"]',
    'x-echo-arg-y': '[""]',
    'x-echo-arg-z': '[""]',
  });

  const put = decodeHttpReqCallResp(reply(await gw.replayLuaFrame(FRAMES.putIpv6, { confToken: token })).payload);
  assert.equal(put.id, 7);
  assert.equal(put.action?.type, 'rewrite');
  assert.deepEqual(Object.fromEntries(entryPairs(put.action.headers)), {
    'x-echo-method': 'PUT',
    'x-echo-path': '/api/v1/items/42',
    'x-echo-src-ip': '2001:db8::1',
    'x-echo-host': 'api.example.com',
    'x-echo-x-req': '(absent)',
    'x-echo-user-agent': '(absent)',
    'x-echo-content-type': 'application/json',
    'x-echo-arg-xx': '[]',
    'x-echo-arg-y': '[]',
    'x-echo-arg-z': '[]',
  });
});

test('the recorded tokens are unknown to this runner: CONF_TOKEN_NOT_FOUND, and the gateway closes the connection', async (t) => {
  const r = await startTestRunner(t);
  const gw = r.gateway();
  for (const frame of [FRAMES.getIpv4, FRAMES.putIpv6, FRAMES.resp200]) {
    const result = await gw.replayLuaFrame(frame);
    assert.equal(result.ok, false);
    assert.equal(result.error, 'conf token not found', frame);
    assert.equal(decodeErrResp(reply(result).payload).code, ErrCode.ConfTokenNotFound);
  }
  assert.equal(gw.idleConnections.length, 0);
});

test('HTTPRespCall frame 18: the full upstream header set comes back without Connection', async (t) => {
  const r = await startTestRunner(t);
  const gw = r.gateway();
  const token = await gw.prepareConf(routeConf('route#1#ext-plugin-post-resp#1', [['e2e-script', { resp: [['echoStatus']] }]]));
  const result = reply(await gw.replayLuaFrame(FRAMES.resp200, { confToken: token, response: { status: 200, body: 'hello world!' } }));
  assert.equal(result.type, RpcType.HttpRespCall);
  const decoded = decodeHttpRespCallResp(result.payload);
  assert.equal(decoded.id, 8388617);
  assert.equal(decoded.status, 0);
  assert.equal(decoded.body, null);
  assert.deepEqual(entryPairs(decoded.headers), [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '12'],
    ['Server', 'openresty'],
    ['X-Upstream', 'a'],
    ['X-Upstream', 'b'],
    ['X-Echo-Status', '200'],
  ]);
});

test('ExtraInfo answers 16 (result "1") and 17 (no result, Lua vtable with an explicit zero entry) as sent by the gateway', async (t) => {
  const r = await startTestRunner(t);
  const gw = r.gateway();
  const route = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-extra', { vars: ['route_id', 'nope'] }]]);
  const answers = [GatewaySimulator.luaFrame(FRAMES.resultOne), GatewaySimulator.luaFrame(FRAMES.noResult)];
  const result = await gw.httpReqCall(route, {}, { extraInfoFrame: (_query, index) => answers[index] });
  assert.ok(result.ok, result.ok ? '' : result.error);
  assert.deepEqual(Object.fromEntries(entryPairs(result.rewrite!.headers)), { 'x-var-route_id': '1', 'x-var-nope': '(absent)' });

  // Replayed at top level, an ExtraInfo answer is not a request: BAD_REQUEST.
  const stray = await gw.replayLuaFrame(FRAMES.resultOne);
  assert.equal(stray.error, 'bad request');
});

test('every gateway frame, written in random pieces, gets the same reply as written whole', async (t) => {
  const r = await startTestRunner(t);
  const whole = r.gateway();
  const split = r.gateway({ splitFrames: true });
  const token = await whole.prepareConf(routeConf('route#1#ext-plugin-pre-req#1', [['e2e-script', { ...ECHO_ALL, resp: [['echoStatus']] }]]));
  const names = [FRAMES.prepareTwo, FRAMES.prepareNoConf, FRAMES.getIpv4, FRAMES.putIpv6, FRAMES.resp200];
  const isCall = (name: string) => /^(05|06|18)_/.test(name);
  for (const name of names) {
    const options = { confToken: isCall(name) ? token : undefined, response: { status: 200 } };
    const expected = reply(await whole.replayLuaFrame(name, options));
    for (let i = 0; i < 5; i++) {
      const got = reply(await split.replayLuaFrame(name, options));
      assert.equal(got.type, expected.type, `${name} (seed ${split.seed})`);
      assert.deepEqual(got.payload, expected.payload, `${name} (seed ${split.seed})`);
    }
  }
});
