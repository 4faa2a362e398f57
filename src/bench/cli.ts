/**
 * `apisix-node-runner bench ...`: the benchmark harness's command line. `benchMain(argv)` gets the
 * arguments after `bench` and resolves with the process exit code (0 ok, 1 a failed run or failed
 * calls, 2 an invalid command line); it writes to stdout/stderr but never exits the process.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { startBaselineServer } from './baseline-server.js';
import { formatComparison } from './compare.js';
import { runScenario, type PinSpec, type RunSpec, type TargetSpec } from './harness.js';
import { renderHtml } from './html.js';
import { probeNoise } from './noise.js';
import { buildReport, formatScenario, readReport, writeReport } from './report.js';
import { SCENARIOS, findScenario, type Scenario } from './scenarios.js';
import type { ConfEntry, Expect, Phase, ScenarioResult, Workload } from './types.js';

export const BENCH_HELP = `Usage: apisix-node-runner bench [run] [options]
       apisix-node-runner bench compare A.json B.json [--html OUT.html] [--labels A,B]
       apisix-node-runner bench html A.json [B.json] --out OUT.html
       apisix-node-runner bench scenarios
       apisix-node-runner bench noise [--cpus 0,1] [--duration S]
       apisix-node-runner bench baseline-server --listen PATH

Runs a load generator that plays the gateway over the Unix socket (its own process), against our
runner (started here) or an external one, and against a minimal canned-reply baseline server (the
socket floor), in interleaved pairs. Prints throughput, p50/p90/p99/p99.9/max, runner CPU and RSS.

What to run:
  --scenario NAME         Scenario(s), comma-separated or repeated; "all" for every one. default: say
                          (see "bench scenarios")
  --mode closed|open      closed: each connection sends its next call when answered (throughput);
                          open: a fixed rate, latency from each call's intended send time. default: closed
  --rate N                Open loop: total calls per second.
  --connections N         Gateway connections, one call in flight each. default: 8
  --duration S            Measured seconds per run. default: 5
  --warmup S              Warm-up seconds per run, not measured. default: 1
  --requests N            Also stop a run after N measured calls.
  --pairs N               Runner+baseline pairs per scenario (interleaved); the ratio is their median. default: 1
  --no-baseline           Do not start the baseline server (no ratio).
  --generators N          Load-generator processes (connections and rate shared out). default: 1
  --timeout-ms N          A call without a final reply after N ms is an error. default: 10000

Where it runs:
  --pin                   Pin the servers with taskset -c 1 and the load generator with taskset -c 0.
  --server-cpus LIST      CPUs for the runner and baseline with --pin. default: 1
  --generator-cpus LIST   CPUs for the load generator with --pin. default: 0

Target:
  --runner-cli PATH       Our runner's cli.js. default: the one next to this module
  --runner-arg ARG        Extra argument to "run" (repeatable), e.g. --runner-arg=--log-level=debug
  --socket PATH           Target an external runner listening on PATH instead of starting ours.
  --pid PID               The external runner's pid, to sample its CPU and RSS.
  --conf NAME=VALUE       Conf entry sent in PrepareConf (repeatable, in order); replaces the scenario's.
  --expect KIND           Reply that counts as a success: stop, rewrite, none, any, resp, resp-body.
  --phase req|resp        Send HTTPReqCall (req) or HTTPRespCall (resp).
  --var NAME=VALUE        ExtraInfo variable answer (repeatable).
  --req-body-bytes N      ExtraInfo request body size.
  --resp-body-bytes N     ExtraInfo response body size.
  --threads N             Our runner's worker threads (its --threads; 0: every plugin inline).
  --max-queue N           Our runner's pool queue limit (its --max-queue).
                          Placement is declared by each plugin: the *-pool scenarios use
                          placement 'pool', the others 'inline'.

Output:
  --json PATH             Write the result file (JSON).
  --html PATH             Write the HTML report (percentile plot, percentile table).
  --title TEXT            Report title.
  --quiet                 No result tables on stdout.
  --allow-errors          Exit 0 even when calls failed.
`;

class UsageError extends Error {}

function int(name: string, raw: string | undefined, min: number, max: number, fallback: number): number;
function int(name: string, raw: string | undefined, min: number, max: number, fallback: null): number | null;
function int(name: string, raw: string | undefined, min: number, max: number, fallback: number | null): number | null {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!/^\d+$/.test(raw) || v < min || v > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return v;
}

function seconds(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || v < min || v > 3600) throw new UsageError(`--${name} must be a number of seconds from ${min} to 3600 (got ${JSON.stringify(raw)})`);
  return Math.round(v * 1000);
}

function pairsOf(name: string, list: readonly string[]): ConfEntry[] {
  return list.map((item) => {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--${name} must be NAME=VALUE (got ${JSON.stringify(item)})`);
    return { name: item.slice(0, i), value: item.slice(i + 1) };
  });
}

const EXPECTS: readonly Expect[] = ['stop', 'rewrite', 'none', 'any', 'resp', 'resp-body'];

const RUN_OPTIONS = {
  scenario: { type: 'string', multiple: true },
  mode: { type: 'string' },
  rate: { type: 'string' },
  connections: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  requests: { type: 'string' },
  pairs: { type: 'string' },
  'no-baseline': { type: 'boolean' },
  generators: { type: 'string' },
  'timeout-ms': { type: 'string' },
  pin: { type: 'boolean' },
  'server-cpus': { type: 'string' },
  'generator-cpus': { type: 'string' },
  'runner-cli': { type: 'string' },
  'runner-arg': { type: 'string', multiple: true },
  socket: { type: 'string' },
  pid: { type: 'string' },
  conf: { type: 'string', multiple: true },
  expect: { type: 'string' },
  phase: { type: 'string' },
  var: { type: 'string', multiple: true },
  'req-body-bytes': { type: 'string' },
  'resp-body-bytes': { type: 'string' },
  threads: { type: 'string' },
  'max-queue': { type: 'string' },
  placement: { type: 'string' },
  json: { type: 'string' },
  html: { type: 'string' },
  title: { type: 'string' },
  quiet: { type: 'boolean' },
  'allow-errors': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ParsedRun {
  specs: RunSpec[];
  pin: PinSpec | null;
  json: string | null;
  html: string | null;
  title: string;
  quiet: boolean;
  allowErrors: boolean;
  help: boolean;
}

/** Parses the options of `bench run` into one RunSpec per scenario. @throws UsageError */
export function parseRunArgs(argv: readonly string[]): ParsedRun {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: RUN_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const help = values.help === true;
  if (values.placement !== undefined) {
    throw new UsageError(`--placement is not a runner option: each plugin declares its placement (the *-pool scenarios use 'pool', the others 'inline')`);
  }
  const names = (values.scenario ?? ['say']).flatMap((s) => s.split(',')).filter((s) => s !== '');
  const scenarios: Scenario[] = names.includes('all')
    ? [...SCENARIOS]
    : names.map((n) => {
        const s = findScenario(n);
        if (!s) throw new UsageError(`unknown scenario ${JSON.stringify(n)}; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
        return s;
      });

  const mode = values.mode ?? 'closed';
  if (mode !== 'closed' && mode !== 'open') throw new UsageError(`--mode must be closed or open (got ${JSON.stringify(mode)})`);
  const rate = int('rate', values.rate, 1, 10_000_000, null);
  if (mode === 'open' && rate === null) throw new UsageError('--mode open needs --rate N (calls per second)');
  if (mode === 'closed' && rate !== null) throw new UsageError('--rate applies to --mode open only');

  let pin: PinSpec | null = null;
  if (values.pin) {
    pin = { server: values['server-cpus'] ?? '1', generator: values['generator-cpus'] ?? '0' };
    if (availableParallelism() < 2 && values['server-cpus'] === undefined) throw new UsageError('--pin needs at least 2 CPUs');
  } else if (values['server-cpus'] !== undefined || values['generator-cpus'] !== undefined) {
    throw new UsageError('--server-cpus and --generator-cpus need --pin');
  }

  let target: TargetSpec;
  if (values.socket !== undefined) {
    for (const flag of ['runner-cli', 'runner-arg', 'threads', 'max-queue'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} applies to our runner; --socket targets an external one, configured where it was started`);
    }
    target = { kind: 'external', socketPath: values.socket.replace(/^unix:/, ''), pid: int('pid', values.pid, 1, 2 ** 31, null) };
  } else {
    if (values.pid !== undefined) throw new UsageError('--pid applies to --socket (an external runner)');
    const args = [...(values['runner-arg'] ?? [])];
    if (values.threads !== undefined) args.push('--threads', String(int('threads', values.threads, 0, 1024, 0)));
    if (values['max-queue'] !== undefined) args.push('--max-queue', String(int('max-queue', values['max-queue'], 1, 1_000_000_000, 1)));
    target = { kind: 'ours', cliPath: values['runner-cli'], args };
  }

  const workload: Partial<Workload> = {};
  if (values.conf !== undefined) workload.conf = pairsOf('conf', values.conf);
  if (values.expect !== undefined) {
    if (!EXPECTS.includes(values.expect as Expect)) throw new UsageError(`--expect must be one of ${EXPECTS.join(', ')}`);
    workload.expect = values.expect as Expect;
  }
  if (values.phase !== undefined) {
    if (values.phase !== 'req' && values.phase !== 'resp') throw new UsageError('--phase must be req or resp');
    workload.phase = values.phase as Phase;
    if (values.expect === undefined) workload.expect = values.phase === 'req' ? 'any' : 'resp';
  }
  if (values.conf !== undefined && values.expect === undefined && values.phase === undefined) workload.expect = 'any';
  const vars = pairsOf('var', values.var ?? []);
  const reqBody = int('req-body-bytes', values['req-body-bytes'], 0, 16 * 1024 * 1024 - 64, null);
  const respBody = int('resp-body-bytes', values['resp-body-bytes'], 0, 16 * 1024 * 1024 - 64, null);
  if (reqBody !== null) workload.reqBodyBytes = reqBody;
  if (respBody !== null) workload.respBodyBytes = respBody;

  const common = {
    mode: mode as 'closed' | 'open',
    connections: int('connections', values.connections, 1, 10_000, 8),
    rate,
    warmupMs: seconds('warmup', values.warmup, 1000, 0),
    durationMs: seconds('duration', values.duration, 5000, 0.1),
    maxRequests: int('requests', values.requests, 1, Number.MAX_SAFE_INTEGER, null),
    pairs: int('pairs', values.pairs, 1, 100, 1),
    baseline: values['no-baseline'] !== true,
    pin,
    generators: int('generators', values.generators, 1, 64, 1),
    callTimeoutMs: int('timeout-ms', values['timeout-ms'], 1, 3_600_000, 10_000),
    target,
    progress: true,
  };
  const specs = scenarios.map(
    (scenario): RunSpec => ({
      ...common,
      scenario,
      workload: { ...workload, ...(vars.length > 0 ? { vars: { ...scenario.vars, ...Object.fromEntries(vars.map((v) => [v.name, v.value])) } } : {}) },
    }),
  );
  return {
    specs,
    pin,
    json: values.json ?? null,
    html: values.html ?? null,
    title: values.title ?? 'apisix-node-runner bench',
    quiet: values.quiet === true,
    allowErrors: values['allow-errors'] === true,
    help,
  };
}

/** An argument as a POSIX shell would need it, so the recorded command can be pasted back. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

async function runCommand(argv: readonly string[], fullArgv: readonly string[]): Promise<number> {
  const parsed = parseRunArgs(argv);
  if (parsed.help) {
    process.stdout.write(BENCH_HELP);
    return 0;
  }
  const results: ScenarioResult[] = [];
  for (const spec of parsed.specs) {
    const result = await runScenario(spec);
    results.push(result);
    if (!parsed.quiet) process.stdout.write(`${formatScenario(result)}\n\n`);
  }
  const report = buildReport(parsed.title, `apisix-node-runner bench ${fullArgv.map(shellQuote).join(' ')}`.trim(), parsed.pin, results);
  if (parsed.json) writeReport(parsed.json, report);
  if (parsed.html) writeText(parsed.html, renderHtml([{ label: 'run', report }]));
  const failed = results.reduce((t, s) => t + s.runner.errors + (s.baseline?.errors ?? 0), 0);
  if (failed > 0 && !parsed.allowErrors) {
    process.stderr.write(`bench: ${failed} calls failed (see the notes above); exit 1 (--allow-errors to ignore)\n`);
    return 1;
  }
  return 0;
}

function compareCommand(argv: readonly string[]): number {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { html: { type: 'string' }, labels: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 2) throw new UsageError('compare takes two result files: compare A.json B.json');
  const [pa, pb] = positionals;
  const labels = (values.labels?.split(',') ?? ['A', 'B']) as [string, string];
  if (labels.length !== 2 || labels.some((l) => l === '')) throw new UsageError('--labels must be two comma-separated names');
  const a = readReport(pa);
  const b = readReport(pb);
  process.stdout.write(`${formatComparison(a, b, labels)}\n`);
  if (values.html) {
    writeText(values.html, renderHtml([{ label: labels[0], report: a }, { label: labels[1], report: b }]));
  }
  return 0;
}

function htmlCommand(argv: readonly string[]): number {
  const { values, positionals } = parseArgs({ args: [...argv], options: { out: { type: 'string' }, labels: { type: 'string' } }, strict: true, allowPositionals: true });
  if (positionals.length < 1 || positionals.length > 2 || !values.out) throw new UsageError('html takes one or two result files and --out OUT.html');
  const labels = values.labels?.split(',') ?? ['A', 'B'];
  const sources = positionals.map((p, i) => ({ label: positionals.length === 1 ? 'run' : labels[i] ?? `run ${i + 1}`, report: readReport(p) }));
  writeText(values.out, renderHtml(sources));
  return 0;
}

async function baselineCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { listen: { type: 'string' } }, strict: true });
  if (!values.listen) throw new UsageError('baseline-server needs --listen PATH');
  const path = values.listen.replace(/^unix:/, '');
  const server = await startBaselineServer(path);
  process.stderr.write(`baseline server listening on unix:${path} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close();
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

async function noiseCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { cpus: { type: 'string' }, duration: { type: 'string' } }, strict: true });
  const lists = values.cpus === undefined ? [null] : values.cpus.split(',');
  const samples = await probeNoise(lists, seconds('duration', values.duration, 3000, 0.5));
  for (const n of samples) {
    process.stdout.write(
      `CPU ${n.cpus ?? 'any'}: ${n.gapsPerSecond} interruptions/s over 0.5 ms, longest ${n.maxGapMs} ms, ${n.lostPercent}% of the time lost, ` +
        `${n.involuntaryContextSwitches} involuntary context switches\n`,
    );
  }
  return 0;
}

function scenariosCommand(): number {
  for (const s of SCENARIOS) {
    process.stdout.write(`${s.name.padEnd(18)} ${s.description}\n${' '.repeat(19)}conf: ${JSON.stringify(s.conf)}\n`);
  }
  return 0;
}

/** Entry point of `apisix-node-runner bench`; `argv` is what follows `bench`. Resolves with the exit code. */
export async function benchMain(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  try {
    switch (first) {
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(BENCH_HELP);
        return 0;
      case 'compare':
        return compareCommand(rest);
      case 'html':
        return htmlCommand(rest);
      case 'scenarios':
        return scenariosCommand();
      case 'noise':
        return await noiseCommand(rest);
      case 'baseline-server':
        return await baselineCommand(rest);
      case 'run':
        return await runCommand(rest, argv);
      default:
        if (first !== undefined && !first.startsWith('-')) throw new UsageError(`unknown bench command ${JSON.stringify(first)}`);
        return await runCommand(argv, argv);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`apisix-node-runner bench: ${(err as Error).message}\nRun "apisix-node-runner bench --help" for usage.\n`);
      return 2;
    }
    process.stderr.write(`apisix-node-runner bench: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}
