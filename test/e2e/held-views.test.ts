/**
 * Views a plugin keeps after its call was answered (issue 8, item 1). A plugin may hold on to what
 * the runner handed it (a background audit log, a late `await`, a cache keyed by the raw bytes);
 * those views must keep reading their own call's bytes, whatever the runner does with its buffers
 * for later calls. Pool calls used to be decoded in place from a shared slab that the next batch
 * overwrote: a held header then read another request's value.
 *
 * Real worker threads, a real socket, the gateway simulator (half its frames split in pieces, so
 * payloads coalesced from several socket reads are covered too). The fixture
 * (test/fixtures/pool-plugins/hold.mjs) keeps views from 1,000 calls of both phases, then 1,000
 * later calls with other values go through; a last call has the plugin read every kept view again.
 * Each step waits for the replies of the one before: no timing is involved. Before the fix, the
 * cases whose keeper ran on the pool found thousands of changed views; the inline ones found none
 * (socket reads and coalesced frames are never reused), and guard that it stays so.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { routeConf, type GatewaySimulator, type RouteConf } from '../support/gateway.js';
import { entryPairs, expectOk, startTestRunner } from './harness.js';

const POOL_PLUGINS = new URL('../../../test/fixtures/pool-plugins/', import.meta.url);

interface Expected {
  header: string;
  arg: string;
  path: string;
  body: string;
  srcIp: number[];
  respHeader: string;
  respBody: string;
}

const { expected } = (await import(new URL('hold.mjs', POOL_PLUGINS).href)) as { expected: (id: number) => Expected };

const CALLS = 1000;
/** Enough that batches carry several calls, at several offsets in the shared buffer. */
const IN_FLIGHT = 16;

/** Runs `call` for every id, `IN_FLIGHT` at a time; resolves when every reply is in. */
async function callAll(ids: readonly number[], call: (id: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < ids.length) await call(ids[next++]);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

/** One call with call `id`'s values: even ids in the request phase, odd ones in the response phase. */
async function send(gateways: readonly GatewaySimulator[], route: RouteConf, id: number): Promise<Array<[string, string | null]>> {
  const e = expected(id);
  const gw = gateways[(id >>> 1) % gateways.length];
  const request = { path: e.path, headers: [['x-hold', e.header] as const], args: [['a', e.arg] as const], srcIp: e.srcIp.join('.'), body: e.body };
  if (id % 2 === 0) {
    const r = expectOk(await gw.httpReqCall(route, request, { id }), `request call ${id}`);
    return entryPairs(r.rewrite?.respHeaders ?? null);
  }
  const upstream = { status: 200, headers: [['x-hold', e.respHeader] as const], body: e.respBody };
  const r = expectOk(await gw.httpRespCall(route, upstream, request, { id }), `response call ${id}`);
  return entryPairs(r.reply.headers);
}

const ids = (from: number): number[] => Array.from({ length: CALLS }, (_, i) => from + i);

type Where = 'pool' | 'inline';

/**
 * Where the keeping plugin runs, and what runs before it: a plugin elsewhere that reads the body
 * first hands the call over mid-chain, so the keeper's body (and, in the response phase, its
 * headers) come from the state the other thread's segment left.
 */
const CASES: ReadonlyArray<{ name: string; keeper: Where; after: Where | null }> = [
  { name: 'pool', keeper: 'pool', after: null },
  { name: 'inline', keeper: 'inline', after: null },
  { name: 'inline after a pool segment', keeper: 'inline', after: 'pool' },
  { name: 'pool after an inline segment', keeper: 'pool', after: 'inline' },
];

for (const { name, keeper, after } of CASES) {
  test(`${name}: views kept from 1,000 calls read their own call's bytes after 1,000 later calls`, async (t) => {
    // One thread: every pool call runs where the check runs, and the later calls reuse the buffers
    // the kept ones came in.
    const r = await startTestRunner(t, { pluginPaths: [fileURLToPath(POOL_PLUGINS)], threads: 1 });
    const gateways = [r.gateway({ shuffle: false }), r.gateway({ shuffle: false, splitFrames: true })];
    const plugin = `pp-hold-${keeper}`;
    // Kept under the case's name: the main thread's module instance serves every runner of this file.
    const tag = name;
    const before = after === null ? [] : [[`pp-ops-${after}`, { label: 'before', req: [['body']], resp: [['peekBody']] }] as const];
    const keep = routeConf(`route#hold#${tag}#keep`, [...before, [plugin, { keep: tag }]]);
    const pass = routeConf(`route#hold#${tag}#pass`, [[plugin, {}]]);
    const check = routeConf(`route#hold#${tag}#check`, [[plugin, { check: tag }]]);

    await callAll(ids(1_000_000), async (id) => {
      await send(gateways, keep, id);
    });
    // Same shapes and lengths, other bytes: a buffer reused for these overwrites a kept view.
    await callAll(ids(2_000_000), async (id) => {
      const echo = (await send(gateways, pass, id)).find(([n]) => n.toLowerCase() === 'x-echo')?.[1];
      assert.equal(echo, id % 2 === 0 ? expected(id).header : expected(id).respHeader, `call ${id} read its own header`);
    });

    const result = expectOk(await gateways[0].httpReqCall(check, {}), 'check call');
    const report = JSON.parse(result.clientResponse!.body!.toString()) as { held: number; bad: string[]; badCount: number; threadId: number };
    assert.equal(report.held, CALLS, 'every call kept its views on the thread the check ran on');
    if (keeper === 'pool') assert.notEqual(report.threadId, 0, 'the pool plugin ran on a worker thread');
    else assert.equal(report.threadId, 0, 'the inline plugin ran on the main thread');
    assert.deepEqual(report.bad, [], `${report.badCount} kept views changed after their call`);
  });
}
