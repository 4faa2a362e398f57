/**
 * One HTTPReqCall as the plugins see it: the request (`PluginRequest`) and the actions on it
 * (`RequestActions`) on one object, turned into a Stop, a Rewrite diff or no action at the end.
 * Its mutable state is plain data (`exportState`), so a chain can continue on another thread.
 */
import type { HeadersInit, PluginRequest, RequestActions, TextOrBytes } from '../plugin.js';
import { METHODS } from '../protocol/constants.js';
import type { Action, HttpReqCallReq } from '../protocol/messages.js';
import { EMPTY, bodyToSet, bytesEqual, compact, formatIp, toBuffer, toBytes, utf8 } from './bytes.js';
import { CallBase, type ExtraInfoPort, type KnownVars } from './call-base.js';
import { RequestArgs, RequestHeaders, ResponseHeaderOps, headerBytes, type HeaderOp } from './headers.js';

export function checkStatus(status: number, what: string): void {
  if (!Number.isInteger(status) || (status !== 0 && (status < 100 || status > 599))) {
    throw new TypeError(`${what} must be 0 or an integer HTTP status from 100 to 599 (got ${String(status)})`);
  }
}

/** A Stop's own headers as set/add steps: within one init the first entry of a name sets, later ones add. */
type StopHeader = [name: string, value: Uint8Array, add: boolean];

function stopHeaders(init: HeadersInit): StopHeader[] {
  if (init === null || typeof init !== 'object') throw new TypeError('stop() headers must be an object or [name, value] pairs');
  const seen = new Set<string>();
  const out: StopHeader[] = [];
  const put = (name: string, value: TextOrBytes): void => {
    const bytes = headerBytes(name, value, 'stop()');
    const key = name.toLowerCase();
    out.push([name, bytes, seen.has(key)]);
    seen.add(key);
  };
  if (Symbol.iterator in init) {
    for (const [name, value] of init as Iterable<readonly [string, TextOrBytes]>) put(name, value);
  } else {
    for (const [name, value] of Object.entries(init)) {
      if (Array.isArray(value)) for (const v of value as TextOrBytes[]) put(name, v);
      else put(name, value as TextOrBytes);
    }
  }
  return out;
}

/** Everything a request call has accumulated, as structured-cloneable data. */
export interface RequestCallState {
  vars: KnownVars;
  /** The request body once asked for (null: the request has none); undefined while not asked. */
  body: Uint8Array | null | undefined;
  headers: Array<[string, Uint8Array | null]>;
  args: Array<[string, Uint8Array[] | null]>;
  respHeaders: Array<[string, HeaderOp]>;
  path: Uint8Array | null;
  newBody: Uint8Array | null;
  stop: { status: number; headers: StopHeader[]; body: Uint8Array | null } | null;
}

export class RequestCall extends CallBase implements PluginRequest, RequestActions {
  #req: HttpReqCallReq;
  #headers: RequestHeaders | null = null;
  #args: RequestArgs | null = null;
  #respHeaders: ResponseHeaderOps | null = null;
  #newPath: Uint8Array | null = null;
  #newBody: Buffer | null = null;
  #body: Promise<Buffer | null> | null = null;
  #bodyValue: Buffer | null | undefined = undefined;
  #stop: RequestCallState['stop'] = null;

  constructor(req: HttpReqCallReq, port: ExtraInfoPort, state?: RequestCallState) {
    super(req.id, port);
    this.#req = req;
    if (state !== undefined) this.importState(state);
  }

  // ---- PluginRequest ----

  get method(): string {
    return METHODS[this.#req.method] ?? `METHOD_${this.#req.method}`;
  }

  get pathBytes(): Uint8Array {
    return this.#newPath ?? this.#req.path ?? EMPTY;
  }

  get path(): string {
    return utf8(this.pathBytes);
  }

  get srcIpBytes(): Uint8Array {
    return this.#req.srcIp ?? EMPTY;
  }

  get srcIp(): string {
    return formatIp(this.#req.srcIp);
  }

  get headers(): RequestHeaders {
    return (this.#headers ??= new RequestHeaders(() => this.#req.headers));
  }

  get args(): RequestArgs {
    return (this.#args ??= new RequestArgs(() => this.#req.args));
  }

  body(): Promise<Buffer | null> {
    // A copy: the caller's buffer (often one pre-encoded in parseConf and shared by every call)
    // must not be reachable for a later plugin to mutate.
    if (this.#newBody !== null) return Promise.resolve(Buffer.from(this.#newBody));
    return (this.#body ??= this.ask({ type: 'reqBody' }).then((b) => (this.#bodyValue = b === null ? null : toBuffer(b))));
  }

  async text(): Promise<string | null> {
    const body = await this.body();
    return body === null ? null : body.toString('utf8');
  }

  // ---- RequestActions ----

  get stopped(): boolean {
    return this.#stop !== null;
  }

  stop(status = 200, headers?: HeadersInit, body?: TextOrBytes): void {
    checkStatus(status, 'stop() status');
    // Validated now, inside the filter, so a bad header fails the way the plugin's onError says.
    this.#stop = {
      status,
      headers: headers === undefined ? [] : stopHeaders(headers),
      body: body === undefined ? null : toBytes(body, 'stop() body'),
    };
  }

  setPath(path: TextOrBytes): void {
    // No header rules here: the gateway percent-encodes every control byte of the path (http-field.ts).
    this.#newPath = toBytes(path, 'setPath() path');
  }

  setHeader(name: string, value: TextOrBytes | readonly string[]): void {
    this.headers.set(name, value);
  }

  deleteHeader(name: string): void {
    this.headers.delete(name);
  }

  setArg(name: string, value: TextOrBytes | readonly TextOrBytes[]): void {
    this.args.set(name, value);
  }

  deleteArg(name: string): void {
    this.args.delete(name);
  }

  #resp(): ResponseHeaderOps {
    return (this.#respHeaders ??= new ResponseHeaderOps());
  }

  setRespHeader(name: string, value: TextOrBytes): void {
    this.#resp().set(name, value);
  }

  addRespHeader(name: string, value: TextOrBytes): void {
    this.#resp().add(name, value);
  }

  deleteRespHeader(name: string): void {
    this.#resp().delete(name);
  }

  setBody(body: TextOrBytes): void {
    this.#newBody = bodyToSet(body, 'setBody()');
  }

  // ---- result ----

  /** The reply's action: a Stop, a Rewrite carrying only what changed, or null (nothing to apply). */
  toAction(): Action {
    if (this.#stop !== null) {
      const { status, headers, body } = this.#stop;
      // Response headers set in the chain (before or after stop()) belong to the response this
      // Stop makes; stop()'s own headers win for the same name.
      const ops = new ResponseHeaderOps(this.#respHeaders?.export());
      for (const [name, value, add] of headers) ops.put(name, value, add);
      return { type: 'stop', status, headers: ops.entries(), body: body && body.byteLength > 0 ? body : null };
    }
    const path = this.#newPath !== null && !(this.#req.path !== null && bytesEqual(this.#newPath, this.#req.path)) ? this.#newPath : null;
    const headers = this.#headers?.diff() ?? null;
    const args = this.#args?.diff() ?? null;
    const respHeaders = this.#respHeaders?.entries() ?? null;
    const body = this.#newBody;
    if (path === null && headers === null && args === null && respHeaders === null && body === null) return null;
    return { type: 'rewrite', path, headers, args, respHeaders, body };
  }

  /** Nothing accumulated yet (the usual call entering the pool): no state needs to travel. */
  get pristine(): boolean {
    return (
      !this.knowsVars &&
      this.#bodyValue === undefined &&
      (this.#headers === null || this.#headers.changes.size === 0) &&
      (this.#args === null || this.#args.changes.size === 0) &&
      (this.#respHeaders === null || this.#respHeaders.size === 0) &&
      this.#newPath === null &&
      this.#newBody === null &&
      this.#stop === null
    );
  }

  /** The accumulated state, for the next segment of the chain on another thread. */
  exportState(): RequestCallState {
    const stop = this.#stop;
    return {
      vars: this.knownVars(),
      body: this.#bodyValue === undefined || this.#bodyValue === null ? this.#bodyValue : compact(this.#bodyValue),
      headers: this.#headers ? [...this.#headers.changes].map(([n, v]) => [n, v && compact(v)]) : [],
      args: this.#args ? [...this.#args.changes].map(([n, v]) => [n, v && v.map(compact)]) : [],
      respHeaders: this.#respHeaders?.export() ?? [],
      path: this.#newPath && compact(this.#newPath),
      newBody: this.#newBody && compact(this.#newBody),
      stop: stop && { status: stop.status, headers: stop.headers.map(([n, v, a]) => [n, compact(v), a]), body: stop.body && compact(stop.body) },
    };
  }

  /** Continue from the state another thread's segment of the chain left (it replaces this one's). */
  importState(state: RequestCallState): void {
    this.importVars(state.vars);
    if (state.body !== undefined) {
      this.#bodyValue = state.body === null ? null : toBuffer(state.body);
      this.#body = Promise.resolve(this.#bodyValue);
    }
    for (const [name, value] of state.headers) this.headers.changes.set(name, value);
    for (const [name, values] of state.args) this.args.changes.set(name, values);
    this.#respHeaders = state.respHeaders.length > 0 ? new ResponseHeaderOps(state.respHeaders) : null;
    this.#newPath = state.path;
    this.#newBody = state.newBody && toBuffer(state.newBody);
    this.#stop = state.stop;
  }
}
