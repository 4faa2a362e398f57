/**
 * How much the machine itself interrupts a busy CPU: a process pinned to the CPU spins on the event
 * loop (`setImmediate`) and records every gap between two turns longer than 0.5 ms. On a quiet
 * machine those gaps are other tasks on that CPU (kernel threads, the hypervisor, agents): each
 * one delays whatever was running there, so a few per second of several ms each set a floor under
 * the p99.9 and max of any latency measured on the machine, whatever the server does.
 */
import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface NoiseSample {
  /** The CPU list the probe was pinned to (null: not pinned). */
  cpus: string | null;
  durationMs: number;
  /** Gaps longer than 0.5 ms per second. */
  gapsPerSecond: number;
  /** Share of the time lost in those gaps, %. */
  lostPercent: number;
  maxGapMs: number;
  involuntaryContextSwitches: number;
}

const PROBE_FLAG = '--apisix-bench-noise-probe';
const MODULE = fileURLToPath(import.meta.url);
const GAP_MS = 0.5;

/** Runs the probe in a child process on each CPU list at the same time. */
export function probeNoise(cpuLists: readonly (string | null)[], durationMs: number): Promise<NoiseSample[]> {
  return Promise.all(
    cpuLists.map(
      (cpus) =>
        new Promise<NoiseSample>((resolve, reject) => {
          const node = [process.execPath, '--single-threaded', MODULE, PROBE_FLAG, String(durationMs)];
          const [cmd, args] = cpus === null ? [node[0], node.slice(1)] : ['taskset', ['-c', cpus, ...node]];
          execFile(cmd, args, { encoding: 'utf8' }, (err, stdout) => {
            if (err) reject(new Error(`noise probe on CPU ${cpus}: ${err.message}`));
            else resolve({ cpus, ...(JSON.parse(stdout) as Omit<NoiseSample, 'cpus'>) });
          });
        }),
    ),
  );
}

function isMainModule(): boolean {
  try {
    return process.argv.includes(PROBE_FLAG) && realpathSync(process.argv[1]) === realpathSync(MODULE);
  } catch {
    return false;
  }
}

if (isMainModule()) {
  const durationMs = Number(process.argv[process.argv.indexOf(PROBE_FLAG) + 1]) || 2000;
  const t0 = performance.now();
  let last = t0;
  let gaps = 0;
  let lost = 0;
  let maxGap = 0;
  const turn = (): void => {
    const now = performance.now();
    const gap = now - last;
    last = now;
    if (gap > GAP_MS) {
      gaps++;
      lost += gap;
      if (gap > maxGap) maxGap = gap;
    }
    if (now - t0 < durationMs) {
      setImmediate(turn);
      return;
    }
    const seconds = (now - t0) / 1000;
    process.stdout.write(
      JSON.stringify({
        durationMs: Math.round(now - t0),
        gapsPerSecond: Math.round((gaps / seconds) * 10) / 10,
        lostPercent: Math.round(((lost / (now - t0)) * 100) * 100) / 100,
        maxGapMs: Math.round(maxGap * 100) / 100,
        involuntaryContextSwitches: process.resourceUsage().involuntaryContextSwitches,
      }),
    );
  };
  setImmediate(turn);
}
