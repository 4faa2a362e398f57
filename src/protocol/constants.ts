/** RPC type byte (frame header byte 0). PROTOCOL.md §1.3. */
export const RpcType = {
  Error: 0,
  PrepareConf: 1,
  HttpReqCall: 2,
  ExtraInfo: 3,
  HttpRespCall: 4,
} as const;
export type RpcType = (typeof RpcType)[keyof typeof RpcType];

/** `A6.Err.Code`. PROTOCOL.md §2.3. */
export const ErrCode = {
  BadRequest: 0,
  ServiceUnavailable: 1,
  ConfTokenNotFound: 2,
} as const;
export type ErrCode = (typeof ErrCode)[keyof typeof ErrCode];

/** `A6.HTTPReqCall.Action` union tags. */
export const ActionType = { None: 0, Stop: 1, Rewrite: 2 } as const;

/** `A6.ExtraInfo.Info` union tags. */
export const InfoType = { None: 0, Var: 1, ReqBody: 2, RespBody: 3 } as const;

/** `A6.Method`, indexed by its enum value. PROTOCOL.md §2.2. */
export const METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE',
  'OPTIONS', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'PATCH', 'TRACE',
] as const;
export type Method = (typeof METHODS)[number];

/** Frame header: 1 type byte + 24-bit big-endian payload length. */
export const HEADER_BYTES = 4;

/** The largest payload the 3-byte length field can describe. Not 2 << 24 - 1 (the Go runner's bug). */
export const MAX_PAYLOAD_BYTES = 2 ** 24 - 1;

/**
 * Response headers the gateway silently ignores in a Rewrite's `resp_headers` (init.lua:72-83,
 * PROTOCOL §3.2 step 4). Stop headers and HTTPRespCall headers have no such list.
 */
export const REWRITE_IGNORED_RESP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'content-length',
  'transfer-encoding',
  'location',
  'server',
  'www-authenticate',
  'content-encoding',
  'content-type',
  'content-location',
  'content-language',
]);
