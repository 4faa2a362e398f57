/** `bench compare A.json B.json`: two result files side by side, with the ratios B/A. */
import { formatBytes, formatRate, formatRatio, formatUs, table } from './report.js';
import type { BenchReport, TargetSummary } from './types.js';

export interface ComparedRow {
  scenario: string;
  target: string;
  a: TargetSummary | null;
  b: TargetSummary | null;
}

export function compareRows(a: BenchReport, b: BenchReport): ComparedRow[] {
  const ids: string[] = [];
  for (const r of [a, b]) for (const s of r.scenarios) if (!ids.includes(s.id)) ids.push(s.id);
  const rows: ComparedRow[] = [];
  for (const id of ids) {
    const sa = a.scenarios.find((s) => s.id === id);
    const sb = b.scenarios.find((s) => s.id === id);
    rows.push({ scenario: id, target: 'runner', a: sa?.runner ?? null, b: sb?.runner ?? null });
    if (sa?.baseline || sb?.baseline) rows.push({ scenario: id, target: 'baseline', a: sa?.baseline ?? null, b: sb?.baseline ?? null });
  }
  return rows;
}

const ratio = (x: number | null | undefined, y: number | null | undefined): string => (x && y ? `${formatRatio(y / x)}x` : 'n/a');

export function formatComparison(a: BenchReport, b: BenchReport, labels: [string, string] = ['A', 'B']): string {
  const [la, lb] = labels;
  const cell = (t: TargetSummary | null, f: (t: TargetSummary) => string): string => (t === null ? '-' : f(t));
  const metrics: Array<[string, (t: TargetSummary) => number | null, (t: TargetSummary) => string]> = [
    ['req/s', (t) => t.throughput, (t) => formatRate(t.throughput)],
    ['p50', (t) => t.latency.p50, (t) => formatUs(t.latency.p50)],
    ['p99', (t) => t.latency.p99, (t) => formatUs(t.latency.p99)],
    ['p99.9', (t) => t.latency.p999, (t) => formatUs(t.latency.p999)],
    ['max', (t) => t.latency.max, (t) => formatUs(t.latency.max)],
    ['cpu us/call', (t) => t.cpuUsPerCall, (t) => (t.cpuUsPerCall === null ? 'n/a' : String(t.cpuUsPerCall))],
    ['rss', (t) => t.rssBytes, (t) => formatBytes(t.rssBytes)],
  ];
  const header = ['scenario', 'target', ...metrics.flatMap(([m]) => [`${m} ${la}`, `${m} ${lb}`, `${lb}/${la}`])];
  const rows = compareRows(a, b).map((r) => [
    r.scenario,
    r.target,
    ...metrics.flatMap(([, num, fmt]) => [cell(r.a, fmt), cell(r.b, fmt), ratio(r.a ? num(r.a) : null, r.b ? num(r.b) : null)]),
  ]);
  const head = [
    `${la}: ${a.title}, ${a.createdAt}, ${a.machine.nproc} x ${a.machine.cpuModel}, Node ${a.machine.node}, ${a.pinning.enabled ? 'pinned' : 'not pinned'}`,
    `${lb}: ${b.title}, ${b.createdAt}, ${b.machine.nproc} x ${b.machine.cpuModel}, Node ${b.machine.node}, ${b.pinning.enabled ? 'pinned' : 'not pinned'}`,
  ];
  const warn: string[] = [];
  if (a.machine.cpuModel !== b.machine.cpuModel || a.machine.nproc !== b.machine.nproc) warn.push('note: the two runs were made on different machines');
  if (a.pinning.enabled !== b.pinning.enabled) warn.push('note: only one of the runs was pinned');
  return [...head, ...warn, '', table(header, rows, header.map((_, i) => (i < 2 ? 'l' : 'r')))].join('\n');
}
