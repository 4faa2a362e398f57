/**
 * The golden frames in test/fixtures/vectors/ and the `expected/*.json` form they decode to
 * (format: test/fixtures/vectors/README.md, "Expected decodes").
 *
 * Two converters: `decodeToExpected` runs the codec's decoder for a frame and renders the result
 * in the expected JSON form; `encodeFromExpected` builds the encoder input from an expected JSON
 * file (strings as JS strings, `{hex}` as bytes) and runs the matching encoder. Together they let
 * every vector be checked in both directions without hand-copying field values.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  decodeErrResp,
  decodeExtraInfoReq,
  decodeExtraInfoResp,
  decodeHttpReqCallResp,
  decodeHttpRespCallReq,
  decodeHttpRespCallResp,
  decodePrepareConfReq,
  decodePrepareConfResp,
  encodeErrResp,
  encodeExtraInfoReq,
  encodeExtraInfoResp,
  encodeHttpReqCallReq,
  encodeHttpReqCallResp,
  encodeHttpRespCallReq,
  encodeHttpRespCallResp,
  encodePrepareConfReq,
  encodePrepareConfResp,
  readHttpReqCallReq,
} from '../../src/protocol/codec.js';
import type { ExtraInfoQuery, HttpReqCallResp, OutEntry, RawEntry } from '../../src/protocol/messages.js';

// Tests run from .build/test/support/, the fixtures stay in the source tree.
export const VECTORS_DIR = fileURLToPath(new URL('../../../test/fixtures/vectors/', import.meta.url));

export type Direction = 'gateway->runner' | 'runner->gateway';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface ExpectedDecode {
  type: number;
  root: string;
  payload_len: number;
  fields: JsonObject;
}

export interface Vector {
  /** Base name, e.g. `05_http_req_call_req_get_ipv4`. */
  name: string;
  /** `05_...` or `gateway_lua/05_...`. */
  label: string;
  direction: Direction;
  frame: Buffer;
  type: number;
  payload: Buffer;
  expected: ExpectedDecode;
}

/** Root table per (RPC type, direction), PROTOCOL.md §2.1. */
export const ROOTS: Record<Direction, Record<number, string>> = {
  'gateway->runner': {
    1: 'A6.PrepareConf.Req',
    2: 'A6.HTTPReqCall.Req',
    3: 'A6.ExtraInfo.Resp',
    4: 'A6.HTTPRespCall.Req',
  },
  'runner->gateway': {
    0: 'A6.Err.Resp',
    1: 'A6.PrepareConf.Resp',
    2: 'A6.HTTPReqCall.Resp',
    3: 'A6.ExtraInfo.Req',
    4: 'A6.HTTPRespCall.Resp',
  },
};

interface ManifestEntry {
  name: string;
  direction: Direction;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function loadDir(sub: string, directions: Map<string, Direction>): Vector[] {
  const dir = VECTORS_DIR + sub;
  return readdirSync(dir)
    .filter((file) => file.endsWith('.hex'))
    .sort()
    .map((file) => {
      const name = file.slice(0, -'.hex'.length);
      const frame = Buffer.from(readFileSync(dir + file, 'utf8').trim(), 'hex');
      const direction = directions.get(name);
      if (direction === undefined) throw new Error(`${sub}${file} is not in manifest.json`);
      return {
        name,
        label: sub + name,
        direction,
        frame,
        type: frame[0],
        payload: frame.subarray(4),
        expected: readJson<ExpectedDecode>(`${dir}expected/${name}.json`),
      };
    });
}

/** All 30 frames: the 23 Python-built ones, then the 7 the gateway's Lua builder produced. */
export function loadVectors(): Vector[] {
  const manifest = readJson<{ vectors: ManifestEntry[] }>(VECTORS_DIR + 'manifest.json');
  const directions = new Map(manifest.vectors.map((v) => [v.name, v.direction]));
  return [...loadDir('', directions), ...loadDir('gateway_lua/', directions)];
}

// ---- decoded shape -> expected JSON -------------------------------------------------------

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function hex(bytes: Uint8Array): Json {
  return { hex: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex') };
}

/** A JSON string when the bytes are valid UTF-8, `{hex}` otherwise (the expected/ rule). */
function text(bytes: Uint8Array): Json {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return hex(bytes);
  }
}

function entries(list: readonly RawEntry[]): Json {
  return list.map((e) => ({ name: text(e.name), value: e.value === null ? null : text(e.value) }));
}

/**
 * Builds `fields`, leaving out absent fields. The decoders return a scalar's default for an
 * absent scalar, so a scalar equal to 0 is left out: no vector writes a default (README), so
 * this matches the expected files exactly.
 */
class Fields {
  readonly out: JsonObject = {};
  scalar(key: string, value: number): this {
    if (value !== 0) this.out[key] = value;
    return this;
  }
  bytes(key: string, value: Uint8Array | null): this {
    if (value !== null) this.out[key] = hex(value);
    return this;
  }
  text(key: string, value: Uint8Array | null): this {
    if (value !== null) this.out[key] = text(value);
    return this;
  }
  entries(key: string, value: readonly RawEntry[] | null): this {
    if (value !== null) this.out[key] = entries(value);
    return this;
  }
}

/**
 * Decodes `payload` as `root` and renders the result in the `expected/` form. For the lazy
 * HTTPReqCall view this reads every getter, so every deferred bounds check runs too.
 */
export function decodeFields(root: string, payload: Uint8Array): JsonObject {
  switch (root) {
    case 'A6.PrepareConf.Req': {
      const m = decodePrepareConfReq(payload);
      return new Fields().entries('conf', m.conf).text('key', m.key).out;
    }
    case 'A6.HTTPReqCall.Req': {
      const m = readHttpReqCallReq(payload);
      return new Fields()
        .scalar('id', m.id)
        .bytes('src_ip', m.srcIp)
        .scalar('method', m.method)
        .text('path', m.path)
        .entries('args', m.args)
        .entries('headers', m.headers)
        .scalar('conf_token', m.confToken).out;
    }
    case 'A6.HTTPRespCall.Req': {
      const m = decodeHttpRespCallReq(payload);
      return new Fields()
        .scalar('id', m.id)
        .scalar('status', m.status)
        .entries('headers', m.headers)
        .scalar('conf_token', m.confToken).out;
    }
    case 'A6.ExtraInfo.Resp':
      return new Fields().bytes('result', decodeExtraInfoResp(payload).result).out;
    case 'A6.PrepareConf.Resp':
      return new Fields().scalar('conf_token', decodePrepareConfResp(payload).confToken).out;
    case 'A6.HTTPReqCall.Resp': {
      const m = decodeHttpReqCallResp(payload);
      const fields = new Fields().scalar('id', m.id).scalar('action_type', m.actionType);
      const a = m.action;
      if (a?.type === 'stop') {
        fields.out.action = {
          Stop: new Fields().scalar('status', a.status).entries('headers', a.headers).bytes('body', a.body).out,
        };
      } else if (a?.type === 'rewrite') {
        fields.out.action = {
          Rewrite: new Fields()
            .text('path', a.path)
            .entries('headers', a.headers)
            .entries('args', a.args)
            .entries('resp_headers', a.respHeaders)
            .bytes('body', a.body).out,
        };
      }
      return fields.out;
    }
    case 'A6.ExtraInfo.Req': {
      const m = decodeExtraInfoReq(payload);
      const fields = new Fields().scalar('info_type', m.infoType);
      const i = m.info;
      if (i?.type === 'var') fields.out.info = { Var: new Fields().text('name', i.name).out };
      else if (i?.type === 'reqBody') fields.out.info = { ReqBody: {} };
      else if (i?.type === 'respBody') fields.out.info = { RespBody: {} };
      return fields.out;
    }
    case 'A6.HTTPRespCall.Resp': {
      const m = decodeHttpRespCallResp(payload);
      return new Fields()
        .scalar('id', m.id)
        .scalar('status', m.status)
        .entries('headers', m.headers)
        .bytes('body', m.body).out;
    }
    case 'A6.Err.Resp':
      return new Fields().scalar('code', decodeErrResp(payload).code).out;
    default:
      throw new Error(`unknown root ${root}`);
  }
}

/** Decodes a whole frame (root from its type and `direction`) into the `expected/` form. */
export function decodeToExpected(frame: Uint8Array, direction: Direction): ExpectedDecode {
  const type = frame[0];
  const root = ROOTS[direction][type];
  const payload = frame.subarray(4);
  return { type, root, payload_len: payload.length, fields: decodeFields(root, payload) };
}

// ---- expected JSON -> encoder input ---------------------------------------------------------

type Node = { [key: string]: Json };

function jsonText(value: Json): string | Uint8Array {
  if (typeof value === 'string') return value;
  return Buffer.from((value as Node).hex as string, 'hex');
}

function jsonBytes(value: Json | undefined): Uint8Array | null {
  return value === undefined ? null : Buffer.from((value as Node).hex as string, 'hex');
}

function jsonEntries(value: Json | undefined): OutEntry[] | null {
  if (value === undefined) return null;
  return (value as Node[]).map((e) => ({ name: jsonText(e.name), value: e.value === null ? null : jsonText(e.value) }));
}

function num(value: Json | undefined): number {
  return value === undefined ? 0 : (value as number);
}

function opt(value: Json | undefined): string | Uint8Array | null {
  return value === undefined ? null : jsonText(value);
}

function action(fields: Node): HttpReqCallResp['action'] {
  const a = fields.action as Node | undefined;
  if (a === undefined) return null;
  if (a.Stop !== undefined) {
    const s = a.Stop as Node;
    return { type: 'stop', status: num(s.status), headers: jsonEntries(s.headers), body: jsonBytes(s.body) };
  }
  const r = a.Rewrite as Node;
  return {
    type: 'rewrite',
    path: opt(r.path),
    headers: jsonEntries(r.headers),
    args: jsonEntries(r.args),
    respHeaders: jsonEntries(r.resp_headers),
    body: jsonBytes(r.body),
  };
}

function query(fields: Node): ExtraInfoQuery {
  const info = fields.info as Node;
  if (info.Var !== undefined) return { type: 'var', name: jsonText((info.Var as Node).name) };
  return info.ReqBody !== undefined ? { type: 'reqBody' } : { type: 'respBody' };
}

/** Encodes the message an `expected/` file describes with the codec's encoder for `root`. */
export function encodeFromExpected(root: string, fields: JsonObject): Buffer {
  const f = fields as Node;
  switch (root) {
    case 'A6.PrepareConf.Req':
      return encodePrepareConfReq({ conf: jsonEntries(f.conf), key: opt(f.key) });
    case 'A6.HTTPReqCall.Req':
      return encodeHttpReqCallReq({
        id: num(f.id),
        srcIp: jsonBytes(f.src_ip),
        method: num(f.method),
        path: opt(f.path),
        args: jsonEntries(f.args),
        headers: jsonEntries(f.headers),
        confToken: num(f.conf_token),
      });
    case 'A6.HTTPRespCall.Req':
      return encodeHttpRespCallReq({
        id: num(f.id),
        status: num(f.status),
        headers: jsonEntries(f.headers),
        confToken: num(f.conf_token),
      });
    case 'A6.ExtraInfo.Resp':
      return encodeExtraInfoResp({ result: jsonBytes(f.result) });
    case 'A6.PrepareConf.Resp':
      return encodePrepareConfResp(num(f.conf_token));
    case 'A6.HTTPReqCall.Resp':
      return encodeHttpReqCallResp({ id: num(f.id), action: action(f) });
    case 'A6.ExtraInfo.Req':
      return encodeExtraInfoReq(query(f));
    case 'A6.HTTPRespCall.Resp':
      return encodeHttpRespCallResp({
        id: num(f.id),
        status: num(f.status),
        headers: jsonEntries(f.headers),
        body: jsonBytes(f.body),
      });
    case 'A6.Err.Resp':
      return encodeErrResp(num(f.code));
    default:
      throw new Error(`unknown root ${root}`);
  }
}
