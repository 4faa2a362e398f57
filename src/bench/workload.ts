/**
 * Realistic gateway traffic, pre-encoded: the load generator sends frames built here and only
 * patches the call id and the conf token into a copy of a template per call, so that encoding does
 * not limit the request rate (at 150k calls/s the generator has under 7 us per call, all included).
 *
 * A request looks like what APISIX sends for an API call: a method, a path, a handful of query args
 * (one repeated, one flag without `=`), about a dozen lower-case headers of about 600 bytes in all
 * (user agent, cookies, a bearer token, trace ids, forwarding headers), and a source address that is
 * IPv4 for most calls and IPv6 for some (4 or 16 raw bytes, as `$binary_remote_addr`).
 */
import {
  encodeExtraInfoResp,
  encodeHttpReqCallReq,
  encodeHttpRespCallReq,
  encodePrepareConfReq,
} from '../protocol/codec.js';
import { HEADER_BYTES } from '../protocol/constants.js';
import type { OutEntry } from '../protocol/messages.js';
import { fieldPos, rootTable } from '../protocol/table-reader.js';
import type { Workload } from './types.js';

/** A deterministic PRNG (mulberry32): the same seed gives the same traffic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PATHS = [
  '/api/v1/users/{n}/orders',
  '/api/v1/products/{n}',
  '/api/v2/search',
  '/static/js/app.{n}.js',
  '/graphql',
  '/api/v1/carts/{n}/items',
  '/health',
  '/api/v1/payments/{n}/refunds',
];
const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'okhttp/4.12.0',
  'curl/8.5.0',
];
const LANGS = ['en-US,en;q=0.9', 'de-DE,de;q=0.9,en;q=0.8', 'fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7'];

function hex(rand: () => number, chars: number): string {
  let s = '';
  for (let i = 0; i < chars; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

function b64ish(rand: () => number, chars: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let s = '';
  for (let i = 0; i < chars; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

function ipv4(rand: () => number): Uint8Array {
  return Uint8Array.of(10, Math.floor(rand() * 256), Math.floor(rand() * 256), 1 + Math.floor(rand() * 254));
}

function ipv6(rand: () => number): Uint8Array {
  const ip = new Uint8Array(16);
  ip.set([0x20, 0x01, 0x0d, 0xb8]);
  for (let i = 8; i < 16; i++) ip[i] = Math.floor(rand() * 256);
  return ip;
}

export interface RequestShape {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  srcIp: Uint8Array;
  args: OutEntry[];
  headers: OutEntry[];
}

/** One realistic request; `withBody` makes it a POST/PUT with a content type and length. */
export function makeRequest(rand: () => number, index: number, withBody: number): RequestShape {
  const n = String(1000 + Math.floor(rand() * 90000));
  const path = PATHS[index % PATHS.length].replace('{n}', n);
  const method = withBody > 0 ? (rand() < 0.8 ? 'POST' : 'PUT') : rand() < 0.9 ? 'GET' : 'DELETE';
  const srcIp = index % 5 === 4 ? ipv6(rand) : ipv4(rand);
  const args: OutEntry[] = [
    { name: 'page', value: String(1 + Math.floor(rand() * 20)) },
    { name: 'limit', value: '50' },
    { name: 'sort', value: rand() < 0.5 ? 'created_at' : '-updated_at' },
    { name: 'fields', value: 'id' },
    { name: 'fields', value: 'name' },
    { name: 'debug', value: null },
  ];
  const headers: OutEntry[] = [
    { name: 'host', value: 'api.example.com' },
    { name: 'user-agent', value: USER_AGENTS[index % USER_AGENTS.length] },
    { name: 'accept', value: 'application/json, text/plain, */*' },
    { name: 'accept-encoding', value: 'gzip, deflate, br' },
    { name: 'accept-language', value: LANGS[index % LANGS.length] },
    { name: 'authorization', value: `Bearer ${b64ish(rand, 36)}.${b64ish(rand, 48)}` },
    { name: 'cookie', value: `session=${hex(rand, 32)}; theme=dark; _ga=GA1.2.${n}.${n}` },
    { name: 'x-request-id', value: `${hex(rand, 8)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 12)}` },
    { name: 'traceparent', value: `00-${hex(rand, 32)}-${hex(rand, 16)}-01` },
    { name: 'x-forwarded-for', value: `203.0.113.${1 + (index % 250)}, 198.51.100.7` },
    { name: 'x-forwarded-proto', value: 'https' },
    { name: 'x-debug', value: '0' },
  ];
  if (withBody > 0) {
    headers.push({ name: 'content-type', value: 'application/json' });
    headers.push({ name: 'content-length', value: String(withBody) });
  }
  return { method, path, srcIp, args, headers };
}

/** Total name + value bytes of some entries (the "about 600 bytes of headers"). */
export function entryBytes(entries: readonly OutEntry[]): number {
  let total = 0;
  for (const e of entries) total += Buffer.byteLength(e.name as string) + (e.value === null ? 0 : Buffer.byteLength(e.value as string));
  return total;
}

/** The upstream response headers of an HTTPRespCall, in the upstream's case (PROTOCOL §3.4). */
function responseHeaders(rand: () => number, bodyBytes: number): OutEntry[] {
  return [
    { name: 'Content-Type', value: 'application/json; charset=utf-8' },
    { name: 'Content-Length', value: String(bodyBytes) },
    { name: 'Date', value: 'Tue, 01 Apr 2025 12:00:00 GMT' },
    { name: 'Server', value: 'upstream/1.25' },
    { name: 'Cache-Control', value: 'private, max-age=0' },
    { name: 'ETag', value: `W/"${hex(rand, 16)}"` },
    { name: 'Vary', value: 'Accept-Encoding' },
    { name: 'X-Upstream-Time', value: String(Math.floor(rand() * 50)) },
    { name: 'Set-Cookie', value: `sid=${hex(rand, 24)}; Path=/; HttpOnly` },
    { name: 'Connection', value: 'keep-alive' },
  ];
}

/** Deterministic body bytes: JSON-looking text containing "hello world" (the resp-body filter's target). */
export function makeBody(bytes: number): Buffer {
  const unit = Buffer.from('{"id":12345,"msg":"hello world","tags":["a","b","c"],"ok":true}\n');
  const body = Buffer.allocUnsafe(bytes);
  for (let pos = 0; pos < bytes; pos += unit.length) unit.copy(body, pos, 0, Math.min(unit.length, bytes - pos));
  return body;
}

/** A frame to send with the id and conf token patched in per call. */
export interface CallTemplate {
  frame: Buffer;
  /** Byte offsets (in the frame) of the uint32 `id` and `conf_token` fields. */
  idPos: number;
  tokenPos: number;
}

/** Sentinels, non-zero so the builder writes both fields (a default value would be omitted). */
const SENTINEL_ID = 0x7ead_beef;
const SENTINEL_TOKEN = 0x7eed_f00d;

function template(frame: Buffer, idSlot: number, tokenSlot: number): CallTemplate {
  const payload = frame.subarray(HEADER_BYTES);
  const table = rootTable(payload);
  const idPos = fieldPos(payload, table, idSlot);
  const tokenPos = fieldPos(payload, table, tokenSlot);
  if (idPos === 0 || tokenPos === 0) throw new Error('template without id or conf_token field');
  const t = { frame, idPos: idPos + HEADER_BYTES, tokenPos: tokenPos + HEADER_BYTES };
  if (t.frame.readUInt32LE(t.idPos) !== SENTINEL_ID || t.frame.readUInt32LE(t.tokenPos) !== SENTINEL_TOKEN) {
    throw new Error('template field offsets do not hold the sentinels');
  }
  return t;
}

/** Everything a generator connection sends, encoded once per process. */
export interface EncodedWorkload {
  calls: CallTemplate[];
  prepareConf: Buffer;
  /** ExtraInfo answers: per variable name, and for unknown names. */
  varFrames: Map<string, Buffer>;
  absentFrame: Buffer;
  /** Empty result: what the gateway answers a second RespBody query (PROTOCOL §3.3). */
  emptyFrame: Buffer;
  reqBodyFrame: Buffer;
  respBodyFrame: Buffer;
  /** Mean bytes of header names + values per request template. */
  meanHeaderBytes: number;
}

export function encodeWorkload(w: Workload): EncodedWorkload {
  const rand = prng(w.seed);
  const calls: CallTemplate[] = [];
  let headerBytes = 0;
  const variants = Math.max(1, w.variants);
  for (let i = 0; i < variants; i++) {
    if (w.phase === 'req') {
      const r = makeRequest(rand, i, w.reqBodyBytes);
      headerBytes += entryBytes(r.headers);
      const frame = encodeHttpReqCallReq({
        id: SENTINEL_ID,
        srcIp: r.srcIp,
        method: r.method,
        path: r.path,
        args: r.args,
        headers: r.headers,
        confToken: SENTINEL_TOKEN,
      });
      calls.push(template(frame, 0, 6));
    } else {
      const headers = responseHeaders(rand, w.respBodyBytes);
      headerBytes += entryBytes(headers);
      const frame = encodeHttpRespCallReq({ id: SENTINEL_ID, status: 200, headers, confToken: SENTINEL_TOKEN });
      calls.push(template(frame, 0, 3));
    }
  }
  const varFrames = new Map<string, Buffer>();
  for (const [name, value] of Object.entries(w.vars)) varFrames.set(name, encodeExtraInfoResp({ result: value }));
  const absentFrame = encodeExtraInfoResp({ result: null });
  return {
    calls,
    prepareConf: encodePrepareConfReq({ conf: w.conf, key: w.confKey }),
    varFrames,
    absentFrame,
    emptyFrame: encodeExtraInfoResp({ result: new Uint8Array(0) }),
    reqBodyFrame: w.reqBodyBytes > 0 ? encodeExtraInfoResp({ result: makeBody(w.reqBodyBytes) }) : absentFrame,
    respBodyFrame: w.respBodyBytes > 0 ? encodeExtraInfoResp({ result: makeBody(w.respBodyBytes) }) : absentFrame,
    meanHeaderBytes: Math.round(headerBytes / variants),
  };
}
