/** Wires the layers together: io (socket, framing) -> protocol -> workers (conf cache, chains, pool). */
import type { Logger } from 'pino';
import { describe } from './errors.js';
import { RunnerServer } from './io/server.js';
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
  Partial<Pick<RunnerOptions, 'threads' | 'maxQueue'>> & {
    /**
     * Plugins to register besides the built-ins and `pluginPaths` (embedding). Worker threads cannot
     * receive plugin objects, so these always run on the main thread.
     */
    plugins?: readonly Plugin[];
  };

/** Conf entries outlive the gateway's own cache lifetime by 20% (DECISIONS 13). */
const CONF_TTL_FACTOR = 1.2;
/** How long a retired pool (after a reload) may take to finish its calls before it is stopped. */
const RETIRE_MS = 60_000;

export async function startRunner(options: StartOptions, logger: Logger): Promise<Runner> {
  const threads = options.threads ?? 0;
  const maxQueue = options.maxQueue ?? 4096;
  let generation = 0;

  async function loadPlugins(fresh: boolean): Promise<PluginSet> {
    const registry = new PluginRegistry();
    registry.add(builtinPlugins, 'builtin');
    if (options.plugins) registry.add(options.plugins.map(inlineOnly), 'embedder');
    await registry.load(options.pluginPaths, { fresh });
    const placement = new PlacementTable({ pool: threads > 0, logger });
    let pool: WorkerPool | null = null;
    if (threads > 0) {
      pool = new WorkerPool({ threads, pluginPaths: options.pluginPaths, maxQueue, registry, placement, logger });
      try {
        await pool.ready();
      } catch (err) {
        await pool.close();
        throw err;
      }
    }
    return { registry, placement, pool, generation: generation++ };
  }

  const plugins = await loadPlugins(false);
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
  const handler = new CallHandler({ plugins, cache, deadlines, skipUnknownPlugins: options.skipUnknownPlugins, logger });
  const server = new RunnerServer(handler, logger);
  try {
    await server.listen(options.listenPath, options.socketMode);
  } catch (err) {
    cache.close();
    await plugins.pool?.close();
    throw err;
  }

  let stopping: Promise<ShutdownReport> | null = null;
  let reloading: Promise<void> | null = null;
  const retiring = new Set<Promise<void>>();

  async function retire(pool: WorkerPool): Promise<void> {
    const until = Date.now() + RETIRE_MS;
    while (pool.load > 0 && Date.now() < until && stopping === null) await new Promise((resolve) => setTimeout(resolve, 50));
    await pool.close();
  }

  return {
    socketPath: options.listenPath,
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
        const cutOff = await server.shutdown(options.drainMs);
        cache.close();
        deadlines.close();
        await Promise.all([handler.plugins.pool?.close(), ...retiring]);
        return { reason, durationMs: Math.round(performance.now() - started), inFlightAtStart, cutOff, ...server.stats };
      })();
      return stopping;
    },
  };
}

/** An embedder's plugin object lives on this thread only. */
function inlineOnly(plugin: Plugin): Plugin {
  return plugin.placement === 'inline' ? plugin : Object.freeze({ ...plugin, placement: 'inline' as const });
}
