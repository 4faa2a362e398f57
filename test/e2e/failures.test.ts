/**
 * Failure semantics (DECISIONS.md 1-4): fail closed on a bad conf, plugin failures and deadlines,
 * disconnects in the middle of a call.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { encodeHttpReqCallReq } from '../../src/protocol/codec.js';
import { ErrCode, RpcType } from '../../src/protocol/constants.js';
import { routeConf } from '../support/gateway.js';
import { entryPairs, EVENT_WAIT_MS, expectFailure, expectOk, FIXTURE_PLUGINS, LEVEL, linesAt, startTestRunner, until } from './harness.js';

interface SlowEvent {
  id: number;
  event: 'start' | 'done' | 'aborted';
  reason?: string;
}
// The runner imports the fixture by the same file URL, so this is the same module instance.
const slow = (await import(pathToFileURL(join(FIXTURE_PLUGINS, 'slow.mjs')).href)) as { events: SlowEvent[] };
const eventsOf = (id: number) => slow.events.filter((e) => e.id === id).map((e) => e.event);
const leakyReads = (await import(pathToFileURL(join(FIXTURE_PLUGINS, 'leaky.mjs')).href)) as { settled: Array<{ name: string; outcome: string }> };
/** Call ids unique across this file: the fixture's event log is shared by every runner in it. */
let lastId = 1000;
const nextId = () => ++lastId;

const upstream = { status: 200, headers: [['Content-Type', 'text/plain'] as const], body: 'up' };

describe('fail closed', () => {
  test('an unknown plugin name: every call Stop 503 naming it, logged once at error', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = routeConf('route#1#ext-plugin-pre-req#1', [
      ['e2e-script', { req: [['setHeader', 'x', '1']] }],
      ['jwt-auht', '{}'],
    ]);
    for (let i = 0; i < 5; i++) {
      const result = expectOk(await gw.httpReqCall(route, {}));
      assert.equal(result.action, 'stop');
      assert.equal(result.clientResponse?.status, 503);
      assert.equal(result.clientResponse!.body!.toString(), 'plugin "jwt-auht" is not loaded\n');
    }
    const resp = expectOk(await gw.httpRespCall(routeConf('route#1#ext-plugin-post-resp#1', [['jwt-auht', '{}']]), upstream));
    assert.equal(resp.clientResponse.status, 503);
    assert.equal(resp.clientResponse.body!.toString(), 'plugin "jwt-auht" is not loaded\n');
    // Re-preparing the same key (another worker, say) returns the same token and logs nothing new.
    await gw.prepareConf(route);
    const errors = r.logs.filter((l) => l.level >= LEVEL.error);
    assert.equal(errors.filter((l) => l.msg.includes('jwt-auht')).length, 2, 'once per token: the pre-req conf and the post-resp conf');
    assert.equal(gw.stats.prepareConfSent, 3);
  });

  test('a conf rejected by parseConf: Stop 503 with a stable body, the error text only in the log (once at error)', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    // Each error text quotes the value: JSON.parse's message, and a plugin that quotes its conf.
    const cases: Array<[plugin: string, value: string, secret: string]> = [
      ['say', 'not-json S3cr3t-1', 'S3cr3t-1'],
      ['e2e-script', 'api-key-S3cr3t-2', 'S3cr3t-2'],
      ['e2e-quotes-conf', '{"password": "S3cr3t-3"}', 'S3cr3t-3'],
    ];
    for (const [index, [plugin, value, secret]] of cases.entries()) {
      const body = `plugin "${plugin}" rejected its configuration\n`;
      const route = routeConf(`route#${index}#ext-plugin-pre-req#1`, [[plugin, value]]);
      for (let i = 0; i < 3; i++) {
        const result = expectOk(await gw.httpReqCall(route, {}));
        assert.equal(result.action, 'stop');
        assert.equal(result.clientResponse?.status, 503);
        assert.equal(result.clientResponse!.body!.toString(), body);
      }
      const resp = expectOk(await gw.httpRespCall(routeConf(`route#${index}#ext-plugin-post-resp#1`, [[plugin, value]]), upstream));
      assert.equal(resp.clientResponse.status, 503);
      assert.equal(resp.clientResponse.body!.toString(), body);

      // The operator gets the detail: once per token (the pre-req conf and the post-resp conf), at error.
      const detailed = r.logs.filter((l) => l.msg.includes(secret));
      assert.equal(detailed.length, 2, JSON.stringify(detailed));
      for (const line of detailed) {
        assert.equal(line.level, LEVEL.error);
        assert.ok(line.msg.includes(`plugin "${plugin}" rejected its configuration: `), line.msg);
      }
    }
    assert.match(linesAt(r.logs, LEVEL.error, 'e2e-script')[0].msg, /is not valid JSON/);
  });

  test('skipUnknownPlugins: the unknown entry is dropped (warned) and the rest of the chain runs', async (t) => {
    const r = await startTestRunner(t, { skipUnknownPlugins: true });
    const gw = r.gateway();
    const route = routeConf('route#1#ext-plugin-pre-req#1', [
      ['jwt-auht', '{}'],
      ['e2e-script', { req: [['setHeader', 'x-ran', 'yes']] }],
    ]);
    const result = expectOk(await gw.httpReqCall(route, {}));
    assert.equal(result.action, 'rewrite');
    assert.deepEqual(entryPairs(result.rewrite!.headers), [['x-ran', 'yes']]);
    assert.equal(linesAt(r.logs, LEVEL.warn, 'jwt-auht').length, 1);
    assert.equal(r.logs.filter((l) => l.level >= LEVEL.error).length, 0);
  });
});

describe('plugin failures', () => {
  for (const plugin of ['e2e-throws', 'e2e-rejects']) {
    test(`${plugin}: SERVICE_UNAVAILABLE, a warn naming plugin and request id; calls on other connections unaffected`, async (t) => {
      const r = await startTestRunner(t);
      const gw = r.gateway();
      const slowRoute = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 150 }]]);
      const failRoute = routeConf('route#2#ext-plugin-pre-req#1', [[plugin, '{}']]);
      await gw.prepareConf(slowRoute);
      await gw.prepareConf(failRoute);
      const [slowId, failId] = [nextId(), nextId()];
      const inFlight = gw.httpReqCall(slowRoute, {}, { id: slowId });
      const failed = expectFailure(await gw.httpReqCall(failRoute, {}, { id: failId }));
      assert.equal(failed.error, 'service unavailable');
      assert.equal(failed.errCode, ErrCode.ServiceUnavailable);
      assert.equal(failed.attempts, 1, 'not retried');
      const ok = expectOk(await inFlight);
      assert.equal(ok.clientResponse?.body?.toString(), 'slow 150 ms done');
      assert.deepEqual(eventsOf(slowId), ['start', 'done']);

      const warn = r.logs.find((l) => l.level === LEVEL.warn && l.plugin === plugin);
      assert.ok(warn, `a warn line naming ${plugin}: ${JSON.stringify(r.logs)}`);
      assert.equal(warn.id, failId, 'the request id');
      assert.match(warn.msg, new RegExp(plugin));

      const resp = expectFailure(await gw.httpRespCall(routeConf('route#3#ext-plugin-post-resp#1', [[plugin, '{}']]), upstream));
      assert.equal(resp.error, 'service unavailable');
      // After all that, the runner serves normally.
      expectOk(await gw.httpReqCall(slowRoute, {}));
    });
  }

  test("onError: 'deny': the failure answers Stop 503 (request) and a 503 response (post-resp)", async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const result = expectOk(await gw.httpReqCall(routeConf('route#1#ext-plugin-pre-req#1', [['e2e-deny-throws', '{}']]), {}));
    assert.equal(result.action, 'stop');
    assert.equal(result.clientResponse?.status, 503);
    // The plugin's error text goes to the log, never to the client.
    assert.equal(result.clientResponse!.body!.toString(), 'plugin "e2e-deny-throws" failed\n');
    const resp = expectOk(await gw.httpRespCall(routeConf('route#1#ext-plugin-post-resp#1', [['e2e-deny-throws', '{}']]), upstream));
    assert.equal(resp.clientResponse.status, 503);
    assert.equal(resp.clientResponse.body!.toString(), 'plugin "e2e-deny-throws" failed\n');
    const logged = r.logs.filter((l) => JSON.stringify(l).includes('failed on purpose'));
    assert.ok(logged.length >= 1 && logged.every((l) => l.level === LEVEL.warn), JSON.stringify(logged));
  });
});

describe('deadlines', () => {
  test('a plugin past callTimeoutMs: SERVICE_UNAVAILABLE near the deadline, the plugin is aborted', async (t) => {
    const r = await startTestRunner(t, { callTimeoutMs: 150 });
    const gw = r.gateway();
    const route = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 5000 }]]);
    await gw.prepareConf(route);
    const started = performance.now();
    const id = nextId();
    const result = expectFailure(await gw.httpReqCall(route, {}, { id }));
    const elapsed = performance.now() - started;
    assert.equal(result.error, 'service unavailable');
    // Never before the deadline; how long after it depends on the machine, so only the cause is
    // checked: the plugin was aborted (it would have answered 'done' after its 5 s otherwise).
    assert.ok(elapsed >= 140, `answered after ${Math.round(elapsed)} ms`);
    assert.deepEqual(eventsOf(id), ['start', 'aborted']);
    assert.ok(r.logs.some((l) => l.level === LEVEL.warn && l.plugin === 'e2e-slow' && /deadline/.test(l.msg)));

    // A plugin that ignores the abort is still answered at the deadline.
    const stubborn = routeConf('route#2#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 600, ignoreAbort: true }]]);
    const late = expectFailure(await gw.httpReqCall(stubborn, {}));
    assert.equal(late.error, 'service unavailable');
    // Response phase too.
    const resp = expectFailure(await gw.httpRespCall(routeConf('route#3#ext-plugin-post-resp#1', [['e2e-slow', { delayMs: 5000 }]]), upstream));
    assert.equal(resp.error, 'service unavailable');
  });

  test('a chain within its deadline is answered normally, across several ticks of the deadline timer', async (t) => {
    // The shared timer ticks every 3000 / 8 ms: the call outlives a tick, and is far from its deadline.
    const r = await startTestRunner(t, { callTimeoutMs: 3000 });
    const gw = r.gateway();
    const result = expectOk(await gw.httpReqCall(routeConf('route#1#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 400 }]]), {}));
    assert.equal(result.clientResponse?.body?.toString(), 'slow 400 ms done');
  });
});

describe('disconnects', () => {
  test('the gateway closing mid-call cancels only that call', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const slowRoute = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 300 }]]);
    // The call to cut waits far longer than the test can take to close its connection, so it can
    // only end by being aborted, however slowly the machine gets there.
    const cutRoute = routeConf('route#2#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 120_000 }]]);
    await gw.prepareConf(slowRoute);
    const token = await gw.prepareConf(cutRoute);
    const [otherId, cutId] = [nextId(), nextId()];
    const other = gw.httpReqCall(slowRoute, {}, { id: otherId });
    const conn = await gw.connect();
    await conn.send(encodeHttpReqCallReq({ id: cutId, srcIp: null, method: 0, path: '/', args: [], headers: [], confToken: token }));
    await until(() => eventsOf(cutId).includes('start'), EVENT_WAIT_MS, 'the call to start');
    conn.close();
    await until(() => eventsOf(cutId).includes('aborted'), EVENT_WAIT_MS, 'the call to be aborted');
    const ok = expectOk(await other);
    assert.equal(ok.clientResponse?.body?.toString(), 'slow 300 ms done');
    assert.deepEqual(eventsOf(otherId), ['start', 'done']);
    assert.deepEqual(eventsOf(cutId), ['start', 'aborted']);
    expectOk(await gw.httpReqCall(slowRoute, {}));
  });

  test('the gateway closing while the runner waits for an ExtraInfo answer', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const route = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-extra', { vars: ['a', 'b'] }]]);
    const slowRoute = routeConf('route#2#ext-plugin-pre-req#1', [['e2e-slow', { delayMs: 200 }]]);
    const token = await gw.prepareConf(route);
    await gw.prepareConf(slowRoute);
    const other = gw.httpReqCall(slowRoute, {});
    const conn = await gw.connect();
    await conn.send(encodeHttpReqCallReq({ id: 32, srcIp: null, method: 0, path: '/', args: [], headers: [], confToken: token }));
    const query = await conn.receive(EVENT_WAIT_MS);
    assert.equal(query.type, RpcType.ExtraInfo);
    conn.close();
    expectOk(await other);
    const again = expectOk(await gw.httpReqCall(route, { vars: { a: '1' } }));
    assert.deepEqual(Object.fromEntries(entryPairs(again.rewrite!.headers)), { 'x-var-a': '1', 'x-var-b': '(absent)' });
    // A half-close (FIN) while a query is pending ends the call the same way.
    const half = await gw.connect();
    await half.send(encodeHttpReqCallReq({ id: 33, srcIp: null, method: 0, path: '/', args: [], headers: [], confToken: token }));
    assert.equal((await half.receive(EVENT_WAIT_MS)).type, RpcType.ExtraInfo);
    half.end();
    await half.whenClosed;
    expectOk(await gw.httpReqCall(route, {}));
    assert.equal(r.logs.filter((l) => l.level >= LEVEL.error).length, 0);
  });

  test('a plugin that fires ExtraInfo reads without awaiting them sends nothing after its reply', async (t) => {
    const r = await startTestRunner(t);
    const gw = r.gateway();
    const leaky = routeConf('route#1#ext-plugin-pre-req#1', [['e2e-leaky', '{}']]);
    const quiet = routeConf('route#2#ext-plugin-pre-req#1', [['e2e-script', { req: [] }]]);
    const first = expectOk(await gw.httpReqCall(leaky, {}));
    assert.deepEqual(entryPairs(first.rewrite!.headers), [['x-leaky', 'replied']]);
    // Once both reads have ended the runner is done with them, and a query it sent would be on the
    // now idle connection; then use the connection again.
    await until(() => leakyReads.settled.length === 2 || gw.stats.strayDataOnIdle > 0, EVENT_WAIT_MS, 'the leaked reads to end');
    assert.deepEqual(leakyReads.settled.map((s) => s.outcome), ['refused', 'refused'], 'no answer can come: the call is over');
    const next = expectOk(await gw.httpReqCall(quiet, {}));
    assert.deepEqual(next.extraInfo, [], 'no query of the earlier call shows up inside this one');
    assert.equal(gw.stats.strayDataOnIdle, 0, 'nothing arrived on the idle connection');
  });
});
