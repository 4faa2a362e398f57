/**
 * CPU cost of one call through the call handler (decode, conf lookup, chain, encode), in process,
 * without sockets: the part of a call's cost this project controls, measured alone so it is
 * stable on a shared 2-core machine. Socket-level throughput and latency are the bench harness's.
 *
 *   npm run build:test && node .build/bench/hot-path.js [calls-per-round]
 *
 * Each scenario runs with metrics off and on (--metrics-addr), rounds interleaved.
 */
import { pino } from 'pino';
import { builtinPlugins } from '../src/plugins/index.js';
import { decodePrepareConfResp, encodeHttpReqCallReq, encodePrepareConfReq } from '../src/protocol/codec.js';
import { RpcType } from '../src/protocol/constants.js';
import { CallHandler, type CallChannel } from '../src/workers/call-handler.js';
import { ConfCache } from '../src/workers/conf-cache.js';
import { Deadlines } from '../src/workers/deadlines.js';
import { RunnerMetrics } from '../src/metrics/runner-metrics.js';
import { PlacementTable } from '../src/workers/placement.js';
import { PluginRegistry } from '../src/workers/plugin-registry.js';

const CALLS = Number(process.argv[2] ?? 300_000);
const ROUNDS = 5;

/** About 600 bytes of headers, like a browser or API client request through a proxy. */
const HEADERS = Object.entries({
  host: 'example.com',
  'user-agent': 'curl/8.5.0',
  accept: '*/*',
  'x-request-id': '0123456789abcdef0123456789abcdef',
  'content-type': 'application/json',
  'accept-encoding': 'gzip, deflate, br',
  'accept-language': 'en-US,en;q=0.9',
  cookie: 'session=abcdef0123456789; theme=dark',
  'x-forwarded-for': '10.0.0.1, 10.0.0.2',
  'x-forwarded-proto': 'https',
  'cache-control': 'no-cache',
  authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc',
}).map(([name, value]) => ({ name, value }));

const SCENARIOS: Array<[label: string, conf: Array<{ name: string; value: string }>]> = [
  ['no plugin (empty conf)', []],
  ['say (Stop)', [{ name: 'say', value: '{"body":"hello"}' }]],
  ['header-rewrite (set + remove)', [{ name: 'header-rewrite', value: '{"set":{"x-a":"1"},"remove":["cookie"]}' }]],
  ['header-rewrite + say', [
    { name: 'header-rewrite', value: '{"set":{"x-a":"1"}}' },
    { name: 'say', value: '{"body":"hello"}' },
  ]],
];

const registry = new PluginRegistry();
registry.add(builtinPlugins, 'builtin');
const cache = new ConfCache({ ttlMs: 3_600_000, maxTokens: 1000 });
const deadlines = new Deadlines(56_000);
const logger = pino({ level: 'silent' });
// No pool: this measures the inline path, where light plugins run.
const placement = new PlacementTable({ pool: false, logger });
const plugins = { registry, placement, pool: null, generation: 0 };
const handler = new CallHandler({ plugins, cache, deadlines, skipUnknownPlugins: false, logger });
const channel: CallChannel = {
  ask: () => Promise.reject(new Error('no ExtraInfo in this benchmark')),
  onAbort: null,
};
// The same calls with metrics on, stamped as a connection does (begin, handle, end).
const metrics = new RunnerMetrics();
const metered = new CallHandler({ plugins, cache, deadlines, skipUnknownPlugins: false, logger, metrics });
const sample = metrics.sample();
const meteredChannel: CallChannel = { ...channel, sample };

function syncReply(type: number, payload: Buffer, withMetrics = false): Buffer {
  if (withMetrics) sample.begin(type);
  const reply = (withMetrics ? metered : handler).handle(type, payload, withMetrics ? meteredChannel : channel);
  if (!(reply instanceof Uint8Array)) throw new Error('expected a synchronous reply');
  if (withMetrics) sample.end(reply);
  return reply;
}

console.log(`node ${process.version}, ${CALLS} calls x ${ROUNDS} rounds, median round`);
for (const [label, conf] of SCENARIOS) {
  const prepared = syncReply(RpcType.PrepareConf, encodePrepareConfReq({ conf, key: null }).subarray(4));
  const { confToken } = decodePrepareConfResp(prepared.subarray(4));
  const payload = encodeHttpReqCallReq({
    id: 1,
    srcIp: Buffer.from([10, 0, 0, 1]),
    method: 0,
    path: '/api/v1/items',
    args: [{ name: 'page', value: '2' }],
    headers: HEADERS,
    confToken,
  }).subarray(4);
  // Off and on interleaved round by round, so drift on a shared machine hits both alike.
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [withMetrics, rounds] of [[false, off], [true, on]] as const) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < CALLS; i++) syncReply(RpcType.HttpReqCall, payload, withMetrics);
      rounds.push(Number(process.hrtime.bigint() - start) / CALLS);
    }
  }
  const median = (rounds: number[]): string => (rounds.sort((a, b) => a - b)[ROUNDS >> 1] / 1000).toFixed(2);
  console.log(`${label.padEnd(32)} ${median(off)} us/call, with metrics ${median(on)} us/call`);
}
cache.close();
deadlines.close();
