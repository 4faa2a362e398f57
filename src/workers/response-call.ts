/** One HTTPRespCall as the plugins see it: call context and upstream response on one object. */
import type { ResponseCallRequest, TextOrBytes, UpstreamResponse } from '../plugin.js';
import type { HttpRespCallReq, HttpRespCallResp } from '../protocol/messages.js';
import { bodyToSet, compact, toBuffer } from './bytes.js';
import { CallBase, type ExtraInfoPort, type KnownVars } from './call-base.js';
import { ResponseHeaderList, type HeaderListState } from './headers.js';
import { checkStatus } from './request-call.js';

/** Everything a response call has accumulated, as structured-cloneable data. */
export interface ResponseCallState {
  vars: KnownVars;
  /** The upstream body once read (null: empty); undefined while not read. */
  body: Uint8Array | null | undefined;
  status: number;
  /** The header list with changes applied; null while untouched (the upstream's list applies). */
  headers: HeaderListState | null;
  newBody: Uint8Array | null;
}

export class ResponseCall extends CallBase implements ResponseCallRequest, UpstreamResponse {
  #req: HttpRespCallReq;
  #status: number;
  #headers: ResponseHeaderList;
  #newBody: Buffer | null = null;
  #body: Promise<Buffer | null> | null = null;
  #bodyValue: Buffer | null | undefined = undefined;
  #headersTouched = false;

  constructor(req: HttpRespCallReq, port: ExtraInfoPort, state?: ResponseCallState) {
    super(req.id, port);
    this.#req = req;
    this.#status = req.status;
    this.#headers = new ResponseHeaderList(() => req.headers);
    if (state !== undefined) this.importState(state);
  }

  /** Continue from the state another thread's segment of the chain left (it replaces this one's). */
  importState(state: ResponseCallState): void {
    this.importVars(state.vars);
    this.#status = state.status;
    if (state.headers !== null) {
      this.#headers.restore(state.headers);
      this.#headersTouched = true;
    }
    this.#newBody = state.newBody && toBuffer(state.newBody);
    if (state.body !== undefined) {
      this.#bodyValue = state.body === null ? null : toBuffer(state.body);
      this.#body = Promise.resolve(this.#bodyValue);
    }
  }

  get status(): number {
    return this.#status;
  }

  get headers(): ResponseHeaderList {
    return this.#headers;
  }

  /**
   * Asked of the gateway at most once per call: a second RespBody query finds the upstream body
   * drained and makes the gateway forward an empty body (PROTOCOL §3.3).
   */
  readBody(): Promise<Buffer | null> {
    // A copy: the caller's buffer (often one pre-encoded in parseConf and shared by every call)
    // must not be reachable for a later plugin to mutate.
    if (this.#newBody !== null) return Promise.resolve(Buffer.from(this.#newBody));
    return (this.#body ??= this.ask({ type: 'respBody' }).then((b) => (this.#bodyValue = b === null ? null : toBuffer(b))));
  }

  async readText(): Promise<string | null> {
    const body = await this.readBody();
    return body === null ? null : body.toString('utf8');
  }

  setStatus(status: number): void {
    // 0 would read back as a status but go out as "unchanged".
    if (status === 0) throw new TypeError('setStatus() must be an integer HTTP status from 100 to 599 (got 0)');
    checkStatus(status, 'setStatus()');
    this.#status = status;
  }

  setHeader(name: string, value: TextOrBytes): void {
    this.#headers.set(name, value);
    this.#headersTouched = true;
  }

  addHeader(name: string, value: TextOrBytes): void {
    this.#headers.add(name, value);
    this.#headersTouched = true;
  }

  deleteHeader(name: string): void {
    this.#headers.delete(name);
    this.#headersTouched = true;
  }

  setBody(body: TextOrBytes): void {
    this.#newBody = bodyToSet(body, 'setBody()');
  }

  /** Always the full header set (DECISIONS 7); status and body only when they changed. */
  toReply(): HttpRespCallResp {
    const body = this.#newBody;
    return {
      id: this.id,
      status: this.#status !== this.#req.status ? this.#status : 0,
      headers: this.#headers.replyEntries(body !== null),
      body,
    };
  }

  /** Nothing accumulated yet: no state needs to travel. */
  get pristine(): boolean {
    return !this.knowsVars && this.#bodyValue === undefined && this.#status === this.#req.status && !this.#headersTouched && this.#newBody === null;
  }

  exportState(): ResponseCallState {
    return {
      vars: this.knownVars(),
      body: this.#bodyValue === undefined || this.#bodyValue === null ? this.#bodyValue : compact(this.#bodyValue),
      status: this.#status,
      headers: this.#headersTouched ? this.#headers.export() : null,
      newBody: this.#newBody && compact(this.#newBody),
    };
  }
}
