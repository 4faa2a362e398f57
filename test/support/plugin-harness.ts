/**
 * Runs plugins through the real runtime, not mocks of it: a call frame built with the protocol
 * encoder, decoded as the runner decodes it, wrapped in RequestCall/ResponseCall, run by the chain
 * runner; the result can be round-tripped through the reply encoder and decoder. The gateway side
 * of ExtraInfo is a map that counts the queries it answers.
 */
import type { Plugin } from '../../src/plugin.js';
import {
  decodeHttpReqCallResp,
  decodeHttpRespCallResp,
  decodeHttpRespCallReq,
  encodeHttpReqCallReq,
  encodeHttpReqCallResp,
  encodeHttpRespCallReq,
  encodeHttpRespCallResp,
  readHttpReqCallReq,
} from '../../src/protocol/codec.js';
import type { Method } from '../../src/protocol/constants.js';
import type {
  DecodedHttpReqCallResp,
  DecodedHttpRespCallResp,
  ExtraInfoQuery,
  OutEntry,
  RawEntry,
} from '../../src/protocol/messages.js';
import type { ExtraInfoPort } from '../../src/workers/call-base.js';
import { runRequestChain, runResponseChain, type PreparedPlugin } from '../../src/workers/chain.js';
import { RequestCall } from '../../src/workers/request-call.js';
import { ResponseCall } from '../../src/workers/response-call.js';

/** What the simulated gateway answers to ExtraInfo queries; a missing entry answers "absent". */
export interface GatewayData {
  vars?: Record<string, string>;
  reqBody?: string | Uint8Array;
  respBody?: string | Uint8Array;
}

export class MapPort implements ExtraInfoPort {
  readonly queries: ExtraInfoQuery[] = [];
  readonly #data: GatewayData;

  constructor(data: GatewayData = {}) {
    this.#data = data;
  }

  count(type: ExtraInfoQuery['type']): number {
    return this.queries.filter((q) => q.type === type).length;
  }

  async query(query: ExtraInfoQuery): Promise<Uint8Array | null> {
    this.queries.push(query);
    let value: string | Uint8Array | undefined;
    if (query.type === 'var') value = this.#data.vars?.[Buffer.from(query.name).toString('utf8')];
    else value = query.type === 'reqBody' ? this.#data.reqBody : this.#data.respBody;
    // A copy, as a decoded frame's bytes would be: never the test's own buffer.
    return value === undefined ? null : Buffer.from(typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  }
}

/** `{ plugin, conf: plugin.parseConf(value) }`, a chain element; an object value is sent as JSON. */
export function step<C>(plugin: Plugin<C>, value: string | object): PreparedPlugin {
  const conf = plugin.parseConf(typeof value === 'string' ? value : JSON.stringify(value));
  // Plugin<C> is invariant in C; the chain holds plugins of every conf type.
  return { plugin: plugin as unknown as Plugin, conf };
}

export interface RequestInit {
  id?: number;
  method?: Method;
  path?: string;
  headers?: ReadonlyArray<readonly [string, string]>;
  args?: ReadonlyArray<readonly [string, string | null]>;
}

const entries = (list: ReadonlyArray<readonly [string, string | null]> | undefined): OutEntry[] =>
  (list ?? []).map(([name, value]) => ({ name, value }));

/** Encode an HTTPReqCall as the gateway would, decode it as the runner does, wrap it in a RequestCall. */
export function requestCall(init: RequestInit, port: ExtraInfoPort): RequestCall {
  const frame = encodeHttpReqCallReq({
    id: init.id ?? 7,
    srcIp: Uint8Array.of(127, 0, 0, 1),
    method: init.method ?? 'GET',
    path: init.path ?? '/hello',
    args: entries(init.args),
    headers: entries(init.headers),
    confToken: 1,
  });
  return new RequestCall(readHttpReqCallReq(frame.subarray(4)), port);
}

export async function runRequest(chain: readonly PreparedPlugin[], init: RequestInit = {}, data?: GatewayData): Promise<{ call: RequestCall; port: MapPort }> {
  const port = new MapPort(data);
  const call = requestCall(init, port);
  await runRequestChain(chain, call);
  return { call, port };
}

/** The call's reply through the real encoder, then decoded as the gateway would read it. */
export function roundTripRequest(call: RequestCall): DecodedHttpReqCallResp {
  return decodeHttpReqCallResp(encodeHttpReqCallResp({ id: call.id, action: call.toAction() }).subarray(4));
}

export interface ResponseInit {
  id?: number;
  status?: number;
  headers?: ReadonlyArray<readonly [string, string]>;
}

export function responseCall(init: ResponseInit, port: ExtraInfoPort): ResponseCall {
  const frame = encodeHttpRespCallReq({ id: init.id ?? 9, status: init.status ?? 200, headers: entries(init.headers), confToken: 1 });
  return new ResponseCall(decodeHttpRespCallReq(frame.subarray(4)), port);
}

export async function runResponse(chain: readonly PreparedPlugin[], init: ResponseInit = {}, data?: GatewayData): Promise<{ call: ResponseCall; port: MapPort }> {
  const port = new MapPort(data);
  const call = responseCall(init, port);
  await runResponseChain(chain, call);
  return { call, port };
}

export function roundTripResponse(call: ResponseCall): DecodedHttpRespCallResp {
  return decodeHttpRespCallResp(encodeHttpRespCallResp(call.toReply()).subarray(4));
}

const str = (v: string | Uint8Array): string => (typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));

/** Entries (as built or as decoded) as `[name, value]` text pairs; an absent value stays null. */
export function pairs(list: ReadonlyArray<OutEntry | RawEntry> | null): Array<[string, string | null]> | null {
  return list === null ? null : list.map((e) => [str(e.name), e.value === null ? null : str(e.value)]);
}

/** Bytes as UTF-8 text, null kept (bodies in assertions). */
export function text(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : str(bytes);
}
