/**
 * The serializable shapes shared by the bench harness, its load-generator processes and its reports.
 * Everything here crosses a process boundary (IPC) or lands in a JSON result file, so it is plain
 * data: no class instances, no Buffers.
 */

/** Which gateway call the load generator plays: `ext-plugin-pre-req`/`post-req` (type 2) or `post-resp` (type 4). */
export type Phase = 'req' | 'resp';

/**
 * What a reply must be to count as a success, besides carrying the request's id:
 * - `stop`, `rewrite`, `none`: an HTTPReqCall reply with that action;
 * - `any`: any HTTPReqCall reply (any action);
 * - `resp`: any HTTPRespCall reply; `resp-body`: an HTTPRespCall reply that replaces the body.
 */
export type Expect = 'stop' | 'rewrite' | 'none' | 'any' | 'resp' | 'resp-body';

export interface ConfEntry {
  name: string;
  value: string;
}

/** What the load generator sends and how it answers the runner's ExtraInfo queries. */
export interface Workload {
  phase: Phase;
  /** The PrepareConf `conf` (null: no conf vector, as the gateway sends for `{}`). */
  conf: ConfEntry[] | null;
  /** The PrepareConf idempotent key. */
  confKey: string;
  expect: Expect;
  /** Answers to ExtraInfo Var queries; an unknown name gets an absent result, as from the gateway. */
  vars: Record<string, string>;
  /** Request body size answered to ExtraInfo ReqBody (0: absent, as for a request without a body). */
  reqBodyBytes: number;
  /** Upstream response body size answered to ExtraInfo RespBody (0: absent). */
  respBodyBytes: number;
  /** How many distinct request templates to cycle through (paths, args, headers, IPv4/IPv6 sources). */
  variants: number;
  seed: number;
}

export type LoadMode = 'closed' | 'open';

/** One load-generator process's job. */
export interface LoadConfig {
  socketPath: string;
  /** Connections, each with one call in flight at most (the gateway never pipelines). */
  connections: number;
  mode: LoadMode;
  /** Open loop: requests per second for this process; null in closed loop. */
  rate: number | null;
  warmupMs: number;
  durationMs: number;
  /** Stop measuring after this many measured requests (null: time only). */
  maxRequests: number | null;
  /** A call with no final reply after this long is an error (`timeout`) and its connection is closed. */
  callTimeoutMs: number;
  workload: Workload;
  /** Interval of progress messages to the parent (0: none). */
  progressMs: number;
  /** Open loop: at most this many requests may wait for a free connection before the run is called saturated. */
  maxBacklog: number;
}

/** Ways a call can fail; every one of them is counted as an error, never as a success. */
export const ERROR_KINDS = [
  'wrong-id',
  'wrong-action',
  'error-frame',
  'unexpected-type',
  'malformed',
  'bad-extra-info',
  'truncated',
  'closed',
  'timeout',
  'connect',
  'token',
  'not-sent',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** What one load-generator process measured. Latencies are microseconds. */
export interface LoadResult {
  mode: LoadMode;
  connections: number;
  rate: number | null;
  /** Length of the measured window (warm-up excluded), ms. */
  measuredMs: number;
  /** Measured calls started (successes + errors). */
  requests: number;
  successes: number;
  errors: number;
  errorKinds: Partial<Record<ErrorKind, number>>;
  /** The first few error messages, for the report. */
  errorSamples: string[];
  /** Successful measured calls per second. */
  throughput: number;
  /** HdrHistogram of successful measured calls, microseconds, compressed base64 (hdr-histogram-js). */
  histogram: string;
  /** Open loop: actual send time minus intended send time (µs), compressed base64; null in closed loop. */
  sendLagHistogram: string | null;
  /** Open loop: the largest number of requests waiting for a free connection. */
  maxBacklog: number;
  /** Open loop: the backlog limit was hit and the run stopped early. */
  saturated: boolean;
  extraInfoQueries: number;
  prepareConfs: number;
  confTokenNotFound: number;
  reconnects: number;
  bytesSent: number;
  bytesReceived: number;
  /** CPU time of the load-generator process over the measured window, ms (user + system). */
  generatorCpuMs: number;
  /**
   * How late the generator's own event loop ran over the window (p99 and max, µs): a pause of the
   * generator (GC) delays replies it has not read yet, and shows in the latencies as if the server
   * had been slow. Null when the window never opened.
   */
  generatorLoopDelayUs: { p99: number; max: number } | null;
}

/** Messages from a load-generator process to the harness. */
export type GeneratorMessage =
  | { type: 'ready' }
  | { type: 'window'; edge: 'start' | 'end' }
  | { type: 'progress'; elapsedMs: number; measuring: boolean; successes: number; errors: number; recentRate: number }
  | { type: 'result'; result: LoadResult }
  | { type: 'failed'; message: string };

/** Messages from the harness to a load-generator process. */
export type HarnessMessage = { type: 'run'; config: LoadConfig };

/** Latency summary of a histogram, microseconds. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  stdDev: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  p9999: number;
  max: number;
}

/** One point of the percentile distribution: the latency at or under which `percentile`% of calls completed. */
export interface PercentilePoint {
  percentile: number;
  valueUs: number;
}

/** CPU and memory of a server process over the measured window. */
export interface ProcessSample {
  /** CPU used over the measured window, as % of one core. */
  cpuPercent: number;
  /** CPU time per successful call, µs. */
  cpuUsPerCall: number | null;
  rssBytes: number;
  peakRssBytes: number;
}

export type TargetKind = 'runner' | 'baseline' | 'external';

/** One load run against one target. */
export interface TargetRun {
  target: TargetKind;
  /** 1-based pair index. */
  pair: number;
  load: LoadResult;
  latency: LatencySummary;
  process: ProcessSample | null;
  /**
   * Machine-wide CPU over the measured window, % of one core: everything busy, what neither the
   * server nor the load generator used (other processes: a disturbed measurement), and steal time.
   */
  system: { busyPercent: number; otherPercent: number | null; stealPercent: number } | null;
}

/** One target's runs of a scenario, aggregated. */
export interface TargetSummary {
  target: TargetKind;
  runs: number;
  /** Median throughput over the runs (req/s). */
  throughput: number;
  /** Percentiles of all runs' histograms merged. */
  latency: LatencySummary;
  distribution: PercentilePoint[];
  /** The merged histogram (compressed base64), for re-rendering and comparison. */
  histogram: string;
  /** Text form of the full HDR distribution (hdr-histogram-js `outputPercentileDistribution`, µs). */
  distributionText: string;
  errors: number;
  errorKinds: Partial<Record<ErrorKind, number>>;
  /** Median CPU % of one core, median CPU µs per call, largest RSS: null when not measurable. */
  cpuPercent: number | null;
  cpuUsPerCall: number | null;
  rssBytes: number | null;
  peakRssBytes: number | null;
  /** Median load-generator CPU over the window (% of one core): near 100 means the generator was the limit. */
  generatorCpuPercent: number;
  /** Median CPU used by other processes on the machine during the runs (% of one core), when known. */
  otherCpuPercent: number | null;
  /** Largest event-loop delay of the load generator over the runs (µs): its own pauses, in the latencies. */
  generatorLoopDelayMaxUs: number | null;
  /** Open loop: p99 of the send lag (µs, includes waiting for a free connection). */
  sendLagP99: number | null;
  saturated: boolean;
}

export interface ScenarioResult {
  /** Unique label in the report (scenario name plus any variant suffix, e.g. `say@c64`). */
  id: string;
  scenario: string;
  description: string;
  phase: Phase;
  mode: LoadMode;
  connections: number;
  /** Open loop: total requests per second. */
  rate: number | null;
  warmupMs: number;
  durationMs: number;
  pairs: number;
  generators: number;
  /** How the runner was started (its command line), or the external socket. */
  targetCommand: string;
  runs: TargetRun[];
  /** Runs thrown away and made again because other processes disturbed them (RunSpec.retryDisturbed). */
  repeated: Array<{ target: TargetKind; pair: number; otherCpuPercent: number }>;
  runner: TargetSummary;
  baseline: TargetSummary | null;
  /** Runner / baseline: throughput (median of the per-pair ratios) and p99 (baseline p99 over runner p99 would be inverted; this is runner p99 / baseline p99). */
  ratio: {
    throughput: number;
    throughputPerPair: number[];
    p99: number;
    p99PerPair: number[];
    /** Server CPU time per call, runner / baseline (median of the pairs); null without CPU samples. */
    cpuPerCall: number | null;
  } | null;
  /** Things the reader must know (comparisons not available, generator-bound runs, errors). */
  notes: string[];
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  node: string;
  platform: string;
  kernel: string;
  hostname: string;
  /** /proc/loadavg (1, 5, 15 min) when the report was made. */
  loadAverage: number[];
}

export interface BenchReport {
  schema: 'apisix-node-runner-bench/1';
  title: string;
  createdAt: string;
  machine: MachineInfo;
  command: string;
  pinning: { enabled: boolean; serverCpus: string | null; generatorCpus: string | null };
  /** The machine's own interruptions of a busy CPU, probed before the runs (noise.ts), when measured. */
  noise?: Array<{ cpus: string | null; gapsPerSecond: number; lostPercent: number; maxGapMs: number }>;
  scenarios: ScenarioResult[];
}
