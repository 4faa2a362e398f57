import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { MalformedPayloadError, PluginFailedError } from '../../src/errors.js';
import { definePlugin, type PluginDefinition } from '../../src/plugin.js';
import { runRequestChain, runResponseChain, type PreparedPlugin } from '../../src/workers/chain.js';
import { RequestCall } from '../../src/workers/request-call.js';
import { ResponseCall } from '../../src/workers/response-call.js';
import { PortStub, reqCallFrom, respCallFrom } from './call-fixtures.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function requestCall(): RequestCall {
  return new RequestCall(reqCallFrom(), new PortStub());
}

function responseCall(): ResponseCall {
  return new ResponseCall(respCallFrom(), new PortStub());
}

function prepared(def: PluginDefinition, conf: unknown = {}): PreparedPlugin {
  return { plugin: definePlugin(def), conf };
}

/** Builds request plugins that log their start (and, for async ones, their end). */
function logging(log: string[]) {
  return {
    sync: (name: string, body?: (res: RequestCall) => void): PreparedPlugin =>
      prepared({
        name,
        requestFilter(_conf, _req, res) {
          log.push(name);
          body?.(res as RequestCall);
        },
      }),
    async: (name: string, body?: (res: RequestCall) => void): PreparedPlugin =>
      prepared({
        name,
        async requestFilter(_conf, _req, res) {
          log.push(`${name}:start`);
          await tick();
          body?.(res as RequestCall);
          log.push(`${name}:end`);
        },
      }),
  };
}

function failedWith(plugin: string, deny: boolean, cause: unknown): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof PluginFailedError, `expected PluginFailedError, got ${String(err)}`);
    assert.equal(err.plugin, plugin);
    assert.equal(err.deny, deny);
    assert.equal(err.cause, cause);
    assert.equal(err.code, 'ANR_ERR_PLUGIN_FAILED');
    return true;
  };
}

describe('runRequestChain', () => {
  test('sync plugins run in order and return undefined synchronously (no promise)', () => {
    const log: string[] = [];
    const p = logging(log);
    const c = requestCall();
    const result = runRequestChain([p.sync('a'), p.sync('b'), p.sync('c')], c);
    assert.equal(result, undefined);
    assert.deepEqual(log, ['a', 'b', 'c']);
    assert.equal(c.current, null);
  });

  test('each plugin gets its conf and the call as request and actions', () => {
    const seen: unknown[] = [];
    const c = requestCall();
    const conf = { x: 1 };
    runRequestChain(
      [
        prepared({
          name: 'p',
          requestFilter(cf, req, res) {
            seen.push(cf, req, res);
          },
        }, conf),
      ],
      c,
    );
    assert.deepEqual(seen, [conf, c, c]);
    assert.equal(seen[0], conf);
  });

  test('an empty chain is undefined', () => {
    assert.equal(runRequestChain([], requestCall()), undefined);
  });

  test('turns async at the first async plugin and continues in order', async () => {
    const log: string[] = [];
    const p = logging(log);
    const c = requestCall();
    const result = runRequestChain([p.sync('1'), p.async('2'), p.sync('3'), p.async('4'), p.sync('5')], c);
    assert.ok(result instanceof Promise);
    assert.deepEqual(log, ['1', '2:start'], 'nothing after the async plugin ran yet');
    assert.equal(c.current?.name, '2', 'the running plugin is known (named in timeouts)');
    assert.equal(await result, undefined);
    assert.deepEqual(log, ['1', '2:start', '2:end', '3', '4:start', '4:end', '5']);
    assert.equal(c.current, null);
  });

  test('a filter returning a non-promise thenable is awaited', async () => {
    const log: string[] = [];
    const c = requestCall();
    const thenable = {
      then(resolve: () => void) {
        setImmediate(() => (log.push('thenable'), resolve()));
      },
    };
    const result = runRequestChain(
      [prepared({ name: 't', requestFilter: () => thenable as unknown as Promise<void> }), logging(log).sync('after')],
      c,
    );
    assert.ok(result instanceof Promise);
    await result;
    assert.deepEqual(log, ['thenable', 'after']);
  });

  test('stops at stop(): sync', () => {
    const log: string[] = [];
    const p = logging(log);
    const c = requestCall();
    assert.equal(runRequestChain([p.sync('a'), p.sync('b', (res) => res.stop(403)), p.sync('c'), p.async('d')], c), undefined);
    assert.deepEqual(log, ['a', 'b']);
    assert.equal(c.stopped, true);
  });

  test('stops at stop(): async', async () => {
    const log: string[] = [];
    const p = logging(log);
    const c = requestCall();
    await runRequestChain([p.async('a', (res) => res.stop(401)), p.sync('b'), p.async('c')], c);
    assert.deepEqual(log, ['a:start', 'a:end']);
    assert.equal(c.toAction()?.type, 'stop');
  });

  test('does not continue after the call was aborted', async () => {
    const log: string[] = [];
    const p = logging(log);
    const c = requestCall();
    const result = runRequestChain([p.async('a'), p.sync('b')], c);
    c.abort(new Error('deadline'));
    await result;
    assert.deepEqual(log, ['a:start', 'a:end']);
  });

  test('a sync throw is a PluginFailedError thrown synchronously, deny following onError', () => {
    for (const onError of ['fail', 'deny'] as const) {
      const boom = new Error('boom');
      const log: string[] = [];
      const chain = [
        prepared({
          name: `thrower-${onError}`,
          onError,
          requestFilter() {
            throw boom;
          },
        }),
        logging(log).sync('after'),
      ];
      assert.throws(() => runRequestChain(chain, requestCall()), failedWith(`thrower-${onError}`, onError === 'deny', boom));
      assert.deepEqual(log, [], 'the chain ends at the failure');
    }
  });

  test('an async rejection is a PluginFailedError rejection, deny following onError', async () => {
    for (const onError of ['fail', 'deny'] as const) {
      const log: string[] = [];
      const chain = [
        logging(log).async('first'),
        prepared({
          name: `rejecter-${onError}`,
          onError,
          requestFilter: () => Promise.reject('not even an Error'),
        }),
        logging(log).sync('after'),
      ];
      const result = runRequestChain(chain, requestCall());
      assert.ok(result instanceof Promise);
      await assert.rejects(result, failedWith(`rejecter-${onError}`, onError === 'deny', 'not even an Error'));
      assert.deepEqual(log, ['first:start', 'first:end']);
    }
  });

  test('the failure message names the plugin and the cause', () => {
    assert.throws(
      () =>
        runRequestChain(
          [
            prepared({
              name: 'auth',
              requestFilter() {
                throw new RangeError('bad token');
              },
            }),
          ],
          requestCall(),
        ),
      { message: 'plugin "auth" failed: bad token' },
    );
  });

  test("a deny plugin's stop() with an undefined header value fails closed inside the chain", () => {
    // See request-call.test.ts, "values that are neither text nor bytes": today stop() accepts it,
    // the chain succeeds, and the encoder's TypeError later becomes a degradable SERVICE_UNAVAILABLE.
    const conf: { realm?: string } = {};
    const auth = prepared({
      name: 'auth',
      onError: 'deny',
      requestFilter(_conf, _req, res) {
        res.stop(401, { 'WWW-Authenticate': conf.realm as string });
      },
    });
    assert.throws(() => runRequestChain([auth], requestCall()), (err: unknown) => {
      assert.ok(err instanceof PluginFailedError, `expected PluginFailedError, got ${String(err)}`);
      assert.equal(err.deny, true);
      return true;
    });
  });

  test('a MalformedPayloadError passes through unwrapped, sync and async', async () => {
    const malformed = new MalformedPayloadError('bad vector');
    assert.throws(
      () =>
        runRequestChain(
          [
            prepared({
              name: 'reader',
              onError: 'deny',
              requestFilter() {
                throw malformed;
              },
            }),
          ],
          requestCall(),
        ),
      (err) => err === malformed,
    );
    await assert.rejects(
      runRequestChain([prepared({ name: 'reader', requestFilter: () => Promise.reject(malformed) })], requestCall()) as Promise<void>,
      (err) => err === malformed,
    );
  });

  test("the call's abort reason passes through unwrapped", async () => {
    const c = requestCall();
    const reason = new Error('the gateway closed the connection');
    const result = runRequestChain(
      [
        prepared({
          name: 'asker',
          async requestFilter(_conf, req) {
            await tick();
            c.abort(reason);
            await req.var('x');
          },
        }),
      ],
      c,
    );
    await assert.rejects(result as Promise<void>, (err) => err === reason);
  });
});

describe('runResponseChain', () => {
  function responsePlugin(name: string, log: string[], isAsync: boolean): PreparedPlugin {
    return prepared({
      name,
      responseFilter: isAsync
        ? async (_conf, _req, res) => {
            log.push(`${name}:start`);
            await tick();
            res.addHeader('x-chain', name);
            log.push(`${name}:end`);
          }
        : (_conf, _req, res) => {
            log.push(name);
            res.addHeader('x-chain', name);
          },
    });
  }

  test('sync plugins all run and return undefined synchronously', () => {
    const log: string[] = [];
    const c = responseCall();
    assert.equal(runResponseChain([responsePlugin('a', log, false), responsePlugin('b', log, false)], c), undefined);
    assert.deepEqual(log, ['a', 'b']);
    assert.deepEqual(c.headers.getAll('x-chain'), ['a', 'b']);
    assert.equal(c.current, null);
  });

  test('turns async at the first async plugin and runs every plugin in order', async () => {
    const log: string[] = [];
    const c = responseCall();
    const result = runResponseChain(
      [responsePlugin('a', log, false), responsePlugin('b', log, true), responsePlugin('c', log, false)],
      c,
    );
    assert.ok(result instanceof Promise);
    assert.deepEqual(log, ['a', 'b:start']);
    await result;
    assert.deepEqual(log, ['a', 'b:start', 'b:end', 'c']);
    assert.deepEqual(c.headers.getAll('x-chain'), ['a', 'b', 'c']);
  });

  test('failures become PluginFailedError; MalformedPayloadError passes through', async () => {
    const boom = new Error('boom');
    assert.throws(
      () =>
        runResponseChain(
          [
            prepared({
              name: 'r',
              onError: 'deny',
              responseFilter() {
                throw boom;
              },
            }),
          ],
          responseCall(),
        ),
      failedWith('r', true, boom),
    );
    await assert.rejects(
      runResponseChain([prepared({ name: 'r2', responseFilter: () => Promise.reject(boom) })], responseCall()) as Promise<void>,
      failedWith('r2', false, boom),
    );
    const malformed = new MalformedPayloadError('bad');
    await assert.rejects(
      runResponseChain([prepared({ name: 'r3', responseFilter: () => Promise.reject(malformed) })], responseCall()) as Promise<void>,
      (err) => err === malformed,
    );
  });
});
