/**
 * `apisix-node-runner doctor`: reads a running runner's `/stats` and judges it (doctor-checks.ts);
 * with no runner answering there, checks the setup instead: the socket path the gateway and the
 * runner agree on, that something listens on it, and that the gateway's workers may connect. Each
 * failure is explained in the words of the gateway's troubleshooting guide.
 *
 * Exit codes: 0 nothing failed, 1 some check failed, 2 an invalid command line.
 */
import { lstatSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { describe, InvalidOptionError } from '../errors.js';
import { DEFAULT_METRICS_HOST, parseMetricsAddress, resolveOptions, type MetricsAddress } from '../options.js';
import { advice, formatCheck, judgeStats, type Check, type Verdict } from './doctor-checks.js';
import type { RunnerStats } from './stats.js';

/** Where doctor looks for a runner's endpoint unless told (the port docs/observability.md suggests). */
export const DEFAULT_DOCTOR_PORT = 9091;
const DEFAULT_TIMEOUT_MS = 2000;

export const DOCTOR_HELP = `Usage: apisix-node-runner doctor [options]

Reads a running runner's figures from its metrics endpoint (start it with --metrics-addr) and prints
each performance check as pass, warn or fail with the measured figure and the fix; what the runner
cannot observe is printed as advice, marked "not observed". With no runner answering, checks the
setup instead: the socket path, that something listens on it, and that the gateway may connect.

Options:
  --metrics-addr HOST:PORT  The runner's endpoint. default: ${DEFAULT_METRICS_HOST}:${DEFAULT_DOCTOR_PORT}
  --listen ADDR             The socket to check when no runner answers.
                            default: APISIX_LISTEN_ADDRESS, then API7_LISTEN_ADDRESS, then unix:/tmp/runner.sock
  --timeout-ms N            How long to wait for the endpoint. default: ${DEFAULT_TIMEOUT_MS}
  --json                    Print the checks as JSON.
  -h, --help                Print this help

Exit codes: 0 nothing failed, 1 a check failed, 2 invalid command line.
`;

export interface DoctorIo {
  out(text: string): void;
  err(text: string): void;
}

interface DoctorArgs {
  metricsAddr: MetricsAddress;
  listen: string | undefined;
  timeoutMs: number;
  json: boolean;
}

function parseDoctorArgs(argv: readonly string[]): DoctorArgs | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        'metrics-addr': { type: 'string' },
        listen: { type: 'string' },
        'timeout-ms': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new InvalidOptionError(describe(err));
  }
  if (values.help === true) return 'help';
  const timeout = values['timeout-ms'];
  const timeoutMs = timeout === undefined ? DEFAULT_TIMEOUT_MS : /^\d{1,6}$/.test(timeout) && Number(timeout) > 0 ? Number(timeout) : Number.NaN;
  if (Number.isNaN(timeoutMs)) throw new InvalidOptionError(`--timeout-ms must be a positive integer number of milliseconds (got ${JSON.stringify(timeout)})`);
  return {
    metricsAddr: parseMetricsAddress(values['metrics-addr'] ?? `${DEFAULT_METRICS_HOST}:${DEFAULT_DOCTOR_PORT}`)!,
    listen: values.listen,
    timeoutMs,
    json: values.json === true,
  };
}

/** GET `/stats`; rejects with the reason it could not (refused, timeout, not a runner). */
export function fetchStats(addr: MetricsAddress, timeoutMs: number): Promise<RunnerStats> {
  return new Promise<RunnerStats>((resolve, reject) => {
    const req = request({ host: addr.host, port: addr.port, path: '/stats', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        try {
          const stats = JSON.parse(body) as RunnerStats;
          if (typeof stats?.runner?.pid !== 'number' || typeof stats.calls !== 'object') throw new Error('not a runner\'s /stats document');
          resolve(stats);
        } catch (err) {
          reject(new Error(`unreadable /stats: ${describe(err)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function check(id: string, text: string, verdict: Verdict, fix: string | null = null): Check {
  return { id, text, verdict, fix: verdict === 'pass' ? null : fix };
}

const MISMATCH =
  'the runner is not started, or the paths differ: the runner listens where --listen or APISIX_LISTEN_ADDRESS says; the gateway connects to ext-plugin.path_for_test, or to the path it sets itself when it starts the runner (ext-plugin.cmd)';

/** Whether something accepts on the socket path, and the error code if not. */
function tryConnect(path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('ETIMEDOUT');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(null);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
  });
}

/** The setup checks, for when no runner answers on the endpoint. */
export async function checkSetup(env: Readonly<Record<string, string | undefined>>, listen: string | undefined, timeoutMs: number): Promise<Check[]> {
  const checks: Check[] = [];
  let path: string;
  try {
    const options = resolveOptions(listen === undefined ? [] : ['--listen', listen], env);
    path = options.listenPath;
    const text = `listen address: unix:${path} (from ${options.listenSource})`;
    if (options.listenSource === 'default') {
      checks.push(
        check(
          'listen-address',
          text,
          'warn',
          'neither APISIX_LISTEN_ADDRESS nor API7_LISTEN_ADDRESS is set here: the gateway sets it for the runner it starts; run doctor with --listen and the path in the gateway\'s config.yaml (ext-plugin.path_for_test) to check that one',
        ),
      );
    } else checks.push(check('listen-address', text, 'pass'));
  } catch (err) {
    checks.push(check('listen-address', `listen address: ${describe(err)}`, 'fail', 'use unix:/absolute/path of at most 107 bytes'));
    return [...checks, ...setupAdvice()];
  }

  let stat;
  try {
    stat = lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    checks.push(check('socket-exists', `socket ${path}: ${code === 'ENOENT' ? 'does not exist' : describe(err)}`, 'fail', MISMATCH));
    return [...checks, ...setupAdvice()];
  }
  if (!stat.isSocket()) {
    const kind = stat.isDirectory() ? 'a directory' : stat.isFile() ? 'a regular file' : 'not a socket';
    checks.push(check('socket-exists', `socket ${path}: is ${kind}`, 'fail', 'remove it or choose another path: the runner replaces a stale socket, nothing else'));
    return [...checks, ...setupAdvice()];
  }
  checks.push(check('socket-exists', `socket ${path}: exists`, 'pass'));

  const refused = await tryConnect(path, timeoutMs);
  if (refused === null) checks.push(check('socket-connectable', `socket ${path}: accepts connections`, 'pass'));
  else if (refused === 'ECONNREFUSED') {
    checks.push(check('socket-connectable', `socket ${path}: connection refused`, 'fail', `a stale socket file, nothing listens on it (the runner exited or crashed): ${MISMATCH}`));
  } else if (refused === 'EACCES') {
    checks.push(check('socket-connectable', `socket ${path}: permission denied`, 'fail', 'this user may not write to the socket: see the next check'));
  } else checks.push(check('socket-connectable', `socket ${path}: ${refused}`, 'warn', 'something holds the path but did not accept in time: a runner stuck or overloaded'));

  // Connecting to a Unix socket needs write permission on it and search permission on each directory.
  const mode = stat.mode & 0o777;
  const closed: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) closed.push(dir);
    } catch {
      closed.push(dir);
    }
    if (dirname(dir) === dir) break;
  }
  const text = `socket mode 0${mode.toString(8).padStart(3, '0')}${closed.length > 0 ? `, directories not searchable by others: ${closed.join(', ')}` : ''}`;
  const open = (mode & 0o002) !== 0 && closed.length === 0;
  checks.push(
    check('socket-permissions', text, open ? 'pass' : 'fail', "the gateway's workers run as nobody when its master runs as root: start the runner with --socket-mode 0766 (the default) in a directory others can search (o+x)"),
  );
  return [...checks, ...setupAdvice()];
}

function setupAdvice(): Check[] {
  return [
    check(
      'environment',
      'environment of the runner',
      'not observed',
      'nginx clears the environment of what it starts: the runner sees APISIX_LISTEN_ADDRESS, APISIX_CONF_EXPIRE_TIME and only the variables listed under nginx_config.envs in the gateway\'s config.yaml',
    ),
    ...advice(),
  ];
}

/** Runs the command; resolves with the exit code. Never exits the process itself. */
export async function doctorMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: DoctorIo): Promise<number> {
  let args: DoctorArgs | 'help';
  try {
    args = parseDoctorArgs(argv);
  } catch (err) {
    io.err(`apisix-node-runner doctor: ${describe(err)}\nRun "apisix-node-runner doctor --help" for usage.\n`);
    return 2;
  }
  if (args === 'help') {
    io.out(DOCTOR_HELP);
    return 0;
  }
  const url = `http://${args.metricsAddr.host.includes(':') ? `[${args.metricsAddr.host}]` : args.metricsAddr.host}:${args.metricsAddr.port}/stats`;
  let header: string;
  let checks: Check[];
  let stats: RunnerStats | null = null;
  try {
    stats = await fetchStats(args.metricsAddr, args.timeoutMs);
    const r = stats.runner;
    header = `runner ${r.version} (pid ${r.pid}) on unix:${r.socketPath}, up ${Math.round(r.uptimeSeconds)} s, figures from ${url}`;
    checks = judgeStats(stats);
  } catch (err) {
    header = `no runner answered at ${url} (${describe(err)}): checking the setup instead (start the runner with --metrics-addr ${args.metricsAddr.host}:${args.metricsAddr.port} to check its figures)`;
    checks = await checkSetup(env, args.listen, args.timeoutMs);
  }
  if (args.json) io.out(`${JSON.stringify({ header, runner: stats?.runner ?? null, checks }, null, 2)}\n`);
  else io.out(`${header}\n${checks.map((c) => `${formatCheck(c)}\n`).join('')}`);
  return checks.some((c) => c.verdict === 'fail') ? 1 : 0;
}
