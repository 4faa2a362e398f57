/**
 * CPU cost of the copy a pool thread makes of each call's payload before the plugins see it
 * (issue 8: views decoded in place in the batch buffer read the next batch's requests). In process,
 * CPU time rather than wall time, so it holds on a shared 2-core machine where the socket-level
 * pool scenarios (`apisix-node-runner bench --scenario noop-pool`) vary by more than this costs.
 *
 *   npm run build:test && node .build/bench/pool-copy.js [calls-per-round]
 *
 * Per call: the payload handed over (a view into the shared buffer as before the fix, the copy the
 * worker makes now, or a copy into an ArrayBuffer per call, the alternative not taken), then what a
 * light plugin costs on top: the lazy decode and one header read. Requests are the bench load
 * generator's (src/bench/workload.ts), 30 to a batch buffer. Rounds interleaved, medians.
 */
import { encodeHttpReqCallReq, readHttpReqCallReq } from '../src/protocol/codec.js';
import { HEADER_BYTES } from '../src/protocol/constants.js';
import { makeRequest, prng } from '../src/bench/workload.js';
import { copyOut } from '../src/workers/bytes.js';

const CALLS = Number(process.argv[2] ?? 300_000);
const ROUNDS = 15;
const PER_BATCH = 30;

const rand = prng(1);
const slab = Buffer.from(new SharedArrayBuffer(64 * 1024));
const calls: Array<[offset: number, length: number]> = [];
let used = 0;
for (let i = 0; i < PER_BATCH; i++) {
  const frame = encodeHttpReqCallReq({ id: i + 1, confToken: 1, ...makeRequest(rand, i, 0) });
  const payload = frame.subarray(HEADER_BYTES);
  slab.set(payload, used);
  calls.push([used, payload.byteLength]);
  used += payload.byteLength;
}

const VARIANTS: Record<string, (offset: number, length: number) => Buffer> = {
  'view into the shared buffer (before)': (offset, length) => Buffer.from(slab.buffer, offset, length),
  'copyOut (now)': (offset, length) => copyOut(slab, offset, length),
  'copy into an ArrayBuffer per call': (offset, length) => {
    const own = Buffer.from(new ArrayBuffer(length));
    slab.copy(own, 0, offset, offset + length);
    return own;
  },
};

/** CPU ns per call. Every 1000th call is kept until the round ends, as a plugin may keep one. */
function round(handOver: (offset: number, length: number) => Buffer): number {
  const kept: unknown[] = [];
  const start = process.cpuUsage();
  for (let c = 0; c < CALLS; c++) {
    const [offset, length] = calls[c % PER_BATCH];
    const req = readHttpReqCallReq(handOver(offset, length));
    if (req.headers === null || req.headers[0].value === null) throw new Error('the request lost its headers');
    if (c % 1000 === 0) kept.push(req);
  }
  const { user, system } = process.cpuUsage(start);
  return ((user + system) * 1000) / CALLS;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

const names = Object.keys(VARIANTS);
const results = new Map<string, number[]>(names.map((name) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  // The order alternates so that neither end of a round is always the same variant.
  for (const name of r % 2 === 0 ? names : [...names].reverse()) results.get(name)!.push(round(VARIANTS[name]));
}
const base = median(results.get(names[0])!);
console.log(`node ${process.version}, payloads of ${Math.round(used / PER_BATCH)} bytes on average, ${CALLS} calls x ${ROUNDS} rounds, median round`);
console.log('CPU per call: hand-over + lazy decode + one header read');
for (const name of names) {
  const ns = median(results.get(name)!);
  console.log(`  ${name.padEnd(38)} ${ns.toFixed(0).padStart(6)} ns  (${ns >= base ? '+' : ''}${(ns - base).toFixed(0)} ns)`);
}
