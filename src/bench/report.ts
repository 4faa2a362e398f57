/** Result files (JSON) and the plain-text tables printed after a run. */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, release } from 'node:os';
import { dirname } from 'node:path';
import type { BenchReport, MachineInfo, ScenarioResult, TargetSummary } from './types.js';

export const REPORT_SCHEMA = 'apisix-node-runner-bench/1';

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1].trim();
  } catch {
    // Not Linux: os.cpus() it is.
  }
  return {
    nproc: availableParallelism(),
    cpuModel,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: release(),
    hostname: hostname(),
    loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

export function buildReport(
  title: string,
  command: string,
  pin: { server: string; generator: string } | null,
  scenarios: ScenarioResult[],
): BenchReport {
  return {
    schema: REPORT_SCHEMA,
    title,
    createdAt: new Date().toISOString(),
    machine: machineInfo(),
    command,
    pinning: { enabled: pin !== null, serverCpus: pin?.server ?? null, generatorCpus: pin?.generator ?? null },
    scenarios,
  };
}

export function writeReport(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 1)}\n`);
}

export function readReport(path: string): BenchReport {
  const report = JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
  if (report?.schema !== REPORT_SCHEMA || !Array.isArray(report.scenarios)) {
    throw new Error(`${path}: not a bench result file (schema ${JSON.stringify(report?.schema)}, expected ${REPORT_SCHEMA})`);
  }
  return report;
}

// ---- formatting -------------------------------------------------------------------------------

/** A latency in microseconds, as a person reads it: `87 us`, `1.24 ms`, `2.31 s`. */
export function formatUs(us: number): string {
  if (us < 1000) return `${Math.round(us)} us`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)} ms`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

export function formatRate(rps: number): string {
  return Math.round(rps).toLocaleString('en-US');
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'n/a';
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

export function formatRatio(r: number | null | undefined): string {
  return r === null || r === undefined ? 'n/a' : r.toFixed(2);
}

export function table(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (cell: string, i: number): string => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? cell.padEnd(widths[i]) : cell.padStart(widths[i]));
  const line = (cells: readonly string[]): string => cells.map(pad).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function targetRow(name: string, t: TargetSummary): string[] {
  return [
    name,
    formatRate(t.throughput),
    formatUs(t.latency.p50),
    formatUs(t.latency.p90),
    formatUs(t.latency.p99),
    formatUs(t.latency.p999),
    formatUs(t.latency.max),
    t.cpuPercent === null ? 'n/a' : `${t.cpuPercent}%`,
    t.cpuUsPerCall === null ? 'n/a' : `${t.cpuUsPerCall}`,
    formatBytes(t.rssBytes),
    String(t.errors),
  ];
}

const HEADER = ['target', 'req/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'cpu', 'cpu us/call', 'rss', 'errors'];

export function formatScenario(s: ScenarioResult): string {
  const load = s.mode === 'open' ? `open loop at ${formatRate(s.rate ?? 0)} req/s` : 'closed loop';
  const lines = [
    `${s.id}: ${s.description}`,
    `  ${load}, ${s.connections} connections, warm-up ${s.warmupMs / 1000} s, ${s.durationMs / 1000} s measured x ${s.pairs} pair(s)`,
  ];
  const rows = [targetRow(s.runner.target, s.runner)];
  if (s.baseline) rows.push(targetRow('baseline', s.baseline));
  lines.push(
    table(HEADER, rows)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  if (s.ratio) {
    lines.push(
      `  runner/baseline: throughput ${formatRatio(s.ratio.throughput)} (pairs: ${s.ratio.throughputPerPair.map(formatRatio).join(', ')}), ` +
        `p99 ${formatRatio(s.ratio.p99)}x, server CPU per call ${formatRatio(s.ratio.cpuPerCall)}x`,
    );
  }
  for (const note of s.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

