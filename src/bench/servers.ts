/**
 * The server processes a bench run measures: our runner (`node <cli.js> run ...`) and the baseline
 * server, each optionally pinned with `taskset -c`, each on its own socket in a fresh temp directory,
 * ready once the socket accepts. An external runner is only a socket path (and maybe a pid).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASELINE_MODULE } from './baseline-server.js';

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 3_000;

/** The runner CLI next to this module: `.build/src/cli.js` or `dist/cli.js`. */
export const DEFAULT_RUNNER_CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
export const FIXTURE_PLUGINS_PATH = fileURLToPath(new URL('./fixture-plugins.js', import.meta.url));

export interface ServerProcess {
  readonly name: string;
  readonly socketPath: string;
  /** null for an external runner started elsewhere (unless its pid was given). */
  readonly pid: number | null;
  /** The command line, for the report. */
  readonly command: string;
  /** Non-null once the process has exited (code or signal). */
  exitStatus(): string | null;
  /** The last lines of its stderr. */
  stderrTail(): string;
  stop(): Promise<void>;
}

function waitAccepting(socketPath: string, child: ChildProcess | null, timeoutMs: number, exited: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const status = exited();
      if (status !== null) {
        reject(new Error(`exited before accepting connections (${status})`));
        return;
      }
      const socket = connect(socketPath);
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`socket ${socketPath} not accepting after ${timeoutMs} ms`));
        else setTimeout(attempt, 25);
      });
    };
    void child;
    attempt();
  });
}

interface StartSpec {
  name: string;
  argv: string[];
  socketPath: string;
  dir: string;
  cpus: string | null;
  env?: NodeJS.ProcessEnv;
}

async function startProcess(spec: StartSpec): Promise<ServerProcess> {
  const [cmd, args] = spec.cpus === null ? [process.execPath, spec.argv] : ['taskset', ['-c', spec.cpus, process.execPath, ...spec.argv]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: spec.env ?? process.env });
  let tail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    tail = (tail + s).slice(-8000);
  });
  let status: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      status = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      status = `spawn failed: ${err.message}`;
      resolve();
    });
  });
  const command = [cmd === process.execPath ? 'node' : cmd, ...args.map((a) => (a === process.execPath ? 'node' : a))].join(' ');
  const server: ServerProcess = {
    name: spec.name,
    socketPath: spec.socketPath,
    pid: child.pid ?? null,
    command,
    exitStatus: () => status,
    stderrTail: () => tail,
    async stop() {
      if (status === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(spec.dir, { recursive: true, force: true });
    },
  };
  try {
    await waitAccepting(spec.socketPath, child, READY_TIMEOUT_MS, () => status);
  } catch (err) {
    await server.stop();
    throw new Error(`${spec.name} (${command}): ${(err as Error).message}${tail ? `\n${tail.trim()}` : ''}`);
  }
  return server;
}

function freshSocket(prefix: string): { dir: string; socketPath: string } {
  const dir = mkdtempSync(join(tmpdir(), `anr-bench-${prefix}-`));
  return { dir, socketPath: join(dir, `${prefix}.sock`) };
}

export interface RunnerStartOptions {
  /** The runner CLI (`cli.js`); default the one next to this module. */
  cliPath?: string;
  /** Extra arguments after `run` (e.g. `--log-level debug`). */
  args?: readonly string[];
  /** Load the bench fixture plugins (`bench-var`, `bench-body`, `bench-cpu`). Default true. */
  fixtures?: boolean;
  cpus: string | null;
}

/** Our runner, as the gateway would start it: `apisix-node-runner run` on a fresh socket. */
export function startRunnerProcess(options: RunnerStartOptions): Promise<ServerProcess> {
  const cli = options.cliPath ?? DEFAULT_RUNNER_CLI;
  if (!existsSync(cli)) throw new Error(`runner CLI not found at ${cli} (build first: npm run build:test)`);
  const { dir, socketPath } = freshSocket('runner');
  const argv = [cli, 'run', '--listen', `unix:${socketPath}`];
  if (options.fixtures !== false) argv.push('--plugins', FIXTURE_PLUGINS_PATH);
  argv.push(...(options.args ?? []));
  // A clean environment for the runner's own options: nothing inherited may change what is measured.
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^(APISIX|API7)_/.test(key)) delete env[key];
  return startProcess({ name: 'runner', argv, socketPath, dir, cpus: options.cpus, env });
}

export function startBaselineProcess(cpus: string | null): Promise<ServerProcess> {
  const { dir, socketPath } = freshSocket('baseline');
  return startProcess({ name: 'baseline', argv: [BASELINE_MODULE, '--listen', socketPath], socketPath, dir, cpus });
}

/** A runner someone else started (ours or another implementation); `pid` enables CPU/RSS sampling. */
export async function externalServer(socketPath: string, pid: number | null): Promise<ServerProcess> {
  await waitAccepting(socketPath, null, 2000, () => null).catch((err: Error) => {
    throw new Error(`external runner: ${err.message}`);
  });
  return {
    name: 'external',
    socketPath,
    pid,
    command: `external runner on unix:${socketPath}${pid === null ? '' : ` (pid ${pid})`}`,
    exitStatus: () => null,
    stderrTail: () => '',
    stop: async () => {},
  };
}
