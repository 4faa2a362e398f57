/**
 * The real CLI (`.build/src/cli.js`) as a child process: a unique socket path in a fresh temp dir,
 * ready once its startup line is logged and the socket accepts, stderr captured line by line
 * (pino JSON), stopped with a signal and timed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENT_WAIT_MS } from './waiting.js';

/** The compiled CLI: this file runs as .build/test/support/runner-process.js. */
export const CLI_PATH = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export type LogLine = Record<string, unknown> & { level?: unknown; msg?: unknown };

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StopResult extends ExitInfo {
  /** From sending the signal to the process exit event. */
  durationMs: number;
}

export interface RunnerProcessOptions {
  /** The CLI module to run; default the compiled one (`CLI_PATH`). */
  readonly cliPath?: string;
  /** Arguments after `run`. */
  readonly args?: readonly string[];
  /** Environment on top of a clean one (`PATH` only). `undefined` values are left out. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Socket path; default `<fresh temp dir>/runner.sock`. */
  readonly socketPath?: string;
  /** Directory for the default socket path (and cleaned up by `cleanup()` if created here). */
  readonly dir?: string;
  /** How the path is passed: `APISIX_LISTEN_ADDRESS=unix:<path>` (default, as the gateway does), `--listen`, or not at all. */
  readonly listenVia?: 'env' | 'flag' | 'none';
  /**
   * `log+accept` (default): wait for the startup line naming the socket path, then for the socket to
   * accept (right when another runner already serves the path). `log`: only the line. `accept`: only
   * a successful connect (for `--log-file` or quiet log levels). `none`: return at once.
   */
  readonly ready?: 'log+accept' | 'log' | 'accept' | 'none';
  readonly readyTimeoutMs?: number;
}

export class RunnerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly socketPath: string;
  readonly dir: string;
  /** Every stderr line so far (pino JSON, or plain text for usage errors). */
  readonly stderrLines: string[] = [];
  stdout = '';
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | null = null;
  #ownsDir: boolean;
  #lineWaiters = new Set<() => void>();

  private constructor(child: ChildProcess, socketPath: string, dir: string, ownsDir: boolean) {
    this.child = child;
    this.pid = child.pid!;
    this.socketPath = socketPath;
    this.dir = dir;
    this.#ownsDir = ownsDir;
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        this.#notify();
        resolve(this.#exit);
      });
    });
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line !== '') this.stderrLines.push(line);
      this.#notify();
    });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.stdout += chunk;
    });
  }

  /** Starts `node <cliPath> run ...` and waits until it serves (see `ready`). */
  static async start(options: RunnerProcessOptions = {}): Promise<RunnerProcess> {
    const ownsDir = options.socketPath === undefined && options.dir === undefined;
    const dir = options.dir ?? (options.socketPath ? dirname(options.socketPath) : mkdtempSync(join(tmpdir(), 'anr-e2e-')));
    const socketPath = options.socketPath ?? join(dir, 'runner.sock');
    const listenVia = options.listenVia ?? 'env';
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    if (listenVia === 'env') env.APISIX_LISTEN_ADDRESS = `unix:${socketPath}`;
    for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
    const args = [options.cliPath ?? CLI_PATH, 'run', ...(listenVia === 'flag' ? ['--listen', socketPath] : []), ...(options.args ?? [])];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const runner = new RunnerProcess(child, socketPath, dir, ownsDir);
    const ready = options.ready ?? 'log+accept';
    if (ready === 'none') return runner;
    const timeoutMs = options.readyTimeoutMs ?? EVENT_WAIT_MS;
    try {
      if (ready !== 'accept') {
        await runner.waitForLog((l) => l.socketPath === socketPath && String(l.msg).includes('listening on'), timeoutMs);
      }
      if (ready !== 'log') await runner.#waitAccepting(timeoutMs);
    } catch (err) {
      await runner.kill();
      throw new Error(`runner did not become ready: ${(err as Error).message}\nstderr:\n${runner.stderrLines.join('\n')}`);
    }
    return runner;
  }

  /** The exit code and signal, or null while running. */
  get exitInfo(): ExitInfo | null {
    return this.#exit;
  }

  /** stderr lines that parse as JSON objects (pino), in order. */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.stderrLines) {
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed !== null && typeof parsed === 'object') out.push(parsed as LogLine);
      } catch {
        // not JSON (a usage error, a crash trace)
      }
    }
    return out;
  }

  /** Resolves with the first log line matching `predicate`, waiting for it if needed. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = EVENT_WAIT_MS): Promise<LogLine> {
    return new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = this.logs().find(predicate);
        if (found) {
          done();
          resolve(found);
        } else if (this.#exit) {
          done();
          reject(new Error(`process exited (${JSON.stringify(this.#exit)}) before the log line appeared`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#lineWaiters.delete(check);
      };
      this.#lineWaiters.add(check);
      check();
    });
  }

  /** Sends `signal` and waits for the exit; the duration is measured from the signal. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = EVENT_WAIT_MS): Promise<StopResult> {
    if (this.#exit) return { ...this.#exit, durationMs: 0 };
    const started = performance.now();
    const exitedAt = this.exited.then((info) => ({ info, at: performance.now() }));
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`runner did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    });
    try {
      const { info, at } = await Promise.race([exitedAt, timeout]);
      return { ...info, durationMs: at - started };
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL if still running, and wait for the exit. Safe to call in any teardown. */
  async kill(): Promise<void> {
    if (this.#exit === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** `kill()`, then remove the temp dir if this helper created it. */
  async cleanup(): Promise<void> {
    await this.kill();
    if (this.#ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  #notify(): void {
    for (const waiter of [...this.#lineWaiters]) waiter();
  }

  async #waitAccepting(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.#exit) throw new Error(`process exited (${JSON.stringify(this.#exit)})`);
      if (await canConnect(this.socketPath)) return;
      if (performance.now() > deadline) throw new Error(`socket ${this.socketPath} did not accept within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Whether a connection to the Unix socket `path` succeeds now (the probe is closed at once). */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
