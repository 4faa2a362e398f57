/**
 * The HTML report: one self-contained file (inline CSS, inline SVG, no network), with for each
 * scenario a latency-by-percentile plot (logarithmic percentile axis, 1/(1-p): 0%, 90%, 99%,
 * 99.9%..., and logarithmic latency axis), a percentile table with the run's figures, and the full
 * HDR distribution. Given two result files, each scenario's plot carries both runs (the second one
 * dashed) and the table adds the ratios second/first.
 *
 * A short inline script only annotates the page once laid out (the rendered width of each plot and
 * the length of its curves), so a headless browser test can check that the plot really rendered.
 */
import { formatBytes, formatRate, formatRatio, formatUs } from './report.js';
import type { BenchReport, PercentilePoint, ScenarioResult, TargetSummary } from './types.js';

export interface HtmlSource {
  label: string;
  report: BenchReport;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const slug = (s: string): string => s.replace(/[^A-Za-z0-9_-]+/g, '-');

interface Series {
  name: string;
  points: PercentilePoint[];
  color: string;
  dashed: boolean;
}

const COLORS = { runner: '#1f6feb', external: '#8250df', baseline: '#6e7781', runnerB: '#d4590a', baselineB: '#b0b8c1' };

const W = 760;
const H = 380;
const M = { left: 72, right: 44, top: 16, bottom: 56 };

/** x coordinate of a percentile: log10(1 / (1 - p)); the maximum sits at log10(sample count). */
function xOf(p: PercentilePoint, count: number): number {
  if (p.percentile >= 100) return Math.log10(Math.max(10, count));
  return Math.log10(1 / (1 - p.percentile / 100));
}

/** Axis labels of the 1-2-5 ticks: `20 us`, `1 ms`, `500 ms`, `2 s`. */
function tickLabel(us: number): string {
  if (us < 1000) return `${us} us`;
  if (us < 1_000_000) return `${us / 1000} ms`;
  return `${us / 1_000_000} s`;
}

function yTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

export function renderPlot(id: string, series: readonly Series[], counts: readonly number[]): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<p class="no-data">No successful calls: nothing to plot.</p>`;
  const xs = series.map((s, i) => Math.max(...s.points.map((p) => xOf(p, counts[i]))));
  const xMax = Math.max(2, Math.ceil(Math.max(...xs)));
  const values = all.map((p) => Math.max(1, p.valueUs));
  const yLo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(...values) * 1.0001));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + (x / xMax) * pw;
  const sy = (v: number): number => M.top + ph - ((Math.log10(Math.max(1, v)) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * ph;
  const f = (n: number): string => n.toFixed(1);

  const parts: string[] = [];
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="#fff" stroke="#d0d7de"/>`);
  for (let x = 0; x <= xMax; x++) {
    const label = x === 0 ? '0%' : `${(100 * (1 - 10 ** -x)).toFixed(Math.max(0, x - 2))}%`;
    parts.push(`<line class="grid" x1="${f(sx(x))}" y1="${M.top}" x2="${f(sx(x))}" y2="${M.top + ph}" stroke="#eaeef2"/>`);
    parts.push(`<text class="x-tick" x="${f(sx(x))}" y="${M.top + ph + 18}" text-anchor="middle">${label}</text>`);
  }
  for (const v of yTicks(yLo, yHi)) {
    parts.push(`<line class="grid" x1="${M.left}" y1="${f(sy(v))}" x2="${M.left + pw}" y2="${f(sy(v))}" stroke="#eaeef2"/>`);
    parts.push(`<text class="y-tick" x="${M.left - 6}" y="${f(sy(v) + 4)}" text-anchor="end">${esc(tickLabel(v))}</text>`);
  }
  parts.push(`<text class="axis-label" x="${M.left + pw / 2}" y="${H - 12}" text-anchor="middle">percentile (log scale of 1/(1-p))</text>`);
  parts.push(
    `<text class="axis-label" transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">latency (log scale)</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${f(sx(xOf(p, counts[i])))} ${f(sy(p.valueUs))}`).join(' ');
    parts.push(
      `<path class="series" data-series="${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
  });
  series.forEach((s, i) => {
    const y = M.top + 14 + i * 18;
    parts.push(
      `<line x1="${M.left + 10}" y1="${y - 4}" x2="${M.left + 34}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(`<text class="legend" x="${M.left + 40}" y="${y}">${esc(s.name)}</text>`);
  });
  return (
    `<svg id="plot-${slug(id)}" class="percentile-plot" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `role="img" aria-label="latency by percentile, ${esc(id)}">${parts.join('')}</svg>`
  );
}

const LAT_KEYS = [
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p99.9', 'p999'],
  ['p99.99', 'p9999'],
  ['max', 'max'],
] as const;

function latencyCells(t: TargetSummary): string {
  return LAT_KEYS.map(([label, key]) => `<td class="lat" data-key="${label}" data-us="${t.latency[key]}">${esc(formatUs(t.latency[key]))}</td>`).join('');
}

function targetRow(name: string, t: TargetSummary): string {
  return (
    `<tr data-series="${esc(name)}"><th scope="row">${esc(name)}</th>` +
    `<td class="rps" data-rps="${t.throughput}">${formatRate(t.throughput)}</td>${latencyCells(t)}` +
    `<td>${t.cpuPercent === null ? 'n/a' : `${t.cpuPercent}%`}</td><td>${t.cpuUsPerCall ?? 'n/a'}</td>` +
    `<td>${formatBytes(t.rssBytes)}</td><td class="errors">${t.errors}</td><td>${t.latency.count.toLocaleString('en-US')}</td></tr>`
  );
}

function ratioRow(name: string, a: TargetSummary, b: TargetSummary): string {
  const r = (x: number, y: number): string => (x > 0 ? formatRatio(y / x) : 'n/a');
  return (
    `<tr class="ratio" data-series="${esc(name)}"><th scope="row">${esc(name)}</th><td>${r(a.throughput, b.throughput)}</td>` +
    LAT_KEYS.map(([, key]) => `<td>${r(a.latency[key], b.latency[key])}</td>`).join('') +
    `<td>${a.cpuPercent && b.cpuPercent ? formatRatio(b.cpuPercent / a.cpuPercent) : 'n/a'}</td>` +
    `<td>${a.cpuUsPerCall && b.cpuUsPerCall ? formatRatio(b.cpuUsPerCall / a.cpuUsPerCall) : 'n/a'}</td>` +
    `<td>${a.rssBytes && b.rssBytes ? formatRatio(b.rssBytes / a.rssBytes) : 'n/a'}</td><td></td><td></td></tr>`
  );
}

const TABLE_HEAD =
  '<thead><tr><th>series</th><th>req/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th>' +
  '<th>server CPU</th><th>CPU us/call</th><th>RSS</th><th>errors</th><th>samples</th></tr></thead>';

function loadLine(s: ScenarioResult): string {
  const load = s.mode === 'open' ? `open loop at ${formatRate(s.rate ?? 0)} req/s (latency from the intended send time)` : 'closed loop';
  return `${load}; ${s.connections} connections; warm-up ${s.warmupMs / 1000} s; ${s.durationMs / 1000} s measured &times; ${s.pairs} pair(s)`;
}

function details(name: string, t: TargetSummary): string {
  return `<details><summary>Full HDR distribution: ${esc(name)} (values in us)</summary><pre class="hdr">${esc(t.distributionText)}</pre></details>`;
}

function scenarioSection(id: string, runs: ReadonlyArray<{ label: string; s: ScenarioResult | undefined }>): string {
  const two = runs.length === 2;
  const present = runs.filter((r): r is { label: string; s: ScenarioResult } => r.s !== undefined);
  const first = present[0].s;
  const series: Series[] = [];
  const counts: number[] = [];
  const rows: string[] = [];
  runs.forEach(({ label, s }, i) => {
    if (!s) return;
    const prefix = two ? `${label}: ` : '';
    const runnerName = `${prefix}${s.runner.target}`;
    series.push({ name: runnerName, points: s.runner.distribution, color: i === 0 ? COLORS[s.runner.target] : COLORS.runnerB, dashed: i === 1 });
    counts.push(s.runner.latency.count);
    rows.push(targetRow(runnerName, s.runner));
    if (s.baseline) {
      series.push({ name: `${prefix}baseline`, points: s.baseline.distribution, color: i === 0 ? COLORS.baseline : COLORS.baselineB, dashed: i === 1 });
      counts.push(s.baseline.latency.count);
      rows.push(targetRow(`${prefix}baseline`, s.baseline));
    }
    if (s.ratio) {
      rows.push(
        `<tr class="ratio" data-series="${esc(prefix)}runner/baseline"><th scope="row">${esc(prefix)}runner / baseline</th>` +
          `<td data-ratio="${s.ratio.throughput}">${formatRatio(s.ratio.throughput)}</td><td colspan="2"></td>` +
          `<td data-ratio="${s.ratio.p99}">${formatRatio(s.ratio.p99)}x</td><td colspan="4">median of ${s.pairs} interleaved pair(s)</td>` +
          `<td colspan="2">CPU/call ${formatRatio(s.ratio.cpuPerCall)}x</td><td colspan="2"></td></tr>`,
      );
    }
  });
  const [a, b] = runs;
  if (two && a.s && b.s) rows.push(ratioRow(`${b.label} / ${a.label} (runner)`, a.s.runner, b.s.runner));
  const notes = present.flatMap(({ label, s }) => s.notes.map((n) => (two ? `${label}: ${n}` : n)));
  return [
    `<section class="scenario" id="scenario-${slug(id)}">`,
    `<h2>${esc(id)}</h2>`,
    `<p class="description">${esc(first.description)}</p>`,
    ...present.map(({ label, s }) => `<p class="load">${two ? `<b>${esc(label)}</b>: ` : ''}${loadLine(s)}</p>`),
    renderPlot(id, series, counts),
    `<table class="percentiles" id="table-${slug(id)}">${TABLE_HEAD}<tbody>${rows.join('')}</tbody></table>`,
    notes.length > 0 ? `<ul class="notes">${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '',
    ...present.flatMap(({ label, s }) => [
      details(`${two ? `${label}: ` : ''}${s.runner.target}`, s.runner),
      s.baseline ? details(`${two ? `${label}: ` : ''}baseline`, s.baseline) : '',
    ]),
    `</section>`,
  ].join('\n');
}

function metaTable(sources: readonly HtmlSource[]): string {
  const rows = sources.map(({ label, report: r }) => {
    const pin = r.pinning.enabled ? `servers CPU ${r.pinning.serverCpus}, generator CPU ${r.pinning.generatorCpus}` : 'not pinned';
    return (
      `<tr><th scope="row">${esc(label)}</th><td>${esc(r.createdAt)}</td><td>${r.machine.nproc} x ${esc(r.machine.cpuModel)}</td>` +
      `<td>${esc(r.machine.node)}</td><td>${esc(pin)}</td><td><code>${esc(r.command)}</code></td></tr>`
    );
  });
  const noise = sources.flatMap(({ label, report: r }) =>
    (r.noise ?? []).map(
      (n) => `<li>${esc(label)}: CPU ${esc(n.cpus ?? 'any')}: ${n.gapsPerSecond} interruptions/s over 0.5 ms, longest ${n.maxGapMs} ms (${n.lostPercent}% of the time)</li>`,
    ),
  );
  return (
    `<table class="meta"><thead><tr><th>run</th><th>date</th><th>CPUs</th><th>Node</th><th>pinning</th><th>command</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
    (noise.length > 0 ? `<p>Machine noise (a busy CPU interrupted by other tasks, probed before the run):</p><ul class="noise">${noise.join('')}</ul>` : '')
  );
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#1f2328;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;white-space:nowrap}th[scope=row],thead th{text-align:left;background:#f6f8fa}
tr.ratio td,tr.ratio th{background:#fff8c5}table.meta td{white-space:normal}
svg text{font-size:11px;fill:#424a53}svg .legend{font-size:12px;fill:#1f2328}svg .axis-label{font-size:12px}
pre.hdr{font-size:11px;max-height:320px;overflow:auto;background:#f6f8fa;padding:8px}
.notes li{color:#9a6700}code{font-size:12px}
`;

const SCRIPT = `
(function(){
  var plots=document.querySelectorAll('svg.percentile-plot');
  for(var i=0;i<plots.length;i++){
    var svg=plots[i],len=0,paths=svg.querySelectorAll('path.series');
    for(var j=0;j<paths.length;j++){len+=paths[j].getTotalLength();}
    svg.setAttribute('data-rendered-width',String(Math.round(svg.getBoundingClientRect().width)));
    svg.setAttribute('data-rendered-length',String(Math.round(len)));
  }
  document.documentElement.setAttribute('data-rendered',String(plots.length));
})();
`;

/** The whole report page for one run, or for two runs side by side. */
export function renderHtml(sources: readonly HtmlSource[], title?: string): string {
  if (sources.length < 1 || sources.length > 2) throw new RangeError('renderHtml takes one or two reports');
  const heading = title ?? (sources.length === 2 ? `Bench comparison: ${sources[1].label} vs ${sources[0].label}` : sources[0].report.title);
  const ids: string[] = [];
  for (const { report } of sources) for (const s of report.scenarios) if (!ids.includes(s.id)) ids.push(s.id);
  const sections = ids.map((id) => scenarioSection(id, sources.map(({ label, report }) => ({ label, s: report.scenarios.find((s) => s.id === id) }))));
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(heading)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${esc(heading)}</h1>`,
    metaTable(sources),
    '<p>Latency is measured by the load generator from the (intended) send time of each call to its decoded, checked final reply, in microseconds, warm-up excluded. The baseline is a minimal Node server answering a canned frame: the socket floor.</p>',
    ...sections,
    `<script>${SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
