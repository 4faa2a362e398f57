/** Shared pieces of the bench harness tests: fake servers as child processes, short load configs. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findScenario, workloadOf } from '../../../src/bench/scenarios.js';
import type { LoadConfig, Workload } from '../../../src/bench/types.js';

const FAKE_SERVER = fileURLToPath(new URL('./fake-server.js', import.meta.url));

export interface FakeServer {
  socketPath: string;
  stop(): Promise<void>;
}

export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `anr-bench-test-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startFake(mode: string, options: Record<string, number | string> = {}): Promise<FakeServer> {
  const { dir, cleanup } = tempDir(mode);
  const socketPath = join(dir, 'fake.sock');
  const child = spawn(process.execPath, [FAKE_SERVER, mode, socketPath, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      out += s;
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`fake server ${mode} exited (code ${code}) before ready`)));
  });
  return {
    socketPath,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      cleanup();
    },
  };
}

/** A short closed-loop run of the `say` workload (expects Stop), overridable. */
export function quickConfig(socketPath: string, overrides: Partial<LoadConfig> = {}, workload: Partial<Workload> = {}): LoadConfig {
  return {
    socketPath,
    connections: 2,
    mode: 'closed',
    rate: null,
    warmupMs: 0,
    durationMs: 300,
    maxRequests: null,
    callTimeoutMs: 2000,
    workload: workloadOf(findScenario('say')!, workload),
    progressMs: 0,
    maxBacklog: 10_000,
    ...overrides,
  };
}
