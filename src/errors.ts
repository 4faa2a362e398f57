/**
 * Every error this package raises on purpose has a stable `code` (match on it, never on the text),
 * documented in docs/errors.md. `wireErrCode()` is the one place that decides which wire error
 * reply a failure becomes.
 */
import { ErrCode } from './protocol/constants.js';

export class RunnerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A CLI flag or environment variable has an unusable value. The CLI exits with code 2. */
export class InvalidOptionError extends RunnerError {
  constructor(message: string) {
    super('ANR_ERR_INVALID_OPTION', message);
  }
}

/** A payload that is not a well-formed message of the expected table. Answered BAD_REQUEST. */
export class MalformedPayloadError extends RunnerError {
  constructor(message: string) {
    super('ANR_ERR_MALFORMED_PAYLOAD', message);
  }
}

/** A frame whose RPC type the runner does not accept at that point. Answered BAD_REQUEST. */
export class UnexpectedRpcTypeError extends RunnerError {
  constructor(readonly rpcType: number) {
    super('ANR_ERR_UNEXPECTED_RPC_TYPE', `unexpected rpc type ${rpcType}`);
  }
}

/** A reply that does not fit the 24-bit length field. Answered SERVICE_UNAVAILABLE instead. */
export class FrameTooLargeError extends RunnerError {
  constructor(readonly payloadBytes: number) {
    super('ANR_ERR_FRAME_TOO_LARGE', `payload of ${payloadBytes} bytes exceeds the 16777215-byte frame limit`);
  }
}

/** A call presented a token this process never issued or has expired. Answered CONF_TOKEN_NOT_FOUND. */
export class ConfTokenNotFoundError extends RunnerError {
  constructor(readonly token: number) {
    super('ANR_ERR_CONF_TOKEN_NOT_FOUND', `conf token ${token} not found`);
  }
}

/** A plugin filter threw or rejected. Answered SERVICE_UNAVAILABLE (or Stop 503 for `onError: 'deny'`). */
export class PluginFailedError extends RunnerError {
  /** The plugin declared `onError: 'deny'`: answer Stop 503 instead of an error reply. */
  readonly deny: boolean;
  constructor(readonly plugin: string, cause: unknown, deny = false) {
    super('ANR_ERR_PLUGIN_FAILED', `plugin "${plugin}" failed: ${describe(cause)}`, { cause });
    this.deny = deny;
  }
}

/** Which rule a header set by a plugin broke (RFC 9110 §5.1 names, §5.5 values). */
export type HeaderRule = 'name-empty' | 'name-not-token' | 'value-forbidden-byte' | 'value-edge-whitespace';

/**
 * A plugin set a header whose name is not an RFC 9110 token or whose value holds a byte a field
 * value cannot (CR, LF, NUL, another control byte), or starts or ends with a space or tab. Thrown
 * by the setter, inside the filter, so the call fails as the plugin's `onError` says.
 */
export class InvalidHeaderError extends RunnerError {
  constructor(
    /** The header name as the plugin gave it. */
    readonly header: string,
    readonly rule: HeaderRule,
    message: string,
  ) {
    super('ANR_ERR_INVALID_HEADER', message);
  }
}

/** A call ran past its deadline (`--call-timeout-ms`). Answered like a plugin failure. */
export class CallTimeoutError extends RunnerError {
  readonly deny: boolean;
  constructor(readonly plugin: string | null, readonly timeoutMs: number, deny = false) {
    super('ANR_ERR_CALL_TIMEOUT', `call exceeded its ${timeoutMs} ms deadline${plugin ? ` in plugin "${plugin}"` : ''}`);
    this.deny = deny;
  }
}

/** The gateway closed the connection while a call (or its ExtraInfo query) was open. */
export class ConnectionClosedError extends RunnerError {
  constructor() {
    super('ANR_ERR_CONNECTION_CLOSED', 'the gateway closed the connection during the call');
  }
}

/** The socket path cannot be served: it is not absolute or too long, its directory is missing, or bind failed. */
export class SocketPathError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ANR_ERR_SOCKET_PATH', message, options);
  }
}

/**
 * Something that is not a socket (a regular file, a directory, a symbolic link, a FIFO, a device)
 * is at the socket path. The runner replaces only a socket (a previous runner's, live or stale),
 * so the file is left untouched and the runner does not start.
 */
export class SocketPathOccupiedError extends RunnerError {
  constructor(
    readonly path: string,
    /** What is there, as `lstat` sees it: `a regular file`, `a directory`, `a symbolic link`, ... */
    readonly kind: string,
  ) {
    super(
      'ANR_ERR_SOCKET_PATH_OCCUPIED',
      `socket path ${JSON.stringify(path)} is ${kind}, not a socket: the runner replaces only a socket; remove it or choose another path`,
    );
  }
}

/** Plugin modules that cannot be loaded: bad export, duplicate name, import failure. */
export class PluginLoadError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ANR_ERR_PLUGIN_LOAD', message, options);
  }
}

/** The worker pool already holds `--max-queue` calls: the call is shed at once (DECISIONS 2). */
export class OverloadedError extends RunnerError {
  constructor(readonly maxQueue: number) {
    super('ANR_ERR_OVERLOADED', `the worker pool already holds ${maxQueue} calls (--max-queue)`);
  }
}

/** A worker thread crashed, exited or was replaced while running the call. */
export class WorkerFailedError extends RunnerError {
  constructor(message: string) {
    super('ANR_ERR_WORKER_FAILED', message);
  }
}

/** The metrics endpoint (`--metrics-addr`) cannot listen: address in use, not local, or not permitted. */
export class MetricsEndpointError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ANR_ERR_METRICS_ENDPOINT', message, options);
  }
}

/** The runner is shutting down and will not finish this call. Answered SERVICE_UNAVAILABLE. */
export class ShuttingDownError extends RunnerError {
  constructor() {
    super('ANR_ERR_SHUTTING_DOWN', 'the runner is shutting down');
  }
}

/** The one mapping from a failure to the wire error code the gateway sees. */
export function wireErrCode(err: unknown): ErrCode {
  if (err instanceof ConfTokenNotFoundError) return ErrCode.ConfTokenNotFound;
  if (err instanceof MalformedPayloadError || err instanceof UnexpectedRpcTypeError) return ErrCode.BadRequest;
  return ErrCode.ServiceUnavailable;
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return 'non-printable error value';
  }
}
