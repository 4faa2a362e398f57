/**
 * Codecs for every ext-plugin message, both directions (PROTOCOL.md §2).
 *
 * The runner uses the gateway->runner decoders and the runner->gateway encoders; the test gateway
 * simulator and the bench load generator use the other half. Decoders take a payload (the bytes
 * after the frame header) and keep strings as raw byte views into it. Encoders return the whole
 * frame, header included, as one Buffer for a single socket write.
 *
 * Encoding goes through the `flatbuffers` runtime's Builder, calling it in the same order as the
 * real peers (the Go runner for replies, the gateway's init.lua for requests): with the JS
 * builder's trimmed vtables, the small replies then come out byte-identical to the golden
 * vectors (vectors/README.md, "Encoder tests"). Scalars equal to their default are omitted, as
 * every official builder does.
 */
import { Builder } from 'flatbuffers';
import { FrameTooLargeError } from '../errors.js';
import { ActionType, ErrCode, InfoType, MAX_PAYLOAD_BYTES, METHODS, RpcType, type Method } from './constants.js';
import { buildFrame } from './frame.js';
import type {
  DecodedExtraInfoReq,
  DecodedHttpReqCallResp,
  DecodedHttpRespCallResp,
  ErrResp,
  ExtraInfoQuery,
  ExtraInfoResp,
  ExtraInfoRespInput,
  HttpReqCallReq,
  HttpReqCallReqInput,
  HttpReqCallResp,
  HttpRespCallReq,
  HttpRespCallReqInput,
  HttpRespCallResp,
  OutEntry,
  PrepareConfReq,
  PrepareConfReqInput,
  PrepareConfResp,
  RawEntry,
  RewriteAction,
  StopAction,
} from './messages.js';
import {
  readBytes,
  readU16,
  readU32,
  readU8,
  rootTable,
  tableField,
  vectorField,
  vectorLength,
  vectorTable,
} from './table-reader.js';

// ---- decoding ------------------------------------------------------------------------------

const NO_BYTES = new Uint8Array(0);

function readEntries(buf: Uint8Array, table: number, slot: number): RawEntry[] | null {
  const vec = vectorField(buf, table, slot);
  if (vec === 0) return null;
  const count = vectorLength(buf, vec);
  const entries: RawEntry[] = [];
  for (let i = 0; i < count; i++) {
    const entry = vectorTable(buf, vec, i);
    // A nameless entry is read as an empty name, as the Go runner's accessors do; `value` keeps
    // its absent/empty distinction (flag arg or delete vs empty string, PROTOCOL.md §6.13).
    entries.push({ name: readBytes(buf, entry, 0) ?? NO_BYTES, value: readBytes(buf, entry, 1) });
  }
  return entries;
}

export function decodePrepareConfReq(payload: Uint8Array): PrepareConfReq {
  const table = rootTable(payload);
  return { conf: readEntries(payload, table, 0), key: readBytes(payload, table, 1) };
}

/**
 * The HTTPReqCall request, decoded lazily: the constructor validates the root table and reads
 * the two scalars every call needs (`id`, `confToken`); each other field is decoded on first
 * access and cached. Most plugins read a header or two, so the call should not pay for building
 * every header and arg entry up front.
 *
 * A field is only bounds-checked when it is first read, so a getter can throw
 * MalformedPayloadError. The view reads the payload in place: it must not be reused for another
 * frame while the view lives, and it does not survive structured cloning (post the payload to a
 * worker and decode there).
 */
class HttpReqCallReqView implements HttpReqCallReq {
  readonly id: number;
  readonly confToken: number;
  readonly #payload: Uint8Array;
  readonly #table: number;
  // undefined = not decoded yet; null = absent on the wire.
  #srcIp: Uint8Array | null | undefined = undefined;
  #path: Uint8Array | null | undefined = undefined;
  #args: RawEntry[] | null | undefined = undefined;
  #headers: RawEntry[] | null | undefined = undefined;

  constructor(payload: Uint8Array) {
    const table = rootTable(payload);
    this.#payload = payload;
    this.#table = table;
    this.id = readU32(payload, table, 0, 0);
    this.confToken = readU32(payload, table, 6, 0);
  }

  get srcIp(): Uint8Array | null {
    if (this.#srcIp === undefined) this.#srcIp = readBytes(this.#payload, this.#table, 1);
    return this.#srcIp;
  }

  /** `A6.Method` value; absent means GET (0), which builders never write. */
  get method(): number {
    return readU8(this.#payload, this.#table, 2, 0);
  }

  get path(): Uint8Array | null {
    if (this.#path === undefined) this.#path = readBytes(this.#payload, this.#table, 3);
    return this.#path;
  }

  get args(): RawEntry[] | null {
    if (this.#args === undefined) this.#args = readEntries(this.#payload, this.#table, 4);
    return this.#args;
  }

  get headers(): RawEntry[] | null {
    if (this.#headers === undefined) this.#headers = readEntries(this.#payload, this.#table, 5);
    return this.#headers;
  }
}

/** Readonly: the fields are getters over the payload, an assignment would throw. */
export function readHttpReqCallReq(payload: Uint8Array): Readonly<HttpReqCallReq> {
  return new HttpReqCallReqView(payload);
}

export function decodeHttpRespCallReq(payload: Uint8Array): HttpRespCallReq {
  const table = rootTable(payload);
  return {
    id: readU32(payload, table, 0, 0),
    status: readU16(payload, table, 1, 0),
    headers: readEntries(payload, table, 2),
    confToken: readU32(payload, table, 3, 0),
  };
}

export function decodeExtraInfoResp(payload: Uint8Array): ExtraInfoResp {
  return { result: readBytes(payload, rootTable(payload), 0) };
}

export function decodePrepareConfResp(payload: Uint8Array): PrepareConfResp {
  return { confToken: readU32(payload, rootTable(payload), 0, 0) };
}

/**
 * A union tag with no matching member, or a member tag whose table is absent, decodes as no
 * action (PROTOCOL.md §2.8: tolerate them), with the tag kept in `actionType`.
 */
export function decodeHttpReqCallResp(payload: Uint8Array): DecodedHttpReqCallResp {
  const table = rootTable(payload);
  const id = readU32(payload, table, 0, 0);
  const actionType = readU8(payload, table, 1, ActionType.None);
  if (actionType !== ActionType.Stop && actionType !== ActionType.Rewrite) return { id, actionType, action: null };
  const action = tableField(payload, table, 2);
  if (action === 0) return { id, actionType, action: null };
  if (actionType === ActionType.Stop) {
    return {
      id,
      actionType,
      action: {
        type: 'stop',
        status: readU16(payload, action, 0, 0),
        headers: readEntries(payload, action, 1),
        body: readBytes(payload, action, 2),
      },
    };
  }
  return {
    id,
    actionType,
    action: {
      type: 'rewrite',
      path: readBytes(payload, action, 0),
      headers: readEntries(payload, action, 1),
      args: readEntries(payload, action, 2),
      respHeaders: readEntries(payload, action, 3),
      body: readBytes(payload, action, 4),
    },
  };
}

export function decodeHttpRespCallResp(payload: Uint8Array): DecodedHttpRespCallResp {
  const table = rootTable(payload);
  return {
    id: readU32(payload, table, 0, 0),
    status: readU16(payload, table, 1, 0),
    headers: readEntries(payload, table, 2),
    body: readBytes(payload, table, 3),
  };
}

/** Same tolerance as decodeHttpReqCallResp: an unknown tag or a missing table gives `info: null`. */
export function decodeExtraInfoReq(payload: Uint8Array): DecodedExtraInfoReq {
  const table = rootTable(payload);
  const infoType = readU8(payload, table, 0, InfoType.None);
  if (infoType !== InfoType.Var && infoType !== InfoType.ReqBody && infoType !== InfoType.RespBody) {
    return { infoType, info: null };
  }
  const info = tableField(payload, table, 1);
  if (info === 0) return { infoType, info: null };
  if (infoType === InfoType.Var) return { infoType, info: { type: 'var', name: readBytes(payload, info, 0) } };
  return { infoType, info: { type: infoType === InfoType.ReqBody ? 'reqBody' : 'respBody' } };
}

export function decodeErrResp(payload: Uint8Array): ErrResp {
  return { code: readU8(payload, rootTable(payload), 0, ErrCode.BadRequest) };
}

// ---- encoding ------------------------------------------------------------------------------

const INITIAL_BUILDER_BYTES = 1024;
/** A builder grown past this by one large body is dropped rather than kept for every later reply. */
const MAX_RETAINED_BUILDER_BYTES = 1 << 20;

// One builder for the process: encoding is synchronous, so calls never interleave.
let builder = new Builder(INITIAL_BUILDER_BYTES);
/** Offsets of the TextEntry tables of the vector being built; vectors are never built nested. */
const entryOffsets: number[] = [];

function dropLargeBuilder(): void {
  if (builder.dataBuffer().capacity() > MAX_RETAINED_BUILDER_BYTES) builder = new Builder(INITIAL_BUILDER_BYTES);
}

function startBuilder(): Builder {
  // Here too for an encode that threw before finishFrame; clear() also recovers a builder left
  // mid-object by it.
  dropLargeBuilder();
  builder.clear();
  return builder;
}

function finishFrame(b: Builder, type: number, root: number): Buffer {
  b.finish(root);
  try {
    return buildFrame(type, b.asUint8Array());
  } finally {
    dropLargeBuilder();
  }
}

/**
 * Rejects an input that alone cannot fit a frame before the builder grows to twice its size;
 * the payload would be larger still, so the error's byte count is a lower bound.
 */
function checkSize(length: number): void {
  if (length > MAX_PAYLOAD_BYTES) throw new FrameTooLargeError(length);
}

/**
 * A JS string is written as UTF-8; bytes are written exactly (they may be obs-text). Strings go
 * through Buffer.from rather than the builder's own TextEncoder: for header-sized strings (10 to
 * 100 characters) that measured 150 ns against 360 ns per string on Node 20, and a Stop reply
 * with one string header went from 1.6 us to 1.1 us to encode.
 */
function createText(b: Builder, text: string | Uint8Array): number {
  checkSize(text.length);
  return b.createString(typeof text === 'string' ? Buffer.from(text) : text);
}

function createBytes(b: Builder, bytes: Uint8Array): number {
  checkSize(bytes.length);
  return b.createByteVector(bytes);
}

/** A body of length 0 is written as absent: the gateway treats an empty body as "no body". */
function createBody(b: Builder, body: Uint8Array | null): number {
  return body === null || body.length === 0 ? 0 : createBytes(b, body);
}

function createEntries(b: Builder, entries: readonly OutEntry[] | null): number {
  if (entries === null) return 0;
  const count = entries.length;
  entryOffsets.length = 0;
  for (let i = 0; i < count; i++) {
    const entry = entries[i];
    // Name first, then value, for strings and fields alike (the order of every peer's builder).
    const name = createText(b, entry.name);
    // A null value stays absent (delete / flag arg), never "" (PROTOCOL.md §6.13).
    const value = entry.value === null ? 0 : createText(b, entry.value);
    b.startObject(2);
    b.addFieldOffset(0, name, 0);
    b.addFieldOffset(1, value, 0);
    entryOffsets.push(b.endObject());
  }
  b.startVector(4, count, 4);
  for (let i = count - 1; i >= 0; i--) b.addOffset(entryOffsets[i]);
  return b.endVector();
}

/** Vector 07's order (the Go runner's): headers, body, then status, headers, body. */
function createStop(b: Builder, stop: StopAction): number {
  const headers = createEntries(b, stop.headers);
  const body = createBody(b, stop.body);
  b.startObject(3);
  b.addFieldInt16(0, stop.status, 0);
  b.addFieldOffset(1, headers, 0);
  b.addFieldOffset(2, body, 0);
  return b.endObject();
}

/** Vector 09's order (the Go runner's FetchChanges): path, body, headers, resp_headers, args. */
function createRewrite(b: Builder, rewrite: RewriteAction): number {
  const path = rewrite.path === null ? 0 : createText(b, rewrite.path);
  const body = createBody(b, rewrite.body);
  const headers = createEntries(b, rewrite.headers);
  const respHeaders = createEntries(b, rewrite.respHeaders);
  const args = createEntries(b, rewrite.args);
  b.startObject(5);
  b.addFieldOffset(0, path, 0);
  b.addFieldOffset(4, body, 0);
  b.addFieldOffset(1, headers, 0);
  b.addFieldOffset(3, respHeaders, 0);
  b.addFieldOffset(2, args, 0);
  return b.endObject();
}

export function encodePrepareConfResp(confToken: number): Buffer {
  const b = startBuilder();
  b.startObject(1);
  b.addFieldInt32(0, confToken, 0);
  return finishFrame(b, RpcType.PrepareConf, b.endObject());
}

/** `action: null` sends only `id` (NONE): the gateway then changes nothing (vector 11). */
export function encodeHttpReqCallResp(msg: HttpReqCallResp): Buffer {
  const b = startBuilder();
  const action = msg.action;
  let actionType: number = ActionType.None;
  let actionTable = 0;
  if (action !== null) {
    if (action.type === 'stop') {
      actionType = ActionType.Stop;
      actionTable = createStop(b, action);
    } else {
      actionType = ActionType.Rewrite;
      actionTable = createRewrite(b, action);
    }
  }
  b.startObject(3);
  b.addFieldInt32(0, msg.id, 0);
  b.addFieldInt8(1, actionType, 0);
  b.addFieldOffset(2, actionTable, 0);
  return finishFrame(b, RpcType.HttpReqCall, b.endObject());
}

/** Vector 19's order (the Go runner's): headers, body, then status, headers, body, id. */
export function encodeHttpRespCallResp(msg: HttpRespCallResp): Buffer {
  const b = startBuilder();
  const headers = createEntries(b, msg.headers);
  const body = createBody(b, msg.body);
  b.startObject(4);
  b.addFieldInt16(1, msg.status, 0);
  b.addFieldOffset(2, headers, 0);
  b.addFieldOffset(3, body, 0);
  b.addFieldInt32(0, msg.id, 0);
  return finishFrame(b, RpcType.HttpRespCall, b.endObject());
}

export function encodeExtraInfoReq(query: ExtraInfoQuery): Buffer {
  const b = startBuilder();
  let infoType: number;
  let info: number;
  if (query.type === 'var') {
    const name = createText(b, query.name);
    b.startObject(1);
    b.addFieldOffset(0, name, 0);
    info = b.endObject();
    infoType = InfoType.Var;
  } else {
    b.startObject(0);
    info = b.endObject();
    infoType = query.type === 'reqBody' ? InfoType.ReqBody : InfoType.RespBody;
  }
  b.startObject(2);
  b.addFieldInt8(0, infoType, 0);
  b.addFieldOffset(1, info, 0);
  return finishFrame(b, RpcType.ExtraInfo, b.endObject());
}

function buildErrResp(code: number): Buffer {
  const b = startBuilder();
  b.startObject(1);
  b.addFieldInt8(0, code, 0);
  return finishFrame(b, RpcType.Error, b.endObject());
}

// Error replies are constant: built once. Callers only write them to sockets, never mutate them.
const ERR_FRAMES = [
  buildErrResp(ErrCode.BadRequest),
  buildErrResp(ErrCode.ServiceUnavailable),
  buildErrResp(ErrCode.ConfTokenNotFound),
];

/** The `RPC_ERROR` frame for `code`; the three known codes return shared, prebuilt frames. */
export function encodeErrResp(code: number): Buffer {
  return ERR_FRAMES[code] ?? buildErrResp(code);
}

/** init.lua order: key, conf entries, then key, conf (vector 01). */
export function encodePrepareConfReq(msg: PrepareConfReqInput): Buffer {
  const b = startBuilder();
  const key = msg.key === null ? 0 : createText(b, msg.key);
  const conf = createEntries(b, msg.conf);
  b.startObject(2);
  b.addFieldOffset(1, key, 0);
  b.addFieldOffset(0, conf, 0);
  return finishFrame(b, RpcType.PrepareConf, b.endObject());
}

function methodValue(method: number | Method): number {
  if (typeof method === 'number') return method;
  const value = METHODS.indexOf(method);
  if (value < 0) throw new RangeError(`method ${JSON.stringify(method)} has no A6.Method value`);
  return value;
}

/**
 * init.lua order: path, src_ip, args, headers, then id, conf_token, src_ip, path, args, headers,
 * method (vectors 05, 06). src_ip is a byte vector (no NUL), path a string.
 */
export function encodeHttpReqCallReq(msg: HttpReqCallReqInput): Buffer {
  const b = startBuilder();
  const method = methodValue(msg.method);
  const path = msg.path === null ? 0 : createText(b, msg.path);
  const srcIp = msg.srcIp === null ? 0 : createBytes(b, msg.srcIp);
  const args = createEntries(b, msg.args);
  const headers = createEntries(b, msg.headers);
  b.startObject(7);
  b.addFieldInt32(0, msg.id, 0);
  b.addFieldInt32(6, msg.confToken, 0);
  b.addFieldOffset(1, srcIp, 0);
  b.addFieldOffset(3, path, 0);
  b.addFieldOffset(4, args, 0);
  b.addFieldOffset(5, headers, 0);
  b.addFieldInt8(2, method, 0);
  return finishFrame(b, RpcType.HttpReqCall, b.endObject());
}

/** init.lua order: headers, then id, status, conf_token, headers (vector 18). */
export function encodeHttpRespCallReq(msg: HttpRespCallReqInput): Buffer {
  const b = startBuilder();
  const headers = createEntries(b, msg.headers);
  b.startObject(4);
  b.addFieldInt32(0, msg.id, 0);
  b.addFieldInt16(1, msg.status, 0);
  b.addFieldInt32(3, msg.confToken, 0);
  b.addFieldOffset(2, headers, 0);
  return finishFrame(b, RpcType.HttpRespCall, b.endObject());
}

/**
 * A byte vector, as init.lua writes it (CreateByteVector, no NUL). Unlike a reply body, an empty
 * result is written: an empty vector is how the gateway says "empty value", as opposed to
 * absent, "no such variable / no body" (PROTOCOL.md §6.12).
 */
export function encodeExtraInfoResp(msg: ExtraInfoRespInput): Buffer {
  const b = startBuilder();
  const raw = msg.result;
  const result = raw === null ? 0 : createBytes(b, typeof raw === 'string' ? Buffer.from(raw) : raw);
  b.startObject(1);
  b.addFieldOffset(0, result, 0);
  return finishFrame(b, RpcType.ExtraInfo, b.endObject());
}
