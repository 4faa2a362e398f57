/**
 * Plain shapes of every message, both directions. Decoders keep raw bytes (strings on the wire
 * carry no charset and may hold obs-text), encoders accept strings or bytes.
 */
import type { Method } from './constants.js';

/** A decoded `A6.TextEntry`. `value === null` means the field was absent (a flag arg, or "delete"). */
export interface RawEntry {
  name: Uint8Array;
  value: Uint8Array | null;
}

/** A `A6.TextEntry` to encode. `value === null` encodes an absent value (delete). */
export interface OutEntry {
  name: string | Uint8Array;
  value: string | Uint8Array | null;
}

// ---- gateway -> runner ----------------------------------------------------------------------

export interface PrepareConfReq {
  /** null when the gateway wrote no conf vector (a route with `{}` as its ext-plugin config). */
  conf: RawEntry[] | null;
  key: Uint8Array | null;
}

export interface HttpReqCallReq {
  id: number;
  srcIp: Uint8Array | null;
  /** `A6.Method` enum value; 0 (GET) when absent. */
  method: number;
  path: Uint8Array | null;
  args: RawEntry[] | null;
  headers: RawEntry[] | null;
  confToken: number;
}

export interface HttpRespCallReq {
  id: number;
  status: number;
  headers: RawEntry[] | null;
  confToken: number;
}

export interface ExtraInfoResp {
  /** null when absent: no such variable, or no body. */
  result: Uint8Array | null;
}

// ---- runner -> gateway ----------------------------------------------------------------------

export interface PrepareConfResp {
  confToken: number;
}

export interface StopAction {
  type: 'stop';
  /** 0 is sent as absent (the gateway maps it to 200). */
  status: number;
  headers: readonly OutEntry[] | null;
  /** Sent only when non-empty: the gateway ignores an empty body. */
  body: Uint8Array | null;
}

export interface RewriteAction {
  type: 'rewrite';
  path: string | Uint8Array | null;
  headers: readonly OutEntry[] | null;
  args: readonly OutEntry[] | null;
  respHeaders: readonly OutEntry[] | null;
  body: Uint8Array | null;
}

export type Action = StopAction | RewriteAction | null;

export interface HttpReqCallResp {
  id: number;
  action: Action;
}

export interface HttpRespCallResp {
  id: number;
  /** 0 = unchanged. */
  status: number;
  headers: readonly OutEntry[] | null;
  body: Uint8Array | null;
}

export type ExtraInfoQuery =
  | { type: 'var'; name: string | Uint8Array }
  | { type: 'reqBody' }
  | { type: 'respBody' };

export interface ErrResp {
  code: number;
}

// ---- runner -> gateway, decoded (test gateway simulator, bench) -----------------------------
// Strings stay raw bytes, as on the gateway side: the simulator checks them byte for byte.

export interface DecodedStop {
  type: 'stop';
  status: number;
  headers: RawEntry[] | null;
  body: Uint8Array | null;
}

export interface DecodedRewrite {
  type: 'rewrite';
  path: Uint8Array | null;
  headers: RawEntry[] | null;
  args: RawEntry[] | null;
  respHeaders: RawEntry[] | null;
  body: Uint8Array | null;
}

export interface DecodedHttpReqCallResp {
  id: number;
  /** The union tag as written (`ActionType`); an unknown value decodes with `action: null`. */
  actionType: number;
  /** null for NONE, for an unknown tag, and for a Stop/Rewrite tag without its table. */
  action: DecodedStop | DecodedRewrite | null;
}

export interface DecodedHttpRespCallResp {
  id: number;
  status: number;
  headers: RawEntry[] | null;
  body: Uint8Array | null;
}

export type DecodedExtraInfoQuery =
  | { type: 'var'; name: Uint8Array | null }
  | { type: 'reqBody' }
  | { type: 'respBody' };

export interface DecodedExtraInfoReq {
  /** The union tag as written (`InfoType`); an unknown value decodes with `info: null`. */
  infoType: number;
  info: DecodedExtraInfoQuery | null;
}

// ---- gateway -> runner, to encode (test gateway simulator, bench) ---------------------------
// Decoded shapes are valid inputs (RawEntry is an OutEntry), so a decoded message re-encodes as is.

export interface PrepareConfReqInput {
  /** null writes no conf vector, as the gateway does for a plugin config without `conf`. */
  conf: readonly OutEntry[] | null;
  key: string | Uint8Array | null;
}

export interface HttpReqCallReqInput {
  id: number;
  srcIp: Uint8Array | null;
  /** `A6.Method` value or name. */
  method: number | Method;
  path: string | Uint8Array | null;
  /** The gateway always writes both vectors, empty ones included. */
  args: readonly OutEntry[] | null;
  headers: readonly OutEntry[] | null;
  confToken: number;
}

export interface HttpRespCallReqInput {
  id: number;
  status: number;
  headers: readonly OutEntry[] | null;
  confToken: number;
}

export interface ExtraInfoRespInput {
  /** null: no such variable, or no body. `''` or an empty array: an empty value. */
  result: string | Uint8Array | null;
}
