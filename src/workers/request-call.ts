/**
 * One HTTPReqCall as the plugins see it: the request (`PluginRequest`) and the actions on it
 * (`RequestActions`) on one object, turned into a Stop, a Rewrite diff or no action at the end.
 */
import type { HeadersInit, PluginRequest, RequestActions, TextOrBytes } from '../plugin.js';
import { METHODS } from '../protocol/constants.js';
import type { Action, HttpReqCallReq } from '../protocol/messages.js';
import { EMPTY, bodyToSet, bytesEqual, formatIp, toBuffer, toBytes, utf8 } from './bytes.js';
import { CallBase, type ExtraInfoPort } from './call-base.js';
import { RequestArgs, RequestHeaders, ResponseHeaderOps } from './headers.js';

export function checkStatus(status: number, what: string): void {
  if (!Number.isInteger(status) || (status !== 0 && (status < 100 || status > 599))) {
    throw new TypeError(`${what} must be 0 or an integer HTTP status from 100 to 599 (got ${String(status)})`);
  }
}

function applyHeadersInit(ops: ResponseHeaderOps, init: HeadersInit): void {
  // Within one init the first entry of a name replaces, later ones add (the gateway's set-then-add).
  const seen = new Set<string>();
  const put = (name: string, value: TextOrBytes): void => {
    const key = name.toLowerCase();
    if (seen.has(key)) ops.add(name, value);
    else {
      seen.add(key);
      ops.set(name, value);
    }
  };
  if (Symbol.iterator in init) {
    for (const [name, value] of init as Iterable<readonly [string, TextOrBytes]>) put(name, value);
    return;
  }
  for (const [name, value] of Object.entries(init)) {
    if (Array.isArray(value)) for (const v of value as TextOrBytes[]) put(name, v);
    else put(name, value as TextOrBytes);
  }
}

export class RequestCall extends CallBase implements PluginRequest, RequestActions {
  #req: HttpReqCallReq;
  #headers: RequestHeaders | null = null;
  #args: RequestArgs | null = null;
  #respHeaders: ResponseHeaderOps | null = null;
  #newPath: Uint8Array | null = null;
  #newBody: Buffer | null = null;
  #body: Promise<Buffer | null> | null = null;
  #stop: { status: number; headers: HeadersInit | undefined; body: Uint8Array | null } | null = null;

  constructor(req: HttpReqCallReq, port: ExtraInfoPort) {
    super(req.id, port);
    this.#req = req;
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
    return (this.#body ??= this.ask({ type: 'reqBody' }).then((b) => (b === null ? null : toBuffer(b))));
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
    if (headers !== undefined && (headers === null || typeof headers !== 'object')) throw new TypeError('stop() headers must be an object or [name, value] pairs');
    // Validate now, inside the filter, so a bad header fails the way the plugin's onError says.
    if (headers !== undefined) applyHeadersInit(new ResponseHeaderOps(), headers);
    this.#stop = { status, headers, body: body === undefined ? null : toBytes(body, 'stop() body') };
  }

  setPath(path: TextOrBytes): void {
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
      const ops = new ResponseHeaderOps();
      if (this.#respHeaders) for (const [key, op] of this.#respHeaders.ops) ops.ops.set(key, op && { name: op.name, values: [...op.values] });
      if (headers !== undefined) applyHeadersInit(ops, headers);
      return { type: 'stop', status, headers: ops.entries(), body: body && body.byteLength > 0 ? body : null };
    }
    const path = this.#newPath !== null && !(this.#req.path && bytesEqual(this.#newPath, this.#req.path)) ? this.#newPath : null;
    const headers = this.#headers?.diff() ?? null;
    const args = this.#args?.diff() ?? null;
    const respHeaders = this.#respHeaders?.entries() ?? null;
    const body = this.#newBody;
    if (path === null && headers === null && args === null && respHeaders === null && body === null) return null;
    return { type: 'rewrite', path, headers, args, respHeaders, body };
  }
}
