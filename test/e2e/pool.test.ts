/**
 * The worker pool end to end (issue 3): real worker threads, real sockets, the gateway simulator as
 * the client. Chains mixing inline and pool plugins, the response phase, ExtraInfo from a worker
 * (lazy and declared), worker deaths, busy loops past the deadline, queue overflow, token expiry
 * reaching the workers, reload under load, auto placement, and `threads: 0`.
 *
 * Fixtures: test/fixtures/pool-plugins/ (loaded in the main thread and in every worker thread).
 * Plugins echo `threadId` from node:worker_threads into `x-thread*` response headers: 0 means the
 * main thread.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import type { StartOptions } from '../../src/runner.js';
import { ErrCode } from '../../src/protocol/constants.js';
import type { RawEntry } from '../../src/protocol/messages.js';
import {
  routeConf,
  type GatewayRequest,
  type GatewaySimulator,
  type GatewayUpstreamResponse,
  type HttpReqCallResult,
  type HttpReqCallSuccess,
  type HttpRespCallSuccess,
  type RouteConf,
} from '../support/gateway.js';
import { delay, entryPairs, EVENT_WAIT_MS, expectFailure, expectOk, startTestRunner, until, type TestRunner } from './harness.js';

/** The pool fixtures (source tree; this file runs from .build/test/e2e/). */
const POOL_PLUGINS = fileURLToPath(new URL('../../../test/fixtures/pool-plugins/', import.meta.url));

type Pairs = Array<[string, string | null]>;

function start(t: TestContext, options: Partial<StartOptions> = {}): Promise<TestRunner> {
  return startTestRunner(t, { pluginPaths: [POOL_PLUGINS], threads: 2, ...options });
}

/** Call ids unique across the file (fixtures key files by call id). */
let lastId = 5000;
const nextId = (): number => ++lastId;

const text = (b: Uint8Array | null | undefined): string | null => (b === null || b === undefined ? null : Buffer.from(b).toString('utf8'));

function isThreadHeader(name: string): boolean {
  return name.toLowerCase().startsWith('x-thread');
}

/** Header entries without the `x-thread*` ones, and those as a record (names lower-cased). */
function splitThreads(entries: readonly RawEntry[] | null): { rest: Pairs; threads: Record<string, string | null> } {
  const pairs = entryPairs(entries);
  return {
    rest: pairs.filter(([n]) => !isThreadHeader(n)),
    threads: Object.fromEntries(pairs.filter(([n]) => isThreadHeader(n)).map(([n, v]) => [n.toLowerCase(), v])),
  };
}

function rounds(result: { extraInfo: HttpReqCallSuccess['extraInfo'] }): Array<[string, string | null, string | null]> {
  return result.extraInfo.map((r) => [r.query, r.name ?? null, r.result === null ? null : r.result.toString('utf8')]);
}

/** Everything the gateway gets back for a request call, minus the thread echoes (and the call id). */
function reqShape(r: HttpReqCallSuccess): unknown {
  return {
    action: r.action,
    stop: r.stop && { status: r.stop.status, headers: splitThreads(r.stop.headers).rest, body: text(r.stop.body) },
    rewrite: r.rewrite && {
      path: text(r.rewrite.path),
      headers: entryPairs(r.rewrite.headers),
      args: entryPairs(r.rewrite.args),
      respHeaders: splitThreads(r.rewrite.respHeaders).rest,
      body: text(r.rewrite.body),
    },
    extraInfo: rounds(r),
  };
}

function reqThreads(r: HttpReqCallSuccess): Record<string, string | null> {
  return splitThreads(r.stop?.headers ?? r.rewrite?.respHeaders ?? null).threads;
}

function respShape(r: HttpRespCallSuccess): unknown {
  return {
    status: r.reply.status,
    headers: splitThreads(r.reply.headers).rest,
    body: text(r.reply.body),
    client: {
      status: r.clientResponse.status,
      headers: r.clientResponse.headers.filter(([n]) => !isThreadHeader(n)),
      body: text(r.clientResponse.body),
    },
    extraInfo: rounds(r),
    respBodyReads: r.respBodyReads,
  };
}

function respThreads(r: HttpRespCallSuccess): Record<string, string | null> {
  return splitThreads(r.reply.headers).threads;
}

/** A header of a Stop or of a Rewrite's response headers. */
function respHeader(r: HttpReqCallSuccess, name: string): string | null {
  const entries = entryPairs(r.stop?.headers ?? r.rewrite?.respHeaders ?? null);
  return entries.find(([n]) => n.toLowerCase() === name)?.[1] ?? null;
}

function threadOf(r: HttpReqCallSuccess): number {
  const value = respHeader(r, 'x-thread');
  assert.notEqual(value, null, 'the reply carries x-thread');
  return Number(value);
}

function expectServiceUnavailable(result: HttpReqCallResult, what: string): void {
  const failure = expectFailure(result, what);
  assert.equal(failure.errCode, ErrCode.ServiceUnavailable, `${what}: ${failure.error}`);
}

/** n calls at once, each on its own connection (the simulator opens one per concurrent call). */
function concurrently<T>(n: number, call: (i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => call(i)));
}

/** Thread ids of the `worker thread ready` lines: every thread the pool started, first or replacing one. */
function readyThreads(r: TestRunner): number[] {
  return r.logs.filter((l) => l.msg === 'worker thread ready').map((l) => l.threadId as number);
}

/**
 * Waits until the pool has its full count of threads again, none of them in `gone`. A replacement
 * imports the plugins before it takes calls, which on a busy machine can outlast a short call
 * deadline: a test that counted only the old thread's exit sent calls into that gap.
 */
async function replaced(r: TestRunner, gone: ReadonlySet<number>): Promise<void> {
  const want = r.runner.poolStats!.threads;
  await until(() => new Set(readyThreads(r).filter((id) => !gone.has(id))).size >= want, EVENT_WAIT_MS, `${want} threads other than ${[...gone].join(', ')} to be ready`);
}

/** Log lines saying a call passed its deadline (the runner's or the pool's). */
function deadlineLines(r: TestRunner): string[] {
  return r.logs.filter((l) => /deadline/.test(l.msg)).map((l) => l.msg);
}

/** The `threadId` a fixture wrote to `file`, or null while it is not (fully) written. */
function readThread(file: string): number | null {
  if (!existsSync(file)) return null;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { threadId: number }).threadId;
  } catch {
    return null;
  }
}

function threadIn(file: string): number {
  const id = readThread(file);
  assert.notEqual(id, null, `${file} holds a thread id`);
  return id!;
}

/** Where pp-sleep with `dir` records the thread of call `id`. */
const sleepFile = (dir: string, id: number): string => join(dir, `sleep-${id}.json`);

/** A latch name for pp-sleep, unique in this process (BroadcastChannel names are per process). */
let latches = 0;
const newLatch = (): string => `pool-test-latch-${process.pid}-${++latches}`;

/** Lets every pp-sleep call waiting on `name` answer. */
function release(name: string): void {
  const channel = new BroadcastChannel(name);
  channel.postMessage('release');
  channel.close();
}

/** A promise with a flag telling whether it has settled yet. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const p = promise.finally(() => (done = true));
  return { promise: p, settled: () => done };
}

// ---- a scripted chain, spread over threads or all inline ------------------------------------------

type Where = 'inline' | 'pool';

const CHAIN_REQUEST: GatewayRequest = {
  method: 'POST',
  path: '/orig',
  headers: [
    ['host', 'h.example'],
    ['x-in', 'in'],
    ['x-keep', 'kept'],
  ],
  args: [
    ['q', '1'],
    ['del', 'x'],
    ['keep', 'k'],
  ],
  body: 'request body',
  vars: { route_id: 'route-7' },
};

type Ending = 'stop' | 'rewrite' | 'stop-early';

/**
 * a -> b -> c -> d, each reading what the one before set: a sets x-a, b copies it to x-b, c to x-c,
 * d to x-d; args, path, response headers and the body change on the way; b asks for a variable and
 * c for the request body (ExtraInfo); d stops or rewrites ('stop-early': b stops, c and d never run).
 */
function chainRoute(places: readonly [Where, Where, Where, Where], ending: Ending): RouteConf {
  const name = (w: Where) => `pp-ops-${w}`;
  const d =
    ending === 'stop'
      ? [['copyHeader', 'x-c', 'x-d', '+D'], ['thread'], ['stopEcho', 201, 'x-d']]
      : [['copyHeader', 'x-c', 'x-d', '+D'], ['setBody', 'new body'], ['deleteHeader', 'x-in'], ['addRespHeader', 'x-resp', 'd'], ['thread']];
  const b =
    ending === 'stop-early'
      ? [['copyHeader', 'x-a', 'x-b', '+B'], ['thread'], ['stopEcho', 403, 'x-b']]
      : [['copyHeader', 'x-a', 'x-b', '+B'], ['deleteArg', 'del'], ['addRespHeader', 'x-resp', 'b'], ['var', 'route_id'], ['thread']];
  return routeConf(`route#chain#${places.join('-')}#${ending}`, [
    [name(places[0]), { label: 'a', req: [['setHeader', 'x-a', 'A'], ['copyHeader', 'x-in', 'x-a2', '+a'], ['setArg', 'q', 'qa'], ['setRespHeader', 'x-resp', 'a'], ['thread']] }],
    [name(places[1]), { label: 'b', req: b }],
    [name(places[2]), { label: 'c', req: [['copyHeader', 'x-b', 'x-c', '+C'], ['setPath', '/new'], ['body'], ['setArg', 'q', ['c1', 'c2']], ['thread']] }],
    [name(places[3]), { label: 'd', req: d }],
  ]);
}

const ALL_INLINE = ['inline', 'inline', 'inline', 'inline'] as const;
const MIXED = ['inline', 'pool', 'inline', 'pool'] as const;
const ENDINGS: readonly Ending[] = ['stop', 'rewrite', 'stop-early'];

/** What each ending must produce (checked on the all-inline run, so the comparison means something). */
function checkChainResult(ending: Ending, r: HttpReqCallSuccess): void {
  if (ending === 'stop') {
    assert.equal(r.action, 'stop');
    assert.equal(r.clientResponse?.status, 201);
    assert.equal(r.clientResponse?.body?.toString(), 'stopped:A+B+C+D');
    const headers = r.clientResponse!.headers.filter(([n]) => !isThreadHeader(n));
    assert.deepEqual(headers, [
      ['x-resp', 'a'],
      ['x-resp', 'b'],
      ['x-stop', 'A+B+C+D'],
    ]);
  } else if (ending === 'rewrite') {
    assert.equal(r.action, 'rewrite');
    const up = r.upstreamRequest!;
    assert.equal(up.path, '/new');
    assert.deepEqual(up.args, { keep: ['k'], q: ['c1', 'c2'] });
    assert.deepEqual(up.headers['x-d'], ['A+B+C+D']);
    assert.deepEqual(up.headers['x-a2'], ['in+a']);
    assert.deepEqual(up.headers['x-var-route_id'], ['route-7']);
    assert.deepEqual(up.headers['x-body'], ['request body']);
    assert.equal(up.headers['x-in'], undefined);
    assert.deepEqual(up.headers['x-keep'], ['kept']);
    assert.equal(up.body?.toString(), 'new body');
    assert.deepEqual(
      up.respHeaderOps.filter((o) => !isThreadHeader(o.name)),
      [
        { op: 'set', name: 'x-resp', value: 'a' },
        { op: 'add', name: 'x-resp', value: 'b' },
        { op: 'add', name: 'x-resp', value: 'd' },
      ],
    );
  } else {
    assert.equal(r.action, 'stop');
    assert.equal(r.clientResponse?.status, 403);
    assert.equal(r.clientResponse?.body?.toString(), 'stopped:A+B');
    assert.deepEqual(Object.keys(reqThreads(r)).sort(), ['x-thread-a', 'x-thread-b'], 'c and d never ran');
    assert.deepEqual(rounds(r), [], 'no ExtraInfo: the plugins that ask never ran');
  }
}

describe('chains across threads', () => {
  test('a chain mixing inline and pool plugins answers exactly like the same chain all inline', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    for (const ending of ENDINGS) {
      const id = nextId();
      const inline = expectOk(await gw.httpReqCall(chainRoute(ALL_INLINE, ending), CHAIN_REQUEST, { id }), `all inline, ${ending}`);
      checkChainResult(ending, inline);
      const mixed = expectOk(await gw.httpReqCall(chainRoute(MIXED, ending), CHAIN_REQUEST, { id }), `mixed, ${ending}`);
      assert.equal(mixed.reply.id, id);
      assert.deepEqual(reqShape(mixed), reqShape(inline), `ending ${ending}: the mixed chain differs from the all-inline one`);
      // Where each plugin really ran: a and c on the main thread, b and d on worker threads.
      const threads = reqThreads(mixed);
      assert.equal(threads['x-thread-a'], '0', 'a is inline');
      assert.ok(Number(threads['x-thread-b']) > 0, `b ran on a worker thread (threadId ${threads['x-thread-b']})`);
      if (ending !== 'stop-early') {
        assert.equal(threads['x-thread-c'], '0', 'c is inline');
        assert.ok(Number(threads['x-thread-d']) > 0, `d ran on a worker thread (threadId ${threads['x-thread-d']})`);
      }
      assert.deepEqual(Object.values(reqThreads(inline)).filter((v) => v !== '0'), [], 'the all-inline chain never left the main thread');
    }
    assert.ok(r.runner.poolStats!.calls >= 5, `pool segments were handed over (${r.runner.poolStats!.calls})`);
  });

  test('many mixed-chain calls at once (batched hand-offs) each get their own exact answer', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    const expected = expectOk(await gw.httpReqCall(chainRoute(ALL_INLINE, 'rewrite'), CHAIN_REQUEST));
    const route = chainRoute(MIXED, 'rewrite');
    await gw.prepareConf(route);
    const batchesBefore = r.runner.poolStats!.batches;
    const results = await concurrently(24, (i) =>
      gw.httpReqCall(route, { ...CHAIN_REQUEST, body: `request body`, vars: { route_id: `route-${i}` } }),
    );
    const workers = new Set<string | null>();
    results.forEach((res, i) => {
      const ok = expectOk(res, `call ${i}`);
      const want = structuredClone(reqShape(expected)) as { rewrite: { headers: Pairs }; extraInfo: unknown[][] };
      want.rewrite.headers = want.rewrite.headers.map(([n, v]) => [n, n === 'x-var-route_id' ? `route-${i}` : v]);
      want.extraInfo = want.extraInfo.map((e) => (e[1] === 'route_id' ? [e[0], e[1], `route-${i}`] : e));
      assert.deepEqual(reqShape(ok), want, `call ${i}`);
      workers.add(reqThreads(ok)['x-thread-b']);
    });
    const stats = r.runner.poolStats!;
    // 48 pool segments (b and d of 24 calls): batching hands several over per task.
    assert.ok(stats.batches - batchesBefore < 48, `${stats.batches - batchesBefore} batches for 48 segments`);
    assert.ok(![...workers].includes('0'));
  });

  const CALLS_PER_CONNECTION = 64;
  test('sustained load on 8 connections: every reply is the right one for its call (shared buffers are never shared by two batches)', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    // Pool-only chains, so every reply frame is encoded in a worker and travels back through the
    // batch's shared buffer; each call carries its own value, echoed in the reply.
    const reqRoute = routeConf('route#load#req', [['pp-ops-pool', { label: 'l', req: [['copyHeader', 'x-n', 'x-echo', '!'], ['setRespHeader', 'x-r', 'ok']] }]]);
    const respRoute = routeConf('route#load#resp', [['pp-ops-pool', { label: 'l', resp: [['copyHeader', 'X-N', 'X-Echo', '!']] }]]);
    await Promise.all([gw.prepareConf(reqRoute), gw.prepareConf(respRoute)]);
    const problems: string[] = [];
    let calls = 0;
    // A count, not a time: the same calls on a quiet or a busy machine (the overlap this looks for
    // needs many batches in flight at once, which 8 connections give whatever the speed).
    await concurrently(8, async (c) => {
      for (let i = 0; i < CALLS_PER_CONNECTION; i++) {
        // Same-sized payloads: two batches written into one buffer would overlap exactly.
        const n = `c${c}-${String(i).padStart(6, '0')}`;
        calls++;
        if (i % 4 === 3) {
          const res = await gw.httpRespCall(respRoute, { status: 200, headers: [['X-N', n]], body: 'b' });
          if (!res.ok) problems.push(`resp ${n}: ${res.error}`);
          else if (res.clientResponse.headers.find(([h]) => h === 'x-echo')?.[1] !== `${n}!`) problems.push(`resp ${n}: got ${JSON.stringify(res.clientResponse.headers)}`);
        } else {
          let res: HttpReqCallResult;
          try {
            res = await gw.httpReqCall(reqRoute, { headers: [['x-n', n]] });
          } catch (err) {
            problems.push(`req ${n}: undecodable reply: ${(err as Error).message}`);
            continue;
          }
          if (!res.ok) problems.push(`req ${n}: ${res.error}`);
          else if (res.upstreamRequest?.headers['x-echo']?.[0] !== `${n}!`) problems.push(`req ${n}: got ${JSON.stringify(res.upstreamRequest?.headers['x-echo'])}`);
        }
        if (problems.length > 20) return;
      }
    });
    assert.deepEqual(problems.slice(0, 5), [], `${problems.length} wrong or failed replies of ${calls} calls`);
    assert.equal(calls, 8 * CALLS_PER_CONNECTION);
  });

  test('the response phase through the pool: readBody in a worker, full header set kept', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    const upstream: GatewayUpstreamResponse = {
      status: 200,
      headers: [
        ['Content-Type', 'text/plain'],
        ['Content-Length', '5'],
        ['X-Remove', 'r'],
        ['Set-Cookie', 'c=1'],
        ['Connection', 'keep-alive'],
        ['X-Up', 'u'],
      ],
      body: 'hello',
    };
    const chain = (b: Where) =>
      routeConf(`route#resp#${b}`, [
        ['pp-ops-inline', { label: 'a', resp: [['setHeader', 'X-A', '1'], ['thread']] }],
        [
          `pp-ops-${b}`,
          { label: 'b', resp: [['copyHeader', 'X-A', 'X-B', '+b'], ['rewriteBody', 'pool:'], ['setStatus', 203], ['deleteHeader', 'X-Remove'], ['addHeader', 'Set-Cookie', 'c=2'], ['thread']] },
        ],
        ['pp-ops-inline', { label: 'c', resp: [['copyHeader', 'X-B', 'X-C', '+c'], ['thread']] }],
      ]);
    const id = nextId();
    const inline = expectOk(await gw.httpRespCall(chain('inline'), upstream, {}, { id }), 'all inline');
    const pooled = expectOk(await gw.httpRespCall(chain('pool'), upstream, {}, { id }), 'with a pool plugin');
    assert.equal(pooled.clientResponse.status, 203);
    assert.equal(pooled.clientResponse.body?.toString(), 'pool:HELLO');
    assert.equal(pooled.respBodyReads, 1);
    // DECISIONS 7: the full header set, untouched upstream headers included, hop-by-hop and the
    // stale content-length left out.
    const names = pooled.clientResponse.headers.map(([n]) => n);
    for (const kept of ['content-type', 'x-up', 'x-a', 'x-b', 'x-c', 'x-body-seen']) assert.ok(names.includes(kept), `${kept} in ${names.join(', ')}`);
    for (const gone of ['content-length', 'connection', 'x-remove']) assert.ok(!names.includes(gone), `${gone} not in ${names.join(', ')}`);
    assert.deepEqual(
      pooled.clientResponse.headers.filter(([n]) => n === 'set-cookie'),
      [
        ['set-cookie', 'c=1'],
        ['set-cookie', 'c=2'],
      ],
    );
    assert.deepEqual(pooled.clientResponse.headers.find(([n]) => n === 'x-c'), ['x-c', '1+b+c']);
    assert.deepEqual(respShape(pooled), respShape(inline), 'the pool placement changes nothing the gateway sees');
    const threads = respThreads(pooled);
    assert.equal(threads['x-thread-a'], '0');
    assert.ok(Number(threads['x-thread-b']) > 0, `b ran on a worker (${threads['x-thread-b']})`);
    assert.equal(threads['x-thread-c'], '0');

    // A pool plugin last in the chain: the worker encodes the reply itself.
    const last = routeConf('route#resp#last', [['pp-ops-pool', { label: 'z', resp: [['rewriteBody', 'last:'], ['thread']] }]]);
    const lastResult = expectOk(await gw.httpRespCall(last, upstream));
    assert.equal(lastResult.clientResponse.body?.toString(), 'last:HELLO');
    assert.ok(Number(respThreads(lastResult)['x-thread-z']) > 0);
    assert.ok(lastResult.clientResponse.headers.some(([n, v]) => n === 'content-type' && v === 'text/plain'));
  });

  test('response phase: a body read inline is handed to the pool segment, not asked for twice', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    const route = routeConf('route#resp#peek', [
      ['pp-ops-inline', { label: 'a', resp: [['peekBody']] }],
      ['pp-ops-pool', { label: 'b', resp: [['rewriteBody', 'pool:'], ['thread']] }],
    ]);
    const result = expectOk(await gw.httpRespCall(route, { status: 200, headers: [['Content-Type', 'text/plain']], body: 'hello' }));
    assert.deepEqual(rounds(result), [['respBody', null, 'hello']], 'one RespBody query for the call');
    assert.equal(result.respBodyReads, 1, 'a second RespBody query drains the body the client gets');
    assert.equal(result.clientResponse.body?.toString(), 'pool:HELLO');
    assert.deepEqual(result.clientResponse.headers.find(([n]) => n === 'x-body-seen'), ['x-body-seen', 'hello']);
  });
});

describe('ExtraInfo from a worker', () => {
  test('lazy var() and body() inside a pool plugin are relayed on the call\'s own connection', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    const route = routeConf('route#lazy', [['pp-ops-pool', { label: 'w', req: [['var', 'route_id'], ['var', 'nope'], ['body'], ['thread']] }]]);
    await gw.prepareConf(route);
    // Several at once, each with its own answers: every relayed query must reach its own call.
    const results = await concurrently(8, (i) => gw.httpReqCall(route, { body: `body-${i}`, vars: { route_id: `r-${i}` } }));
    results.forEach((res, i) => {
      const ok = expectOk(res, `call ${i}`);
      assert.deepEqual(rounds(ok), [
        ['var', 'route_id', `r-${i}`],
        ['var', 'nope', null],
        ['reqBody', null, `body-${i}`],
      ]);
      assert.deepEqual(ok.upstreamRequest!.headers['x-var-route_id'], [`r-${i}`]);
      assert.deepEqual(ok.upstreamRequest!.headers['x-var-nope'], ['(absent)']);
      assert.deepEqual(ok.upstreamRequest!.headers['x-body'], [`body-${i}`]);
      assert.ok(Number(reqThreads(ok)['x-thread-w']) > 0);
    });
    assert.equal(gw.stats.pipelinedQueries, 0, 'one query at a time on each connection');

    // Response phase: var() and readBody() from a worker.
    const resp = routeConf('route#lazy#resp', [['pp-ops-pool', { label: 'w', resp: [['var', 'route_id'], ['rewriteBody', 'lazy:'], ['thread']] }]]);
    const out = expectOk(await gw.httpRespCall(resp, { status: 200, headers: [['Content-Type', 'text/plain']], body: 'abc' }, { vars: { route_id: 'rr' } }));
    assert.deepEqual(rounds(out), [
      ['var', 'route_id', 'rr'],
      ['respBody', null, 'abc'],
    ]);
    assert.equal(out.clientResponse.body?.toString(), 'lazy:ABC');
    assert.deepEqual(out.clientResponse.headers.find(([n]) => n === 'x-var-route_id'), ['x-var-route_id', 'rr']);
    assert.ok(Number(respThreads(out)['x-thread-w']) > 0);
  });

  test('declared needs are fetched before the pool segment and not asked again (request phase)', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    const route = routeConf('route#needs', [['pp-needs', '']]);
    const result = expectOk(await gw.httpReqCall(route, { body: 'payload', vars: { route_id: 'r-9', lazy_marker: 'm' } }));
    // The filter asks lazy_marker first: had the declared ones not been prefetched, it would lead.
    assert.deepEqual(rounds(result), [
      ['var', 'route_id', 'r-9'],
      ['reqBody', null, 'payload'],
      ['var', 'lazy_marker', 'm'],
    ]);
    const up = result.upstreamRequest!;
    assert.deepEqual(up.headers['x-lazy'], ['m']);
    assert.deepEqual(up.headers['x-route'], ['r-9']);
    assert.deepEqual(up.headers['x-body'], ['payload']);
    assert.ok(threadOf(result) > 0);
  });

  test('declared needs in the response phase: the prefetched body reaches the worker (one RespBody query)', async (t) => {
    const r = await start(t);
    const gw = r.gateway({ shuffle: false });
    const route = routeConf('route#needs#resp', [['pp-needs', '']]);
    const result = expectOk(
      await gw.httpRespCall(route, { status: 200, headers: [['Content-Type', 'text/plain']], body: 'hello' }, { vars: { route_id: 'r-9', lazy_marker: 'm' } }),
    );
    assert.deepEqual(rounds(result), [
      ['var', 'route_id', 'r-9'],
      ['respBody', null, 'hello'],
      ['var', 'lazy_marker', 'm'],
    ]);
    assert.equal(result.respBodyReads, 1);
    assert.equal(result.clientResponse.body?.toString(), 'needs:HELLO');
    assert.deepEqual(result.clientResponse.headers.find(([n]) => n === 'x-route'), ['x-route', 'r-9']);
    assert.ok(Number(result.clientResponse.headers.find(([n]) => n === 'x-thread')?.[1]) > 0);
  });
});

describe('worker faults', () => {
  test('a worker thread killed mid-call: its calls answer SERVICE_UNAVAILABLE, the others and later calls succeed', async (t) => {
    // A deadline far away: a call failed by the thread's death leaves no deadline line behind.
    const r = await start(t, { callTimeoutMs: 60_000 });
    const dir = mkdtempSync(join(tmpdir(), 'anr-pool-kill-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const gw = r.gateway();
    const latch = newLatch();
    const killer = routeConf('route#kill', [['pp-exit', { mode: 'exit', file: join(dir, 'killed.json') }]]);
    const holder = routeConf('route#hold', [['pp-sleep', { latch, dir }]]);
    const inline = routeConf('route#inline', [['pp-ops-inline', { label: 'i', req: [['setHeader', 'x-i', '1'], ['thread']] }]]);
    await Promise.all([gw.prepareConf(killer), gw.prepareConf(holder), gw.prepareConf(inline)]);
    const restartsBefore = r.runner.poolStats!.workerRestarts;

    // Calls held in flight (until the latch is released) on both threads when one of them dies: sent
    // in bursts until both threads hold some, each burst once the calls before it have started.
    const heldIds: number[] = [];
    const held: Array<Promise<HttpReqCallResult>> = [];
    const holding = async (): Promise<Set<number>> => {
      await until(() => heldIds.every((id) => readThread(sleepFile(dir, id)) !== null), EVENT_WAIT_MS, 'the held calls to start');
      return new Set(heldIds.map((id) => readThread(sleepFile(dir, id))!));
    };
    for (let burst = 0; burst < 10 && (await holding()).size < 2; burst++) {
      for (let i = 0; i < 6; i++) {
        const id = nextId();
        heldIds.push(id);
        held.push(gw.httpReqCall(holder, {}, { id }));
      }
    }
    assert.equal((await holding()).size, 2, `${heldIds.length} concurrent calls never spread over both threads`);
    t.diagnostic(`${heldIds.length} calls held over both threads`);
    // ...and calls on the main thread all along.
    let stopInline = false;
    const inlineLoops = concurrently(3, async () => {
      const out: HttpReqCallResult[] = [];
      while (!stopInline) out.push(await gw.httpReqCall(inline, {}));
      return out;
    });

    expectServiceUnavailable(await gw.httpReqCall(killer, {}), 'the call whose thread died');
    const deadThread = threadIn(join(dir, 'killed.json'));
    assert.ok(deadThread > 0);
    // The dead thread's held calls failed with it (the same channel close); the others are still held.
    release(latch);
    let survivors = 0;
    for (const [i, result] of (await Promise.all(held)).entries()) {
      const ranOn = threadIn(sleepFile(dir, heldIds[i]));
      if (ranOn === deadThread) {
        expectServiceUnavailable(result, `held call ${i} on the killed thread`);
      } else {
        const ok = expectOk(result, `held call ${i} on thread ${ranOn} (the killed one was ${deadThread})`);
        assert.equal(threadOf(ok), ranOn);
        survivors++;
      }
    }
    assert.ok(survivors > 0, 'calls held on the thread that survived answer normally');
    stopInline = true;
    const inlineResults = (await inlineLoops).flat();
    assert.ok(inlineResults.length >= 3);
    for (const res of inlineResults) expectOk(res, 'inline call during the worker death');
    assert.deepEqual(deadlineLines(r), [], 'answered when the thread died, not at a deadline');

    // The thread is replaced: later pool calls succeed, on the surviving thread or the new one.
    await until(() => r.runner.poolStats!.workerRestarts > restartsBefore, EVENT_WAIT_MS, 'the restart count to grow');
    await replaced(r, new Set([deadThread]));
    const quick = routeConf('route#quick', [['pp-sleep', { ms: 0 }]]);
    const seen = new Set<number>();
    for (let round = 0; round < 5; round++) {
      for (const res of await concurrently(4, () => gw.httpReqCall(quick, {}))) seen.add(threadOf(expectOk(res, 'a later pool call')));
    }
    assert.ok(!seen.has(deadThread), 'nothing runs on the dead thread');
  });

  for (const mode of ['throw', 'exit-sync'] as const) {
    test(`a worker thread dying (${mode === 'throw' ? 'uncaught error from a timer' : 'process.exit() inside the filter'}): SERVICE_UNAVAILABLE, thread replaced`, async (t) => {
      const r = await start(t, { callTimeoutMs: 60_000 });
      const dir = mkdtempSync(join(tmpdir(), 'anr-pool-kill-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const gw = r.gateway();
      const restartsBefore = r.runner.poolStats!.workerRestarts;
      const result = await gw.httpReqCall(routeConf(`route#kill#${mode}`, [['pp-exit', { mode, delayMs: 20, file: join(dir, 'k.json') }]]), {});
      expectServiceUnavailable(result, 'the dying call');
      assert.deepEqual(deadlineLines(r), [], 'answered when the thread died, not at the deadline');
      await until(() => r.runner.poolStats!.workerRestarts > restartsBefore, EVENT_WAIT_MS, 'the restart count to grow');
      const deadThread = threadIn(join(dir, 'k.json'));
      await replaced(r, new Set([deadThread]));
      const quick = routeConf('route#quick', [['pp-sleep', { ms: 0 }]]);
      for (const res of await concurrently(6, () => gw.httpReqCall(quick, {}))) {
        assert.notEqual(threadOf(expectOk(res, 'a later pool call')), deadThread);
      }
    });
  }

  test('plugins busy-looping past the deadline: SERVICE_UNAVAILABLE, both threads replaced, later calls succeed', async (t) => {
    // The loops run far past the deadline (a stuck thread is terminated there, so their length costs
    // nothing); the deadline leaves later calls room on a busy machine.
    const r = await start(t, { callTimeoutMs: 1000 });
    const dir = mkdtempSync(join(tmpdir(), 'anr-pool-busy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const gw = r.gateway();
    const quick = routeConf('route#quick', [['pp-sleep', { ms: 0 }]]);
    const restartsBefore = r.runner.poolStats!.workerRestarts;
    // One loops inside the task, the other after the task has returned (a timer tick later). The
    // second is sent once the first is stuck, so the pool hands it to the other thread.
    const syncLoop = routeConf('route#busy#sync', [['pp-busy', { ms: 60_000, dir }]]);
    const laterLoop = routeConf('route#busy#tick', [['pp-busy', { ms: 60_000, afterTick: true, dir }]]);
    await Promise.all([gw.prepareConf(syncLoop), gw.prepareConf(laterLoop)]);
    const [syncId, laterId] = [nextId(), nextId()];
    const a = gw.httpReqCall(syncLoop, {}, { id: syncId });
    await until(() => readThread(join(dir, `busy-${syncId}.json`)) !== null, EVENT_WAIT_MS, 'the first loop to start');
    const b = gw.httpReqCall(laterLoop, {}, { id: laterId });
    // Not the loop's own answer (Stop 200 once it ends): the deadline's.
    expectServiceUnavailable(await a, 'busy loop inside the task');
    expectServiceUnavailable(await b, 'busy loop after the task returned');
    const stuck = new Set([syncId, laterId].map((id) => threadIn(join(dir, `busy-${id}.json`))));
    assert.equal(stuck.size, 2, 'one loop on each thread');
    const replacedLines = r.logs.filter((l) => l.msg.includes('passed its deadline on a worker thread')).map((l) => l.threadId as number);
    assert.deepEqual(new Set(replacedLines), stuck, 'both stuck threads are replaced');
    await until(() => r.runner.poolStats!.workerRestarts >= restartsBefore + 2, EVENT_WAIT_MS, 'both stuck threads to exit');
    await replaced(r, stuck);
    // Later calls: answered (a stuck thread would make them miss the deadline), only on new threads.
    for (let round = 0; round < 5; round++) {
      for (const res of await concurrently(4, () => gw.httpReqCall(quick, {}))) {
        const thread = threadOf(expectOk(res, 'a later pool call'));
        assert.ok(!stuck.has(thread), `thread ${thread} was one of the stuck ones`);
      }
    }
  });

  test("a busy loop past the deadline in a pool plugin with onError 'deny' answers Stop 503", async (t) => {
    const r = await start(t, { callTimeoutMs: 300 });
    const gw = r.gateway();
    const restartsBefore = r.runner.poolStats!.workerRestarts;
    const result = expectOk(await gw.httpReqCall(routeConf('route#busy#deny', [['pp-busy-deny', { ms: 3000 }]]), {}), 'deny plugin past its deadline');
    assert.equal(result.action, 'stop', 'DECISIONS 2: a deny plugin passing its deadline is a Stop 503, not SERVICE_UNAVAILABLE');
    assert.equal(result.clientResponse?.status, 503);
    await until(() => r.runner.poolStats!.workerRestarts > restartsBefore, EVENT_WAIT_MS, 'the stuck thread to be replaced');
  });
});

describe('overload', () => {
  test('past maxQueue, calls are shed at once: SERVICE_UNAVAILABLE, or Stop 503 for a deny chain', async (t) => {
    const r = await start(t, { maxQueue: 4, callTimeoutMs: 60_000 });
    const dir = mkdtempSync(join(tmpdir(), 'anr-pool-shed-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const gw = r.gateway();
    const inline = routeConf('route#inline', [['pp-ops-inline', { label: 'i', req: [['setHeader', 'x-i', '1']] }]]);
    await gw.prepareConf(inline);
    let shedSoFar = r.runner.poolStats!.shed;
    assert.equal(shedSoFar, 0);
    for (const deny of [false, true]) {
      // The admitted calls are held in flight until the latch is released, so "at once" is an
      // order, not a time: every shed call is answered while the admitted ones are still held.
      const latch = newLatch();
      const held = ['pp-sleep', { latch, dir }] as const;
      const route = deny ? routeConf('route#held#deny', [['pp-noop-deny', ''], held]) : routeConf('route#held', [held]);
      await gw.prepareConf(route);
      const ids = Array.from({ length: 12 }, () => nextId());
      const calls = ids.map((id) => tracked(gw.httpReqCall(route, {}, { id })));
      await until(() => calls.filter((c) => c.settled()).length >= 8, EVENT_WAIT_MS, 'the shed calls to be answered');
      // While the pool is full, inline chains are unaffected.
      for (let i = 0; i < 5; i++) expectOk(await gw.httpReqCall(inline, {}), 'an inline call during the overload');
      const admittedIds = ids.filter((_, i) => !calls[i].settled());
      assert.equal(admittedIds.length, 4, 'maxQueue calls admitted, and still held');
      await until(() => admittedIds.every((id) => readThread(sleepFile(dir, id)) !== null), EVENT_WAIT_MS, 'the admitted calls to start');
      release(latch);
      const results = await Promise.all(calls.map((c) => c.promise));
      for (const [i, result] of results.entries()) {
        if (admittedIds.includes(ids[i])) {
          const ok = expectOk(result, 'an admitted call');
          assert.equal(ok.action, 'rewrite');
          assert.equal(respHeader(ok, 'x-slept'), 'latch');
        } else if (deny) {
          const stop = expectOk(result, 'a shed call of a deny chain');
          assert.equal(stop.action, 'stop');
          assert.equal(stop.clientResponse?.status, 503);
          assert.match(stop.clientResponse!.body!.toString(), /overloaded/);
        } else {
          expectServiceUnavailable(result, 'a shed call');
        }
      }
      assert.equal(r.runner.poolStats!.shed - shedSoFar, 8, 'poolStats.shed counts the shed calls');
      shedSoFar = r.runner.poolStats!.shed;
    }
    // Nothing else broke: the pool takes calls again.
    const quick = routeConf('route#quick', [['pp-sleep', { ms: 0 }]]);
    for (const res of await concurrently(4, () => gw.httpReqCall(quick, {}))) expectOk(res, 'a call after the overload');
    assert.equal(r.runner.poolStats!.shed, 16);
    assert.equal(r.runner.poolStats!.workerRestarts, 0);
  });
});

describe('token expiry reaches the workers', () => {
  /** Probes until every thread in `threads` reports no live conf of label `a` (or throws). */
  async function probeUntilDropped(gw: GatewaySimulator, probe: RouteConf, threads: ReadonlySet<number>): Promise<void> {
    const clean = new Set<number>();
    const last = new Map<number, string>();
    const deadline = performance.now() + EVENT_WAIT_MS;
    while (performance.now() < deadline) {
      for (const res of await concurrently(4, () => gw.httpReqCall(probe, {}))) {
        const ok = expectOk(res, 'a probe');
        const thread = threadOf(ok);
        const live = respHeader(ok, 'x-live-a');
        const parsed = respHeader(ok, 'x-parsed-a');
        last.set(thread, `live ${live}, parsed ${parsed}`);
        if (threads.has(thread) && Number(parsed) >= 1 && live === '0') clean.add(thread);
      }
      if ([...threads].every((th) => clean.has(th))) return;
    }
    assert.fail(`a worker kept the expired conf: ${JSON.stringify(Object.fromEntries(last))} (threads that parsed it: ${[...threads].join(', ')})`);
  }

  test('maxTokens 1: an evicted token\'s parsed conf is dropped in every worker; re-preparing parses again', async (t) => {
    const r = await start(t, { maxTokens: 1 });
    const gw = r.gateway();
    const a = routeConf('route#a', [['pp-confs', { label: 'a' }]]);
    const probe = routeConf('route#probe', [['pp-confs', { label: 'p', probe: ['a'] }]]);
    await gw.prepareConf(a);
    const parsedBy = new Map<number, number>();
    for (let round = 0; round < 5 && parsedBy.size < 2; round++) {
      for (const res of await concurrently(6, () => gw.httpReqCall(a, {}))) {
        const ok = expectOk(res);
        parsedBy.set(threadOf(ok), Number(respHeader(ok, 'x-parsed')));
      }
    }
    assert.ok(parsedBy.size >= 1 && ![...parsedBy.keys()].includes(0));
    for (const [thread, count] of parsedBy) assert.equal(count, 1, `thread ${thread} parsed conf a once for all its calls`);
    // Preparing the probe evicts token a on the main thread (maxTokens 1)...
    const oldToken = gw.tokenFor(a)!;
    await gw.prepareConf(probe);
    assert.equal(r.runner.tokens, 1);
    // ...and every worker that parsed it lets it go.
    await probeUntilDropped(gw, probe, new Set(parsedBy.keys()));
    // The gateway's next call with the old token: CONF_TOKEN_NOT_FOUND, flush, re-prepare, retry;
    // the new token's conf is parsed again in the worker.
    const again = expectOk(await gw.httpReqCall(a, {}));
    assert.equal(again.attempts, 2);
    assert.notEqual(again.confToken, oldToken);
    const thread = threadOf(again);
    assert.equal(Number(respHeader(again, 'x-parsed')), (parsedBy.get(thread) ?? 0) + 1, `thread ${thread} parsed conf a again`);
  });

  test('conf lifetime: a token expired on the main thread is dropped in the workers too', async (t) => {
    // confExpireSeconds 0.25: entries live 300 ms after their last use.
    const r = await start(t, { confExpireSeconds: 0.25 });
    const gw = r.gateway();
    const a = routeConf('route#a', [['pp-confs', { label: 'a' }]]);
    const parsedBy = new Set<number>();
    for (const res of await concurrently(6, () => gw.httpReqCall(a, {}))) parsedBy.add(threadOf(expectOk(res)));
    // Time passing is what expires a token (300 ms after its last use, on the runner's clock): a
    // wait that only has to be long enough, never short enough.
    await delay(400);
    // The next use of token a finds it expired (CONF_TOKEN_NOT_FOUND, retried with a new token).
    const retried = expectOk(await gw.httpReqCall(a, {}));
    assert.equal(retried.attempts, 2);
    const retriedOn = threadOf(retried);
    const probe = routeConf('route#probe', [['pp-confs', { label: 'p', probe: ['a'] }]]);
    // Every worker lets the expired token's conf go; only the thread that ran the retried call
    // holds one conf of label a: the new token's.
    const threads = new Set([...parsedBy, retriedOn]);
    const want = (thread: number) => (thread === retriedOn ? '1' : '0');
    const lastSeen = new Map<number, string>();
    const done = new Set<number>();
    const deadline = performance.now() + EVENT_WAIT_MS;
    while (performance.now() < deadline && ![...threads].every((th) => done.has(th))) {
      for (const res of await concurrently(4, () => gw.httpReqCall(probe, {}))) {
        const ok = expectOk(res, 'a probe');
        const thread = threadOf(ok);
        const live = respHeader(ok, 'x-live-a');
        lastSeen.set(thread, `live ${live} of ${respHeader(ok, 'x-parsed-a')} parsed`);
        if (live === want(thread)) done.add(thread);
      }
    }
    assert.ok(
      [...threads].every((th) => done.has(th)),
      `a worker kept the expired conf: ${JSON.stringify(Object.fromEntries(lastSeen))} (the retried call ran on ${retriedOn})`,
    );
  });
});

describe('reload', () => {
  const moduleText = (version: string) => `import { threadId } from 'node:worker_threads';
const filter = (label) => (_conf, _req, res) => {
  res.addRespHeader('x-version', '${version}');
  res.setRespHeader('x-thread-' + label, String(threadId));
};
export default [
  { name: 'rl-inline', placement: 'inline', requestFilter: filter('inline') },
  { name: 'rl-pool', placement: 'pool', requestFilter: filter('pool') },
];
`;

  test('reload() under load: no call fails, and the changed module answers inline and in the pool', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'anr-pool-reload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'reload.mjs');
    writeFileSync(file, moduleText('v1'));
    const r = await start(t, { pluginPaths: [dir] });
    const gw = r.gateway();
    const route = routeConf('route#reload', [
      ['rl-inline', ''],
      ['rl-pool', ''],
    ]);
    await gw.prepareConf(route);
    const versionsOf = (res: HttpReqCallSuccess) =>
      entryPairs(res.rewrite?.respHeaders ?? null)
        .filter(([n]) => n === 'x-version')
        .map(([, v]) => v);

    // 8 connections send continuously from before the reload until each has sent 3 calls after
    // it resolved: counted in calls, not in milliseconds, so a slow machine only takes longer.
    let reloaded = false;
    let completed = 0;
    const loops = concurrently(8, async () => {
      const out: Array<{ result: HttpReqCallResult; sentAfterReload: boolean }> = [];
      for (let sentAfter = 0; sentAfter < 3; ) {
        const sentAfterReload = reloaded;
        if (sentAfterReload) sentAfter++;
        try {
          out.push({ result: await gw.httpReqCall(route, {}), sentAfterReload });
        } catch (err) {
          assert.fail(`a call sent ${sentAfterReload ? 'after' : 'before or during'} the reload got an undecodable reply: ${(err as Error).message}`);
        }
        completed++;
      }
      return out;
    });
    await until(() => completed >= 8 * 5, EVENT_WAIT_MS, 'calls before the reload');
    writeFileSync(file, moduleText('v2'));
    const oldStats = r.runner.poolStats!;
    try {
      await r.runner.reload();
    } finally {
      reloaded = true;
    }
    const results = (await loops).flat();
    let before = 0;
    let after = 0;
    for (const { result, sentAfterReload } of results) {
      const ok = expectOk(result, 'a call during the reload');
      const versions = versionsOf(ok);
      assert.equal(versions.length, 2);
      assert.equal(versions[0], versions[1], 'one call runs one generation of the plugins, inline and pooled');
      assert.ok(['v1', 'v2'].includes(versions[0]!));
      const threads = reqThreads(ok);
      assert.equal(threads['x-thread-inline'], '0');
      assert.ok(Number(threads['x-thread-pool']) > 0);
      if (sentAfterReload) {
        assert.equal(versions[0], 'v2', 'a call sent after reload() resolved gets the new code');
        after++;
      } else if (versions[0] === 'v1') before++;
    }
    assert.ok(before > 0 && after > 0, `calls before (${before}) and after (${after}) the reload`);
    assert.equal(gw.stats.errorReplies, 0);
    assert.notEqual(r.runner.poolStats, oldStats, 'a new pool serves after the reload');
    // And once more, on its own: the new value inline and in the pool.
    const fresh = expectOk(await gw.httpReqCall(route, {}));
    assert.deepEqual(versionsOf(fresh), ['v2', 'v2']);
    assert.ok(Number(reqThreads(fresh)['x-thread-pool']) > 0);
  });
});

describe('auto placement', () => {
  test('a light auto plugin moves inline after a few hundred calls; a heavy one (PBKDF2) stays on the pool', async (t) => {
    const r = await start(t);
    const gw = r.gateway();
    const where = (name: string) => r.runner.placements().find((p) => p.name === name)!;
    assert.equal(where('pp-auto-light').mode, 'auto');
    assert.equal(where('pp-auto-light').where, 'pool', 'auto starts on the pool');
    assert.equal(where('pp-auto-heavy').where, 'pool');
    assert.equal(where('pp-ops-inline').where, 'inline');
    assert.equal(where('pp-ops-pool').where, 'pool');

    const light = routeConf('route#light', [['pp-auto-light', '']]);
    const heavy = routeConf('route#heavy', [['pp-auto-heavy', '']]);
    await Promise.all([gw.prepareConf(light), gw.prepareConf(heavy)]);
    const first = expectOk(await gw.httpReqCall(light, {}));
    assert.ok(threadOf(first) > 0, 'the first calls run on a worker');
    let sent = 1;
    while (where('pp-auto-light').where !== 'inline' && sent < 3000) {
      for (const res of await concurrently(8, () => gw.httpReqCall(light, {}))) expectOk(res);
      sent += 8;
    }
    const snap = where('pp-auto-light');
    assert.equal(snap.where, 'inline', `still on the pool after ${sent} calls (average ${snap.averageCpuUs} us)`);
    assert.ok(sent >= 200, 'not before a full window');
    assert.equal(snap.moves, 1);
    assert.ok(snap.averageCpuUs !== null && snap.averageCpuUs < 15);
    // Now it runs on the main thread.
    for (const res of await concurrently(8, () => gw.httpReqCall(light, {}))) assert.equal(threadOf(expectOk(res)), 0);

    for (let i = 0; i < 50; i++) {
      for (const res of await concurrently(8, () => gw.httpReqCall(heavy, {}))) expectOk(res);
    }
    const heavySnap = where('pp-auto-heavy');
    assert.equal(heavySnap.where, 'pool', `average ${heavySnap.averageCpuUs} us`);
    assert.ok(heavySnap.averageCpuUs !== null && heavySnap.averageCpuUs > 60, `measured ${heavySnap.averageCpuUs} us`);
    assert.equal(heavySnap.moves, 0);
    const last = expectOk(await gw.httpReqCall(heavy, {}));
    assert.ok(threadOf(last) > 0);
    // The light one stayed inline while measured on the main thread.
    assert.equal(where('pp-auto-light').where, 'inline');
  });
});

describe('threads: 0', () => {
  test('no pool: pool-placed plugins run inline, and everything still works', async (t) => {
    const r = await start(t, { threads: 0 });
    assert.equal(r.runner.poolStats, null);
    assert.ok(r.runner.placements().every((p) => p.where === 'inline'), 'every plugin inline');
    const gw = r.gateway({ shuffle: false });
    for (const ending of ENDINGS) {
      const id = nextId();
      const inline = expectOk(await gw.httpReqCall(chainRoute(ALL_INLINE, ending), CHAIN_REQUEST, { id }));
      checkChainResult(ending, inline);
      const mixed = expectOk(await gw.httpReqCall(chainRoute(MIXED, ending), CHAIN_REQUEST, { id }));
      assert.deepEqual(reqShape(mixed), reqShape(inline));
      assert.ok(Object.values(reqThreads(mixed)).every((v) => v === '0'), 'all on the main thread');
    }
    const needs = expectOk(await gw.httpReqCall(routeConf('route#needs', [['pp-needs', '']]), { body: 'b', vars: { route_id: 'r' } }));
    assert.deepEqual(needs.upstreamRequest!.headers['x-body'], ['b']);
    assert.equal(threadOf(needs), 0);
    const resp = expectOk(
      await gw.httpRespCall(routeConf('route#resp', [['pp-ops-pool', { label: 'z', resp: [['rewriteBody', 'x:'], ['thread']] }]]), { status: 200, body: 'abc' }),
    );
    assert.equal(resp.clientResponse.body?.toString(), 'x:ABC');
    assert.equal(respThreads(resp)['x-thread-z'], '0');
    const slept = expectOk(await gw.httpReqCall(routeConf('route#sleep', [['pp-sleep', { ms: 5 }]]), {}));
    assert.equal(threadOf(slept), 0);
    await r.runner.reload();
    expectOk(await gw.httpReqCall(chainRoute(MIXED, 'rewrite'), CHAIN_REQUEST));
  });
});
