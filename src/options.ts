/**
 * Every CLI flag and environment variable of `apisix-node-runner run` becomes one validated, frozen
 * `RunnerOptions` object here, and nowhere else. A bad value throws `InvalidOptionError`
 * (`ANR_ERR_INVALID_OPTION`) with a one-line message naming the option, what it expects and the value
 * received; the CLI prints it and exits 2.
 */
import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidOptionError } from './errors.js';

/** The path the gateway's docs use for `ext-plugin.path_for_test`. */
export const DEFAULT_LISTEN_ADDRESS = 'unix:/tmp/runner.sock';
/** `0766`: the gateway's workers run as `nobody` when its master runs as root, and need write access. */
export const DEFAULT_SOCKET_MODE = 0o766;
/** What the gateway itself sets in `APISIX_CONF_EXPIRE_TIME` before spawning the runner. */
export const DEFAULT_CONF_EXPIRE_SECONDS = 3600;
export const DEFAULT_MAX_TOKENS = 100_000;
/** Drain window on SIGTERM: the gateway SIGKILLs the runner 1 s after its SIGTERM. */
export const DEFAULT_DRAIN_MS = 800;
/** 56 s: under the gateway's 60 s socket read timeout, so our reply arrives before it gives up. */
export const DEFAULT_CALL_TIMEOUT_MS = 56_000;
export const DEFAULT_LOG_LEVEL = 'warn';
/** Linux `sun_path` is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;
/**
 * The conf cache keeps entries 1.2 x this long; Node timers longer than 2^31 - 1 ms fire after 1 ms
 * (TimeoutOverflowWarning), so the lifetime stays well below 2^31 / 1.2 ms (about 20 days).
 */
export const MAX_CONF_EXPIRE_SECONDS = 1_000_000;
/** Conf tokens are uint32 on the wire; more live tokens than that cannot exist. */
export const MAX_MAX_TOKENS = 2 ** 32 - 1;
export const MAX_DRAIN_MS = 60_000;
/** Worker threads by default: one per core (the main thread mostly waits on the socket). */
export const DEFAULT_THREADS = availableParallelism();
export const MAX_THREADS = 256;
export const DEFAULT_MAX_QUEUE = 4096;
export const MAX_MAX_QUEUE = 1_000_000;
export const MAX_CALL_TIMEOUT_MS = 3_600_000;
/** Where `--metrics-addr PORT` (no host) listens: loopback, so nothing off the machine can read the stats. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';
/** The summary line's period (it is logged at info, so with the default level warn it is off). */
export const DEFAULT_SUMMARY_INTERVAL_S = 60;
export const MAX_SUMMARY_INTERVAL_S = 86_400;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type ListenSource = '--listen' | 'APISIX_LISTEN_ADDRESS' | 'API7_LISTEN_ADDRESS' | 'default';
export type ConfExpireSource = '--conf-expire-time' | 'APISIX_CONF_EXPIRE_TIME' | 'API7_CONF_EXPIRE_TIME' | 'default';

/** The resolved, validated and frozen configuration of one runner process. */
export interface RunnerOptions {
  /** Absolute Unix socket path to listen on, without `unix:`; at most 107 bytes. */
  readonly listenPath: string;
  /** Where `listenPath` came from (logged at startup). */
  readonly listenSource: ListenSource;
  /** File mode of the socket, applied at creation. Default `0o766`. */
  readonly socketMode: number;
  /** Lifetime of a conf token after its last use, in seconds. Default 3600. */
  readonly confExpireSeconds: number;
  readonly confExpireSource: ConfExpireSource;
  /** Most conf tokens kept; least recently used evicted first. Default 100000. */
  readonly maxTokens: number;
  /** Absolute paths of the plugin modules or directories to load, in flag order, without duplicates. */
  readonly pluginPaths: readonly string[];
  /** Drop unknown plugin names from a conf (with a warning) instead of failing closed. Default false. */
  readonly skipUnknownPlugins: boolean;
  /** How long open calls may finish after SIGTERM, in milliseconds. Default 800. */
  readonly drainMs: number;
  /** Worker threads for plugins placed on the pool; 0 runs every plugin on the main thread. Default: cores. */
  readonly threads: number;
  /** Calls waiting for or running on the pool before new ones are shed. Default 4096. */
  readonly maxQueue: number;
  /** Deadline of one call through its plugin chain, in milliseconds. Default 56000. */
  readonly callTimeoutMs: number;
  /** Exit when the parent process (the gateway's privileged agent) goes away. Default true. */
  readonly exitWithParent: boolean;
  readonly logLevel: LogLevel;
  /** Absolute path of the log file, or null for stderr (which the gateway copies into its error.log). */
  readonly logFile: string | null;
  /** Where the HTTP endpoint (`/metrics`, `/stats`, `/healthz`) listens, or null (the default: off). */
  readonly metricsAddr: MetricsAddress | null;
  /** Period of the summary line in seconds, 0 for none. Logged at info: off at the default level warn. Default 60. */
  readonly summaryIntervalS: number;
}

/** A TCP listen address: an IP literal or `localhost`, and a port (0: any free port). */
export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

export const HELP_TEXT = `Usage: apisix-node-runner <command> [options]

Plugin Runner for Apache APISIX and API7 EE: serves the gateway's ext-plugin calls over a Unix socket.

Commands:
  run        Start the runner (the gateway's ext-plugin.cmd: ["apisix-node-runner", "run", ...])
  doctor     Check a running runner's figures, or the setup when none answers ("doctor --help")
  bench      Load-test a runner the way the gateway drives it ("bench --help")
  version    Print the version (also --version)
  help       Print this help (also --help, -h)

Options of "run":
  --listen ADDR              Unix socket to listen on, "unix:/abs/path" or "/abs/path" (at most
                             ${MAX_SOCKET_PATH_BYTES} bytes, the Linux sun_path limit). A socket already there
                             is replaced; any other file there stops the start.
                             env: APISIX_LISTEN_ADDRESS, then API7_LISTEN_ADDRESS
                             default: ${DEFAULT_LISTEN_ADDRESS}
  --socket-mode MODE         Octal file mode of the socket, 0000-0777.
                             default: 0${DEFAULT_SOCKET_MODE.toString(8)} (the gateway's workers often run as nobody)
  --conf-expire-time SECONDS Lifetime of a conf token after its last use, 1-${MAX_CONF_EXPIRE_SECONDS}.
                             env: APISIX_CONF_EXPIRE_TIME, then API7_CONF_EXPIRE_TIME
                             default: ${DEFAULT_CONF_EXPIRE_SECONDS}
  --max-tokens N             Most conf tokens kept, least recently used evicted first.
                             default: ${DEFAULT_MAX_TOKENS}
  --plugins PATH             Plugin module or directory to load; repeatable. Relative paths are
                             resolved against the working directory. default: none
  --skip-unknown-plugins     Drop unknown plugin names from a conf with a warning, instead of
                             answering every call of that conf with 503. default: off
  --drain-ms N               On SIGTERM/SIGINT, let open calls finish for N ms (0-${MAX_DRAIN_MS}); the
                             gateway sends SIGKILL 1 s after SIGTERM. default: ${DEFAULT_DRAIN_MS}
  --threads N                Worker threads for plugins that run on the pool (0-${MAX_THREADS}); 0 runs
                             every plugin on the main thread. default: the number of cores (${DEFAULT_THREADS})
  --max-queue N              Calls waiting for or running on the pool before new ones are shed
                             (answered as a failure of their chain). default: ${DEFAULT_MAX_QUEUE}
  --call-timeout-ms N        Deadline of one call, 1-${MAX_CALL_TIMEOUT_MS} ms. default: ${DEFAULT_CALL_TIMEOUT_MS}
                             (under the gateway's 60 s read timeout)
  --no-exit-with-parent      Keep running when the parent process exits (for a runner started by
                             hand). default: exit with the parent
  --log-level LEVEL          ${LOG_LEVELS.join(', ')}. default: ${DEFAULT_LOG_LEVEL}
  --log-file PATH            Write JSON logs to PATH (parent directories are created).
                             default: stderr (the gateway copies it into its error.log)
  --metrics-addr HOST:PORT   Serve /metrics (Prometheus), /stats (JSON) and /healthz over HTTP.
                             "PORT" alone listens on ${DEFAULT_METRICS_HOST}. default: off
  --summary-interval-s N     Log a summary line every N s at info (0: never), and one at shutdown.
                             Only at --log-level info or lower. default: ${DEFAULT_SUMMARY_INTERVAL_S}
  -h, --help                 Print this help

Exit codes: 0 normal exit, 1 startup or shutdown failure, 2 invalid command line.
`;

/** How each flag takes its value. `plugins` is the only repeatable flag. */
const FLAGS = {
  listen: { type: 'string' },
  'socket-mode': { type: 'string' },
  'conf-expire-time': { type: 'string' },
  'max-tokens': { type: 'string' },
  plugins: { type: 'string', multiple: true },
  'skip-unknown-plugins': { type: 'boolean' },
  'drain-ms': { type: 'string' },
  threads: { type: 'string' },
  'max-queue': { type: 'string' },
  'call-timeout-ms': { type: 'string' },
  'exit-with-parent': { type: 'boolean' },
  'no-exit-with-parent': { type: 'boolean' },
  'log-level': { type: 'string' },
  'log-file': { type: 'string' },
  'metrics-addr': { type: 'string' },
  'summary-interval-s': { type: 'string' },
} as const;

type FlagName = keyof typeof FLAGS;
type StringFlag = { [K in FlagName]: (typeof FLAGS)[K]['type'] extends 'string' ? K : never }[FlagName];

interface ParsedFlags {
  strings: Map<StringFlag, string>;
  plugins: string[];
  skipUnknownPlugins: boolean;
  exitWithParent: boolean;
}

/**
 * Resolves the arguments after `run` and the environment into frozen options.
 * @throws InvalidOptionError for an unknown flag, a flag without its value, or any unusable value.
 */
export function resolveOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): RunnerOptions {
  const flags = parseFlags(argv);

  const listen = pick(flags.strings.get('listen'), '--listen', env, 'APISIX_LISTEN_ADDRESS', 'API7_LISTEN_ADDRESS');
  const confExpire = pick(
    flags.strings.get('conf-expire-time'),
    '--conf-expire-time',
    env,
    'APISIX_CONF_EXPIRE_TIME',
    'API7_CONF_EXPIRE_TIME',
  );

  const options: RunnerOptions = {
    listenPath: listen ? parseListenAddress(listen.source, listen.value) : parseListenAddress('default', DEFAULT_LISTEN_ADDRESS),
    listenSource: listen ? (listen.source as ListenSource) : 'default',
    socketMode: parseSocketMode(flags.strings.get('socket-mode')),
    confExpireSeconds: confExpire
      ? parseInteger(confExpire.source, confExpire.value, 1, MAX_CONF_EXPIRE_SECONDS, 'a positive integer number of seconds')
      : DEFAULT_CONF_EXPIRE_SECONDS,
    confExpireSource: confExpire ? (confExpire.source as ConfExpireSource) : 'default',
    maxTokens: optionalInteger(flags, 'max-tokens', DEFAULT_MAX_TOKENS, 1, MAX_MAX_TOKENS, 'a positive integer'),
    pluginPaths: Object.freeze(resolvePluginPaths(flags.plugins)),
    skipUnknownPlugins: flags.skipUnknownPlugins,
    drainMs: optionalInteger(flags, 'drain-ms', DEFAULT_DRAIN_MS, 0, MAX_DRAIN_MS, 'an integer number of milliseconds'),
    threads: optionalInteger(flags, 'threads', DEFAULT_THREADS, 0, MAX_THREADS, 'an integer number of threads'),
    maxQueue: optionalInteger(flags, 'max-queue', DEFAULT_MAX_QUEUE, 1, MAX_MAX_QUEUE, 'a positive integer'),
    callTimeoutMs: optionalInteger(
      flags,
      'call-timeout-ms',
      DEFAULT_CALL_TIMEOUT_MS,
      1,
      MAX_CALL_TIMEOUT_MS,
      'an integer number of milliseconds',
    ),
    exitWithParent: flags.exitWithParent,
    logLevel: parseLogLevel(flags.strings.get('log-level')),
    logFile: parseLogFile(flags.strings.get('log-file')),
    metricsAddr: parseMetricsAddress(flags.strings.get('metrics-addr')),
    summaryIntervalS: optionalInteger(
      flags,
      'summary-interval-s',
      DEFAULT_SUMMARY_INTERVAL_S,
      0,
      MAX_SUMMARY_INTERVAL_S,
      'an integer number of seconds',
    ),
  };
  return Object.freeze(options);
}

function parseFlags(argv: readonly string[]): ParsedFlags {
  // Non-strict parseArgs with tokens: its own strict-mode errors neither name the flag in a stable
  // form nor catch `--listen --socket-mode 700` (it would take "--socket-mode" as the address), so
  // each token is checked here instead.
  const { tokens } = parseArgs({ args: [...argv], options: FLAGS, strict: false, allowPositionals: true, tokens: true });
  const parsed: ParsedFlags = { strings: new Map(), plugins: [], skipUnknownPlugins: false, exitWithParent: true };

  for (const token of tokens) {
    if (token.kind === 'positional') {
      throw new InvalidOptionError(`unexpected argument ${quote(token.value)}; every option of "run" starts with --`);
    }
    if (token.kind === 'option-terminator') {
      throw new InvalidOptionError('unexpected argument "--"; "run" takes no positional arguments');
    }
    const flag = token.rawName;
    if (!Object.hasOwn(FLAGS, token.name) || !flag.startsWith('--')) {
      throw new InvalidOptionError(`unknown option ${flag}`);
    }
    const name = token.name as FlagName;

    if (FLAGS[name].type === 'boolean') {
      if (token.value !== undefined) {
        throw new InvalidOptionError(`${flag} takes no value (got ${quote(token.value)})`);
      }
      if (name === 'skip-unknown-plugins') parsed.skipUnknownPlugins = true;
      else parsed.exitWithParent = name === 'exit-with-parent';
      continue;
    }

    // A following flag is not a value: `--listen --log-level debug` means the address was forgotten.
    // A single dash is left alone so `--drain-ms -5` reports the range, not a missing value.
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
      throw new InvalidOptionError(`${flag} requires a value`);
    }
    if (name === 'plugins') {
      parsed.plugins.push(token.value);
    } else {
      const key = name as StringFlag;
      if (parsed.strings.has(key)) {
        throw new InvalidOptionError(
          `${flag} may be given only once (got ${quote(parsed.strings.get(key)!)} and ${quote(token.value)})`,
        );
      }
      parsed.strings.set(key, token.value);
    }
  }
  return parsed;
}

/** Flag, else the first env var, else the second; an empty env var counts as unset. */
function pick(
  flagValue: string | undefined,
  flag: string,
  env: Readonly<Record<string, string | undefined>>,
  primaryEnv: string,
  aliasEnv: string,
): { value: string; source: string } | null {
  if (flagValue !== undefined) return { value: flagValue, source: flag };
  const primary = env[primaryEnv];
  if (primary !== undefined && primary !== '') return { value: primary, source: primaryEnv };
  const alias = env[aliasEnv];
  if (alias !== undefined && alias !== '') return { value: alias, source: aliasEnv };
  return null;
}

function parseListenAddress(source: string, raw: string): string {
  const expected = 'an absolute Unix socket path, optionally prefixed with "unix:"';
  let path = raw;
  if (path.startsWith('unix:')) {
    path = path.slice('unix:'.length);
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path)) {
    // The gateway only ever connects over a Unix socket (`ext-plugin` has no TCP mode).
    throw new InvalidOptionError(`${source} must be ${expected}; the gateway connects only over Unix sockets (got ${quote(raw)})`);
  }
  if (!isAbsolute(path) || path.includes('\0')) {
    throw new InvalidOptionError(`${source} must be ${expected} (got ${quote(raw)})`);
  }
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidOptionError(
      `${source} must be a socket path of at most ${MAX_SOCKET_PATH_BYTES} bytes, the Linux sun_path limit (got ${bytes} bytes: ${quote(raw)})`,
    );
  }
  return path;
}

function parseSocketMode(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_SOCKET_MODE;
  // `0766`, `766` and `0o766` all mean the same; anything else (decimal, setuid bits) is refused.
  const match = /^(?:0o|0)?([0-7]{1,3})$/i.exec(raw);
  if (!match) {
    throw new InvalidOptionError(`--socket-mode must be an octal file mode between 0000 and 0777 (got ${quote(raw)})`);
  }
  return Number.parseInt(match[1]!, 8);
}

function optionalInteger(
  flags: ParsedFlags,
  name: StringFlag,
  fallback: number,
  min: number,
  max: number,
  expected: string,
): number {
  const raw = flags.strings.get(name);
  return raw === undefined ? fallback : parseInteger(`--${name}`, raw, min, max, expected);
}

function parseInteger(source: string, raw: string, min: number, max: number, expected: string): number {
  // Digits only: Number() would also accept "1e3", "0x10", " 5" and "".
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new InvalidOptionError(`${source} must be ${expected} between ${min} and ${max} (got ${quote(raw)})`);
  }
  return value;
}

function resolvePluginPaths(raw: readonly string[]): string[] {
  const paths: string[] = [];
  for (const entry of raw) {
    if (entry === '') throw new InvalidOptionError('--plugins must be a path to a plugin module or directory (got "")');
    const path = resolve(entry);
    try {
      statSync(path);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
      throw new InvalidOptionError(`--plugins path ${quote(path)} ${reason} (got ${quote(entry)})`);
    }
    // The same path twice would load every plugin in it twice, which is a duplicate-name error.
    if (!paths.includes(path)) paths.push(path);
  }
  return paths;
}

function parseLogLevel(raw: string | undefined): LogLevel {
  if (raw === undefined) return DEFAULT_LOG_LEVEL;
  const level = raw.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new InvalidOptionError(`--log-level must be one of ${LOG_LEVELS.join(', ')} (got ${quote(raw)})`);
  }
  return level as LogLevel;
}

function parseLogFile(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (raw === '' || raw.includes('\0')) {
    throw new InvalidOptionError(`--log-file must be a file path (got ${quote(raw)})`);
  }
  return resolve(raw);
}

/**
 * `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT`; HOST an IP literal or `localhost`. Without a host
 * the endpoint listens on loopback only; any other host must be written out.
 */
export function parseMetricsAddress(raw: string | undefined, source = '--metrics-addr'): MetricsAddress | null {
  if (raw === undefined) return null;
  const expected = 'HOST:PORT or PORT, HOST an IP address or localhost, PORT 0-65535';
  const match = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(raw);
  const host = match === null ? undefined : (match[1] ?? (match[2] || DEFAULT_METRICS_HOST));
  const port = match === null ? Number.NaN : Number(match[3]);
  if (host === undefined || !(port <= 65_535) || (host !== 'localhost' && isIP(host) === 0)) {
    throw new InvalidOptionError(`${source} must be ${expected} (got ${quote(raw)})`);
  }
  return Object.freeze({ host, port });
}

function quote(value: string): string {
  return JSON.stringify(value);
}
