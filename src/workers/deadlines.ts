/**
 * Call deadlines with one coarse shared timer instead of a setTimeout per call. Every call gets the
 * same timeout, so insertion order is expiry order and a tick only looks at the expired head.
 */
export interface DeadlineHandle {
  clear(): void;
}

interface Pending extends DeadlineHandle {
  expiresAt: number;
  onExpire: () => void;
}

export class Deadlines {
  readonly timeoutMs: number;
  #pending = new Set<Pending>();
  #timer: NodeJS.Timeout | null = null;
  #tickMs: number;
  readonly #now: () => number;

  /**
   * `now`: a monotonic clock in ms, `performance.now` by default. Tests pass the fake clock of
   * node:test's mock timers, which does not cover `performance.now`, so expiry is tested without
   * waiting (and without flaking on a busy machine).
   */
  constructor(timeoutMs: number, now: () => number = () => performance.now()) {
    this.timeoutMs = timeoutMs;
    this.#now = now;
    // Granularity of about 1/8 of the timeout: a 56 s deadline is checked every second.
    this.#tickMs = Math.min(1000, Math.max(5, Math.floor(timeoutMs / 8)));
  }

  track(onExpire: () => void): DeadlineHandle {
    const pending = this.#pending;
    const entry: Pending = {
      expiresAt: this.#now() + this.timeoutMs,
      onExpire,
      clear: () => {
        pending.delete(entry);
      },
    };
    pending.add(entry);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      this.#timer.unref();
    }
    return entry;
  }

  #tick(): void {
    const now = this.#now();
    for (const entry of this.#pending) {
      if (entry.expiresAt > now) break;
      this.#pending.delete(entry);
      try {
        entry.onExpire();
      } catch (err) {
        // One broken expiry must not end the tick for the calls behind it.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (this.#pending.size === 0) this.close();
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
