/**
 * A gateway simulator: plays the client side of the ext-plugin protocol the way APISIX's
 * `apisix/plugins/ext-plugin/init.lua` does (PROTOCOL.md §3, §4), so a runner can be tested over a
 * real Unix socket without an APISIX.
 *
 * What it reproduces, and where the gateway does it:
 * - one RPC per connection at a time; connections kept in a keepalive pool (`setkeepalive(180 s, 32)`,
 *   LIFO, the least recently used one closed when the pool is full) and closed after ANY failure:
 *   an error reply, a receive error or timeout, an unexpected reply type (`rpc_call`: `sock:close()`).
 *   An idle pooled connection that the runner closes, or that receives stray bytes, leaves the pool
 *   (nginx's keepalive read handler);
 * - the token lookup: a per-route cache keyed by the idempotent key. On a miss, the HTTP call's
 *   connection is connected FIRST, then the token is fetched on a SECOND connection while the first
 *   one sits idle (PROTOCOL §4.1), under one global "prepare_conf" lock with a re-check, then the
 *   call goes out on the first connection;
 * - `communicate()`: on "conf token not found" flush the whole token cache and retry the whole call
 *   (new PrepareConf, then the call), 3 attempts in total;
 * - the ExtraInfo loop: every type-3 frame is answered from the request's vars / request body /
 *   response body (an absent result for an unknown var or a missing body), strictly one answer per
 *   query; a second RespBody query in one call gets an EMPTY result and empties the body the client
 *   would get (the drained reader, PROTOCOL §3.3). An unknown info type fails the call;
 * - `pairs()` order: headers and args are grouped by name and the names shuffled per call; the values
 *   of a repeated name stay repeated entries in their relative order. Header names are lower-cased,
 *   the `host` entry carries `$upstream_host`, `src_ip` is `$binary_remote_addr` (4 or 16 bytes, or
 *   the text of a non-IP address such as `unix:`);
 * - call ids `(worker_id << 22) + counter`, wrapping at 2^22;
 * - what the gateway then does with the reply (Stop -> client response; Rewrite -> upstream request
 *   and response header operations; HTTPRespCall -> client response), so tests can assert on the
 *   effect rather than on the encoding.
 *
 * On top of that, for tests: frames can be written split at random points (seeded), any exact frame
 * bytes can be sent (`rawCall`, `replayLuaFrame` with the frames a real APISIX emits), and counters
 * say how many PrepareConfs, retries and connections it took.
 *
 * The simulator uses the project's codec to build and parse messages (that codec is checked against
 * the golden vectors on its own); the framing on this side is independent of the runner's decoder.
 */
import { readFileSync } from 'node:fs';
import { connect, isIPv4, isIPv6, type Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeErrResp,
  decodeExtraInfoReq,
  decodeHttpReqCallResp,
  decodeHttpRespCallResp,
  decodePrepareConfResp,
  encodeExtraInfoResp,
  encodeHttpReqCallReq,
  encodeHttpRespCallReq,
  encodePrepareConfReq,
} from '../../src/protocol/codec.js';
import { ErrCode, InfoType, METHODS, REWRITE_IGNORED_RESP_HEADERS, RpcType, type Method } from '../../src/protocol/constants.js';
import type {
  DecodedExtraInfoQuery,
  DecodedHttpReqCallResp,
  DecodedHttpRespCallResp,
  DecodedRewrite,
  DecodedStop,
  OutEntry,
  RawEntry,
} from '../../src/protocol/messages.js';
import { fieldPos, rootTable } from '../../src/protocol/table-reader.js';

// Tests run from .build/test/support/; the fixtures stay in the source tree.
export const LUA_FRAMES_DIR = fileURLToPath(new URL('../../../test/fixtures/vectors/gateway_lua/', import.meta.url));

const EMPTY = Buffer.alloc(0);
const HEADER_BYTES = 4;
/** `init.lua` send(): the 3-byte length field. */
const MAX_PAYLOAD_BYTES = 2 ** 24 - 1;
/** `generate_id()`: the per-worker counter wraps at 2^22. */
const ID_COUNTER_LIMIT = 2 ** 22;

/** Response headers `Rewrite.resp_headers` may not touch (`init.lua:72-83`). */
export const RESP_HEADER_BLACKLIST = REWRITE_IGNORED_RESP_HEADERS;

// ---- public shapes ---------------------------------------------------------------------------

export type Bytes = string | Uint8Array;

/** One route's ext-plugin configuration, as the gateway holds it. */
export interface RouteConf {
  /**
   * The idempotent key (`route#1#ext-plugin-pre-req#42`): sent in PrepareConf and used as the token
   * cache key. A changed conf must come with a changed key, as `conf_version` guarantees in APISIX.
   */
  readonly key: string;
  /** `ext-plugin-*.conf` in order; null for a plugin configured without `conf` (no vector sent). */
  readonly conf: ReadonlyArray<{ readonly name: string; readonly value: string }> | null;
}

/** The client request as nginx sees it when `ext-plugin-pre-req` / `-post-req` runs. */
export interface GatewayRequest {
  /** Method name or `A6.Method` value; default GET. A name outside the enum fails before sending (as the Lua error does). */
  readonly method?: Method | number | string;
  /** `$uri` (or the path part of `$upstream_uri`). Default `/`. */
  readonly path?: Bytes;
  /** Query args in request order; a null value is a flag arg (`?z`), `''` is `?z=`. */
  readonly args?: ReadonlyArray<readonly [string, Bytes | null]>;
  /** Request headers in request order; names are lower-cased as `ngx.req.get_headers()` does. */
  readonly headers?: ReadonlyArray<readonly [string, Bytes]>;
  /** `$upstream_host`, which replaces the value of the `host` entry. Default: the Host header itself. */
  readonly upstreamHost?: string;
  /** `$remote_addr`: IPv4/IPv6 text (sent as 4/16 bytes) or any other text/bytes sent as is. Default 127.0.0.1. */
  readonly srcIp?: Bytes;
  /** The request body (ExtraInfo ReqBody); null/absent: no body. */
  readonly body?: Bytes | null;
  /**
   * `ctx.var` for ExtraInfo Var. Derived by default: `remote_addr`, `request_method`, `uri`,
   * `arg_<name>` (first value), `http_<name>` (dashes as underscores, first value). Entries here win;
   * null removes a variable.
   */
  readonly vars?: Readonly<Record<string, Bytes | number | null>>;
}

/** The upstream response `ext-plugin-post-resp` got (lua-resty-http). */
export interface GatewayUpstreamResponse {
  readonly status: number;
  /** Header entries with the upstream's name case, repeated names repeated. */
  readonly headers?: ReadonlyArray<readonly [string, Bytes]>;
  /** The upstream body (ExtraInfo RespBody); null/absent: empty. */
  readonly body?: Bytes | null;
}

export interface CallOptions {
  /** The call id; default the gateway's `(workerId << 22) + counter`. */
  readonly id?: number;
  /**
   * Send these exact bytes (a whole frame, header included) as the answer to ExtraInfo query number
   * `index` (0-based) instead of the simulator's own; return undefined for the normal answer.
   */
  readonly extraInfoFrame?: (query: DecodedExtraInfoQuery | null, index: number) => Uint8Array | undefined;
}

/** One ExtraInfo round: what the runner asked and what the gateway answered. */
export interface ExtraInfoRound {
  readonly query: 'var' | 'reqBody' | 'respBody';
  /** The variable name, for `var`. */
  readonly name?: string;
  /** null: absent result (unknown variable, no body). */
  readonly result: Buffer | null;
}

/** Why a call failed, in the gateway's words (`init.lua`), plus where. */
export interface GatewayFailure {
  readonly ok: false;
  /**
   * `bad request`, `service unavailable`, `conf token not found`, `unknown err N` (an error reply);
   * `closed`, `timeout` (receive); `unexpected type N`; `unsupported info type: N`; `connect: ...`;
   * `lock: timeout`; `method X has no A6.Method value`; `empty payload` (the gateway's Lua reader
   * raises on a zero-length reply).
   */
  readonly error: string;
  /** The `A6.Err.Code` of an error reply, else null. */
  readonly errCode: number | null;
  readonly stage: 'connect' | 'prepareConf' | 'call';
}

interface CallTrace {
  /** Tries through `communicate()`: 1, or more after CONF_TOKEN_NOT_FOUND. */
  readonly attempts: number;
  /** ExtraInfo rounds of the last attempt, in order. */
  readonly extraInfo: readonly ExtraInfoRound[];
  /** Id of the connection the (last) call went out on, or -1 when none did. */
  readonly connectionId: number;
  /** The conf token the (last) call carried, or 0. */
  readonly confToken: number;
  /** The call id sent. */
  readonly id: number;
  /** The call frame of the (last) attempt, as written, or null when none was sent. */
  readonly sent: Buffer | null;
}

/** What the client gets back when the gateway answers it directly (Stop, or post-resp). */
export interface ClientResponse {
  readonly status: number;
  /** Final header set after the gateway's set-then-add, names lower-cased, in first-set order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** null: no body supplied by the reply (nginx may serve its own page). */
  readonly body: Buffer | null;
}

/** The request that goes upstream after a Rewrite (or unchanged after no action). */
export interface UpstreamRequest {
  /** Raw path the gateway escapes into `$upstream_uri` (UTF-8 decoded). */
  readonly path: string;
  readonly pathRewritten: boolean;
  /** Header name (lower-case) -> values, sorted by name: independent of entry order. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  /** `$upstream_host`. */
  readonly host: string | null;
  /** Arg name -> values (null = flag arg), sorted by name. */
  readonly args: Readonly<Record<string, ReadonlyArray<string | null>>>;
  readonly body: Buffer | null;
  /** Response header operations for the client response, after the blacklist (`resp_headers`). */
  readonly respHeaderOps: ReadonlyArray<{ readonly op: 'set' | 'add'; readonly name: string; readonly value: string | null }>;
}

export interface HttpReqCallSuccess extends CallTrace {
  readonly ok: true;
  readonly action: 'none' | 'stop' | 'rewrite';
  readonly reply: DecodedHttpReqCallResp;
  readonly stop: DecodedStop | null;
  readonly rewrite: DecodedRewrite | null;
  /** For a Stop: what the client gets. */
  readonly clientResponse: ClientResponse | null;
  /** For no action or a Rewrite: what goes upstream. */
  readonly upstreamRequest: UpstreamRequest | null;
}

export interface HttpRespCallSuccess extends CallTrace {
  readonly ok: true;
  readonly reply: DecodedHttpRespCallResp;
  /** What the client gets (reply headers replace the upstream's; an empty list keeps them minus the blacklist). */
  readonly clientResponse: ClientResponse;
  /** RespBody queries answered in this call. */
  readonly respBodyReads: number;
}

export type HttpReqCallResult = HttpReqCallSuccess | (GatewayFailure & CallTrace);
export type HttpRespCallResult = HttpRespCallSuccess | (GatewayFailure & CallTrace);

export interface RawCallOptions {
  /** Context for answering ExtraInfo queries. */
  readonly request?: GatewayRequest;
  readonly response?: GatewayUpstreamResponse;
  /** Answer ExtraInfo queries (true for types 2 and 4, as the gateway does only there). Default: by frame type. */
  readonly extraInfo?: boolean;
  readonly extraInfoFrame?: CallOptions['extraInfoFrame'];
  /** Use this connection (kept open whatever happens) instead of one from the pool. */
  readonly connection?: GatewayConnection;
}

export interface RawCallResult {
  readonly ok: boolean;
  /** The final frame (type != 3), when one arrived. */
  readonly reply: Frame | null;
  /** The failure, when `ok` is false (an error reply is a failure, with `reply` set). */
  readonly error: string | null;
  readonly errCode: number | null;
  readonly extraInfo: readonly ExtraInfoRound[];
  readonly connectionId: number;
}

export interface GatewayStats {
  connectionsOpened: number;
  connectionsClosed: number;
  /** PrepareConf frames sent. */
  prepareConfSent: number;
  /** HTTPReqCall / HTTPRespCall frames sent (one per attempt). */
  callsSent: number;
  /** Extra attempts made after CONF_TOKEN_NOT_FOUND. */
  retries: number;
  /** Token lookups answered from the cache. */
  tokenCacheHits: number;
  extraInfoAnswered: number;
  /** Error (type 0) replies received. */
  errorReplies: number;
  /** Idle pooled connections dropped because bytes arrived on them (a runner speaking out of turn). */
  strayDataOnIdle: number;
  /**
   * ExtraInfo queries that arrived while an earlier frame was still unanswered (the runner did not
   * wait for the answer before sending the next query or its reply). The gateway reads one frame at
   * a time, so this is tolerated there, but it is not the strict alternation of PROTOCOL §3.3.
   */
  pipelinedQueries: number;
}

export interface GatewaySimulatorOptions {
  /** The runner's socket path, without `unix:`. */
  readonly socketPath: string;
  /** Seed of the header/arg order and of the frame splits. Default: random (see `seed`). */
  readonly seed?: number;
  /** Shuffle header and arg names per call like Lua `pairs()`. Default true. */
  readonly shuffle?: boolean;
  /** Write every frame in pieces split at random points. Default false. */
  readonly splitFrames?: boolean;
  /** Per receive, like `settimeouts(1000, 60000, 60000)`. Default 60000. */
  readonly readTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Idle connections kept (`setkeepalive(…, 32)`). Default 32. */
  readonly poolSize?: number;
  /** `communicate()`: attempts in total. Default 3. */
  readonly maxAttempts?: number;
  /** resty.lock wait timeout for the global "prepare_conf" lock. Default 5000. */
  readonly lockTimeoutMs?: number;
  /** `ngx.worker.id()`: the high bits of call ids. Default 0. */
  readonly workerId?: number;
}

export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

/** A receive or send failure on a gateway connection, named like the cosocket errors. */
export class GatewayIoError extends Error {
  constructor(readonly reason: 'closed' | 'timeout') {
    super(reason);
    this.name = 'GatewayIoError';
  }
}

// ---- a seeded PRNG ---------------------------------------------------------------------------

/** mulberry32: small, fast, good enough to shuffle and split reproducibly. */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

// ---- one connection --------------------------------------------------------------------------

let nextConnectionId = 1;

/**
 * One cosocket to the runner: exact-length frame reads (`receive()` = `sock:receive(4)` then
 * `sock:receive(len)`), writes optionally split. Usable on its own for raw protocol tests.
 */
export class GatewayConnection {
  readonly id = nextConnectionId++;
  /** Calls completed on it. */
  calls = 0;
  /** Resolves once the socket has closed (either side). */
  readonly whenClosed: Promise<void>;
  /** Set while the connection sits in the pool: bytes arriving then are stray. */
  onStrayData: (() => void) | null = null;
  #socket: Socket;
  #buffer: Buffer = EMPTY;
  #frames: Frame[] = [];
  #waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | null } | null = null;
  #closed = false;
  #split: Prng | null;

  private constructor(socket: Socket, split: Prng | null) {
    this.#socket = socket;
    this.#split = split;
    this.whenClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {
      // 'close' follows; the pending receive fails there.
    });
    socket.on('close', () => {
      this.#closed = true;
      const waiter = this.#waiter;
      this.#waiter = null;
      if (waiter) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.reject(new GatewayIoError('closed'));
      }
    });
  }

  /** Connects to `path`; rejects with the connect error (ENOENT, ECONNREFUSED, timeout). */
  static open(path: string, options: { timeoutMs?: number; split?: Prng | null } = {}): Promise<GatewayConnection> {
    const timeoutMs = options.timeoutMs ?? 1000;
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('timeout'));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new GatewayConnection(socket, options.split ?? null));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames received and not yet read. */
  get bufferedFrames(): number {
    return this.#frames.length;
  }

  /** Bytes of an incomplete frame received so far. */
  get bufferedBytes(): number {
    return this.#buffer.length;
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= HEADER_BYTES) {
      const length = this.#buffer.readUIntBE(1, 3);
      if (this.#buffer.length < HEADER_BYTES + length) break;
      const type = this.#buffer[0];
      const payload = Buffer.from(this.#buffer.subarray(HEADER_BYTES, HEADER_BYTES + length));
      this.#buffer = this.#buffer.subarray(HEADER_BYTES + length);
      this.#frames.push({ type, payload });
    }
    if (this.#waiter && this.#frames.length > 0) {
      const waiter = this.#waiter;
      this.#waiter = null;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(this.#frames.shift()!);
    } else if (this.onStrayData && (this.#frames.length > 0 || this.#buffer.length > 0)) {
      this.onStrayData();
    }
  }

  /** The next whole frame; rejects with `closed` or `timeout` (the cosocket's errors). */
  receive(timeoutMs = 60_000): Promise<Frame> {
    const frame = this.#frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.#closed) return Promise.reject(new GatewayIoError('closed'));
    if (this.#waiter) return Promise.reject(new Error('receive() is already pending on this connection'));
    return new Promise<Frame>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.#waiter = null;
              reject(new GatewayIoError('timeout'));
            }, timeoutMs)
          : null;
      this.#waiter = { resolve, reject, timer };
    });
  }

  /**
   * Writes `bytes` (normally one whole frame). With splitting on, in 2 to 6 pieces cut at random
   * points, one event-loop turn apart so the runner sees separate reads.
   */
  async send(bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw new GatewayIoError('closed');
    const split = this.#split;
    if (split === null || bytes.length < 2) {
      this.#socket.write(bytes);
      return;
    }
    const pieces = 2 + split.int(Math.min(5, bytes.length - 1));
    const cuts = new Set<number>();
    while (cuts.size < pieces - 1) cuts.add(1 + split.int(bytes.length - 1));
    let from = 0;
    for (const cut of [...cuts].sort((a, b) => a - b).concat(bytes.length)) {
      if (this.#closed) throw new GatewayIoError('closed');
      this.#socket.write(bytes.subarray(from, cut));
      from = cut;
      if (cut < bytes.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Closes the socket (what `sock:close()` does after an error). */
  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  /** Half-closes: sends FIN, as a peer that stops writing would. */
  end(): void {
    this.#socket.end();
  }
}

// ---- helpers: request building and reply application ------------------------------------------

function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** `$binary_remote_addr` from a text address. */
export function binaryRemoteAddr(srcIp: Bytes): Buffer {
  if (typeof srcIp !== 'string') return toBuffer(srcIp);
  if (isIPv4(srcIp)) return Buffer.from(srcIp.split('.').map(Number));
  if (isIPv6(srcIp)) return ipv6Bytes(srcIp);
  return Buffer.from(srcIp, 'latin1');
}

function ipv6Bytes(address: string): Buffer {
  let groups: string[];
  let tail: number[] = [];
  let addr = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    tail = v4[1].split('.').map(Number);
    addr = addr.slice(0, -v4[1].length) + '0:0';
  }
  const [head, rest] = addr.split('::');
  const left = head === '' ? [] : head.split(':');
  if (rest === undefined) {
    groups = left;
  } else {
    const right = rest === '' ? [] : rest.split(':');
    groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/**
 * Lua `pairs()` over a name -> value|list table: names in an unspecified (here shuffled) order,
 * the values of one name in order.
 */
function pairsOrder<V>(entries: ReadonlyArray<readonly [string, V]>, prng: Prng | null): Array<[string, V]> {
  const groups = new Map<string, V[]>();
  for (const [name, value] of entries) {
    const list = groups.get(name);
    if (list) list.push(value);
    else groups.set(name, [value]);
  }
  const names = [...groups.keys()];
  if (prng) prng.shuffle(names);
  const out: Array<[string, V]> = [];
  for (const name of names) for (const value of groups.get(name)!) out.push([name, value]);
  return out;
}

function methodValue(method: GatewayRequest['method']): number | null {
  if (method === undefined) return 0;
  if (typeof method === 'number') return method;
  const value = (METHODS as readonly string[]).indexOf(method);
  return value < 0 ? null : value;
}

function errToMsg(payload: Buffer): { error: string; errCode: number | null } {
  if (payload.length === 0) return { error: 'empty payload', errCode: null };
  const code = decodeErrResp(payload).code;
  const names: Record<number, string> = {
    [ErrCode.BadRequest]: 'bad request',
    [ErrCode.ServiceUnavailable]: 'service unavailable',
    [ErrCode.ConfTokenNotFound]: 'conf token not found',
  };
  return { error: names[code] ?? `unknown err ${code}`, errCode: code };
}

/** The variables a request implies, before `vars` overrides them. */
function derivedVars(req: GatewayRequest): Map<string, Buffer> {
  const vars = new Map<string, Buffer>();
  const srcIp = req.srcIp ?? '127.0.0.1';
  vars.set('remote_addr', toBuffer(srcIp));
  const method = typeof req.method === 'number' ? (METHODS[req.method] ?? '') : (req.method ?? 'GET');
  vars.set('request_method', Buffer.from(method));
  vars.set('uri', toBuffer(req.path ?? '/'));
  for (const [name, value] of req.args ?? []) {
    const key = `arg_${name}`;
    if (!vars.has(key)) vars.set(key, value === null ? EMPTY : toBuffer(value));
  }
  for (const [name, value] of req.headers ?? []) {
    const key = `http_${name.toLowerCase().replaceAll('-', '_')}`;
    if (!vars.has(key)) vars.set(key, toBuffer(value));
  }
  for (const [name, value] of Object.entries(req.vars ?? {})) {
    if (value === null) vars.delete(name);
    else vars.set(name, typeof value === 'number' ? Buffer.from(String(value)) : toBuffer(value));
  }
  return vars;
}

/** Stop/HTTPRespCall headers: per name, the first entry sets (absent value deletes), later ones add. */
function applyResponseHeaders(
  start: ReadonlyArray<readonly [string, string]>,
  entries: readonly RawEntry[],
): Array<[string, string]> {
  const map = new Map<string, string[]>();
  for (const [name, value] of start) {
    const key = name.toLowerCase();
    map.set(key, [...(map.get(key) ?? []), value]);
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    const name = text(entry.name).toLowerCase();
    const value = entry.value === null ? null : text(entry.value);
    if (!seen.has(name)) {
      seen.add(name);
      if (value === null) map.delete(name);
      else {
        map.delete(name); // re-inserted at the end, like a fresh set
        map.set(name, [value]);
      }
    } else if (value === null) {
      // add_header(name, nil) raises in lua-resty-core (PROTOCOL §3.2): the real gateway would 500.
      throw new Error(`reply adds header "${name}" with an absent value after setting it: the gateway raises a Lua error`);
    } else {
      map.set(name, [...(map.get(name) ?? []), value]);
    }
  }
  const out: Array<[string, string]> = [];
  for (const [name, values] of map) for (const value of values) out.push([name, value]);
  return out;
}

function sortedRecord<V>(map: Map<string, V[]>): Record<string, V[]> {
  const out: Record<string, V[]> = {};
  for (const key of [...map.keys()].sort()) out[key] = map.get(key)!;
  return out;
}

/** What `init.lua` does with no action or a Rewrite (steps 1-6 of PROTOCOL §3.2), on the original request. */
function applyRewrite(req: GatewayRequest, rewrite: DecodedRewrite | null): UpstreamRequest {
  const headers = new Map<string, string[]>();
  for (const [name, value] of req.headers ?? []) {
    const key = name.toLowerCase();
    headers.set(key, [...(headers.get(key) ?? []), text(toBuffer(value))]);
  }
  let host = req.upstreamHost ?? headers.get('host')?.[0] ?? null;
  const args = new Map<string, Array<string | null>>();
  for (const [name, value] of req.args ?? []) {
    args.set(name, [...(args.get(name) ?? []), value === null ? null : text(toBuffer(value))]);
  }
  let path = text(toBuffer(req.path ?? '/'));
  let pathRewritten = false;
  let body = req.body === undefined || req.body === null ? null : toBuffer(req.body);
  const respHeaderOps: Array<{ op: 'set' | 'add'; name: string; value: string | null }> = [];

  if (rewrite !== null) {
    if (rewrite.path !== null) {
      path = text(rewrite.path);
      pathRewritten = true;
    }
    for (const entry of rewrite.headers ?? []) {
      // core.request.set_header: replaces every value; an absent value deletes.
      const name = text(entry.name).toLowerCase();
      if (entry.value === null) headers.delete(name);
      else headers.set(name, [text(entry.value)]);
      if (name === 'host') host = entry.value === null ? null : text(entry.value);
    }
    if (rewrite.body !== null && rewrite.body.length > 0) body = Buffer.from(rewrite.body);
    const seen = new Set<string>();
    for (const entry of rewrite.respHeaders ?? []) {
      const name = text(entry.name).toLowerCase();
      if (RESP_HEADER_BLACKLIST.has(name)) continue;
      respHeaderOps.push({ op: seen.has(name) ? 'add' : 'set', name, value: entry.value === null ? null : text(entry.value) });
      seen.add(name);
    }
    // init.lua: an absent value deletes; the first occurrence of a name replaces, later ones append.
    const changed = new Set<string>();
    for (const entry of rewrite.args ?? []) {
      const name = text(entry.name);
      if (entry.value === null) {
        args.delete(name);
        continue;
      }
      const value = text(entry.value);
      if (changed.has(name)) args.set(name, [...(args.get(name) ?? []), value]);
      else args.set(name, [value]);
      changed.add(name);
    }
  }
  return { path, pathRewritten, headers: sortedRecord(headers), host, args: sortedRecord(args), body, respHeaderOps };
}

// ---- the simulator ---------------------------------------------------------------------------

/** resty.lock "prepare_conf": one lock for every key (PROTOCOL §4.3). */
class GlobalLock {
  #locked = false;
  #waiters: Array<() => void> = [];

  async acquire(timeoutMs: number): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== grant);
        reject(new Error('timeout'));
      }, timeoutMs);
      this.#waiters.push(grant);
    });
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }
}

interface ExchangeContext {
  request: GatewayRequest | null;
  response: GatewayUpstreamResponse | null;
  /** 'req' / 'resp': the gateway phase, which decides what RespBody answers. */
  phase: 'req' | 'resp';
  answerExtraInfo: boolean;
  extraInfoFrame: CallOptions['extraInfoFrame'];
  rounds: ExtraInfoRound[];
  respBodyReads: number;
}

type Exchange = { ok: true; frame: Frame } | { ok: false; error: string; errCode: number | null; frame: Frame | null };

interface Trace {
  attempts: number;
  rounds: ExtraInfoRound[];
  conn: number;
  token: number;
  id: number;
  sent: Buffer | null;
}

type TokenResult = { ok: true; token: number } | { ok: false; error: string; errCode: number | null };

export class GatewaySimulator {
  readonly socketPath: string;
  /** The seed actually used (log it when a test fails to reproduce the order and the splits). */
  readonly seed: number;
  readonly stats: GatewayStats = {
    connectionsOpened: 0,
    connectionsClosed: 0,
    prepareConfSent: 0,
    callsSent: 0,
    retries: 0,
    tokenCacheHits: 0,
    extraInfoAnswered: 0,
    errorReplies: 0,
    strayDataOnIdle: 0,
    pipelinedQueries: 0,
  };
  readonly #prng: Prng;
  readonly #shuffle: boolean;
  readonly #splitFrames: boolean;
  readonly #readTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #poolSize: number;
  readonly #maxAttempts: number;
  readonly #lockTimeoutMs: number;
  readonly #workerId: number;
  #idCounter = 0;
  /** Most recently used first (the cosocket pool is LIFO). */
  #idle: GatewayConnection[] = [];
  #all = new Set<GatewayConnection>();
  #tokens = new Map<string, number>();
  #lock = new GlobalLock();

  constructor(options: GatewaySimulatorOptions) {
    this.socketPath = options.socketPath;
    this.seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.#prng = new Prng(this.seed);
    this.#shuffle = options.shuffle ?? true;
    this.#splitFrames = options.splitFrames ?? false;
    this.#readTimeoutMs = options.readTimeoutMs ?? 60_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.#poolSize = options.poolSize ?? 32;
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 5000;
    this.#workerId = options.workerId ?? 0;
  }

  // ---- the two calls ----

  /** `ext-plugin-pre-req` / `ext-plugin-post-req`: token lookup, HTTPReqCall, ExtraInfo rounds, reply applied. */
  async httpReqCall(route: RouteConf, request: GatewayRequest = {}, options: CallOptions = {}): Promise<HttpReqCallResult> {
    const method = methodValue(request.method);
    const id = options.id ?? this.#nextId();
    if (method === null) {
      // encode_a6_method() gives nil and AddMethod raises: nothing reaches the runner.
      return this.#failure(`method ${String(request.method)} has no A6.Method value`, null, 'call', { attempts: 1, rounds: [], conn: -1, token: 0, id, sent: null });
    }
    const ctx = this.#context('req', request, null, options);
    const outcome = await this.#communicate(route, ctx, id, (token) => {
      const headerEntries = pairsOrder(
        (request.headers ?? []).map(([n, v]) => [n.toLowerCase(), v] as const),
        this.#shuffle ? this.#prng : null,
      );
      const headers: OutEntry[] = headerEntries.map(([name, value]) => ({
        name,
        value: name === 'host' && request.upstreamHost !== undefined ? request.upstreamHost : value,
      }));
      const args: OutEntry[] = pairsOrder(request.args ?? [], this.#shuffle ? this.#prng : null).map(([name, value]) => ({ name, value }));
      return encodeHttpReqCallReq({
        id,
        srcIp: binaryRemoteAddr(request.srcIp ?? '127.0.0.1'),
        method,
        path: request.path ?? '/',
        args,
        headers,
        confToken: token,
      });
    });
    if (!outcome.ok) return outcome.failure;
    const { frame, trace } = outcome;
    if (frame.type !== RpcType.HttpReqCall) {
      return this.#failure(`unexpected type ${frame.type}`, null, 'call', trace);
    }
    const reply = decodeHttpReqCallResp(frame.payload);
    const base = this.#trace(trace);
    if (reply.action?.type === 'stop') {
      const stop = reply.action;
      return {
        ok: true,
        ...base,
        action: 'stop',
        reply,
        stop,
        rewrite: null,
        clientResponse: {
          status: stop.status === 0 ? 200 : stop.status,
          headers: applyResponseHeaders([], stop.headers ?? []),
          body: stop.body !== null && stop.body.length > 0 ? Buffer.from(stop.body) : null,
        },
        upstreamRequest: null,
      };
    }
    const rewrite = reply.action?.type === 'rewrite' ? reply.action : null;
    return {
      ok: true,
      ...base,
      // A tag other than Stop/Rewrite is ignored by the gateway: no action.
      action: rewrite ? 'rewrite' : 'none',
      reply,
      stop: null,
      rewrite,
      clientResponse: null,
      upstreamRequest: applyRewrite(request, rewrite),
    };
  }

  /** `ext-plugin-post-resp`: token lookup, HTTPRespCall, ExtraInfo rounds (RespBody), reply applied. */
  async httpRespCall(
    route: RouteConf,
    response: GatewayUpstreamResponse,
    request: GatewayRequest = {},
    options: CallOptions = {},
  ): Promise<HttpRespCallResult> {
    const id = options.id ?? this.#nextId();
    const ctx = this.#context('resp', request, response, options);
    const outcome = await this.#communicate(route, ctx, id, (token) => {
      const entries = pairsOrder(response.headers ?? [], this.#shuffle ? this.#prng : null);
      const headers: OutEntry[] = entries.map(([name, value]) => ({
        name,
        // build_headers() is shared with the request side: a header literally named "host" gets $upstream_host.
        value: name === 'host' && request.upstreamHost !== undefined ? request.upstreamHost : value,
      }));
      return encodeHttpRespCallReq({ id, status: response.status, headers, confToken: token });
    });
    if (!outcome.ok) return outcome.failure;
    const { frame, trace } = outcome;
    if (frame.type !== RpcType.HttpRespCall) {
      return this.#failure(`unexpected type ${frame.type}`, null, 'call', trace);
    }
    const reply = decodeHttpRespCallResp(frame.payload);
    const upstreamHeaders = (response.headers ?? []).map(([n, v]) => [n, text(toBuffer(v))] as const);
    const headers =
      reply.headers !== null && reply.headers.length > 0
        ? applyResponseHeaders([], reply.headers)
        : upstreamHeaders.filter(([n]) => !RESP_HEADER_BLACKLIST.has(n.toLowerCase())).map(([n, v]) => [n.toLowerCase(), v] as [string, string]);
    let body: Buffer | null;
    if (reply.body !== null && reply.body.length > 0) body = Buffer.from(reply.body);
    else if (ctx.respBodyReads >= 2) body = EMPTY; // the drained reader replaced the cached chunks
    else body = response.body === undefined || response.body === null ? null : toBuffer(response.body);
    return {
      ok: true,
      ...this.#trace(trace),
      reply,
      clientResponse: { status: reply.status !== 0 ? reply.status : response.status, headers, body },
      respBodyReads: ctx.respBodyReads,
    };
  }

  /**
   * Fetches a token the way the gateway does on a cache miss, on its own connection (no outer call
   * connection): useful to prepare explicitly. Always sends a PrepareConf; caches the token.
   */
  async prepareConf(route: RouteConf): Promise<number> {
    const result = await this.#sendPrepareConf(route);
    if (!result.ok) throw new Error(`PrepareConf failed: ${result.error}`);
    this.#tokens.set(route.key, result.token);
    return result.token;
  }

  // ---- raw frames ----

  /**
   * Sends `bytes` exactly (one whole frame, header included) on a pooled connection, answers
   * ExtraInfo queries like the gateway (for types 2 and 4), and returns the final frame. Like the
   * gateway, closes the connection after an error reply or a receive error, else pools it.
   */
  async rawCall(bytes: Uint8Array, options: RawCallOptions = {}): Promise<RawCallResult> {
    const type = bytes[0];
    const callType = type === RpcType.HttpReqCall || type === RpcType.HttpRespCall;
    const ctx = this.#context(type === RpcType.HttpRespCall ? 'resp' : 'req', options.request ?? {}, options.response ?? null, {
      extraInfoFrame: options.extraInfoFrame,
    });
    ctx.answerExtraInfo = options.extraInfo ?? callType;
    let conn = options.connection;
    if (conn === undefined) {
      try {
        conn = await this.#acquire();
      } catch (err) {
        return { ok: false, reply: null, error: `connect: ${(err as Error).message}`, errCode: null, extraInfo: [], connectionId: -1 };
      }
    }
    const result = await this.#exchange(conn, bytes, ctx);
    if (options.connection === undefined) {
      if (result.ok) this.#release(conn);
      else conn.close();
    }
    return result.ok
      ? { ok: true, reply: result.frame, error: null, errCode: null, extraInfo: ctx.rounds, connectionId: conn.id }
      : { ok: false, reply: result.frame, error: result.error, errCode: result.errCode, extraInfo: ctx.rounds, connectionId: conn.id };
  }

  /** The exact bytes of a `test/fixtures/vectors/gateway_lua/*.hex` frame (name with or without `.hex`, or a path). */
  static luaFrame(hexFile: string): Buffer {
    const file = isAbsolute(hexFile) ? hexFile : LUA_FRAMES_DIR + (hexFile.endsWith('.hex') ? hexFile : `${hexFile}.hex`);
    return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  }

  /**
   * A copy of an HTTPReqCall / HTTPRespCall frame with only the 4 bytes of its `conf_token` field
   * replaced (the recorded frames carry tokens of the runner they were recorded against).
   */
  static withConfToken(frame: Uint8Array, token: number): Buffer {
    const copy = Buffer.from(frame);
    const payload = copy.subarray(HEADER_BYTES);
    const slot = copy[0] === RpcType.HttpReqCall ? 6 : copy[0] === RpcType.HttpRespCall ? 3 : -1;
    if (slot < 0) throw new Error(`frame type ${copy[0]} has no conf_token`);
    const pos = fieldPos(payload, rootTable(payload), slot);
    if (pos === 0) throw new Error('the frame has no conf_token field to replace');
    payload.writeUInt32LE(token >>> 0, pos);
    return copy;
  }

  /**
   * Sends a frame a real APISIX emitted (`gateway_lua/*.hex`) byte for byte, through `rawCall`.
   * `confToken` replaces the recorded token (and nothing else) first.
   */
  replayLuaFrame(hexFile: string, options: RawCallOptions & { confToken?: number } = {}): Promise<RawCallResult> {
    let frame = GatewaySimulator.luaFrame(hexFile);
    if (options.confToken !== undefined) frame = GatewaySimulator.withConfToken(frame, options.confToken);
    return this.rawCall(frame, options);
  }

  /** A new connection outside the pool, for raw protocol tests (closed by `close()` too). */
  async connect(): Promise<GatewayConnection> {
    return this.#open();
  }

  // ---- cache and pool ----

  /** The cached token of a route, if any. */
  tokenFor(route: RouteConf | string): number | undefined {
    return this.#tokens.get(typeof route === 'string' ? route : route.key);
  }

  /** `recreate_lrucache()` + `flush_all()`: forget every token. */
  flushTokens(): void {
    this.#tokens.clear();
  }

  /** Pooled idle connections, most recently used first. */
  get idleConnections(): readonly GatewayConnection[] {
    return this.#idle;
  }

  /** Closes the idle pool (what nginx does when a worker exits). */
  closeIdle(): void {
    for (const conn of this.#idle.splice(0)) conn.close();
  }

  /** Closes every connection, busy or idle. */
  close(): void {
    this.#idle = [];
    for (const conn of this.#all) conn.close();
    this.#all.clear();
  }

  // ---- internals ----

  #nextId(): number {
    const id = ((this.#workerId << 22) + this.#idCounter) >>> 0;
    this.#idCounter = (this.#idCounter + 1) % ID_COUNTER_LIMIT;
    return id;
  }

  #context(phase: 'req' | 'resp', request: GatewayRequest | null, response: GatewayUpstreamResponse | null, options: Pick<CallOptions, 'extraInfoFrame'>): ExchangeContext {
    return { request, response, phase, answerExtraInfo: true, extraInfoFrame: options.extraInfoFrame, rounds: [], respBodyReads: 0 };
  }

  #trace(t: Trace): CallTrace {
    return { attempts: t.attempts, extraInfo: t.rounds, connectionId: t.conn, confToken: t.token, id: t.id, sent: t.sent };
  }

  #failure(
    error: string,
    errCode: number | null,
    stage: GatewayFailure['stage'],
    t: Trace,
  ): GatewayFailure & CallTrace {
    return { ok: false, error, errCode, stage, ...this.#trace(t) };
  }

  async #open(): Promise<GatewayConnection> {
    const conn = await GatewayConnection.open(this.socketPath, {
      timeoutMs: this.#connectTimeoutMs,
      split: this.#splitFrames ? this.#prng : null,
    });
    this.stats.connectionsOpened++;
    this.#all.add(conn);
    void conn.whenClosed.then(() => {
      this.stats.connectionsClosed++;
      this.#all.delete(conn);
      this.#idle = this.#idle.filter((c) => c !== conn);
    });
    return conn;
  }

  /** `sock:connect()`: an idle pooled connection if there is one, else a new one. */
  async #acquire(): Promise<GatewayConnection> {
    while (this.#idle.length > 0) {
      const conn = this.#idle.shift()!;
      conn.onStrayData = null;
      if (!conn.closed) return conn;
    }
    return this.#open();
  }

  /** `sock:setkeepalive(180 * 1000, 32)`. */
  #release(conn: GatewayConnection): void {
    if (conn.closed) return;
    conn.calls++;
    if (conn.bufferedFrames > 0 || conn.bufferedBytes > 0) {
      // Bytes after the reply: nginx's keepalive handler sees a readable idle socket and closes it.
      this.stats.strayDataOnIdle++;
      conn.close();
      return;
    }
    conn.onStrayData = () => {
      this.stats.strayDataOnIdle++;
      this.#idle = this.#idle.filter((c) => c !== conn);
      conn.close();
    };
    this.#idle.unshift(conn);
    while (this.#idle.length > this.#poolSize) this.#idle.pop()!.close();
  }

  /** `communicate()`: up to `maxAttempts` tries while the failure says "conf token not found". */
  async #communicate(
    route: RouteConf,
    ctx: ExchangeContext,
    id: number,
    build: (token: number) => Buffer,
  ): Promise<
    | { ok: true; frame: Frame; trace: Trace }
    | { ok: false; failure: GatewayFailure & CallTrace }
  > {
    let failure: (GatewayFailure & CallTrace) | null = null;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) {
        this.stats.retries++;
        this.flushTokens();
      }
      ctx.rounds = [];
      ctx.respBodyReads = 0;
      const trace: Trace = { attempts: attempt, rounds: ctx.rounds, conn: -1, token: 0, id, sent: null };
      const result = await this.#rpcCall(route, ctx, build, trace);
      if (result.ok) return { ok: true, frame: result.frame, trace };
      failure = this.#failure(result.error, result.errCode, result.stage, trace);
      if (!result.error.includes('conf token not found')) break;
    }
    return { ok: false, failure: failure! };
  }

  /** `rpc_call(RPC_HTTP_REQ_CALL | RPC_HTTP_RESP_CALL)`: connect, token, call, keepalive or close. */
  async #rpcCall(
    route: RouteConf,
    ctx: ExchangeContext,
    build: (token: number) => Buffer,
    trace: Trace,
  ): Promise<{ ok: true; frame: Frame } | { ok: false; error: string; errCode: number | null; stage: GatewayFailure['stage'] }> {
    let conn: GatewayConnection;
    try {
      conn = await this.#acquire();
    } catch (err) {
      return { ok: false, error: `connect: ${(err as Error).message}`, errCode: null, stage: 'connect' };
    }
    trace.conn = conn.id;
    // The handler runs after connect: the token lookup (and its nested connection) happens while
    // this connection is open and idle.
    let token = this.#tokens.get(route.key);
    if (token === undefined) {
      const fetched = await this.#fetchToken(route);
      if (!fetched.ok) {
        conn.close();
        return { ...fetched, stage: 'prepareConf' };
      }
      token = fetched.token;
    } else {
      this.stats.tokenCacheHits++;
    }
    trace.token = token;
    trace.sent = build(token);
    this.stats.callsSent++;
    const result = await this.#exchange(conn, trace.sent, ctx);
    if (!result.ok) {
      conn.close();
      return { ok: false, error: result.error, errCode: result.errCode, stage: 'call' };
    }
    this.#release(conn);
    return { ok: true, frame: result.frame };
  }

  /**
   * `rpc_call(RPC_PREPARE_CONF)` on a second connection: the shared-dict check, the global lock, the
   * re-check, then PrepareConf.
   */
  async #fetchToken(route: RouteConf): Promise<TokenResult> {
    let conn: GatewayConnection;
    try {
      conn = await this.#acquire();
    } catch (err) {
      return { ok: false, error: `connect: ${(err as Error).message}`, errCode: null };
    }
    const cached = this.#tokens.get(route.key);
    if (cached !== undefined) {
      this.#release(conn);
      return { ok: true, token: cached };
    }
    try {
      await this.#lock.acquire(this.#lockTimeoutMs);
    } catch {
      conn.close();
      return { ok: false, error: 'lock: timeout', errCode: null };
    }
    try {
      const again = this.#tokens.get(route.key);
      if (again !== undefined) {
        this.#release(conn);
        return { ok: true, token: again };
      }
      const result = await this.#prepareOn(conn, route);
      if (result.ok) {
        this.#tokens.set(route.key, result.token);
        this.#release(conn);
      } else {
        conn.close();
      }
      return result;
    } finally {
      this.#lock.release();
    }
  }

  async #sendPrepareConf(route: RouteConf): Promise<TokenResult> {
    let conn: GatewayConnection;
    try {
      conn = await this.#acquire();
    } catch (err) {
      return { ok: false, error: `connect: ${(err as Error).message}`, errCode: null };
    }
    const result = await this.#prepareOn(conn, route);
    if (result.ok) this.#release(conn);
    else conn.close();
    return result;
  }

  async #prepareOn(conn: GatewayConnection, route: RouteConf): Promise<TokenResult> {
    this.stats.prepareConfSent++;
    const frame = encodePrepareConfReq({ key: route.key, conf: route.conf === null ? null : route.conf.map((e) => ({ ...e })) });
    const ctx = this.#context('req', null, null, {});
    ctx.answerExtraInfo = false; // the PrepareConf handler has no ExtraInfo loop
    const result = await this.#exchange(conn, frame, ctx);
    if (!result.ok) return { ok: false, error: result.error, errCode: result.errCode };
    if (result.frame.type !== RpcType.PrepareConf) return { ok: false, error: `unexpected type ${result.frame.type}`, errCode: null };
    if (result.frame.payload.length === 0) return { ok: false, error: 'empty payload', errCode: null };
    return { ok: true, token: decodePrepareConfResp(result.frame.payload).confToken };
  }

  /** Send, then receive until a frame other than ExtraInfo arrives, answering each query (`init.lua` loop). */
  async #exchange(conn: GatewayConnection, frame: Uint8Array, ctx: ExchangeContext): Promise<Exchange> {
    if (frame.length - HEADER_BYTES > MAX_PAYLOAD_BYTES) {
      return { ok: false, error: `the max length of data is ${MAX_PAYLOAD_BYTES} but got ${frame.length - HEADER_BYTES}`, errCode: null, frame: null };
    }
    try {
      await conn.send(frame);
    } catch (err) {
      return { ok: false, error: (err as Error).message, errCode: null, frame: null };
    }
    for (;;) {
      let reply: Frame;
      try {
        reply = await conn.receive(this.#readTimeoutMs);
      } catch (err) {
        return { ok: false, error: err instanceof GatewayIoError ? err.reason : (err as Error).message, errCode: null, frame: null };
      }
      if (reply.type === RpcType.Error) {
        this.stats.errorReplies++;
        const { error, errCode } = errToMsg(reply.payload);
        return { ok: false, error, errCode, frame: reply };
      }
      if (reply.type !== RpcType.ExtraInfo || !ctx.answerExtraInfo) {
        if (reply.payload.length === 0) return { ok: false, error: 'empty payload', errCode: null, frame: reply };
        return { ok: true, frame: reply };
      }
      if (conn.bufferedFrames > 0) this.stats.pipelinedQueries++;
      const answer = this.#answerExtraInfo(ctx, reply.payload);
      if ('error' in answer) return { ok: false, error: answer.error, errCode: null, frame: reply };
      try {
        await conn.send(answer.frame);
      } catch (err) {
        return { ok: false, error: (err as Error).message, errCode: null, frame: null };
      }
      this.stats.extraInfoAnswered++;
    }
  }

  /** `handle_extra_info()`. */
  #answerExtraInfo(ctx: ExchangeContext, payload: Buffer): { frame: Uint8Array } | { error: string } {
    if (payload.length === 0) return { error: 'empty payload' };
    let decoded;
    try {
      decoded = decodeExtraInfoReq(payload);
    } catch (err) {
      return { error: `failed to handle RPC_EXTRA_INFO: ${(err as Error).message}` };
    }
    const index = ctx.rounds.length;
    const info = decoded.info;
    let result: Buffer | null;
    let round: ExtraInfoRound;
    if (decoded.infoType === InfoType.Var && info?.type === 'var') {
      const name = info.name === null ? '' : Buffer.from(info.name).toString('latin1');
      result = ctx.request ? (derivedVars(ctx.request).get(name) ?? null) : null;
      round = { query: 'var', name, result };
    } else if (decoded.infoType === InfoType.ReqBody) {
      const body = ctx.request?.body;
      result = body === undefined || body === null ? null : toBuffer(body);
      round = { query: 'reqBody', result };
    } else if (decoded.infoType === InfoType.RespBody) {
      if (ctx.phase !== 'resp' || ctx.response === null) {
        result = null; // "failed to read response body: not exits"
      } else {
        ctx.respBodyReads++;
        if (ctx.respBodyReads === 1) {
          const body = ctx.response.body;
          result = body === undefined || body === null ? null : toBuffer(body);
        } else {
          result = EMPTY; // the reader is drained
        }
      }
      round = { query: 'respBody', result };
    } else {
      return { error: `failed to handle RPC_EXTRA_INFO: unsupported info type: ${decoded.infoType}` };
    }
    ctx.rounds.push(round);
    const override = ctx.extraInfoFrame?.(info, index);
    if (override !== undefined) return { frame: override };
    return { frame: encodeExtraInfoResp({ result }) };
  }
}

/** A RouteConf from `[name, value]` pairs; an object value is JSON-encoded. */
export function routeConf(key: string, entries: ReadonlyArray<readonly [string, string | object]> | null): RouteConf {
  return {
    key,
    conf: entries === null ? null : entries.map(([name, value]) => ({ name, value: typeof value === 'string' ? value : JSON.stringify(value) })),
  };
}
