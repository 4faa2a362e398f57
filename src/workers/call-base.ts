/** What a call shares in both phases: its id, ExtraInfo access with per-call caching, and abort. */
import type { Plugin } from '../plugin.js';
import type { ExtraInfoQuery } from '../protocol/messages.js';
import { compact, utf8 } from './bytes.js';

/** Variables the call already has: answered by the gateway, or fetched before dispatch. */
export type KnownVars = Array<[name: string, value: Uint8Array | null]>;

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
  /** Time spent waiting for the gateway's ExtraInfo answers (excluded from CPU estimates). */
  extraInfoWaitMs = 0;
  /** Called once when the call is aborted (the pool uses it to stop waiting on a worker). */
  abortHook: ((reason: Error) => void) | null = null;
  #port: ExtraInfoPort;
  #vars: Map<string, Promise<Uint8Array | null>> | null = null;
  /** The answered subset of #vars, kept as values so the call can move to another thread. */
  #known: Map<string, Uint8Array | null> | null = null;
  #controller: AbortController | null = null;

  constructor(id: number, port: ExtraInfoPort, vars?: KnownVars) {
    this.id = id;
    this.#port = port;
    if (vars !== undefined) this.importVars(vars);
  }

  protected get knowsVars(): boolean {
    return this.#known !== null && this.#known.size > 0;
  }

  /** Answered variables, compacted so a structured clone copies only their bytes. */
  knownVars(): KnownVars {
    return this.#known === null ? [] : [...this.#known].map(([name, value]) => [name, value && compact(value)]);
  }

  #finished = false;

  protected ask(query: ExtraInfoQuery): Promise<Uint8Array | null> {
    if (this.abortReason !== null) return Promise.reject(this.abortReason);
    // A query after the reply would reach the gateway outside this call (or inside the next one).
    if (this.#finished) return Promise.reject(new Error('the call has already been answered: ExtraInfo is only available while the filter runs'));
    const asked = performance.now();
    const waited = (): void => {
      this.extraInfoWaitMs += performance.now() - asked;
    };
    const answer = this.#port.query(query);
    answer.then(waited, waited);
    return answer;
  }

  /** An ExtraInfo round trip on behalf of this call's filters running on a worker thread. */
  queryGateway(query: ExtraInfoQuery): Promise<Uint8Array | null> {
    return this.ask(query);
  }

  /** Take over the variables another thread learned. */
  protected importVars(vars: KnownVars): void {
    for (const [name, value] of vars) {
      (this.#known ??= new Map()).set(name, value);
      (this.#vars ??= new Map()).set(name, Promise.resolve(value));
    }
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
      pending = this.ask({ type: 'var', name }).then((value) => {
        (this.#known ??= new Map()).set(name, value);
        return value;
      });
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
    const hook = this.abortHook;
    this.abortHook = null;
    hook?.(reason);
  }
}
