import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { decodeHttpReqCallResp, encodeHttpReqCallResp } from '../../src/protocol/codec.js';
import type { RewriteAction, StopAction } from '../../src/protocol/messages.js';
import { RequestCall } from '../../src/workers/request-call.js';
import { PortStub, assertNoDeleteAfterValue, latin1, plain, reqCallFrom } from './call-fixtures.js';

function call(port = new PortStub(), input: Parameters<typeof reqCallFrom>[0] = {}): RequestCall {
  return new RequestCall(
    reqCallFrom({
      id: 42,
      method: 'PUT',
      path: '/hello',
      srcIp: Uint8Array.of(10, 0, 0, 7),
      args: [
        { name: 'xx', value: 'y' },
        { name: 'xx', value: 'z' },
        { name: 'flag', value: null },
      ],
      headers: [
        { name: 'host', value: 'example.com' },
        { name: 'accept', value: '*/*' },
      ],
      ...input,
    }),
    port,
  );
}

function stopOf(c: RequestCall): StopAction {
  const action = c.toAction();
  assert.ok(action !== null && action.type === 'stop', `expected a stop, got ${JSON.stringify(action?.type ?? null)}`);
  return action;
}

function rewriteOf(c: RequestCall): RewriteAction {
  const action = c.toAction();
  assert.ok(action !== null && action.type === 'rewrite', `expected a rewrite, got ${JSON.stringify(action?.type ?? null)}`);
  return action;
}

describe('RequestCall: the request', () => {
  test('reads the decoded frame', () => {
    const c = call();
    assert.equal(c.id, 42);
    assert.equal(c.method, 'PUT');
    assert.equal(c.path, '/hello');
    assert.equal(latin1(c.pathBytes), '/hello');
    assert.equal(c.srcIp, '10.0.0.7');
    assert.deepEqual([...c.srcIpBytes], [10, 0, 0, 7]);
    assert.equal(c.headers.get('Host'), 'example.com');
    assert.deepEqual(c.args.getAll('xx'), ['y', 'z']);
    assert.equal(c.args.get('flag'), '');
  });

  test('an IPv6 client and a Unix-socket client', () => {
    const v6 = Buffer.alloc(16);
    v6[15] = 1;
    assert.equal(call(undefined, { srcIp: v6 }).srcIp, '::1');
    assert.equal(call(undefined, { srcIp: Buffer.from('unix:') }).srcIp, 'unix:');
  });
});

describe('RequestCall: toAction', () => {
  test('null when nothing changed, even after every kind of read', async () => {
    const port = new PortStub({ 'var:route_id': '1', reqBody: 'payload' });
    const c = call(port);
    c.headers.entries();
    c.args.entries();
    assert.equal(await c.var('route_id'), '1');
    assert.equal(await c.text(), 'payload');
    assert.equal(c.toAction(), null);
  });

  test('null when every change is a no-op: same path, same header, same args', () => {
    const c = call();
    c.setPath('/hello');
    assert.equal(c.headers.get('host'), 'example.com');
    c.setHeader('Host', 'example.com');
    assert.equal(c.args.get('xx'), 'y');
    c.setArg('xx', ['y', 'z']);
    assert.equal(c.toAction(), null);
  });

  test('setBody() refuses an empty body (length 0 means "unchanged" on the wire)', async () => {
    const port = new PortStub({ reqBody: 'original' });
    const c = call(port);
    assert.throws(() => c.setBody(''), { name: 'TypeError', message: /setBody\(\): the gateway cannot set an empty body/ });
    assert.throws(() => c.setBody(new Uint8Array(0)), TypeError);
    assert.equal(c.toAction(), null);
    assert.equal(await c.text(), 'original', 'the body is unchanged');
  });

  test('body() after setBody() is a copy: a later plugin cannot mutate the buffer that is sent', async () => {
    const c = call();
    const shared = Buffer.from('abc');
    c.setBody(shared);
    const seen = (await c.body())!;
    seen[0] = 0x7a;
    assert.equal(latin1(rewriteOf(c).body), 'abc');
  });

  test('setPath: identical bytes are dropped, a different path is sent', () => {
    const c = call();
    c.setPath(Buffer.from('/hello'));
    assert.equal(c.toAction(), null);
    c.setPath('/other path');
    assert.equal(c.path, '/other path', 'later plugins see the new path');
    assert.equal(latin1(rewriteOf(c).path as Uint8Array), '/other path');
    c.setPath('/hello');
    assert.equal(c.toAction(), null, 'back to the original');
  });

  test('a rewrite carries only what changed', () => {
    const c = call();
    c.setPath('/new');
    c.setHeader('X-Added', 'a');
    c.deleteHeader('Accept');
    c.setArg('xx', ['1', '2']);
    c.deleteArg('flag');
    c.setRespHeader('X-Resp', 'r');
    c.addRespHeader('x-resp', 'r2');
    c.setBody('new body');
    const action = rewriteOf(c);
    assert.equal(latin1(action.path as Uint8Array), '/new');
    assert.deepEqual(plain(action.headers), [
      ['x-added', 'a'],
      ['accept', null],
    ]);
    assert.deepEqual(plain(action.args), [
      ['xx', '1'],
      ['xx', '2'],
      ['flag', null],
    ]);
    assert.deepEqual(plain(action.respHeaders), [
      ['X-Resp', 'r'],
      ['X-Resp', 'r2'],
    ]);
    assert.equal(latin1(action.body), 'new body');
    // Encodes, and the gateway would read back the same.
    const decoded = decodeHttpReqCallResp(encodeHttpReqCallResp({ id: c.id, action }).subarray(4));
    assert.equal(decoded.id, 42);
    assert.equal(decoded.actionType, 2);
  });

  test('fields that did not change are null in a rewrite', () => {
    const c = call();
    c.setRespHeader('X-Only', '1');
    const action = rewriteOf(c);
    assert.deepEqual(
      { path: action.path, headers: action.headers, args: action.args, body: action.body },
      { path: null, headers: null, args: null, body: null },
    );
  });
});

describe('RequestCall: stop()', () => {
  test('stop ends with its status, headers and body', () => {
    const c = call();
    assert.equal(c.stopped, false);
    c.stop(403, { 'Content-Type': 'text/plain', 'Set-Cookie': ['a=1', 'b=2'] }, 'denied');
    assert.equal(c.stopped, true);
    const stop = stopOf(c);
    assert.equal(stop.status, 403);
    assert.deepEqual(plain(stop.headers), [
      ['Content-Type', 'text/plain'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
    assert.equal(latin1(stop.body), 'denied');
  });

  test('defaults: status 200, no headers, no body; an empty body is not sent', () => {
    const c = call();
    c.stop();
    assert.deepEqual(stopOf(c), { type: 'stop', status: 200, headers: null, body: null });
    c.stop(0, {}, '');
    assert.deepEqual(stopOf(c), { type: 'stop', status: 0, headers: null, body: null });
  });

  test('a stop wins over rewrite changes', () => {
    const c = call();
    c.setPath('/new');
    c.setHeader('x', 'y');
    c.stop(401);
    assert.equal(stopOf(c).status, 401);
  });

  test('merges response headers set earlier in the chain; stop() headers win for the same name', () => {
    const c = call();
    c.setRespHeader('X-Early', 'e1');
    c.addRespHeader('x-early', 'e2');
    c.setRespHeader('X-Same', 'old');
    c.addRespHeader('X-Same', 'old2');
    c.deleteRespHeader('X-Gone');
    c.stop(429, [
      ['x-same', 'new'],
      ['X-Retry', '1'],
      ['x-retry', '2'],
    ]);
    const stop = stopOf(c);
    assert.deepEqual(plain(stop.headers), [
      ['X-Early', 'e1'],
      ['X-Early', 'e2'],
      ['x-same', 'new'],
      ['x-gone', null],
      ['X-Retry', '1'],
      ['X-Retry', '2'],
    ]);
    assertNoDeleteAfterValue(stop.headers);
  });

  test('a stop() header for a name deleted earlier is a plain value', () => {
    const c = call();
    c.deleteRespHeader('WWW-Authenticate');
    c.stop(401, { 'WWW-Authenticate': ['Basic', 'Bearer'] });
    const stop = stopOf(c);
    assert.deepEqual(plain(stop.headers), [
      ['WWW-Authenticate', 'Basic'],
      ['WWW-Authenticate', 'Bearer'],
    ]);
    assertNoDeleteAfterValue(stop.headers);
  });

  test('stop() accepts bytes for values and body', () => {
    const c = call();
    c.stop(200, { 'X-Bin': Uint8Array.of(0xff) }, Uint8Array.of(0, 1, 2));
    const stop = stopOf(c);
    assert.deepEqual(plain(stop.headers), [['X-Bin', '\u00ff']]);
    assert.deepEqual([...stop.body!], [0, 1, 2]);
  });

  test('status must be 0 or an integer from 100 to 599', () => {
    for (const ok of [0, 100, 200, 599]) {
      const c = call();
      c.stop(ok);
      assert.equal(stopOf(c).status, ok);
    }
    for (const bad of [99, 600, -1, 200.5, Number.NaN, Infinity, '403' as unknown as number]) {
      const c = call();
      assert.throws(() => c.stop(bad), (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, /stop\(\) status must be 0 or an integer HTTP status from 100 to 599/);
        return true;
      });
      assert.equal(c.stopped, false, `${String(bad)} does not stop`);
      assert.equal(c.toAction(), null);
    }
  });
});

describe('RequestCall: values that are neither text nor bytes', () => {
  // Plugin modules are plain JavaScript, so `undefined` reaches these setters (a missing conf
  // field, `user.name` of an anonymous user). BUG (src/workers/bytes.ts toBytes/toBuffer, used by
  // every setter): the value is stored as is and only fails later, in toAction() or the encoder,
  // outside the filter: the call-handler then answers a generic SERVICE_UNAVAILABLE, ignoring the
  // plugin's onError: 'deny', so allow_degradation lets the request through (a fail-open for an
  // auth plugin that meant to stop it). They must throw a TypeError when called, inside the filter.
  const asAny = (v: unknown): string => v as string;
  const cases: Array<[string, (c: RequestCall) => void]> = [
    ['stop() header value undefined', (c) => c.stop(401, { 'WWW-Authenticate': asAny(undefined) })],
    ['stop() header pair value undefined', (c) => c.stop(401, [['WWW-Authenticate', asAny(undefined)]])],
    ['stop() body a number', (c) => c.stop(401, undefined, asAny(401))],
    ['setHeader undefined', (c) => c.setHeader('x-user', asAny(undefined))],
    ['setArg undefined', (c) => c.setArg('user', asAny(undefined))],
    ['setPath undefined', (c) => c.setPath(asAny(undefined))],
    ['setRespHeader undefined', (c) => c.setRespHeader('x-user', asAny(undefined))],
    ['addRespHeader undefined', (c) => c.addRespHeader('x-user', asAny(undefined))],
  ];
  test('every setter throws a TypeError at the call', () => {
    const accepted: string[] = [];
    for (const [what, act] of cases) {
      try {
        act(call());
        accepted.push(what);
      } catch (err) {
        assert.ok(err instanceof TypeError, `${what}: ${String(err)}`);
      }
    }
    assert.deepEqual(accepted, [], 'accepted without an error');
  });
});

describe('RequestCall: header rules', () => {
  // BUG (before the fix): a value copied from an attacker (a decoded JWT claim) with CRLF went to
  // the gateway as given, through every setter and stop(). Each must throw InvalidHeaderError and
  // leave the action as it was, so nothing of it can reach the wire.
  const attack = 'bob\r\nset-cookie: admin=1';
  const attackBytes = new Uint8Array(Buffer.from(attack, 'latin1'));
  const cases: Array<[string, (c: RequestCall) => void, string, string]> = [
    ['setHeader text', (c) => c.setHeader('x-user', attack), 'x-user', 'value-forbidden-byte'],
    ['setHeader bytes', (c) => c.setHeader('x-user', attackBytes), 'x-user', 'value-forbidden-byte'],
    ['setHeader list', (c) => c.setHeader('x-user', ['alice', attack]), 'x-user', 'value-forbidden-byte'],
    ['setHeader name', (c) => c.setHeader('x-a\r\nset-cookie', 'v'), 'x-a\r\nset-cookie', 'name-not-token'],
    ['setHeader empty list (a delete)', (c) => c.setHeader('x y', []), 'x y', 'name-not-token'],
    ['setHeader host value', (c) => c.setHeader('host', 'evil\0.example'), 'host', 'value-forbidden-byte'],
    ['deleteHeader empty name', (c) => c.deleteHeader(''), '', 'name-empty'],
    ['setRespHeader text', (c) => c.setRespHeader('x-user', attack), 'x-user', 'value-forbidden-byte'],
    ['addRespHeader bytes', (c) => c.addRespHeader('x-user', attackBytes), 'x-user', 'value-forbidden-byte'],
    ['addRespHeader name', (c) => c.addRespHeader('x:user', 'v'), 'x:user', 'name-not-token'],
    ['deleteRespHeader name', (c) => c.deleteRespHeader('x user'), 'x user', 'name-not-token'],
    ['stop() record value', (c) => c.stop(401, { 'x-user': attack }), 'x-user', 'value-forbidden-byte'],
    ['stop() record list value', (c) => c.stop(401, { 'set-cookie': ['a=1', attack] }), 'set-cookie', 'value-forbidden-byte'],
    ['stop() record name', (c) => c.stop(401, { 'x-a\nb': '1' }), 'x-a\nb', 'name-not-token'],
    ['stop() pair bytes', (c) => c.stop(401, [['x-user', attackBytes]]), 'x-user', 'value-forbidden-byte'],
    ['stop() pair empty name', (c) => c.stop(401, [['', 'v']]), '', 'name-empty'],
    ['stop() pair NUL', (c) => c.stop(401, [['x', 'a\0']]), 'x', 'value-forbidden-byte'],
    ['stop() pair trailing space', (c) => c.stop(401, [['x', 'a ']]), 'x', 'value-edge-whitespace'],
  ];

  test('every header setter and stop() throws InvalidHeaderError and records nothing', () => {
    for (const [what, act, header, rule] of cases) {
      const c = call();
      c.setHeader('x-before', 'kept');
      assert.throws(() => act(c), { name: 'InvalidHeaderError', code: 'ANR_ERR_INVALID_HEADER', header, rule }, what);
      assert.equal(c.stopped, false, what);
      assert.deepEqual(plain(rewriteOf(c).headers), [['x-before', 'kept']], what);
      assert.equal(rewriteOf(c).respHeaders, null, what);
    }
  });

  test('a name that is not a string is a TypeError, as a value that is neither text nor bytes', () => {
    const name = undefined as unknown as string;
    for (const act of [(c: RequestCall) => c.setHeader(name, 'v'), (c: RequestCall) => c.deleteRespHeader(name), (c: RequestCall) => c.stop(401, [[name, 'v']])]) {
      assert.throws(() => act(call()), TypeError);
    }
  });

  test('the path and args are not header fields: the gateway percent-encodes them, so their bytes go as given', () => {
    // PROTOCOL §3.2: the path goes through ngx_escape_uri (every byte below 0x21 and 0x7F and up
    // is escaped), args through ngx.encode_args. nginx decodes `%0D%0A` in a client's path into
    // $uri, so a plugin that strips a prefix must be able to hand those bytes back.
    const c = call();
    c.setPath('/a\r\nb\0');
    c.setArg('q', 'x\r\ny');
    const rewrite = rewriteOf(c);
    assert.equal(latin1(rewrite.path), '/a\r\nb\0');
    assert.deepEqual(plain(rewrite.args), [['q', 'x\r\ny']]);
  });
});

describe('RequestCall: ExtraInfo', () => {
  test('var() is asked once per name, even for concurrent calls', async () => {
    const port = new PortStub({ 'var:route_id': '1', 'var:empty': '' });
    const c = call(port);
    const [a, b] = await Promise.all([c.var('route_id'), c.var('route_id')]);
    assert.equal(a, '1');
    assert.equal(b, '1');
    assert.equal(await c.var('route_id'), '1');
    assert.deepEqual([...(await c.varBytes('route_id'))!], [0x31]);
    assert.equal(await c.var('missing'), null);
    assert.equal(await c.var('missing'), null);
    assert.equal(await c.var('empty'), '', 'an empty variable is not an absent one');
    assert.deepEqual(port.queries, [
      { type: 'var', name: 'route_id' },
      { type: 'var', name: 'missing' },
      { type: 'var', name: 'empty' },
    ]);
  });

  test('var() needs a non-empty name', async () => {
    const port = new PortStub();
    const c = call(port);
    await assert.rejects(c.var(''), TypeError);
    await assert.rejects(c.var(undefined as unknown as string), TypeError);
    assert.equal(port.queries.length, 0);
  });

  test('body() is asked once; text() shares it', async () => {
    const port = new PortStub({ reqBody: 'hello body' });
    const c = call(port);
    const [b1, b2] = await Promise.all([c.body(), c.body()]);
    assert.ok(Buffer.isBuffer(b1));
    assert.equal(b1!.toString(), 'hello body');
    assert.equal(b2, b1);
    assert.equal(await c.text(), 'hello body');
    assert.deepEqual(port.queries, [{ type: 'reqBody' }]);
  });

  test('no body is null', async () => {
    const port = new PortStub();
    const c = call(port);
    assert.equal(await c.body(), null);
    assert.equal(await c.text(), null);
    assert.equal(port.queries.length, 1);
  });

  test('after setBody(), body() is the new body without a query', async () => {
    const port = new PortStub({ reqBody: 'old' });
    const c = call(port);
    c.setBody('new');
    assert.equal(await c.text(), 'new');
    assert.equal(port.queries.length, 0);
  });

  test('a query after finish() rejects without reaching the gateway', async () => {
    const port = new PortStub({ 'var:a': '1', reqBody: 'b' });
    const c = call(port);
    c.finish();
    await assert.rejects(c.var('a'), /already been answered/);
    await assert.rejects(c.body(), /already been answered/);
    assert.equal(port.queries.length, 0);
  });

  test('abort() aborts the signal and rejects later queries with its reason', async () => {
    const port = new PortStub({ 'var:a': '1' });
    const c = call(port);
    const signal = c.signal;
    assert.equal(signal.aborted, false);
    assert.equal(c.signal, signal, 'one signal per call');
    const reason = new Error('deadline');
    c.abort(reason);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, reason);
    await assert.rejects(c.var('a'), (err) => err === reason);
    await assert.rejects(c.body(), (err) => err === reason);
    assert.equal(port.queries.length, 0);
    c.abort(new Error('second'));
    assert.equal(c.abortReason, reason, 'the first reason stays');
  });

  test('a signal first looked at after abort() is already aborted', () => {
    const c = call();
    const reason = new Error('closed');
    c.abort(reason);
    assert.equal(c.signal.aborted, true);
    assert.equal(c.signal.reason, reason);
  });
});
