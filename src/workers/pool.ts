/**
 * The worker pool, main-thread side. A wake-up round trip between threads costs tens of
 * microseconds here whatever carries it (PERF-NOTES), so calls are handed over in batches: each
 * thread has at most one batch outstanding, and the calls that arrive while every thread is busy
 * leave together with the next one. Under load one wake-up carries many calls; when idle a call
 * leaves at once. Payloads are copied into a shared buffer, which the worker copies each call out
 * of before decoding it (pool-worker.ts, callBytes), and most reply frames come back in the same
 * buffer.
 *
 * piscina supervises the threads (start, replace after a crash, terminate); the batches travel on
 * each thread's own channel (see pool-worker.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Logger } from 'pino';
import { CallTimeoutError, OverloadedError, ShuttingDownError, WorkerFailedError, describe } from '../errors.js';
import type { WorkerMetricsInit } from '../metrics/worker-channel.js';
import type { ExtraInfoQuery } from '../protocol/messages.js';
import { compact } from './bytes.js';
import type { CallBase } from './call-base.js';
import type { ConfSource } from './conf-cache.js';
import type { PlacementTable } from './placement.js';
import type { PluginRegistry } from './plugin-registry.js';
import {
  CALL,
  CALL_FIELDS,
  OUTCOME,
  RESULT_FIELDS,
  isWorkerHello,
  type BatchMessage,
  type CallOutcome,
  type CallState,
  type DoneMessage,
  type FilterStats,
  type MainMessage,
  type OutcomeError,
  type WorkerInit,
  type WorkerMessage,
} from './pool-messages.js';

export interface WorkerPoolOptions {
  threads: number;
  pluginPaths: readonly string[];
  /** Calls waiting for or running on the pool before new ones are shed. */
  maxQueue: number;
  registry: PluginRegistry;
  placement: PlacementTable;
  logger: Logger;
  /** The runner's metrics channel: threads record their filters' times and answer on it. Default: none. */
  metricsChannel?: string | null;
}

/** A call's segment for the pool, as the call handler describes it. */
export interface PoolRequest {
  phase: number;
  payload: Uint8Array;
  token: number;
  fingerprint: string;
  source: readonly ConfSource[];
  from: number;
  to: number;
  /** The segment ends the chain: the worker encodes the reply frame. */
  last: boolean;
  /** What earlier segments accumulated, or null when nothing yet. */
  state: CallState | null;
  /** Set by the pool when the call leaves in a batch (`performance.now()`): the end of its queue wait. */
  dispatchedMs: number;
}

interface Thread {
  threadId: number;
  port: MessagePort;
  /** Batches sent and not answered yet, oldest first (the thread answers in order). */
  batches: Batch[];
  /** Tokens whose conf it was sent. */
  confs: Set<number>;
}

interface Batch {
  seq: number;
  thread: Thread;
  buffer: SharedArrayBuffer;
  /** Calls in the batch, and those not settled yet. */
  calls: number;
  open: number;
  /** Some call was cancelled: the worker may still read the buffer, so it is not reused. */
  tainted: boolean;
  /** Back in the free list: a buffer must be handed out to one batch at a time. */
  recycled: boolean;
  /** The thread has answered it (calls still waiting on awaits report on their own). */
  answered: boolean;
}

interface Pending {
  id: number;
  call: CallBase;
  request: PoolRequest;
  resolve: (outcome: CallOutcome) => void;
  reject: (err: Error) => void;
  batch: Batch | null;
}

export interface PoolStats {
  threads: number;
  batches: number;
  calls: number;
  shed: number;
  workerRestarts: number;
}

/**
 * A batch is cut to about this much worker time. Light calls (a few us each) still share one
 * wake-up by the dozens; heavy ones (hundreds of us) go one at a time to whichever thread is free,
 * so no thread sits idle while another works through a long batch: a thread coming free would
 * otherwise take every queued call, leaving the others nothing until it answers.
 */
const BATCH_BUDGET_US = 250;
/** Weight of the newest batch in the running average of worker time per call. */
const COST_WEIGHT = 0.2;
/** Batches seen before the average sizes batches: the first ones run cold (JIT, lazy imports). */
const COST_WARMUP_BATCHES = 16;
/**
 * Above this worker time per call a thread gets a second batch before it answers the first: it
 * starts on the next call at once instead of idling while the main thread takes its answer and
 * dispatches more. Light calls keep one batch per thread, so more of them share a wake-up.
 */
const PIPELINE_ABOVE_US = 50;

/**
 * Shared buffers of this size are reused across batches; a batch needing more gets its own. A
 * request payload is about 1 KiB, so this holds dozens of calls with their replies.
 */
const SLAB_BYTES = 64 * 1024;
/**
 * Free slabs kept. A batch whose calls await (ExtraInfo from a worker) holds its slab until the
 * last one reports, so many can be out at once; allocating a new SharedArrayBuffer for each batch
 * instead grew RSS by a third in five minutes (bench/soak.ts), V8 reclaiming them lazily.
 */
const MAX_FREE_SLABS = 256;
/** Room kept after the payloads for reply frames (most replies are far smaller than requests). */
const REPLY_ROOM = 0.5;

export class WorkerPool {
  readonly stats: PoolStats;
  readonly #piscina: Piscina;
  readonly #maxQueue: number;
  readonly #registry: PluginRegistry;
  readonly #placement: PlacementTable;
  readonly #log: Logger;
  readonly #threads = new Map<number, Thread>();
  readonly #pending = new Map<number, Pending>();
  #queued: Pending[] = [];
  #scheduled = false;
  #nextId = 1;
  #nextSeq = 1;
  #slabs: SharedArrayBuffer[] = [];
  /** Running average of worker time per call (us), from the threads' `busyUs`. */
  #usPerCall = 0;
  #closing = false;

  constructor(options: WorkerPoolOptions) {
    this.#maxQueue = options.maxQueue;
    this.#registry = options.registry;
    this.#placement = options.placement;
    this.#log = options.logger;
    this.stats = { threads: options.threads, batches: 0, calls: 0, shed: 0, workerRestarts: 0 };
    this.#piscina = new Piscina({
      filename: new URL('./pool-worker.js', import.meta.url).href,
      minThreads: options.threads,
      maxThreads: options.threads,
      // Threads stay up: starting one (and importing the plugins) costs far more than idling.
      idleTimeout: Number.MAX_SAFE_INTEGER,
      // No piscina tasks run, so nothing to wait for between them; the thread's event loop must
      // stay free for its own channel.
      atomics: 'disabled',
      workerData: { pluginPaths: [...options.pluginPaths], metricsChannel: options.metricsChannel ?? null } satisfies WorkerInit & WorkerMetricsInit,
    });
    this.#piscina.on('message', (message: unknown) => {
      if (isWorkerHello(message)) this.#adopt(message.threadId, message.port);
    });
    // An uncaught error in a plugin's async code ends its thread; piscina replaces it, and the
    // thread's channel closing fails its calls (#adopt).
    this.#piscina.on('error', (err: unknown) => this.#log.warn({ err: describe(err) }, 'a worker thread crashed; it is replaced'));
  }

  /** Calls waiting for or running on the pool. */
  get load(): number {
    return this.#pending.size;
  }

  /** Resolves once every thread has loaded the plugins and opened its channel. */
  async ready(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.#threads.size < this.stats.threads) {
      if (Date.now() > deadline) throw new WorkerFailedError(`worker threads did not start within 10 s (${this.#threads.size} of ${this.stats.threads})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Queue a call's segment. Throws OverloadedError at once when `maxQueue` calls are already
   * waiting or running.
   */
  run(call: CallBase, request: PoolRequest): Promise<CallOutcome> {
    if (this.#closing) throw new ShuttingDownError();
    if (this.#pending.size >= this.#maxQueue) {
      this.stats.shed++;
      throw new OverloadedError(this.#maxQueue);
    }
    return new Promise<CallOutcome>((resolve, reject) => {
      const pending: Pending = { id: this.#nextId++, call, request, resolve, reject, batch: null };
      this.#pending.set(pending.id, pending);
      this.#queued.push(pending);
      call.abortHook = (reason) => this.#cancel(pending, reason);
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: it runs after the poll phase has delivered every
        // connection's data of this turn, so the calls they carry can share one hand-off.
        setImmediate(this.#flush);
      }
    });
  }

  #flush = (): void => {
    this.#scheduled = false;
    const depth = this.stats.batches > COST_WARMUP_BATCHES && this.#usPerCall > PIPELINE_ABOVE_US ? 2 : 1;
    const idle: Thread[] = [];
    for (const thread of this.#threads.values()) if (thread.batches.length < depth) idle.push(thread);
    // Fewest outstanding first: a thread with nothing to do gets work before one that is busy.
    idle.sort((a, b) => a.batches.length - b.batches.length);
    if (idle.length === 0) return;
    const live = this.#queued.filter((p) => this.#pending.has(p.id));
    if (live.length === 0) {
      this.#queued = [];
      return;
    }
    const cap = this.stats.batches > COST_WARMUP_BATCHES ? Math.max(1, Math.floor(BATCH_BUDGET_US / this.#usPerCall)) : live.length;
    const size = Math.min(cap, Math.ceil(live.length / Math.min(idle.length, live.length)));
    let taken = 0;
    for (const thread of idle) {
      if (taken >= live.length) break;
      this.#dispatch(thread, live.slice(taken, taken + size));
      taken += size;
    }
    // The rest waits for the next thread that answers.
    this.#queued = live.slice(taken);
  };

  #dispatch(thread: Thread, group: Pending[]): void {
    let bytes = 0;
    for (const p of group) bytes += p.request.payload.byteLength;
    const want = Math.ceil(bytes * (1 + REPLY_ROOM));
    const buffer = want <= SLAB_BYTES ? (this.#slabs.pop() ?? new SharedArrayBuffer(SLAB_BYTES)) : new SharedArrayBuffer(want);
    const view = new Uint8Array(buffer);
    const calls: number[] = [];
    let states: Array<CallState | null> | null = null;
    const confs: BatchMessage['confs'] = [];
    let offset = 0;
    for (let i = 0; i < group.length; i++) {
      const { payload, phase, token, from, to, last, state, fingerprint, source } = group[i].request;
      view.set(payload, offset);
      // Laid out by the same CALL offsets the worker reads with.
      const at = calls.length;
      // Pushed, not length-extended: a holey array is slower to clone.
      for (let f = 0; f < CALL_FIELDS; f++) calls.push(0);
      calls[at + CALL.id] = group[i].id;
      calls[at + CALL.phase] = phase;
      calls[at + CALL.offset] = offset;
      calls[at + CALL.length] = payload.byteLength;
      calls[at + CALL.token] = token;
      calls[at + CALL.from] = from;
      calls[at + CALL.to] = to;
      calls[at + CALL.last] = last ? 1 : 0;
      offset += payload.byteLength;
      if (state !== null) (states ??= new Array<CallState | null>(group.length).fill(null))[i] = state;
      if (!thread.confs.has(token)) {
        thread.confs.add(token);
        confs.push([token, fingerprint, source]);
      }
    }
    const batch: Batch = { seq: this.#nextSeq++, thread, buffer, calls: group.length, open: group.length, tainted: false, recycled: false, answered: false };
    // One clock read per batch, not per call.
    const now = performance.now();
    for (const p of group) {
      p.batch = batch;
      p.request.dispatchedMs = now;
    }
    thread.batches.push(batch);
    this.stats.batches++;
    this.stats.calls += group.length;
    thread.port.postMessage({ type: 'batch', seq: batch.seq, buffer, used: offset, calls, states, confs } satisfies MainMessage);
  }

  #onDone(thread: Thread, done: DoneMessage): void {
    const batch = thread.batches[0];
    if (batch === undefined || batch.seq !== done.seq) return;
    thread.batches.shift();
    batch.answered = true;
    this.#record(done.stats);
    const perCall = done.busyUs / Math.max(1, batch.calls);
    this.#usPerCall = this.#usPerCall === 0 ? perCall : this.#usPerCall + COST_WEIGHT * (perCall - this.#usPerCall);
    const view = new Uint8Array(batch.buffer);
    for (let i = 0; i < done.results.length; i += RESULT_FIELDS) {
      const id = done.results[i];
      const kind = done.results[i + 1];
      const a = done.results[i + 2];
      let outcome: CallOutcome;
      if (kind === OUTCOME.frameInBuffer) {
        // Copied out: the buffer is reused for a later batch while the socket write is pending.
        outcome = { id, kind: 'frame', frame: view.slice(a, a + done.results[i + 3]) };
      } else if (kind === OUTCOME.frame) outcome = { id, kind: 'frame', frame: done.extras[a] as Uint8Array };
      else if (kind === OUTCOME.state) outcome = { id, kind: 'state', state: done.extras[a] as CallState };
      else outcome = { id, kind: 'error', error: done.extras[a] as OutcomeError };
      this.#settle(outcome);
    }
    this.#recycle(batch);
    if (this.#queued.length > 0) this.#flush();
  }

  #settle(outcome: CallOutcome): void {
    const p = this.#pending.get(outcome.id);
    if (p === undefined) return;
    this.#pending.delete(p.id);
    p.call.abortHook = null;
    if (p.batch !== null) {
      p.batch.open--;
      this.#recycle(p.batch);
    }
    p.resolve(outcome);
  }

  #fail(p: Pending, err: Error): void {
    if (!this.#pending.delete(p.id)) return;
    p.call.abortHook = null;
    if (p.batch !== null) {
      p.batch.open--;
      p.batch.tainted = true;
    }
    p.reject(err);
  }

  /** A slab goes back for reuse once its batch is answered and no call of it can still read it. */
  #recycle(batch: Batch): void {
    if (!batch.answered || batch.open > 0 || batch.tainted || batch.recycled) return;
    // Once only: settling the last call and finishing the batch both get here.
    batch.recycled = true;
    if (batch.buffer.byteLength === SLAB_BYTES && this.#slabs.length < MAX_FREE_SLABS) this.#slabs.push(batch.buffer);
  }

  /** The call was aborted on the main thread (deadline, disconnect, shutdown). */
  #cancel(p: Pending, reason: Error): void {
    if (!this.#pending.has(p.id)) return;
    const thread = p.batch?.thread;
    this.#fail(p, reason);
    // Past its deadline the thread is likely stuck (a busy loop): replace it. Its other calls fail
    // when its channel closes; piscina starts a new thread.
    if (reason instanceof CallTimeoutError && thread !== undefined) {
      this.#log.warn({ threadId: thread.threadId, plugin: reason.plugin }, 'a call passed its deadline on a worker thread; the thread is replaced');
      void this.#piscina.threads.find((t) => t.threadId === thread.threadId)?.terminate();
    }
  }

  #adopt(threadId: number, port: MessagePort): void {
    const thread: Thread = { threadId, port, batches: [], confs: new Set() };
    this.#threads.set(threadId, thread);
    port.on('message', (message: WorkerMessage) => {
      switch (message.type) {
        case 'done':
          this.#onDone(thread, message);
          break;
        case 'outcome':
          this.#record(message.stats);
          this.#settle(message.outcome);
          break;
        case 'ask':
          this.#relay(port, message.id, message.ask, message.query);
          break;
      }
    });
    port.on('close', () => {
      this.#threads.delete(threadId);
      if (this.#closing) return;
      this.stats.workerRestarts++;
      const failure = new WorkerFailedError(`worker thread ${threadId} exited`);
      for (const p of [...this.#pending.values()]) if (p.batch?.thread === thread) this.#fail(p, failure);
    });
    // The replacement of a crashed or stuck thread is ready only here (its plugins imported), which
    // under load can be long after the old one exited: this line is the moment it takes calls.
    this.#log.debug({ threadId }, 'worker thread ready');
    if (this.#queued.length > 0) this.#flush();
  }

  /** A worker's filter asked for ExtraInfo: ask the gateway on the call's own connection. */
  #relay(port: MessagePort, id: number, ask: number, query: ExtraInfoQuery): void {
    const p = this.#pending.get(id);
    if (p === undefined) {
      port.postMessage({ type: 'refused', ask, message: 'the call is no longer open' } satisfies MainMessage);
      return;
    }
    p.call.queryGateway(query).then(
      (result) => port.postMessage({ type: 'answer', ask, result: result && compact(result) } satisfies MainMessage),
      (err: unknown) => port.postMessage({ type: 'refused', ask, message: describe(err) } satisfies MainMessage),
    );
  }

  #record(stats: FilterStats): void {
    for (const [name, calls, cpuUs] of stats) {
      const plugin = this.#registry.get(name);
      if (plugin !== undefined) this.#placement.record(plugin, calls, cpuUs);
    }
  }

  /** Tell every thread to forget expired tokens. */
  dropTokens(tokens: readonly number[]): void {
    if (tokens.length === 0) return;
    const message: MainMessage = { type: 'drop', tokens: [...tokens] };
    for (const thread of this.#threads.values()) {
      for (const token of tokens) thread.confs.delete(token);
      thread.port.postMessage(message);
    }
  }

  /** Fail whatever is still pending and stop the threads. */
  async close(): Promise<void> {
    this.#closing = true;
    const reason = new ShuttingDownError();
    for (const p of [...this.#pending.values()]) this.#fail(p, reason);
    await this.#piscina.destroy();
  }
}
