/**
 * The runner's figures as one JSON document: what `/stats` serves, what `doctor` judges and what
 * `runner.stats()` returns to an embedder. Latencies in microseconds; counts since the start.
 */
import type { PoolStats } from '../workers/pool.js';
import type { PlacementSnapshot } from '../workers/placement.js';
import type { HistogramSummary } from './histogram.js';
import {
  ERROR_CODES,
  PREFETCH,
  RPC_TYPES,
  STAGES,
  type ErrorCodeName,
  type PhaseName,
  type RpcTypeName,
  type RunnerMetrics,
  type StageName,
} from './runner-metrics.js';

export type { HistogramSummary };

/** Settings that decide some of doctor's verdicts. */
export interface StatsConfig {
  /** Octal, e.g. `0766`. */
  socketMode: string;
  threads: number;
  maxQueue: number;
  drainMs: number;
  callTimeoutMs: number;
  confExpireSeconds: number;
  maxTokens: number;
  logLevel: string | null;
  summaryIntervalS: number;
}

/** Where the stats read what the metrics registry does not hold. */
export interface StatsSources {
  readonly version: string;
  readonly socketPath: string;
  readonly config: StatsConfig;
  tokens(): number;
  server(): { connectionsOpened: number; connectionsClosed: number; open: number };
  pool(): PoolStats | null;
  placements(): Array<PlacementSnapshot & { declaresNeeds: boolean }>;
}

export interface PluginPhaseStats {
  /** Filter time less ExtraInfo waits. */
  latencyUs: HistogramSummary;
  /** ExtraInfo queries sent while the filter ran. */
  extraInfoRoundTrips: number;
  /** The same per filter run (null before the first run). */
  extraInfoPerCall: number | null;
}

export interface PluginStats {
  name: string;
  /** The declared placement, or null for a plugin no longer loaded (after a reload). */
  mode: 'inline' | 'pool' | 'auto' | null;
  /** Where it runs now. */
  where: 'inline' | 'pool' | null;
  /** Declares ExtraInfo `needs` (vars or body). */
  declaresNeeds: boolean;
  averageCpuUs: number | null;
  moves: number;
  phases: Partial<Record<PhaseName, PluginPhaseStats>>;
}

export interface RunnerStats {
  runner: {
    version: string;
    pid: number;
    uptimeSeconds: number;
    socketPath: string;
    config: StatsConfig;
  };
  /** Calls answered (reply written), by RPC type. */
  calls: Record<RpcTypeName, number>;
  /** Calls whose connection closed before their reply could be written. */
  callsAbandoned: number;
  /** Error replies written, by wire error code. */
  errorReplies: Record<ErrorCodeName, number>;
  confTokens: {
    live: number;
    prepareConf: number;
    httpCalls: number;
    /** PrepareConf calls per HTTP call (the gateway's token cache hit ratio), null before any HTTP call. */
    prepareConfPerHttpCall: number | null;
    /** CONF_TOKEN_NOT_FOUND answers. */
    notFound: number;
  };
  connections: {
    opened: number;
    closed: number;
    open: number;
    /** Calls answered per connection opened, null before the first connection. */
    callsPerConnection: number | null;
    /** Calls answered by each connection that closed. */
    callsPerClosedConnection: HistogramSummary;
  };
  extraInfo: {
    roundTrips: number;
    /** Round trips per HTTP call answered, null before any. */
    perHttpCall: number | null;
    callsWithExtraInfo: number;
    /** Round trips for variables and bodies plugins declared in `needs`, fetched before a pool hand-off. */
    prefetched: number;
  };
  /** Worker pool figures, or null without a pool (`--threads 0`). */
  pool: (PoolStats & { callsPerBatch: number | null }) | null;
  pluginsByPlacement: { inline: number; pool: number };
  plugins: PluginStats[];
  /** Per RPC type, per stage. */
  latencyUs: Record<RpcTypeName, Record<StageName, HistogramSummary>>;
  eventLoopDelayUs: HistogramSummary;
  /** Worker threads that did not send their figures in time for this document (they follow later). */
  lateWorkerSnapshots: number;
}

function ratio(a: number, b: number): number | null {
  return b > 0 ? a / b : null;
}

export function buildStats(metrics: RunnerMetrics, sources: StatsSources): RunnerStats {
  const calls = Object.fromEntries(RPC_TYPES.map((t, i) => [t, metrics.calls[i]])) as Record<RpcTypeName, number>;
  const errorReplies = Object.fromEntries(ERROR_CODES.map((c, i) => [c, metrics.errorReplies[i]])) as Record<ErrorCodeName, number>;
  const httpCalls = calls.http_req_call + calls.http_resp_call;
  const answered = RPC_TYPES.reduce((n, t) => n + calls[t], 0);
  const server = sources.server();
  const pool = sources.pool();

  const placements = sources.placements();
  const series = metrics.plugins();
  const byName = new Map<string, PluginStats>();
  for (const p of placements) {
    byName.set(p.name, { name: p.name, mode: p.mode, where: p.where, declaresNeeds: p.declaresNeeds, averageCpuUs: p.averageCpuUs, moves: p.moves, phases: {} });
  }
  let prefetched = 0;
  for (const s of series) {
    if (s.name === PREFETCH) {
      prefetched += s.extraInfoRoundTrips;
      continue;
    }
    let plugin = byName.get(s.name);
    if (plugin === undefined) {
      plugin = { name: s.name, mode: null, where: null, declaresNeeds: false, averageCpuUs: null, moves: 0, phases: {} };
      byName.set(s.name, plugin);
    }
    const latencyUs = s.latency.summary();
    plugin.phases[s.phase] = { latencyUs, extraInfoRoundTrips: s.extraInfoRoundTrips, extraInfoPerCall: ratio(s.extraInfoRoundTrips, latencyUs.count) };
  }

  const latencyUs = Object.fromEntries(
    RPC_TYPES.map((t) => [t, Object.fromEntries(STAGES.map((stage) => [stage, metrics.stage(t, stage).summary()]))]),
  ) as RunnerStats['latencyUs'];
  const { sum: _sum, ...eventLoopDelayUs } = metrics.eventLoopDelay();

  return {
    runner: {
      version: sources.version,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - metrics.startedAtMs) / 100) / 10,
      socketPath: sources.socketPath,
      config: sources.config,
    },
    calls,
    callsAbandoned: metrics.abandoned,
    errorReplies,
    confTokens: {
      live: sources.tokens(),
      prepareConf: calls.prepare_conf,
      httpCalls,
      prepareConfPerHttpCall: ratio(calls.prepare_conf, httpCalls),
      notFound: errorReplies.conf_token_not_found,
    },
    connections: {
      opened: server.connectionsOpened,
      closed: server.connectionsClosed,
      open: server.open,
      callsPerConnection: ratio(answered, server.connectionsOpened),
      callsPerClosedConnection: metrics.connectionCalls.summary(),
    },
    extraInfo: {
      roundTrips: metrics.extraInfoRoundTrips,
      perHttpCall: ratio(metrics.extraInfoRoundTrips, httpCalls),
      callsWithExtraInfo: metrics.callsWithExtraInfo,
      prefetched,
    },
    pool: pool === null ? null : { ...pool, callsPerBatch: ratio(pool.calls, pool.batches) },
    pluginsByPlacement: {
      inline: placements.filter((p) => p.where === 'inline').length,
      pool: placements.filter((p) => p.where === 'pool').length,
    },
    plugins: [...byName.values()],
    latencyUs,
    eventLoopDelayUs,
    lateWorkerSnapshots: metrics.lateWorkerSnapshots,
  };
}
