/**
 * CPU and memory of a server process from /proc (Linux): utime + stime from /proc/<pid>/stat, RSS
 * and peak RSS (VmHWM) from /proc/<pid>/status. Sampled at the edges of the measured window.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | null = null;

/** USER_HZ, the unit of utime/stime (100 on practically every Linux). */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcSnapshot {
  /** performance.now() at the sample, ms. */
  at: number;
  /** utime + stime, ms. */
  cpuMs: number;
  rssBytes: number;
  peakRssBytes: number;
}

/** A snapshot of `pid`, or null when it cannot be read (not Linux, process gone). */
export function sampleProcess(pid: number): ProcSnapshot | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may itself contain spaces or parentheses).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the full line: 12 and 13 after "pid (comm) ".
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    };
    return { at: performance.now(), cpuMs: (ticks * 1000) / clockTicksPerSecond(), rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
  } catch {
    return null;
  }
}

export interface SystemSnapshot {
  at: number;
  /** CPU time spent busy (not idle, not iowait) on all CPUs, ms. */
  busyMs: number;
  /** CPU time stolen by the hypervisor, ms. */
  stealMs: number;
}

/** Machine-wide CPU counters from /proc/stat, or null when unreadable. */
export function sampleSystem(): SystemSnapshot | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    const [user, nice, system, , , irq, softirq, steal = 0] = v;
    const tick = 1000 / clockTicksPerSecond();
    return { at: performance.now(), busyMs: (user + nice + system + irq + softirq) * tick, stealMs: steal * tick };
  } catch {
    return null;
  }
}
