#!/usr/bin/env node
/**
 * The `apisix-node-runner` command. Wiring only: options (options.ts), logger (logger.ts), the runner
 * (runner.ts) and the process lifecycle the gateway expects (DECISIONS.md 11, PROTOCOL.md §4.5).
 *
 * Exit codes: 0 help, version, or a clean shutdown; 1 a startup or shutdown failure, or a forced
 * exit; 2 an invalid command line.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { describe, InvalidOptionError } from './errors.js';
import { createLogger, type ProcessLogger } from './logger.js';
import { doctorMain } from './metrics/doctor.js';
import { HELP_TEXT, resolveOptions, type RunnerOptions } from './options.js';
import { startRunner, type Runner } from './runner.js';

const NAME = 'apisix-node-runner';
/** How often to check whether the gateway's privileged agent (our parent) is still there. */
const PARENT_POLL_MS = 500;
/** Time allowed after the drain window before a stuck shutdown is abandoned with exit 1. */
const SHUTDOWN_GRACE_MS = 1000;


function main(args: readonly string[]): void {
  const [command, ...rest] = args;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP_TEXT);
      return;
    case 'version':
    case '--version':
      process.stdout.write(`${NAME} ${readVersion()}\n`);
      return;
    case 'run':
      run(rest).catch((err: unknown) => fail(`unexpected error: ${describe(err)}`));
      return;
    case 'bench':
      // Loaded only for this command: `run` starts without the harness.
      import('./bench/cli.js')
        .then((bench) => bench.benchMain(rest))
        .then(
          (code) => {
            process.exitCode = code;
          },
          (err: unknown) => fail(`unexpected error: ${describe(err)}`),
        );
      return;
    case 'doctor':
      doctorMain(rest, process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
        (code) => {
          process.exitCode = code;
        },
        (err: unknown) => fail(`unexpected error: ${describe(err)}`),
      );
      return;
    default:
      usageError(
        command.startsWith('-')
          ? `unknown option ${command}; options of "run" go after it: ${NAME} run ${command} ...`
          : `unknown command ${JSON.stringify(command)}`,
      );
  }
}

async function run(args: readonly string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP_TEXT);
    return;
  }
  // Read before anything slow: if the parent dies during startup, the change is still seen.
  const parentPid = process.ppid;
  const lifecycle = new Lifecycle();

  let options: RunnerOptions;
  try {
    options = resolveOptions(args, process.env);
  } catch (err) {
    if (err instanceof InvalidOptionError) usageError(err.message);
    throw err;
  }

  let processLogger: ProcessLogger;
  try {
    processLogger = createLogger({ level: options.logLevel, logFile: options.logFile });
  } catch (err) {
    fail(`cannot open the log file ${JSON.stringify(options.logFile)}: ${describe(err)}`);
  }
  const { logger, flush } = processLogger;
  // Keeps Node's default crash behaviour (stack on stderr, exit 1) but gets the fatal line into the
  // log file too, flushed before the process dies.
  process.on('uncaughtExceptionMonitor', (err, origin) => {
    logger.fatal({ err, origin }, `uncaught exception: ${describe(err)}`);
    flush();
  });

  const version = readVersion();
  let runner: Runner;
  try {
    runner = await startRunner({ ...options, version }, logger);
  } catch (err) {
    logger.fatal({ err }, `startup failed: ${describe(err)}`);
    flush();
    fail(`startup failed: ${describe(err)}`);
  }

  logStartup(logger, options, runner, version);
  if (options.listenSource === '--listen' || options.listenSource === 'default') printGatewaySnippet(options);
  lifecycle.started(runner, options, logger, flush, parentPid);
}

/** One line at warn, so it always reaches the gateway's error.log (it copies our stderr at warn). */
function logStartup(logger: Logger, options: RunnerOptions, runner: Runner, version: string): void {
  const mode = `0${options.socketMode.toString(8).padStart(3, '0')}`;
  const plugins = runner.pluginNames.length > 0 ? `plugins: ${runner.pluginNames.join(', ')}` : 'no plugins loaded';
  logger.warn(
    {
      version,
      socketPath: runner.socketPath,
      listenSource: options.listenSource,
      socketMode: mode,
      confExpireSeconds: options.confExpireSeconds,
      confExpireSource: options.confExpireSource,
      threads: options.threads,
      plugins: runner.pluginNames,
      metricsUrl: runner.metricsUrl ?? undefined,
    },
    `${NAME} ${version} (pid ${process.pid}) listening on unix:${runner.socketPath} (from ${options.listenSource}), ` +
      `mode ${mode}, conf expire ${options.confExpireSeconds} s (from ${options.confExpireSource}), ` +
      `${options.threads} worker threads, ${plugins}${runner.metricsUrl === null ? '' : `, metrics on ${runner.metricsUrl}`}`,
  );
}

/**
 * Started by hand (no gateway set APISIX_LISTEN_ADDRESS): show what to paste into the gateway's
 * config.yaml. Goes to stdout, apart from the JSON logs on stderr.
 */
function printGatewaySnippet(options: RunnerOptions): void {
  const path = /^[\w./-]+$/.test(options.listenPath) ? options.listenPath : JSON.stringify(options.listenPath);
  // Absolute node and CLI paths: the gateway runs the argv without a shell, and a git clone puts
  // no apisix-node-runner on its PATH.
  const cmd = [process.execPath, fileURLToPath(import.meta.url), 'run', ...options.pluginPaths.flatMap((p) => ['--plugins', p])];
  process.stdout.write(
    `To send the gateway's ext-plugin calls to this runner, add to its config.yaml:\n` +
      `ext-plugin:\n  path_for_test: ${path}\n` +
      `In production, let the gateway start the runner instead (it then picks the socket path): ` +
      `ext-plugin.cmd: ${JSON.stringify(cmd)}\n`,
  );
}

/**
 * SIGTERM/SIGINT and parent exit start ONE shutdown: `runner.shutdown()` drains for up to `drainMs`
 * (the gateway SIGKILLs 1 s after its SIGTERM), then the shutdown line, flush, exit 0.
 * - The handlers are installed before startup and never replaced: a signal during startup (the
 *   gateway reloading right after spawning us) is remembered and honoured once the runner is up,
 *   instead of killing the process with the socket file left behind. (Removing the last SIGTERM
 *   listener would also drop a signal caught but not yet handled.)
 * - A repeated SIGTERM while draining is ignored: the gateway sends one, then SIGKILL; restarting the
 *   drain would only waste the second it allows.
 * - A second SIGINT exits 1 at once: a person pressing Ctrl-C again does not want to wait.
 * - A shutdown still pending `SHUTDOWN_GRACE_MS` after the drain window is abandoned with exit 1.
 */
class Lifecycle {
  #signal: string | null = null;
  #started: { runner: Runner; options: RunnerOptions; logger: Logger; flush: () => void } | null = null;
  #stopping = false;
  #parentPoll: NodeJS.Timeout | undefined;

  constructor() {
    process.on('SIGTERM', () => this.#onSignal('SIGTERM'));
    // SIGHUP reloads the plugin modules (the runner logs the outcome; a failed reload keeps the old ones).
    process.on('SIGHUP', () => {
      if (this.#started !== null && !this.#stopping) this.#started.runner.reload().catch(() => {});
    });
    process.on('SIGINT', () => {
      if (this.#stopping && this.#started !== null) {
        this.#started.logger.warn('second SIGINT: exiting without finishing the drain');
        this.#started.flush();
        process.exit(1);
      }
      this.#onSignal('SIGINT');
    });
  }

  #onSignal(signal: string): void {
    if (this.#started === null) this.#signal ??= signal;
    else this.#stop(signal);
  }

  /** The runner is up: watch the parent, and act on a signal that came during startup. */
  started(runner: Runner, options: RunnerOptions, logger: Logger, flush: () => void, parentPid: number): void {
    this.#started = { runner, options, logger, flush };
    if (options.exitWithParent) {
      // The gateway's privileged agent is our parent; if it dies without SIGTERM (crash, SIGKILL) we
      // are reparented and would keep a socket nobody connects to. Unref'd: never keeps us alive.
      this.#parentPoll = setInterval(() => {
        if (process.ppid !== parentPid) this.#stop('parent-exit');
      }, PARENT_POLL_MS);
      this.#parentPoll.unref();
      if (process.ppid !== parentPid) this.#stop('parent-exit');
    }
    if (this.#signal !== null) this.#stop(this.#signal);
  }

  #stop(reason: string): void {
    if (this.#stopping || this.#started === null) return;
    this.#stopping = true;
    clearInterval(this.#parentPoll);
    const { runner, options, logger, flush } = this.#started;
    const startedAt = performance.now();
    const elapsedMs = (): number => Math.round(performance.now() - startedAt);

    setTimeout(() => {
      logger.error({ reason, durationMs: elapsedMs() }, `shutdown (${reason}) did not finish in time; exiting`);
      flush();
      process.exit(1);
    }, options.drainMs + SHUTDOWN_GRACE_MS);

    runner.shutdown(reason).then(
      (report) => {
        const durationMs = elapsedMs();
        logger.warn({ ...report, durationMs }, `${NAME} stopped (${reason}) in ${durationMs} ms, ${report.cutOff} calls cut off`);
        flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err, reason, durationMs: elapsedMs() }, `shutdown (${reason}) failed: ${describe(err)}`);
        flush();
        process.exit(1);
      },
    );
  }
}

/** The package version, from the package.json above this file (dist/cli.js or .build/src/cli.js). */
function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === NAME && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No (readable) package.json here; keep walking up.
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

function usageError(message: string): never {
  process.stderr.write(`${NAME}: ${message}\nRun "${NAME} --help" for usage.\n`);
  process.exit(2);
}

function fail(message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(1);
}

// Last, so every declaration above (classes are not hoisted) exists when it runs.
main(process.argv.slice(2));
