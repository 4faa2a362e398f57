/**
 * Header injection over a real socket: a plugin copies a client's JWT claim, `bob\r\nset-cookie:
 * admin=1`, into a header. BUG (before the fix): the reply carried the CRLF and the second header
 * to the gateway, which hands it to nginx. Now the setter throws inside the filter, so the gateway
 * gets SERVICE_UNAVAILABLE (or a Stop 503 for onError 'deny') and the bytes never leave the runner.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { decodeErrResp, decodeHttpReqCallResp, decodeHttpRespCallResp, encodeHttpReqCallReq, encodeHttpRespCallReq } from '../../src/protocol/codec.js';
import { ErrCode, RpcType } from '../../src/protocol/constants.js';
import { routeConf, type RawCallResult } from '../support/gateway.js';
import { entryPairs, expectOk, LEVEL, linesAt, startTestRunner } from './harness.js';

const ATTACK = 'bob\r\nset-cookie: admin=1';
const bearer = (sub: string): string => `Bearer e30.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.sig`;
const request = (sub: string) => ({ headers: [['authorization', bearer(sub)]] as const });

/** Nothing of the attacker's second header is anywhere in the frame the gateway received. */
function assertClean(result: RawCallResult, what: string): void {
  assert.ok(result.reply !== null, `${what}: a reply`);
  const payload = Buffer.from(result.reply.payload);
  for (const needle of ['admin=1', 'set-cookie', '\r\n']) assert.equal(payload.includes(needle), false, `${what}: the reply holds ${JSON.stringify(needle)}`);
}

function assertServiceUnavailable(result: RawCallResult, what: string): void {
  assert.equal(result.ok, false, what);
  assert.equal(result.reply?.type, RpcType.Error, what);
  assert.equal(decodeErrResp(result.reply.payload).code, ErrCode.ServiceUnavailable, what);
}

for (const threads of [0, 1]) {
  describe(`a plugin copies an attacker's claim into a header (threads: ${threads})`, () => {
    test('request phase, every target: SERVICE_UNAVAILABLE, or Stop 503 for onError deny; never the bytes', async (t) => {
      const r = await startTestRunner(t, { threads });
      const gw = r.gateway();
      let id = 100;
      for (const to of ['header', 'bytes', 'resp-header', 'stop']) {
        for (const plugin of ['e2e-claim-copy', 'e2e-claim-copy-deny']) {
          const what = `${plugin} to ${to}`;
          const route = routeConf(`route#${plugin}#${to}`, [[plugin, { to }]]);
          const token = await gw.prepareConf(route);
          const headers = [{ name: 'authorization', value: bearer(ATTACK) }];
          const frame = encodeHttpReqCallReq({ id: ++id, srcIp: Uint8Array.of(127, 0, 0, 1), method: 'GET', path: '/', args: [], headers, confToken: token });
          const result = await gw.rawCall(frame, { request: request(ATTACK) });
          assertClean(result, what);
          if (plugin === 'e2e-claim-copy') {
            assertServiceUnavailable(result, what);
          } else {
            assert.equal(result.reply?.type, RpcType.HttpReqCall, what);
            const action = decodeHttpReqCallResp(result.reply!.payload).action;
            assert.equal(action?.type, 'stop', what);
            assert.equal(action?.type === 'stop' && action.status, 503, what);
          }
          // The same plugin and route with a harmless claim: the header goes through, so the
          // failure above is the check, not the fixture.
          const fine = expectOk(await gw.httpReqCall(route, request('alice')), what);
          if (to === 'stop') assert.deepEqual(fine.clientResponse?.headers, [['x-user', 'alice']], what);
          else if (to === 'resp-header') assert.deepEqual(entryPairs(fine.rewrite!.respHeaders), [['x-user', 'alice']], what);
          else assert.deepEqual(entryPairs(fine.rewrite!.headers), [['x-user', 'alice']], what);
        }
      }
      for (const plugin of ['e2e-claim-copy', 'e2e-claim-copy-deny']) {
        const warns = r.logs.filter((l) => l.level === LEVEL.warn && l.plugin === plugin);
        assert.ok(
          warns.some((l) => l.msg.includes('the value of header "x-user" has 0x0d (CR) at byte 3')),
          `a warn naming ${plugin}, the header and the byte: ${JSON.stringify(warns)}`,
        );
      }
    });

    test('response phase: SERVICE_UNAVAILABLE, or Stop 503 for onError deny; never the bytes', async (t) => {
      const r = await startTestRunner(t, { threads });
      const gw = r.gateway();
      const upstream = { status: 200, headers: [['Content-Type', 'text/plain'] as const], body: 'up' };
      for (const plugin of ['e2e-claim-copy', 'e2e-claim-copy-deny']) {
        const route = routeConf(`route#${plugin}#resp`, [[plugin, {}]]);
        const token = await gw.prepareConf(route);
        const frame = encodeHttpRespCallReq({ id: 7, status: 200, headers: [{ name: 'Content-Type', value: 'text/plain' }], confToken: token });
        const result = await gw.rawCall(frame, { request: request(ATTACK), response: upstream });
        assertClean(result, plugin);
        if (plugin === 'e2e-claim-copy') {
          assertServiceUnavailable(result, plugin);
        } else {
          assert.equal(result.reply?.type, RpcType.HttpRespCall, plugin);
          assert.equal(decodeHttpRespCallResp(result.reply!.payload).status, 503, plugin);
        }
        const fine = expectOk(await gw.httpRespCall(route, upstream, request('alice')), plugin);
        assert.deepEqual(fine.clientResponse.headers, [['content-type', 'text/plain'], ['x-user', 'alice']], plugin);
      }
    });
  });
}

describe('built-in plugins refuse a bad header in their conf at PrepareConf', () => {
  test('header-rewrite with CRLF in a value: a deny chain (Stop 503 on every call), logged once at error', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = routeConf('route#bad-header-conf', [['header-rewrite', { set: { 'x-a': ATTACK } }]]);
    for (let i = 0; i < 3; i++) {
      const result = expectOk(await gw.httpReqCall(route, {}));
      assert.equal(result.action, 'stop');
      assert.equal(result.clientResponse?.status, 503);
      assert.ok(!result.clientResponse!.headers.some(([name]) => name === 'set-cookie'));
      assert.equal(result.clientResponse!.body!.includes('admin=1'), false, 'the conf value is not echoed');
    }
    const errors = linesAt(r.logs, LEVEL.error, 'header-rewrite');
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(JSON.stringify(errors[0]), /the value of header \\"x-a\\" has 0x0d \(CR\) at byte 3/);
  });
});
