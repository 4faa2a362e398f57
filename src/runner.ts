/** Wires the layers together: io (socket, framing) -> protocol -> workers (conf cache, chains). */
import type { Logger } from 'pino';
import { RunnerServer } from './io/server.js';
import type { RunnerOptions } from './options.js';
import type { Plugin } from './plugin.js';
import { builtinPlugins } from './plugins/index.js';
import { CallHandler } from './workers/call-handler.js';
import { ConfCache } from './workers/conf-cache.js';
import { Deadlines } from './workers/deadlines.js';
import { PluginRegistry } from './workers/plugin-registry.js';

export interface Runner {
  /** The socket path being served (without `unix:`). */
  readonly socketPath: string;
  /** Names of the loaded plugins, sorted. */
  readonly pluginNames: readonly string[];
  /** Live conf tokens. */
  readonly tokens: number;
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
> & {
  /** Plugins to register besides the built-ins and `pluginPaths` (embedding). */
  plugins?: readonly Plugin[];
};

/** Conf entries outlive the gateway's own cache lifetime by 20% (DECISIONS 13). */
const CONF_TTL_FACTOR = 1.2;

export async function startRunner(options: StartOptions, logger: Logger): Promise<Runner> {
  const registry = new PluginRegistry();
  registry.add(builtinPlugins, 'builtin');
  if (options.plugins) registry.add(options.plugins, 'embedder');
  await registry.load(options.pluginPaths);

  const cache = new ConfCache({ ttlMs: options.confExpireSeconds * 1000 * CONF_TTL_FACTOR, maxTokens: options.maxTokens });
  const deadlines = new Deadlines(options.callTimeoutMs);
  const handler = new CallHandler({ registry, cache, deadlines, skipUnknownPlugins: options.skipUnknownPlugins, logger });
  const server = new RunnerServer(handler, logger);
  try {
    await server.listen(options.listenPath, options.socketMode);
  } catch (err) {
    cache.close();
    throw err;
  }

  let stopping: Promise<ShutdownReport> | null = null;
  return {
    socketPath: options.listenPath,
    pluginNames: registry.names(),
    get tokens() {
      return cache.size;
    },
    shutdown(reason: string): Promise<ShutdownReport> {
      stopping ??= (async () => {
        const started = performance.now();
        const inFlightAtStart = server.callsInFlight;
        const cutOff = await server.shutdown(options.drainMs);
        cache.close();
        deadlines.close();
        return { reason, durationMs: Math.round(performance.now() - started), inFlightAtStart, cutOff, ...server.stats };
      })();
      return stopping;
    },
  };
}
