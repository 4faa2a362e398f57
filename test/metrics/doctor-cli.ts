/** `apisix-node-runner doctor ...` as a child process, with a clean environment plus `env` (not a test file). */
import { spawn } from 'node:child_process';
import { CLI_PATH } from '../support/runner-process.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runDoctor(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_PATH, 'doctor', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
