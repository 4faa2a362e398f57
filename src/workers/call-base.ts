/** What a call shares in both phases: its id, ExtraInfo access with per-call caching, and abort. */
import type { Plugin } from '../plugin.js';
import type { ExtraInfoQuery } from '../protocol/messages.js';
import { utf8 } from './bytes.js';

/**
 * How a call asks the gateway for a variable or a body: one ExtraInfo round trip on the call's own
 * connection (PROTOCOL §3.3). Implementations serialise queries: the gateway answers strictly one
 * query at a time.
 */
export interface ExtraInfoPort {
  query(query: ExtraInfoQuery): Promise<Uint8Array | null>;
}

export abstract class CallBase {
  readonly id: number;
  /** The plugin whose filter is running (named in timeout errors and logs). */
  current: Plugin | null = null;
  /** Set once the call's result no longer matters (deadline, disconnect, shutdown). */
  abortReason: Error | null = null;
  #port: ExtraInfoPort;
  #vars: Map<string, Promise<Uint8Array | null>> | null = null;
  #controller: AbortController | null = null;

  constructor(id: number, port: ExtraInfoPort) {
    this.id = id;
    this.#port = port;
  }

  #finished = false;

  protected ask(query: ExtraInfoQuery): Promise<Uint8Array | null> {
    if (this.abortReason !== null) return Promise.reject(this.abortReason);
    // A query after the reply would reach the gateway outside this call (or inside the next one).
    if (this.#finished) return Promise.reject(new Error('the call has already been answered: ExtraInfo is only available while the filter runs'));
    return this.#port.query(query);
  }

  /** The reply is being sent: no more gateway queries for this call. */
  finish(): void {
    this.#finished = true;
  }

  varBytes(name: string): Promise<Uint8Array | null> {
    if (typeof name !== 'string' || name === '') return Promise.reject(new TypeError('var(name) needs a non-empty string'));
    this.#vars ??= new Map();
    let pending = this.#vars.get(name);
    if (pending === undefined) {
      pending = this.ask({ type: 'var', name });
      this.#vars.set(name, pending);
    }
    return pending;
  }

  async var(name: string): Promise<string | null> {
    const bytes = await this.varBytes(name);
    return bytes === null ? null : utf8(bytes);
  }

  /** Created on first use: most calls never look at it. */
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.abortReason !== null && !this.#controller.signal.aborted) this.#controller.abort(this.abortReason);
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    if (this.abortReason !== null) return;
    this.abortReason = reason;
    this.#controller?.abort(reason);
  }
}
