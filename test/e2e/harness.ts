/**
 * Shared set-up for the end-to-end tests: an in-process runner on a unique socket path with a
 * logger that records every line, gateway simulators bound to it, and teardown that stops all of it.
 * (Not a test file; node --test finds no tests in it.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startRunner, type Runner, type StartOptions } from '../../src/runner.js';
import { GatewaySimulator, type GatewaySimulatorOptions } from '../support/gateway.js';
import { EVENT_WAIT_MS } from '../support/waiting.js';

export { EVENT_WAIT_MS };

/** The plugin fixtures (source tree; tests run from .build/test/e2e/). */
export const FIXTURE_PLUGINS = fileURLToPath(new URL('../../../test/fixtures/plugins/', import.meta.url));

/** pino's numeric levels (the in-process logger keeps pino's default level format). */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

export interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger that parses every line it writes into `lines`. */
export function memoryLogger(level: pino.Level = 'debug'): { logger: pino.Logger; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const logger = pino({ level, base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as LogRecord) });
  return { logger, lines };
}

/** A seed from E2E_SEED (to reproduce a failure), else random; tests print it in failure messages. */
export function testSeed(): number {
  const fromEnv = process.env.E2E_SEED;
  return fromEnv ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 32);
}

export interface TestRunner {
  readonly runner: Runner;
  readonly socketPath: string;
  readonly dir: string;
  /** Every log line so far. */
  readonly logs: LogRecord[];
  /** A gateway simulator on this runner (closed by `stop()`); reads time out after EVENT_WAIT_MS. */
  gateway(options?: Partial<GatewaySimulatorOptions>): GatewaySimulator;
  /** Closes every simulator, shuts the runner down, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_TEST_OPTIONS: StartOptions = {
  listenPath: '',
  socketMode: 0o766,
  confExpireSeconds: 3600,
  maxTokens: 1000,
  pluginPaths: [FIXTURE_PLUGINS],
  skipUnknownPlugins: false,
  drainMs: 50,
  callTimeoutMs: 5000,
};

/**
 * Starts `startRunner()` in this process with the fixture plugins. With `t`, teardown is registered
 * on it. `socketPath` reuses a path (a restart); otherwise a fresh temp dir is made. `log` lets a
 * test read the lines of a runner that is still starting.
 */
export async function startTestRunner(
  t: TestContext | null,
  options: Partial<StartOptions> & { socketPath?: string } = {},
  log: ReturnType<typeof memoryLogger> = memoryLogger(),
): Promise<TestRunner> {
  const ownDir = options.socketPath === undefined;
  const dir = ownDir ? mkdtempSync(join(tmpdir(), 'anr-e2e-')) : dirname(options.socketPath!);
  const socketPath = options.socketPath ?? join(dir, 'r.sock');
  const { logger, lines } = log;
  const runner = await startRunner({ ...DEFAULT_TEST_OPTIONS, ...options, listenPath: socketPath }, logger);
  const gateways: GatewaySimulator[] = [];
  let stopped: Promise<void> | null = null;
  const handle: TestRunner = {
    runner,
    socketPath,
    dir,
    logs: lines,
    gateway(gwOptions = {}) {
      const gw = new GatewaySimulator({ socketPath, readTimeoutMs: EVENT_WAIT_MS, seed: testSeed(), ...gwOptions });
      gateways.push(gw);
      return gw;
    },
    stop() {
      stopped ??= (async () => {
        for (const gw of gateways) gw.close();
        await runner.shutdown('test teardown');
        if (ownDir) rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  t?.after(() => handle.stop());
  return handle;
}

/** Resolves after `ms` (only where there is no event to wait on). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every few ms until it holds, or throws after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = EVENT_WAIT_MS, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

/** Header entries of a decoded reply as `[name, value]` text pairs (null for an absent value). */
export function entryPairs(entries: ReadonlyArray<{ name: Uint8Array; value: Uint8Array | null }> | null): Array<[string, string | null]> {
  return (entries ?? []).map((e) => [Buffer.from(e.name).toString('utf8'), e.value === null ? null : Buffer.from(e.value).toString('utf8')]);
}

/** Lines at exactly `level` whose message includes `text`. */
export function linesAt(logs: readonly LogRecord[], level: number, text: string): LogRecord[] {
  return logs.filter((l) => l.level === level && l.msg.includes(text));
}

/** Narrows a simulator result to success, failing the test with the gateway's error otherwise. */
export function expectOk<T extends { ok: boolean }>(result: T, what = 'call'): Extract<T, { ok: true }> {
  if (!result.ok) {
    const { error, stage } = result as unknown as { error: string; stage?: string };
    throw new Error(`${what} failed${stage ? ` at ${stage}` : ''}: ${error}`);
  }
  return result as Extract<T, { ok: true }>;
}

/** Narrows a simulator result to failure, failing the test if it succeeded. */
export function expectFailure<T extends { ok: boolean }>(result: T, what = 'call'): Extract<T, { ok: false }> {
  if (result.ok) throw new Error(`${what} succeeded, expected a failure: ${JSON.stringify(result, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString() : v))}`);
  return result as Extract<T, { ok: false }>;
}
