/** Wires the layers together: io (socket, framing) -> protocol -> workers (conf cache, chains, pool). */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { describe } from './errors.js';
import { RunnerServer } from './io/server.js';
import { startMetricsEndpoint, type MetricsEndpoint } from './metrics/http-endpoint.js';
import { renderPrometheus } from './metrics/prometheus.js';
import { RunnerMetrics } from './metrics/runner-metrics.js';
import { buildStats, type RunnerStats, type StatsSources } from './metrics/stats.js';
import { SummaryReporter } from './metrics/summary.js';
import { WorkerCollector } from './metrics/worker-channel.js';
import type { RunnerOptions } from './options.js';
import type { Plugin } from './plugin.js';
import { builtinPlugins } from './plugins/index.js';
import { CallHandler, type PluginSet } from './workers/call-handler.js';
import { ConfCache } from './workers/conf-cache.js';
import { Deadlines } from './workers/deadlines.js';
import { PlacementTable, type PlacementSnapshot } from './workers/placement.js';
import { PluginRegistry } from './workers/plugin-registry.js';
import { WorkerPool, type PoolStats } from './workers/pool.js';

export interface Runner {
  /** The socket path being served (without `unix:`). */
  readonly socketPath: string;
  /** Names of the loaded plugins, sorted. */
  readonly pluginNames: readonly string[];
  /** Live conf tokens. */
  readonly tokens: number;
  /** Worker pool counters, or null without a pool (`threads: 0`). */
  readonly poolStats: PoolStats | null;
  /** Where each plugin runs now. */
  placements(): PlacementSnapshot[];
  /** The metrics endpoint (`http://127.0.0.1:9091`), or null when it is off. */
  readonly metricsUrl: string | null;
  /**
   * Everything measured so far (what `/stats` serves), worker threads' figures included; null when
   * metrics are off (no `metricsAddr`, no summary line, no `metrics: true`).
   */
  stats(): Promise<RunnerStats | null>;
  /**
   * Load the plugin modules again (SIGHUP): re-imported on the main thread, new worker threads for
   * the pool. Calls already running finish with the old code; new calls get the new code.
   */
  reload(): Promise<void>;
  /** Stop accepting, let calls finish for up to `drainMs`, answer the rest SERVICE_UNAVAILABLE, close. */
  shutdown(reason: string): Promise<ShutdownReport>;
}

/** What a shutdown did, for the one shutdown log line. */
export interface ShutdownReport {
  reason: string;
  durationMs: number;
  /** Calls running when the shutdown started. */
  inFlightAtStart: number;
  /** Calls still running when the drain window ended, answered SERVICE_UNAVAILABLE. */
  cutOff: number;
  connectionsOpened: number;
  connectionsClosed: number;
  callsAnswered: number;
}

/** Options a runner needs; the CLI resolves the full `RunnerOptions`, embedders may pass these. */
export type StartOptions = Pick<
  RunnerOptions,
  'listenPath' | 'socketMode' | 'confExpireSeconds' | 'maxTokens' | 'pluginPaths' | 'skipUnknownPlugins' | 'drainMs' | 'callTimeoutMs'
> &
  Partial<Pick<RunnerOptions, 'threads' | 'maxQueue' | 'metricsAddr' | 'summaryIntervalS' | 'logLevel'>> & {
    /**
     * Plugins to register besides the built-ins and `pluginPaths` (embedding). Worker threads cannot
     * receive plugin objects, so these always run on the main thread.
     */
    plugins?: readonly Plugin[];
    /**
     * Record metrics even without an endpoint or a summary line (read them with `stats()`). They
     * are on anyway with `metricsAddr`, or with `summaryIntervalS` > 0 and the logger at info or
     * lower (`summaryIntervalS` defaults to 0 here; the CLI's default is 60).
     */
    metrics?: boolean;
    /** Reported in the stats (the CLI passes the package version). */
    version?: string;
  };

/** Conf entries outlive the gateway's own cache lifetime by 20% (DECISIONS 13). */
const CONF_TTL_FACTOR = 1.2;
/** How long a retired pool (after a reload) may take to finish its calls before it is stopped. */
const RETIRE_MS = 60_000;
/** How long a stats request waits for the worker threads' figures (a busy thread answers later). */
const WORKER_SNAPSHOT_WAIT_MS = 250;
/** The same at shutdown, which must end within the gateway's 1 s grace (idle threads answer in well under 1 ms). */
const SHUTDOWN_SNAPSHOT_WAIT_MS = 50;

export async function startRunner(options: StartOptions, logger: Logger): Promise<Runner> {
  const threads = options.threads ?? 0;
  const maxQueue = options.maxQueue ?? 4096;
  let generation = 0;
  const summaryIntervalS = options.summaryIntervalS ?? 0;
  // The summary is logged at info: at warn (the default) it would be computed for nothing.
  const summaryOn = summaryIntervalS > 0 && logger.isLevelEnabled('info');
  const metrics = options.metrics === true || options.metricsAddr != null || summaryOn ? new RunnerMetrics() : null;
  const collector = metrics === null ? null : new WorkerCollector(`anr-metrics:${process.pid}:${randomUUID()}`, (s) => metrics.mergeWorker(s));

  async function loadPlugins(fresh: boolean): Promise<PluginSet> {
    const registry = new PluginRegistry();
    registry.add(builtinPlugins, 'builtin');
    if (options.plugins) registry.add(options.plugins.map(inlineOnly), 'embedder');
    await registry.load(options.pluginPaths, { fresh });
    const placement = new PlacementTable({ pool: threads > 0, logger });
    let pool: WorkerPool | null = null;
    if (threads > 0) {
      pool = new WorkerPool({ threads, pluginPaths: options.pluginPaths, maxQueue, registry, placement, logger, metricsChannel: collector?.name ?? null });
      try {
        await pool.ready();
      } catch (err) {
        await pool.close();
        throw err;
      }
    }
    return { registry, placement, pool, generation: generation++ };
  }

  let plugins: PluginSet;
  try {
    plugins = await loadPlugins(false);
  } catch (err) {
    closeMetrics();
    throw err;
  }
  const expired: number[] = [];
  const cache = new ConfCache({
    ttlMs: options.confExpireSeconds * 1000 * CONF_TTL_FACTOR,
    maxTokens: options.maxTokens,
    onDelete: (entry) => {
      // Workers keep parsed confs per token: tell them in bulk once this turn is over.
      if (expired.push(entry.token) === 1) {
        setImmediate(() => {
          handler.plugins.pool?.dropTokens(expired.splice(0));
        });
      }
    },
  });
  const deadlines = new Deadlines(options.callTimeoutMs);
  const handler = new CallHandler({ plugins, cache, deadlines, skipUnknownPlugins: options.skipUnknownPlugins, logger, metrics });
  const server = new RunnerServer(handler, logger, metrics);
  let endpoint: MetricsEndpoint | null = null;
  try {
    await server.listen(options.listenPath, options.socketMode);
    if (options.metricsAddr != null) {
      endpoint = await startMetricsEndpoint(
        options.metricsAddr,
        {
          metrics: async () => renderPrometheus(metrics!, await gather()),
          stats: () => gather(),
          ready: () => stopping === null,
        },
        logger,
      );
    }
  } catch (err) {
    cache.close();
    closeMetrics();
    await server.shutdown(0);
    await plugins.pool?.close();
    throw err;
  }

  let stopping: Promise<ShutdownReport> | null = null;
  let reloading: Promise<void> | null = null;
  const retiring = new Set<Promise<void>>();
  /** Pools retired by reloads but still finishing calls; their figures count until they close. */
  const retiringPools = new Set<WorkerPool>();
  const retiredPoolStats: PoolStats = { threads: 0, batches: 0, calls: 0, shed: 0, workerRestarts: 0 };

  async function retire(pool: WorkerPool): Promise<void> {
    retiringPools.add(pool);
    const until = Date.now() + RETIRE_MS;
    while (pool.load > 0 && Date.now() < until && stopping === null) await new Promise((resolve) => setTimeout(resolve, 50));
    await collectWorkers(WORKER_SNAPSHOT_WAIT_MS);
    await pool.close();
    retiringPools.delete(pool);
    for (const key of ['batches', 'calls', 'shed', 'workerRestarts'] as const) retiredPoolStats[key] += pool.stats[key];
  }

  /** Pool counters since startup, across reloads; null without a pool. */
  function poolStats(): PoolStats | null {
    const current = handler.plugins.pool;
    if (current === null) return null;
    const sum = { ...retiredPoolStats, threads: current.stats.threads };
    for (const pool of [current, ...retiringPools]) {
      for (const key of ['batches', 'calls', 'shed', 'workerRestarts'] as const) sum[key] += pool.stats[key];
    }
    return sum;
  }

  const sources: StatsSources = {
    version: options.version ?? 'unknown',
    socketPath: options.listenPath,
    config: {
      socketMode: `0${options.socketMode.toString(8).padStart(3, '0')}`,
      threads,
      maxQueue,
      drainMs: options.drainMs,
      callTimeoutMs: options.callTimeoutMs,
      confExpireSeconds: options.confExpireSeconds,
      maxTokens: options.maxTokens,
      logLevel: options.logLevel ?? logger.level,
      summaryIntervalS: summaryOn ? summaryIntervalS : 0,
    },
    tokens: () => cache.size,
    server: () => ({ connectionsOpened: server.stats.connectionsOpened, connectionsClosed: server.stats.connectionsClosed, open: server.connections }),
    pool: poolStats,
    placements: () => {
      const { registry, placement } = handler.plugins;
      const loaded = registry.entries().map((e) => e.plugin);
      return placement.snapshot(loaded).map((p, i) => ({ ...p, declaresNeeds: loaded[i].needs.vars.length > 0 || loaded[i].needs.body }));
    },
  };

  /** Merge what every worker thread (current pool and retiring ones) recorded since it last sent. */
  async function collectWorkers(waitMs: number): Promise<void> {
    if (collector === null) return;
    const expected = [handler.plugins.pool, ...retiringPools].reduce((n, pool) => n + (pool?.stats.threads ?? 0), 0);
    metrics!.lateWorkerSnapshots = await collector.collect(expected, waitMs);
  }

  /** A fresh stats document, the worker threads' figures included. */
  async function gather(waitMs = WORKER_SNAPSHOT_WAIT_MS): Promise<RunnerStats> {
    await collectWorkers(waitMs);
    return buildStats(metrics!, sources);
  }

  function closeMetrics(): void {
    collector?.close();
    metrics?.close();
  }

  metrics?.startEventLoopMonitor();
  const summary = summaryOn ? new SummaryReporter(metrics!, (final) => gather(final ? SHUTDOWN_SNAPSHOT_WAIT_MS : WORKER_SNAPSHOT_WAIT_MS), logger, summaryIntervalS) : null;
  summary?.start();
  if (endpoint !== null && !isLoopback(endpoint.address.host)) {
    logger.warn({ metricsUrl: endpoint.url }, `the metrics endpoint listens on ${endpoint.url}, not on loopback: anyone who reaches it can read the runner's figures`);
  }

  return {
    socketPath: options.listenPath,
    metricsUrl: endpoint?.url ?? null,
    stats(): Promise<RunnerStats | null> {
      return metrics === null ? Promise.resolve(null) : gather();
    },
    get pluginNames() {
      return handler.plugins.registry.names();
    },
    get tokens() {
      return cache.size;
    },
    get poolStats() {
      return handler.plugins.pool?.stats ?? null;
    },
    placements() {
      return handler.plugins.placement.snapshot(handler.plugins.registry.entries().map((e) => e.plugin));
    },
    reload(): Promise<void> {
      reloading ??= (async () => {
        const started = performance.now();
        try {
          const next = await loadPlugins(true);
          const previous = handler.plugins;
          handler.swapPlugins(next);
          if (previous.pool !== null) {
            const done = retire(previous.pool).finally(() => retiring.delete(done));
            retiring.add(done);
          }
          logger.warn({ plugins: next.registry.names(), durationMs: Math.round(performance.now() - started) }, 'plugins reloaded');
        } catch (err) {
          logger.error({ err }, `reload failed, the previous plugins stay in service: ${describe(err)}`);
          throw err;
        } finally {
          reloading = null;
        }
      })();
      return reloading;
    },
    shutdown(reason: string): Promise<ShutdownReport> {
      stopping ??= (async () => {
        const started = performance.now();
        const inFlightAtStart = server.callsInFlight;
        // First: the next runner (a gateway reload) may be waiting for the endpoint's port.
        const endpointClosed = endpoint?.close();
        const cutOff = await server.shutdown(options.drainMs);
        cache.close();
        deadlines.close();
        summary?.stop();
        // Before the pool stops: the final line includes the worker threads' figures.
        await summary?.log(true).catch((err: unknown) => logger.warn({ err }, 'final summary line failed'));
        await endpointClosed;
        await Promise.all([handler.plugins.pool?.close(), ...retiring]);
        closeMetrics();
        return { reason, durationMs: Math.round(performance.now() - started), inFlightAtStart, cutOff, ...server.stats };
      })();
      return stopping;
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** An embedder's plugin object lives on this thread only. */
function inlineOnly(plugin: Plugin): Plugin {
  return plugin.placement === 'inline' ? plugin : Object.freeze({ ...plugin, placement: 'inline' as const });
}
