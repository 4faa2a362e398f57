/**
 * Plugin histograms of the pool's worker threads. Each thread records its filters' times into its
 * own staging arrays (no message per call) and sends what it recorded since its previous snapshot
 * when the main thread asks: before a scrape of the endpoint, a summary line, or the shutdown.
 *
 * The requests and snapshots travel on a BroadcastChannel named per runner, not on the pool's
 * batch ports: no thread bookkeeping is needed to reach every thread (a replacement thread after a
 * crash, or the retiring pool after a reload, answers too), and the batch format stays the pool's
 * own. A snapshot is a delta: once merged on the main thread nothing is counted twice, and a thread
 * that answers late is merged whenever its answer arrives.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { Plugin } from '../plugin.js';
import type { FilterMeter } from '../workers/chain.js';
import { LatencyHistogram, type SparseCounts } from './histogram.js';

/** Added to a pool thread's `workerData`: the runner's channel name, or null with metrics off. */
export interface WorkerMetricsInit {
  metricsChannel: string | null;
}

export interface WorkerSnapshot {
  type: 'snapshot';
  seq: number;
  threadId: number;
  /** [phase (0 request, 1 response), plugin name, staged counts, sum of values (us)]. */
  plugins: Array<[number, string, SparseCounts, number]>;
}

interface CollectRequest {
  type: 'collect';
  seq: number;
}

const requestsOf = (name: string): string => `${name}:collect`;
const snapshotsOf = (name: string): string => `${name}:snapshot`;

/** A pool thread's side. */
export class WorkerRecorder {
  readonly #series: [Map<string, LatencyHistogram>, Map<string, LatencyHistogram>] = [new Map(), new Map()];
  readonly #requests: BroadcastChannel;
  readonly #snapshots: BroadcastChannel;

  constructor(channel: string) {
    this.#requests = new BroadcastChannel(requestsOf(channel));
    this.#snapshots = new BroadcastChannel(snapshotsOf(channel));
    this.#requests.onmessage = (event) => {
      const request = (event as { data: CollectRequest | undefined }).data;
      if (request?.type === 'collect') this.#snapshots.postMessage(this.take(request.seq));
    };
    // Neither keeps the thread alive: piscina decides when it ends.
    this.#requests.unref();
    this.#snapshots.unref();
  }

  /** Wraps the thread's own meter (auto placement) so each filter is also recorded for `phase`. */
  meter(phase: number, inner: FilterMeter): FilterMeter {
    const series = this.#series[phase];
    return (plugin: Plugin, cpuUs: number, endMs: number) => {
      let h = series.get(plugin.name);
      if (h === undefined) series.set(plugin.name, (h = new LatencyHistogram()));
      h.record(cpuUs);
      inner(plugin, cpuUs, endMs);
    };
  }

  take(seq: number): WorkerSnapshot {
    const plugins: WorkerSnapshot['plugins'] = [];
    for (let phase = 0; phase < 2; phase++) {
      for (const [name, h] of this.#series[phase]) {
        const sum = h.sum;
        const counts = h.takeSparse();
        h.sum = 0;
        if (counts.length > 0) plugins.push([phase, name, counts, sum]);
      }
    }
    return { type: 'snapshot', seq, threadId, plugins };
  }

  close(): void {
    this.#requests.close();
    this.#snapshots.close();
  }
}

/** The main thread's side: asks every thread of the runner for its snapshot and merges them. */
export class WorkerCollector {
  readonly name: string;
  readonly #requests: BroadcastChannel;
  readonly #snapshots: BroadcastChannel;
  readonly #merge: (snapshot: WorkerSnapshot) => void;
  #seq = 0;
  #waiting: { seq: number; answered: number; expected: number; done: () => void } | null = null;

  constructor(name: string, merge: (snapshot: WorkerSnapshot) => void) {
    this.name = name;
    this.#merge = merge;
    this.#requests = new BroadcastChannel(requestsOf(name));
    this.#snapshots = new BroadcastChannel(snapshotsOf(name));
    this.#snapshots.onmessage = (event) => {
      const snapshot = (event as { data: WorkerSnapshot | undefined }).data;
      if (snapshot?.type !== 'snapshot') return;
      this.#merge(snapshot);
      const waiting = this.#waiting;
      if (waiting !== null && snapshot.seq === waiting.seq && ++waiting.answered >= waiting.expected) waiting.done();
    };
    this.#requests.unref();
    this.#snapshots.unref();
  }

  /**
   * Ask for snapshots and wait until `expected` threads answered or `timeoutMs` passed (a thread
   * busy in a long filter answers after it). Resolves with the number of threads that did not answer.
   */
  collect(expected: number, timeoutMs: number): Promise<number> {
    if (expected <= 0) return Promise.resolve(0);
    const seq = ++this.#seq;
    return new Promise<number>((resolve) => {
      const waiting = {
        seq,
        answered: 0,
        expected,
        done: () => {
          clearTimeout(timer);
          if (this.#waiting === waiting) this.#waiting = null;
          resolve(Math.max(0, expected - waiting.answered));
        },
      };
      const timer = setTimeout(waiting.done, timeoutMs);
      // An earlier request still waiting is superseded: this one's answers include its deltas.
      this.#waiting?.done();
      this.#waiting = waiting;
      this.#requests.postMessage({ type: 'collect', seq } satisfies CollectRequest);
    });
  }

  close(): void {
    this.#waiting?.done();
    this.#requests.close();
    this.#snapshots.close();
  }
}
