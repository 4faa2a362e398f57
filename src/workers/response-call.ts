/** One HTTPRespCall as the plugins see it: call context and upstream response on one object. */
import type { ResponseCallRequest, TextOrBytes, UpstreamResponse } from '../plugin.js';
import type { HttpRespCallReq, HttpRespCallResp } from '../protocol/messages.js';
import { bodyToSet, toBuffer } from './bytes.js';
import { CallBase, type ExtraInfoPort } from './call-base.js';
import { ResponseHeaderList } from './headers.js';
import { checkStatus } from './request-call.js';

export class ResponseCall extends CallBase implements ResponseCallRequest, UpstreamResponse {
  #req: HttpRespCallReq;
  #status: number;
  #headers: ResponseHeaderList;
  #newBody: Buffer | null = null;
  #body: Promise<Buffer | null> | null = null;

  constructor(req: HttpRespCallReq, port: ExtraInfoPort) {
    super(req.id, port);
    this.#req = req;
    this.#status = req.status;
    this.#headers = new ResponseHeaderList(() => req.headers);
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
    return (this.#body ??= this.ask({ type: 'respBody' }).then((b) => (b === null ? null : toBuffer(b))));
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
  }

  addHeader(name: string, value: TextOrBytes): void {
    this.#headers.add(name, value);
  }

  deleteHeader(name: string): void {
    this.#headers.delete(name);
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
}
