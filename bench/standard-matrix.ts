/**
 * The standard bench matrix: the throughput of every scenario, p99 at fixed loads, and the tuning
 * measurements that docs/tuning.md cites. Writes bench/results/standard-matrix.{json,html} and
 * regenerates docs/benchmarks.md from the run. Budget: under 5 minutes on the project's 2-core
 * machine (about 4 with the defaults).
 *
 *   npm run build:test && node .build/bench/standard-matrix.js [--quick] [--no-pin] [--no-docs]
 *       [--out DIR] [--docs FILE] [--wait-quiet SECONDS] [--runner-cli PATH] [--runner-desc TEXT]
 *
 * Soak and long fuzz runs are separate commands (`apisix-node-runner bench --duration 600 ...`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runScenario, type PinSpec, type RunSpec } from '../src/bench/harness.js';
import { renderHtml } from '../src/bench/html.js';
import { probeNoise, type NoiseSample } from '../src/bench/noise.js';
import { sampleSystem } from '../src/bench/proc-stats.js';
import { buildReport, formatRate, formatRatio, formatUs, writeReport } from '../src/bench/report.js';
import { findScenario } from '../src/bench/scenarios.js';
import { DEFAULT_RUNNER_CLI } from '../src/bench/servers.js';
import type { BenchReport, ScenarioResult, TargetSummary } from '../src/bench/types.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface MatrixEntry {
  section: 'throughput' | 'latency' | 'tuning';
  spec: Omit<RunSpec, 'pin' | 'progress' | 'target' | 'generators' | 'callTimeoutMs' | 'maxRequests' | 'baseline'> & {
    runnerArgs?: string[];
    /** CPUs of the runner and the baseline for this entry instead of the matrix's (the load generator keeps its own). */
    serverCpus?: string;
  };
  /** What the entry shows, for the docs. */
  purpose: string;
}

function matrix(quick: boolean): MatrixEntry[] {
  const warmupMs = quick ? 200 : 1000;
  const durationMs = quick ? 500 : 2500;
  const pairs = quick ? 1 : 2;
  const s = (name: string) => findScenario(name)!;
  const closed = (name: string, extra: Partial<MatrixEntry['spec']> = {}): MatrixEntry['spec'] => ({
    scenario: s(name),
    mode: 'closed',
    connections: 8,
    rate: null,
    warmupMs,
    durationMs,
    pairs,
    ...extra,
  });
  const entries: MatrixEntry[] = [];
  for (const name of ['say', 'header-rewrite', 'extra-var', 'req-body-1k', 'req-body-1m', 'resp-body-rewrite', 'cpu-heavy', 'cpu-heavy-pool']) {
    entries.push({ section: 'throughput', spec: closed(name), purpose: s(name).description });
  }
  const open = (name: string, rate: number, id: string): MatrixEntry => ({
    section: 'latency',
    spec: { ...closed(name, { pairs: 1 }), id, mode: 'open', rate, connections: 16 },
    purpose: `p99 at ${formatRate(rate)} calls/s (open loop, coordinated omission corrected)`,
  });
  entries.push(
    open('say', 20_000, 'say@20k/s'),
    open('say', 60_000, 'say@60k/s'),
    open('extra-var', 10_000, 'extra-var@10k/s'),
    open('cpu-heavy', 2_000, 'cpu-heavy@2k/s'),
  );
  const tuning = (name: string, id: string | undefined, purpose: string, extra: Partial<MatrixEntry['spec']> = {}): MatrixEntry => ({
    section: 'tuning',
    spec: { ...closed(name, { pairs: 1 }), ...(id ? { id } : {}), ...extra },
    purpose,
  });
  entries.push(
    tuning('say', 'say@c1', 'one gateway connection', { connections: 1 }),
    tuning('say', 'say@c64', '64 gateway connections', { connections: 64 }),
    tuning('say', 'say@log-debug', 'runner at --log-level debug (default warn)', { runnerArgs: ['--log-level', 'debug'], pairs }),
    tuning('extra-var-3', undefined, s('extra-var-3').description),
    tuning('extra-var-pool', undefined, s('extra-var-pool').description),
    tuning('extra-var-pool-declared', undefined, s('extra-var-pool-declared').description),
    // The pool can only add CPU if the runner may use more than one core: both CPUs here (the load
    // generator, light at these rates, keeps CPU 0).
    tuning('noop', undefined, s('noop').description, { pairs }),
    tuning('noop-pool', undefined, s('noop-pool').description, { pairs }),
    tuning('cpu-heavy', 'cpu-heavy@2cpu', 'inline CPU-heavy filter, runner allowed on both CPUs', { serverCpus: '0,1' }),
    tuning('cpu-heavy-pool', 'cpu-heavy-pool@2cpu', 'pool CPU-heavy filter, runner allowed on both CPUs', { serverCpus: '0,1' }),
  );
  return entries;
}

/** Waits (up to `maxMs`) for a 2 s window in which the machine is nearly idle; returns the busy % seen last. */
async function waitQuiet(maxMs: number): Promise<number | null> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const a = sampleSystem();
    await new Promise((r) => setTimeout(r, 2000));
    const b = sampleSystem();
    if (a === null || b === null) return null;
    const busy = ((b.busyMs - a.busyMs) * 100) / (b.at - a.at);
    if (busy < 15 || performance.now() > deadline) return Math.round(busy);
    process.stderr.write(`waiting for a quiet machine: ${Math.round(busy)}% of a CPU busy\n`);
  }
}

const lat = (t: TargetSummary | null, k: 'p50' | 'p99' | 'p999' | 'max'): string => (t ? formatUs(t.latency[k]) : 'n/a');
const cpuCall = (t: TargetSummary | null): string => (t?.cpuUsPerCall == null ? 'n/a' : `${t.cpuUsPerCall}`);
const mib = (b: number | null): string => (b === null ? 'n/a' : `${Math.round(b / (1024 * 1024))}`);

function throughputTable(rows: ScenarioResult[]): string {
  const head =
    '| scenario | runner calls/s | baseline calls/s | ratio (per pair) | runner p50 | runner p99 | runner p99.9 | baseline p99 | runner CPU us/call | baseline CPU us/call | CPU/call ratio | runner peak RSS MiB | generator CPU |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const body = rows.map(
    (s) =>
      `| ${s.id} | ${formatRate(s.runner.throughput)} | ${s.baseline ? formatRate(s.baseline.throughput) : 'n/a'} | ` +
      `${formatRatio(s.ratio?.throughput)}${s.ratio && s.ratio.throughputPerPair.length > 1 ? ` (${s.ratio.throughputPerPair.map(formatRatio).join(', ')})` : ''} | ` +
      `${lat(s.runner, 'p50')} | ${lat(s.runner, 'p99')} | ${lat(s.runner, 'p999')} | ${lat(s.baseline, 'p99')} | ` +
      `${cpuCall(s.runner)} | ${cpuCall(s.baseline)} | ${formatRatio(s.ratio?.cpuPerCall)} | ${mib(s.runner.peakRssBytes)} | ${Math.round(s.runner.generatorCpuPercent)}% |`,
  );
  return [head, ...body].join('\n');
}

/**
 * The run's notes, minus the two that the text above states once for every row (the generator's
 * CPU, which is a column, and the baseline answering without ExtraInfo), grouped by scenario.
 */
function docNotes(report: BenchReport): string[] {
  const generic = [/the load generator used [\d.]+% of its CPU/, /the baseline answers a canned reply without any ExtraInfo/, /inline versus worker pool: not available/];
  return report.scenarios.flatMap((s) => {
    const kept = s.notes.filter((n) => !generic.some((g) => g.test(n)));
    return kept.length === 0 ? [] : [`- **${s.id}**: ${kept.join('; ')}`];
  });
}

function latencyTable(rows: ScenarioResult[]): string {
  const head =
    '| scenario | rate calls/s | runner p50 | runner p90 | runner p99 | runner p99.9 | runner max | baseline p50 | baseline p99 | baseline p99.9 | runner CPU |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const body = rows.map(
    (s) =>
      `| ${s.id} | ${formatRate(s.rate ?? 0)} | ${lat(s.runner, 'p50')} | ${formatUs(s.runner.latency.p90)} | ${lat(s.runner, 'p99')} | ` +
      `${lat(s.runner, 'p999')} | ${lat(s.runner, 'max')} | ${lat(s.baseline, 'p50')} | ${lat(s.baseline, 'p99')} | ${lat(s.baseline, 'p999')} | ` +
      `${s.runner.cpuPercent === null ? 'n/a' : `${s.runner.cpuPercent}%`} |`,
  );
  return [head, ...body].join('\n');
}

/** What runner was measured: its version, and the git commit of the checkout it was built from. */
function describeRunner(cli: string): string {
  let version = 'unknown version';
  try {
    version = execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' }).trim();
  } catch {
    // Reported as unknown.
  }
  try {
    const git = (...args: string[]): string => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src') !== '';
    return `${version}, built from commit ${commit}${dirty ? ' plus uncommitted changes in src/' : ''}`;
  } catch {
    return version;
  }
}

interface DocInput {
  report: BenchReport;
  entries: MatrixEntry[];
  wallS: number;
  quietBusy: number | null;
  command: string;
  htmlRel: string;
  jsonRel: string;
  runnerDesc: string;
}

/** The pool comparisons in words, from the rows that carry them. */
function poolParagraph(report: BenchReport): string {
  const get = (id: string): ScenarioResult | undefined => report.scenarios.find((x) => x.id === id);
  const line = (label: string, a: ScenarioResult | undefined, b: ScenarioResult | undefined): string => {
    if (!a || !b) return `- ${label}: not measured in this run.`;
    const r = b.runner.throughput / a.runner.throughput;
    return (
      `- ${label}: \`${b.id}\` ${formatRate(b.runner.throughput)} calls/s, p50 ${lat(b.runner, 'p50')}, p99 ${lat(b.runner, 'p99')}, ` +
      `${cpuCall(b.runner)} us CPU/call against \`${a.id}\` ${formatRate(a.runner.throughput)} calls/s, p50 ${lat(a.runner, 'p50')}, ` +
      `p99 ${lat(a.runner, 'p99')}, ${cpuCall(a.runner)} us CPU/call: ${formatRatio(r)}x the throughput.`
    );
  };
  return [
    'The `-pool` scenarios run the same plugin code declared `placement: \'pool\'` (a worker thread)',
    'instead of `\'inline\'` (the main thread).',
    '',
    line('The hand-off alone: a no-op plugin on the pool against inline (runner on one CPU, 8 connections)', get('noop'), get('noop-pool')),
    line('CPU-heavy filter, runner confined to one CPU (the pool cannot add CPU, only the hand-off)', get('cpu-heavy'), get('cpu-heavy-pool')),
    line('CPU-heavy filter, runner allowed on both CPUs', get('cpu-heavy@2cpu'), get('cpu-heavy-pool@2cpu')),
    line('One ExtraInfo variable from a pool plugin, asked lazily, against inline', get('extra-var'), get('extra-var-pool')),
    line('The same with the variable declared in `needs` (fetched before the hand-off), against lazy', get('extra-var-pool'), get('extra-var-pool-declared')),
  ].join('\n');
}

function disturbanceLine(report: BenchReport): string {
  const repeated = report.scenarios.reduce((t, s) => t + s.repeated.length, 0);
  const kept = report.scenarios.flatMap((s) => s.runs.filter((r) => (r.system?.otherPercent ?? 0) >= 10).map(() => s.id));
  return (
    `${repeated} run(s) repeated because other processes took 10% of a CPU or more during them; ` +
    (kept.length === 0 ? 'no kept run was disturbed that much' : `${kept.length} kept run(s) still were (${[...new Set(kept)].join(', ')}): see the notes`)
  );
}

function noiseLine(report: BenchReport): string {
  if (!report.noise || report.noise.length === 0) return 'not probed';
  return report.noise
    .map((n) => `CPU ${n.cpus ?? 'any'}: ${n.gapsPerSecond} interruptions/s over 0.5 ms, longest ${n.maxGapMs} ms (${n.lostPercent}% of the time)`)
    .join('; ');
}

function markdown({ report, entries, wallS, quietBusy, command, htmlRel, jsonRel, runnerDesc }: DocInput): string {
  const m = report.machine;
  const by = (section: MatrixEntry['section']): ScenarioResult[] =>
    entries.flatMap((e, i) => (e.section === section ? [report.scenarios[i]] : [])).filter((s): s is ScenarioResult => s !== undefined);
  const first = report.scenarios[0];
  const pin = report.pinning.enabled
    ? `runner and baseline server pinned to CPU ${report.pinning.serverCpus} (\`taskset -c ${report.pinning.serverCpus}\`), load generator to CPU ${report.pinning.generatorCpus} (\`taskset -c ${report.pinning.generatorCpus}\`)`
    : 'not pinned';
  const twoCpu = report.scenarios.filter((x) => x.id.endsWith('@2cpu')).map((x) => `\`${x.id}\``);
  const pinText = twoCpu.length > 0 && report.pinning.enabled ? `${pin}; the ${twoCpu.join(' and ')} rows allow the runner and the baseline on CPUs 0 and 1` : pin;
  const notes = docNotes(report);
  const tput = by('throughput');
  const say = tput.find((s) => s.id === 'say');
  return `# Benchmarks

<!-- Generated by bench/standard-matrix.ts from a real run; do not edit by hand, rerun the command below. -->

Measured ${report.createdAt.slice(0, 16).replace('T', ' ')} UTC with the harness of issue 5: a load generator in its own process
plays the gateway over the Unix socket (one call in flight per connection, PrepareConf once, ExtraInfo
answered, every reply decoded and its id and action checked), against our runner started as
\`apisix-node-runner run\` and against a minimal Node server that answers a canned frame (the socket
floor), in interleaved pairs.

Reproduce (this run took ${Math.round(wallS)} s, ${(wallS / 60).toFixed(1)} minutes):

\`\`\`sh
${command}
\`\`\`

Full figures, HDR percentile distributions and plots: \`${jsonRel}\` and \`${htmlRel}\` (ignored by git;
\`apisix-node-runner bench compare OLD.json NEW.json\` compares two runs).

## Machine and method

| | |
| --- | --- |
| CPUs | ${m.nproc} (\`nproc\`), ${m.cpuModel} |
| Node | ${m.node}, ${m.platform}, kernel ${m.kernel} |
| Runner | ${runnerDesc}, started as \`apisix-node-runner run --listen ... --plugins <bench fixture plugins>\` (default options: log level warn) |
| Pinning | ${pinText} |
| Runs | warm-up ${first.warmupMs / 1000} s (not measured), then ${first.durationMs / 1000} s measured; throughput scenarios: ${first.pairs} runner/baseline pairs, the ratio is the median of the per-pair ratios; other rows: 1 pair unless the ratio column lists more |
| Load | closed loop: 8 connections, each sends its next call when answered; open loop: a fixed rate over 16 connections, latency from each call's intended send time |
| Requests | GET/DELETE (POST/PUT with a body), a path, 6 query args, 12 headers of about 600 bytes, IPv4 and IPv6 sources, 64 variants |
| Machine load | ${quietBusy === null ? 'unknown' : `${quietBusy}% of a CPU busy in the 2 s before the run`}; load average ${m.loadAverage.join(' / ')} at the end |
| Machine noise | ${noiseLine(report)} |
| Shared machine | ${disturbanceLine(report)} |

Latencies are from the load generator: from the (intended) send time of a call to its decoded final
reply, in microseconds. "CPU us/call" is the server process's CPU time (user + system, from
/proc/PID/stat) over the measured window divided by the calls answered; "RSS" is the runner's peak
resident memory (VmHWM).

## Throughput (closed loop, 8 connections)

${throughputTable(tput)}

How to read it:
- One Node process on one core frames about 130-160k calls per second on this machine, and that
  holds for the load generator as much as for the servers. When the generator column is above 90%,
  the generator was the limit: ${
    say
      ? `for \`say\` (generator ${Math.round(say.runner.generatorCpuPercent)}%) the runner (${formatRate(say.runner.throughput)} calls/s) and the baseline (${say.baseline ? formatRate(say.baseline.throughput) : 'n/a'}) are both held near that limit, so the throughput ratio (${formatRatio(say.ratio?.throughput)}) flatters the runner. The server CPU per call (${cpuCall(say.runner)} us against ${cpuCall(say.baseline)} us: ${formatRatio(say.ratio?.cpuPerCall)}x) is the sharper measure of its own cost there`
      : 'the server CPU per call is then the sharper measure of its cost'
  }.
- The baseline answers every call with a canned frame, without ExtraInfo: the ratios of the
  ExtraInfo, body and CPU scenarios include the protocol work the scenario asks for (each ExtraInfo
  round trip is one more write and read on both sides) and the plugin's own work.
- The baseline rows use the same generator, connections and durations: the same pair is run
  baseline first, then runner first, to cancel drift.

## Latency at a fixed rate (open loop, 16 connections)

${latencyTable(by('latency'))}

The baseline's p99 at the same rate is the floor this machine allows: this VM interrupts a busy CPU
for up to several milliseconds a few times per second (the "Machine noise" row above, measured
before the run), and in an open loop every call due during such an interruption, on the generator's
CPU or on the server's, waits for it. Read the runner's p99 against the baseline's p99 in the same
row, and its p50/p90 as its own latency.

## Tuning measurements (closed loop)

${throughputTable(by('tuning'))}

What these mean for a deployment is in [tuning.md](tuning.md).

## Inline versus worker pool

${poolParagraph(report)}

## Not measured yet

- **Thread counts and the queue limit**: every row uses the runner's default \`--threads\` (one per CPU
  it may run on) and \`--max-queue\`; a sweep, and overload with calls shed, are not in the matrix
  (\`apisix-node-runner bench --threads N --max-queue N\` runs them).
- **Mixed routes**: a light route's p99 next to a CPU-heavy one on the same runner, where moving the
  heavy plugin off the main thread should matter most; the load generator plays one route at a time.
- Soak and long fuzz runs are separate commands, not part of this matrix.

## Notes from this run

${notes.length > 0 ? notes.join('\n') : '- none'}
`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      'no-pin': { type: 'boolean' },
      'no-docs': { type: 'boolean' },
      out: { type: 'string' },
      docs: { type: 'string' },
      'wait-quiet': { type: 'string' },
      'runner-cli': { type: 'string' },
      'runner-desc': { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const outDir = resolve(values.out ?? join(ROOT, 'bench', 'results'));
  const pin: PinSpec | null = values['no-pin'] || availableParallelism() < 2 ? null : { server: '1', generator: '0' };
  const entries = matrix(quick);
  const runnerCli = resolve(values['runner-cli'] ?? DEFAULT_RUNNER_CLI);
  const runnerDesc = values['runner-desc'] ?? describeRunner(runnerCli);
  const started = performance.now();
  const quietBusy = await waitQuiet(Number(values['wait-quiet'] ?? 20) * 1000);
  // A run during which other processes took 10% of a CPU or more is made again (after waiting up to
  // 2 s for the machine to calm down), at most 6 times in the whole matrix: about 35 s at worst on
  // top of the 4.3 minutes of a quiet machine, so the matrix stays under 5 minutes.
  const retryDisturbed = { maxOtherPercent: 10, budget: { left: quick ? 2 : 6 }, waitQuietMs: quick ? 0 : 2000 };
  process.stderr.write('probing how much the machine interrupts a busy CPU (3 s)...\n');
  const noise: NoiseSample[] = await probeNoise(pin ? [pin.generator, pin.server] : [null], 3000);

  const results: ScenarioResult[] = [];
  for (const [i, entry] of entries.entries()) {
    const { runnerArgs, serverCpus, ...spec } = entry.spec;
    const id = spec.id ?? spec.scenario.name;
    process.stderr.write(`[${i + 1}/${entries.length}] ${id} (${entry.section}): ${entry.purpose}\n`);
    const result = await runScenario(
      {
        ...spec,
        maxRequests: null,
        baseline: true,
        pin: pin && serverCpus ? { ...pin, server: serverCpus } : pin,
        generators: 1,
        callTimeoutMs: 10_000,
        target: { kind: 'ours', cliPath: runnerCli, args: runnerArgs ?? [] },
        progress: true,
        retryDisturbed,
      },
      {
        onRun: (run) =>
          process.stderr.write(
            `    pair ${run.pair} ${run.target.padEnd(8)} ${formatRate(run.load.throughput).padStart(8)} calls/s  p50 ${formatUs(run.latency.p50)}  p99 ${formatUs(run.latency.p99)}  ` +
              `errors ${run.load.errors}  other processes ${run.system?.otherPercent ?? '?'}% CPU\n`,
          ),
      },
    );
    results.push(result);
  }
  const wallS = (performance.now() - started) / 1000;
  const command = `npm run build:test && node .build/bench/standard-matrix.js${quick ? ' --quick' : ''}${pin ? '' : ' --no-pin'}`;
  const report = buildReport('apisix-node-runner standard bench matrix', command, pin, results);
  report.noise = noise.map(({ cpus, gapsPerSecond, lostPercent, maxGapMs }) => ({ cpus, gapsPerSecond, lostPercent, maxGapMs }));
  const jsonPath = join(outDir, 'standard-matrix.json');
  const htmlPath = join(outDir, 'standard-matrix.html');
  writeReport(jsonPath, report);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(htmlPath, renderHtml([{ label: 'run', report }]));
  process.stderr.write(`wrote ${jsonPath} and ${htmlPath} (${Math.round(wallS)} s)\n`);
  if (values['no-docs'] !== true) {
    const docs = resolve(values.docs ?? join(ROOT, 'docs', 'benchmarks.md'));
    const repo = resolve(dirname(docs), '..');
    mkdirSync(dirname(docs), { recursive: true });
    writeFileSync(docs, markdown({ report, entries, wallS, quietBusy, command, htmlRel: relative(repo, htmlPath), jsonRel: relative(repo, jsonPath), runnerDesc }));
    process.stderr.write(`wrote ${docs}\n`);
  }
  const failed = results.reduce((t, s) => t + s.runner.errors + (s.baseline?.errors ?? 0), 0);
  if (failed > 0) process.stderr.write(`${failed} calls failed: see the notes in the report\n`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
