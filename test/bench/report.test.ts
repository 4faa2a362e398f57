/**
 * The harness end to end: `bench run` (the real CLI entry, our runner and the baseline as child
 * processes, the load generator in its own process) writes a JSON result and an HTML report that
 * carry the run's figures; `bench compare` and `bench html` read them back; headless Chromium
 * renders the plot and the table (skipped when /usr/bin/chromium is not installed).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { decodeHistogram } from '../../src/bench/histogram.js';
import { formatUs, readReport } from '../../src/bench/report.js';
import type { BenchReport } from '../../src/bench/types.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/bench/main.js', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';

const dir = mkdtempSync(join(tmpdir(), 'anr-bench-report-'));
const jsonPath = join(dir, 'run.json');
const htmlPath = join(dir, 'run.html');
let report: BenchReport;
let html: string;

before(async () => {
  const { stdout } = await run(process.execPath, [
    MAIN,
    'run',
    '--scenario',
    'say,req-body-1k',
    '--duration',
    '0.6',
    '--warmup',
    '0.2',
    '--connections',
    '4',
    '--json',
    jsonPath,
    '--html',
    htmlPath,
  ]);
  assert.match(stdout, /say: Light Stop/);
  assert.match(stdout, /runner\/baseline: throughput/);
  report = readReport(jsonPath);
  html = readFileSync(htmlPath, 'utf8');
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the JSON result parses and holds the run figures', () => {
  const parsed = JSON.parse(readFileSync(jsonPath, 'utf8')) as BenchReport;
  assert.equal(parsed.schema, 'apisix-node-runner-bench/1');
  assert.deepEqual(
    parsed.scenarios.map((s) => s.id),
    ['say', 'req-body-1k'],
  );
  assert.ok(parsed.machine.nproc >= 1 && parsed.machine.node === process.version);
  assert.match(parsed.command, /^apisix-node-runner bench run --scenario say,req-body-1k/);
  for (const s of parsed.scenarios) {
    for (const t of [s.runner, s.baseline!]) {
      assert.equal(t.errors, 0, JSON.stringify(s.notes));
      assert.ok(t.throughput > 0);
      assert.ok(t.latency.count > 0);
      assert.ok(t.latency.p50 <= t.latency.p99 && t.latency.p99 <= t.latency.max);
      // The stored histogram is the one the summary came from.
      const h = decodeHistogram(t.histogram);
      assert.equal(h.totalCount, t.latency.count);
      assert.equal(h.getValueAtPercentile(99), t.latency.p99);
      assert.equal(t.distribution.at(-1)!.percentile, 100);
      assert.equal(t.distribution.at(-1)!.valueUs, t.latency.max);
      assert.match(t.distributionText, /Percentile/);
    }
    assert.ok(s.ratio !== null && s.ratio.throughput > 0);
    assert.equal(s.runs.length, 2, 'one runner and one baseline run');
    const runnerRun = s.runs.find((r) => r.target === 'runner')!;
    assert.ok(runnerRun.process !== null, 'runner CPU and RSS sampled from /proc');
    assert.ok(runnerRun.process.rssBytes > 10 * 1024 * 1024);
    assert.ok(runnerRun.process.cpuPercent > 0);
  }
  const body = parsed.scenarios[1];
  assert.ok(body.runs.find((r) => r.target === 'runner')!.load.extraInfoQueries > 0, 'the body scenario asked ExtraInfo');
});

test('the HTML report holds the plot and the percentile table with the run figures', () => {
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /<script src=|<link /, 'self-contained');
  for (const s of report.scenarios) {
    const section = html.slice(html.indexOf(`id="scenario-${s.id}"`), html.indexOf('</section>', html.indexOf(`id="scenario-${s.id}"`)));
    assert.match(section, new RegExp(`<svg id="plot-${s.id}" class="percentile-plot"`));
    assert.equal((section.match(/<path class="series"/g) ?? []).length, 2, 'runner and baseline curves');
    assert.match(section, /99\.9%<\/text>/, 'percentile axis ticks');
    assert.match(section, new RegExp(`<table class="percentiles" id="table-${s.id}">`));
    for (const t of [s.runner, s.baseline!]) {
      assert.ok(section.includes(`<td class="lat" data-key="p99" data-us="${t.latency.p99}">${formatUs(t.latency.p99)}</td>`), `p99 of ${t.target}`);
      assert.ok(section.includes(`data-key="max" data-us="${t.latency.max}"`));
    }
  }
});

test('bench compare shows both files side by side with ratios, and renders both on one chart', async () => {
  const doubled = structuredClone(report);
  doubled.title = 'doubled';
  for (const s of doubled.scenarios) s.runner.throughput *= 2;
  const bPath = join(dir, 'b.json');
  const cmpHtml = join(dir, 'cmp.html');
  writeFileSync(bPath, JSON.stringify(doubled));
  const { stdout } = await run(process.execPath, [MAIN, 'compare', jsonPath, bPath, '--labels', 'before,after', '--html', cmpHtml]);
  assert.match(stdout, /req\/s before/);
  const sayRow = stdout.split('\n').find((l) => l.startsWith('say ') && l.includes('runner'))!;
  assert.match(sayRow, /2\.00x/, 'the doubled throughput shows as a 2.00x ratio');
  const cmp = readFileSync(cmpHtml, 'utf8');
  assert.match(cmp, /Bench comparison: after vs before/);
  const section = cmp.slice(cmp.indexOf('id="scenario-say"'));
  assert.equal((section.slice(0, section.indexOf('</svg>')).match(/<path class="series"/g) ?? []).length, 4, 'two runs x (runner, baseline)');
  assert.match(section, /stroke-dasharray/);
});

test('bench exits 2 on a bad command line and says why', async () => {
  await assert.rejects(run(process.execPath, [MAIN, 'run', '--placement', 'pool']), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /each plugin declares its placement/);
    return true;
  });
  await assert.rejects(run(process.execPath, [MAIN, 'run', '--socket', '/tmp/x.sock', '--threads', '2']), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /--threads applies to our runner/);
    return true;
  });
  await assert.rejects(run(process.execPath, [MAIN, 'run', '--scenario', 'nope']), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /unknown scenario "nope"/);
    return true;
  });
});

test('headless Chromium renders the plot and the table', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed` }, async () => {
  const profile = join(dir, 'chromium-profile');
  const { stdout: dom } = await run(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--dump-dom', `file://${htmlPath}`],
    { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
  );
  // The page's script ran after layout and annotated every plot with what was drawn.
  assert.match(dom, new RegExp(`<html [^>]*data-rendered="${report.scenarios.length}"`));
  for (const s of report.scenarios) {
    const svg = new RegExp(`<svg id="plot-${s.id}"[^>]*>`).exec(dom)?.[0];
    assert.ok(svg, `plot of ${s.id} in the rendered DOM`);
    assert.equal(/data-rendered-width="(\d+)"/.exec(svg)?.[1], '760', 'laid out at its full width');
    assert.ok(Number(/data-rendered-length="(\d+)"/.exec(svg)?.[1]) > 100, 'the curves have a length');
    // The table as parsed by the browser (tbody inserted), with the run's figures.
    const table = dom.slice(dom.indexOf(`<table class="percentiles" id="table-${s.id}">`), dom.indexOf('</table>', dom.indexOf(`id="table-${s.id}"`)));
    assert.match(table, /<tbody>/);
    assert.ok(table.includes(`data-us="${s.runner.latency.p99}">${formatUs(s.runner.latency.p99)}</td>`), 'runner p99 cell');
    assert.ok(table.includes(`data-rps="${s.runner.throughput}"`), 'runner throughput cell');
  }
});
