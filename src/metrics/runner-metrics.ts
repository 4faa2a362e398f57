/**
 * What the main thread records while metrics are on (`--metrics-addr`, or the summary line at
 * info): per RPC type a histogram per stage of a call, per plugin and phase a histogram of filter
 * time, and plain numeric counters. Everything is allocated up front or once per plugin; a call
 * records into numbers and typed arrays only. With metrics off none of this exists and the hot
 * path tests one `null`.
 *
 * One call's stages, from the connection's point of view (ms from `performance.now()`):
 *   started ─decode─ chainStart ─(chain, less queue and ExtraInfo waits)─ chainEnd ─encode_write─ written
 * `decode` is the payload decode, token lookup and chain plan; `queue` the wait for a worker thread
 * (pool segments only); `extra_info` the wait for the gateway's ExtraInfo answers (calls that asked).
 */
import { type Histogram, monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { decodeErrResp } from '../protocol/codec.js';
import { HEADER_BYTES, RpcType } from '../protocol/constants.js';
import { LatencyHistogram, type HistogramSummary } from './histogram.js';
import type { WorkerSnapshot } from './worker-channel.js';

export const RPC_TYPES = ['prepare_conf', 'http_req_call', 'http_resp_call', 'other'] as const;
export type RpcTypeName = (typeof RPC_TYPES)[number];
export const STAGES = ['total', 'decode', 'queue', 'chain', 'extra_info', 'encode_write'] as const;
export type StageName = (typeof STAGES)[number];
/** Indexed by `A6.Err.Code`; anything else is `other`. */
export const ERROR_CODES = ['bad_request', 'service_unavailable', 'conf_token_not_found', 'other'] as const;
export type ErrorCodeName = (typeof ERROR_CODES)[number];
export const PHASES = ['request', 'response'] as const;
export type PhaseName = (typeof PHASES)[number];

const SLOT_PREPARE = 0;
const SLOT_REQ = 1;
const SLOT_RESP = 2;
const SLOT_OTHER = 3;
const STAGE = { total: 0, decode: 1, queue: 2, chain: 3, extraInfo: 4, encodeWrite: 5 } as const;
const STAGE_COUNT = STAGES.length;

/** RPC type byte -> slot in RPC_TYPES. */
const TYPE_SLOT = new Uint8Array(256).fill(SLOT_OTHER);
TYPE_SLOT[RpcType.PrepareConf] = SLOT_PREPARE;
TYPE_SLOT[RpcType.HttpReqCall] = SLOT_REQ;
TYPE_SLOT[RpcType.HttpRespCall] = SLOT_RESP;

/** Event-loop delay sampling period: 50 wake-ups a second, only while metrics are on. */
export const EVENT_LOOP_RESOLUTION_MS = 20;

/** One plugin's filter in one phase, on every thread. */
export interface PluginSeries {
  readonly name: string;
  readonly phase: PhaseName;
  /** Filter run time less ExtraInfo waits, microseconds. */
  readonly latency: LatencyHistogram;
  /** ExtraInfo queries sent while this plugin's filter ran (or, on the pool, its segment). */
  extraInfoRoundTrips: number;
}

/** The name ExtraInfo round trips are counted under when no filter is running: `needs` prefetched before a pool hand-off. */
export const PREFETCH = '(needs prefetch)';

export class RunnerMetrics {
  readonly startedAtMs = Date.now();
  /** Calls answered (reply written), by RPC_TYPES slot. */
  readonly calls = new Float64Array(RPC_TYPES.length);
  /** Error replies written, by ERROR_CODES slot. */
  readonly errorReplies = new Float64Array(ERROR_CODES.length);
  /** Calls whose connection closed before their reply could be written. */
  abandoned = 0;
  /** ExtraInfo queries sent to the gateway, and the calls that sent at least one. */
  extraInfoRoundTrips = 0;
  callsWithExtraInfo = 0;
  /** Calls answered per connection, recorded when a connection closes. */
  readonly connectionCalls = new LatencyHistogram();
  /** Worker threads that did not answer a snapshot request in time (their figures come later). */
  lateWorkerSnapshots = 0;
  /** `slot * STAGES.length + stage`. */
  readonly #stages: LatencyHistogram[] = [];
  readonly #plugins: [Map<string, PluginSeries>, Map<string, PluginSeries>] = [new Map(), new Map()];
  readonly #eventLoop: IntervalHistogram;

  constructor() {
    for (let slot = 0; slot < RPC_TYPES.length; slot++) {
      for (let stage = 0; stage < STAGE_COUNT; stage++) this.#stages.push(new LatencyHistogram({ interval: stage === STAGE.total }));
    }
    this.#eventLoop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  }

  /** Once the runner is up: the startup's own work (imports, thread starts) would count as delay. */
  startEventLoopMonitor(): void {
    this.#eventLoop.enable();
  }

  /** A connection's per-call scratch (one call is open per connection at a time). */
  sample(): CallSample {
    return new CallSample(this, this.#stages);
  }

  stage(type: RpcTypeName, stage: StageName): LatencyHistogram {
    return this.#stages[RPC_TYPES.indexOf(type) * STAGE_COUNT + STAGES.indexOf(stage)];
  }

  /** `phase` 0 request, 1 response (the pool's PHASE_* numbers). */
  plugin(phase: number, name: string): PluginSeries {
    const series = this.#plugins[phase];
    let s = series.get(name);
    if (s === undefined) {
      s = { name, phase: PHASES[phase], latency: new LatencyHistogram(), extraInfoRoundTrips: 0 };
      series.set(name, s);
    }
    return s;
  }

  plugins(): PluginSeries[] {
    return [...this.#plugins[0].values(), ...this.#plugins[1].values()];
  }

  /** One inline filter ran (the FilterMeter's figure). */
  recordFilter(phase: number, name: string, us: number): void {
    this.plugin(phase, name).latency.record(us);
  }

  /** One ExtraInfo query for a call, blamed on the filter running when it was asked. */
  extraInfoRound(phase: number, name: string | null): void {
    this.plugin(phase, name ?? PREFETCH).extraInfoRoundTrips++;
  }

  connectionClosed(calls: number): void {
    this.connectionCalls.record(calls);
  }

  /** A worker thread's plugin histograms since its previous snapshot. */
  mergeWorker(snapshot: WorkerSnapshot): void {
    for (const [phase, name, counts, sum] of snapshot.plugins) this.plugin(phase, name).latency.addSparse(counts, sum);
  }

  /** Event-loop delay since startup (startEventLoopMonitor), microseconds. */
  eventLoopDelay(): HistogramSummary & { sum: number } {
    return eventLoopDelaySummary(this.#eventLoop, EVENT_LOOP_RESOLUTION_MS);
  }

  close(): void {
    this.#eventLoop.disable();
  }
}

/**
 * The delay figures of a `monitorEventLoopDelay({ resolution })` histogram, in microseconds.
 *
 * The monitor records the time between two ticks of its `resolution` ms timer (Node's
 * `Histogram::RecordDelta`), not how late a tick was: an idle loop's samples are 20.0-20.3 ms, so
 * the raw figures said "p50 20 ms" for every runner and doctor warned about all of them. The
 * delay is what exceeds the timer's period, so the period comes off every figure. Percentiles and
 * the max shift by the same amount (subtracting a constant keeps the order of the samples); a
 * sample below the period (libuv's timers run on a millisecond clock, so a tick can come up to
 * 1 ms early) is no delay, 0. The mean and sum are clamped as a whole, which can only understate
 * the sum of clamped samples by those early ticks' sub-millisecond shortfall.
 */
export function eventLoopDelaySummary(h: Histogram, resolutionMs: number): HistogramSummary & { sum: number } {
  const count = h.count;
  if (count === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0, sum: 0 };
  const periodNs = resolutionMs * 1e6;
  const delayUs = (ns: number): number => Math.round(Math.max(0, ns - periodNs) / 100) / 10;
  const mean = delayUs(h.mean);
  return {
    count,
    mean,
    p50: delayUs(h.percentile(50)),
    p90: delayUs(h.percentile(90)),
    p99: delayUs(h.percentile(99)),
    p99_9: delayUs(h.percentile(99.9)),
    max: delayUs(h.max),
    sum: Math.round(mean * count * 10) / 10,
  };
}

/**
 * The figures of the call open on one connection. The connection stamps the start and the end;
 * the call handler fills in the chain's boundaries and waits. Reused for every call of the
 * connection: the gateway is lock-step, so at most one call is open.
 */
export class CallSample {
  slot = SLOT_OTHER;
  startedMs = 0;
  /** 0 until the call's chain has run (PrepareConf, denials and early failures record no stages). */
  chainStartMs = 0;
  chainEndMs = 0;
  queueMs = 0;
  queued = false;
  extraInfoMs = 0;
  extraInfoRounds = 0;
  open = false;
  readonly #metrics: RunnerMetrics;
  readonly #stages: LatencyHistogram[];

  constructor(metrics: RunnerMetrics, stages: LatencyHistogram[]) {
    this.#metrics = metrics;
    this.#stages = stages;
  }

  /** The frame of a call is complete: one clock read. */
  begin(type: number): void {
    this.slot = TYPE_SLOT[type];
    this.chainStartMs = 0;
    this.queueMs = 0;
    this.queued = false;
    this.extraInfoMs = 0;
    this.extraInfoRounds = 0;
    this.open = true;
    this.startedMs = performance.now();
  }

  /** The chain ran from `startMs` to `endMs` (clock reads the chain already made). */
  chainRan(startMs: number, endMs: number, extraInfoMs: number): void {
    this.chainStartMs = startMs;
    this.chainEndMs = endMs;
    this.extraInfoMs = extraInfoMs;
  }

  /** Time a pool segment of the call waited for a worker thread. */
  waited(ms: number): void {
    this.queueMs += ms;
    this.queued = true;
  }

  /** The reply was written: one clock read, then numbers into preallocated arrays. */
  end(frame: Uint8Array): void {
    if (!this.open) return;
    this.open = false;
    const now = performance.now();
    const metrics = this.#metrics;
    const base = this.slot * STAGE_COUNT;
    const stages = this.#stages;
    metrics.calls[this.slot]++;
    stages[base + STAGE.total].record((now - this.startedMs) * 1000);
    if (frame[0] === RpcType.Error) metrics.errorReplies[errorSlot(frame)]++;
    if (this.extraInfoRounds > 0) {
      metrics.extraInfoRoundTrips += this.extraInfoRounds;
      metrics.callsWithExtraInfo++;
    }
    if (this.chainStartMs === 0) return;
    stages[base + STAGE.decode].record((this.chainStartMs - this.startedMs) * 1000);
    stages[base + STAGE.chain].record((this.chainEndMs - this.chainStartMs - this.queueMs - this.extraInfoMs) * 1000);
    stages[base + STAGE.encodeWrite].record((now - this.chainEndMs) * 1000);
    if (this.queued) stages[base + STAGE.queue].record(this.queueMs * 1000);
    if (this.extraInfoRounds > 0) stages[base + STAGE.extraInfo].record(this.extraInfoMs * 1000);
  }

  /** The connection closed before the reply could be written. */
  abandon(): void {
    if (!this.open) return;
    this.open = false;
    this.#metrics.abandoned++;
    if (this.extraInfoRounds > 0) {
      this.#metrics.extraInfoRoundTrips += this.extraInfoRounds;
      this.#metrics.callsWithExtraInfo++;
    }
  }
}

function errorSlot(frame: Uint8Array): number {
  try {
    const code = decodeErrResp(frame.subarray(HEADER_BYTES)).code;
    return code >= 0 && code < ERROR_CODES.length - 1 ? code : ERROR_CODES.length - 1;
  } catch {
    return ERROR_CODES.length - 1;
  }
}
