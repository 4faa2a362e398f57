/**
 * Conf tokens -> prepared plugin chains (DECISIONS 13). Entries live 1.2 x the conf lifetime after
 * their last use (the gateway may present a token up to ~1.9 x T after it was issued, PROTOCOL §4.3,
 * and an expired one self-heals through CONF_TOKEN_NOT_FOUND); at most `maxTokens` live at once,
 * least recently used evicted first, so a burst of new confs cannot push out the tokens in use.
 */
import { randomInt } from 'node:crypto';
import type { PreparedPlugin } from './chain.js';
import type { Segment } from './placement.js';

export interface ConfSource {
  readonly name: string;
  readonly value: string;
}

export interface ConfEntry {
  readonly token: number;
  /** The conf list as the gateway sent it (UTF-8 decoded), in order. */
  readonly source: readonly ConfSource[];
  /** Why every call with this token is denied (fail closed, DECISIONS 1), or null. */
  denial: Denial | null;
  requestChain: readonly PreparedPlugin[];
  responseChain: readonly PreparedPlugin[];
  /** Plugins listed in the conf that have no filter for a phase; warned about once when that phase runs. */
  missingIn: { request: readonly string[]; response: readonly string[] };
  /** The plugin generation the chains were built from; a reload rebuilds them on next use. */
  generation: number;
  /** Where each chain's plugins run, as of a placement version (computed on first use). */
  plans: { version: number; request: ChainPlan; response: ChainPlan } | null;
  warned: { request: boolean; response: boolean };
  key: string | null;
  fingerprint: string;
  lastUsedMs: number;
  /** When the entry last moved to the recent end of the LRU order. */
  movedAtMs: number;
}

/** A conf the runner cannot run: every call with its token answers Stop 503. */
export interface Denial {
  /**
   * The 503 body the client gets: the plugin's name and a stable reason, nothing from the conf
   * value or the plugin's error text (which may quote the conf, secrets included).
   */
  readonly reason: string;
  /** The same with the plugin's error text, for the runner's log (the operator's eyes only). */
  readonly detail: string;
}

export type NewConfEntry = Omit<ConfEntry, 'token' | 'lastUsedMs' | 'movedAtMs' | 'warned' | 'plans'>;

/** A chain split by where its plugins run. */
export interface ChainPlan {
  readonly segments: readonly Segment[];
  /** The whole chain runs on the main thread. */
  readonly inline: boolean;
  /** Some plugin in it is `auto` and currently inline: its CPU time is measured. */
  readonly metered: boolean;
  /** Some plugin in it declares `onError: 'deny'` (decides what shedding answers). */
  readonly denies: boolean;
}

export interface ConfCacheOptions {
  ttlMs: number;
  maxTokens: number;
  /** Called when an entry leaves the cache (expiry or eviction). */
  onDelete?: (entry: ConfEntry) => void;
  now?: () => number;
  /** First token to hand out; random by default so a restarted runner does not reissue old tokens. */
  firstToken?: number;
}

const TOKEN_MAX = 0xffffffff;
/**
 * Move an entry to the recent end at most once a second: an exact LRU would reorder the Map on every
 * call. Measured from the last move, not the last use, so a token used continuously still moves.
 */
const REORDER_AFTER_MS = 1000;

export class ConfCache {
  readonly ttlMs: number;
  readonly maxTokens: number;
  #entries = new Map<number, ConfEntry>();
  #byKey = new Map<string, number>();
  #next: number;
  #now: () => number;
  #onDelete: ((entry: ConfEntry) => void) | undefined;
  #sweeper: NodeJS.Timeout;

  constructor(options: ConfCacheOptions) {
    this.ttlMs = options.ttlMs;
    this.maxTokens = options.maxTokens;
    this.#now = options.now ?? Date.now;
    this.#onDelete = options.onDelete;
    const first = options.firstToken ?? randomInt(1, TOKEN_MAX);
    if (!Number.isInteger(first) || first < 1 || first > TOKEN_MAX) throw new RangeError(`firstToken must be an integer from 1 to ${TOKEN_MAX}`);
    this.#next = first;
    this.#sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, this.ttlMs / 4)));
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The live entry for `token`, refreshing its lifetime, or undefined (unknown or expired). */
  get(token: number): ConfEntry | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    const now = this.#now();
    if (now - entry.lastUsedMs > this.ttlMs) {
      this.#delete(entry);
      return undefined;
    }
    if (now - entry.movedAtMs > REORDER_AFTER_MS) {
      this.#entries.delete(token);
      this.#entries.set(token, entry);
      entry.movedAtMs = now;
    }
    entry.lastUsedMs = now;
    return entry;
  }

  /** The live token already issued for this idempotent key and the same conf, if any. */
  findByKey(key: string, fingerprint: string): ConfEntry | undefined {
    const token = this.#byKey.get(key);
    if (token === undefined) return undefined;
    // Compare first: a token for an older conf under the same key must not have its life extended.
    if (this.#entries.get(token)?.fingerprint !== fingerprint) return undefined;
    return this.get(token);
  }

  insert(fields: NewConfEntry): ConfEntry {
    const now = this.#now();
    const entry: ConfEntry = { ...fields, token: this.#allocate(), lastUsedMs: now, movedAtMs: now, warned: { request: false, response: false }, plans: null };
    this.#entries.set(entry.token, entry);
    if (entry.key !== null) this.#byKey.set(entry.key, entry.token);
    while (this.#entries.size > this.maxTokens) {
      const oldest = this.#entries.values().next().value as ConfEntry;
      this.#delete(oldest);
    }
    return entry;
  }

  /** Tokens are non-zero and never reused while live; 0 is skipped when the counter wraps. */
  #allocate(): number {
    for (;;) {
      const token = this.#next;
      this.#next = token >= TOKEN_MAX ? 1 : token + 1;
      if (!this.#entries.has(token)) return token;
    }
  }

  sweep(): void {
    const now = this.#now();
    for (const entry of [...this.#entries.values()]) {
      if (now - entry.lastUsedMs > this.ttlMs) this.#delete(entry);
    }
  }

  #delete(entry: ConfEntry): void {
    this.#entries.delete(entry.token);
    if (entry.key !== null && this.#byKey.get(entry.key) === entry.token) this.#byKey.delete(entry.key);
    this.#onDelete?.(entry);
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}
