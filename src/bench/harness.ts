/**
 * Runs one scenario: starts the server(s), runs the load generator(s) against the runner and the
 * baseline in interleaved pairs (baseline then runner, then runner then baseline, ...: drift on the
 * machine hits both alike), samples the server's CPU and RSS at the edges of each measured window,
 * and aggregates the runs into a `ScenarioResult` with the runner/baseline ratios.
 */
import { decodeHistogram, distribution, distributionText, encodeHistogram, mergeHistograms, summarize } from './histogram.js';
import { spawnLoadGenerator } from './load-generator.js';
import { formatUs } from './report.js';
import { sampleProcess, sampleSystem, type ProcSnapshot, type SystemSnapshot } from './proc-stats.js';
import type { Scenario } from './scenarios.js';
import { workloadOf } from './scenarios.js';
import { externalServer, startBaselineProcess, startRunnerProcess, type ServerProcess } from './servers.js';
import type {
  ErrorKind,
  LoadConfig,
  LoadMode,
  LoadResult,
  ProcessSample,
  ScenarioResult,
  TargetKind,
  TargetRun,
  TargetSummary,
  Workload,
} from './types.js';

export type TargetSpec =
  | { kind: 'ours'; cliPath?: string; args: readonly string[] }
  | { kind: 'external'; socketPath: string; pid: number | null };

export interface PinSpec {
  /** CPUs of the runner and the baseline (`taskset -c`), e.g. "1". */
  server: string;
  /** CPUs of the load generator(s), e.g. "0". */
  generator: string;
}

export interface RunSpec {
  /** Label in the report; default the scenario name. */
  id?: string;
  scenario: Scenario;
  /** Changes to the scenario's workload (conf for an external runner, vars, body sizes...). */
  workload?: Partial<Workload>;
  mode: LoadMode;
  connections: number;
  /** Open loop: total requests per second. */
  rate: number | null;
  warmupMs: number;
  durationMs: number;
  maxRequests: number | null;
  pairs: number;
  baseline: boolean;
  pin: PinSpec | null;
  generators: number;
  callTimeoutMs: number;
  target: TargetSpec;
  /** Progress line on stderr (only drawn when stderr is a TTY). */
  progress: boolean;
  /**
   * Repeat a run during which other processes used at least `maxOtherPercent`% of a CPU (a
   * disturbed measurement on a shared machine), while the shared `budget.left` allows; the
   * repeats are listed in the result. Omitted: no repeats.
   */
  retryDisturbed?: { maxOtherPercent: number; budget: { left: number }; waitQuietMs?: number };
}

/** Waits until a 1 s window in which the machine is busier than `maxPercent`% of a CPU no more, or `maxMs` passed. */
async function waitForQuiet(maxPercent: number, maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const a = sampleSystem();
    await new Promise((r) => setTimeout(r, 1000));
    const b = sampleSystem();
    if (a === null || b === null || ((b.busyMs - a.busyMs) * 100) / (b.at - a.at) < maxPercent) return;
  }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** One line on stderr, redrawn in place; nothing at all unless stderr is a terminal. */
export class ProgressLine {
  readonly #enabled: boolean;
  #shown = false;
  constructor(enabled: boolean) {
    this.#enabled = enabled && process.stderr.isTTY === true;
  }
  show(text: string): void {
    if (!this.#enabled) return;
    const width = process.stderr.columns ?? 100;
    process.stderr.write(`\r\x1b[K${text.slice(0, width - 1)}`);
    this.#shown = true;
  }
  clear(): void {
    if (!this.#enabled || !this.#shown) return;
    process.stderr.write('\r\x1b[K');
    this.#shown = false;
  }
}

function bar(fraction: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** Splits one run over `n` generator processes: connections and rate shared out. */
function splitConfig(cfg: LoadConfig, n: number): LoadConfig[] {
  const count = Math.max(1, Math.min(n, cfg.connections));
  const out: LoadConfig[] = [];
  for (let i = 0; i < count; i++) {
    const connections = Math.floor(cfg.connections / count) + (i < cfg.connections % count ? 1 : 0);
    out.push({
      ...cfg,
      connections,
      rate: cfg.rate === null ? null : (cfg.rate * connections) / cfg.connections,
      maxRequests: cfg.maxRequests === null ? null : Math.ceil((cfg.maxRequests * connections) / cfg.connections),
      workload: { ...cfg.workload, seed: cfg.workload.seed + i },
    });
  }
  return out;
}

export function mergeLoadResults(results: readonly LoadResult[]): LoadResult {
  const first = results[0];
  if (results.length === 1) return first;
  const errorKinds: Partial<Record<ErrorKind, number>> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errorKinds)) errorKinds[k as ErrorKind] = (errorKinds[k as ErrorKind] ?? 0) + (v ?? 0);
  const sum = (f: (r: LoadResult) => number): number => results.reduce((t, r) => t + f(r), 0);
  const lag = results.every((r) => r.sendLagHistogram !== null) ? encodeHistogram(mergeHistograms(results.map((r) => r.sendLagHistogram!))) : null;
  return {
    mode: first.mode,
    connections: sum((r) => r.connections),
    rate: first.rate === null ? null : sum((r) => r.rate ?? 0),
    measuredMs: Math.max(...results.map((r) => r.measuredMs)),
    requests: sum((r) => r.requests),
    successes: sum((r) => r.successes),
    errors: sum((r) => r.errors),
    errorKinds,
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 8),
    throughput: round(sum((r) => r.throughput)),
    histogram: encodeHistogram(mergeHistograms(results.map((r) => r.histogram))),
    sendLagHistogram: lag,
    maxBacklog: Math.max(...results.map((r) => r.maxBacklog)),
    saturated: results.some((r) => r.saturated),
    extraInfoQueries: sum((r) => r.extraInfoQueries),
    prepareConfs: sum((r) => r.prepareConfs),
    confTokenNotFound: sum((r) => r.confTokenNotFound),
    reconnects: sum((r) => r.reconnects),
    bytesSent: sum((r) => r.bytesSent),
    bytesReceived: sum((r) => r.bytesReceived),
    generatorCpuMs: sum((r) => r.generatorCpuMs),
    generatorLoopDelayUs: results.every((r) => r.generatorLoopDelayUs !== null)
      ? { p99: Math.max(...results.map((r) => r.generatorLoopDelayUs!.p99)), max: Math.max(...results.map((r) => r.generatorLoopDelayUs!.max)) }
      : null,
  };
}

function processSample(start: ProcSnapshot | null, end: ProcSnapshot | null, successes: number): ProcessSample | null {
  if (start === null || end === null || end.at <= start.at) return null;
  const cpuMs = end.cpuMs - start.cpuMs;
  return {
    cpuPercent: round((cpuMs * 100) / (end.at - start.at)),
    cpuUsPerCall: successes > 0 ? round((cpuMs * 1000) / successes, 2) : null,
    rssBytes: end.rssBytes,
    peakRssBytes: end.peakRssBytes,
  };
}

function systemSample(start: SystemSnapshot | null, end: SystemSnapshot | null, proc: ProcessSample | null, load: LoadResult): TargetRun['system'] {
  if (start === null || end === null || end.at <= start.at) return null;
  const wall = end.at - start.at;
  const busyPercent = round(((end.busyMs - start.busyMs) * 100) / wall);
  const generatorPercent = (load.generatorCpuMs * 100) / load.measuredMs;
  return {
    busyPercent,
    otherPercent: proc === null ? null : round(Math.max(0, busyPercent - proc.cpuPercent - generatorPercent)),
    stealPercent: round(((end.stealMs - start.stealMs) * 100) / wall),
  };
}

/** One load run against one server. */
export async function measureOnce(
  server: ServerProcess,
  target: TargetKind,
  cfg: LoadConfig,
  opts: { generators: number; generatorCpus: string | null; pair: number; progress: ProgressLine; label: string },
): Promise<TargetRun> {
  let start: ProcSnapshot | null = null;
  let end: ProcSnapshot | null = null;
  let sysStart: SystemSnapshot | null = null;
  let sysEnd: SystemSnapshot | null = null;
  const total = cfg.warmupMs + cfg.durationMs;
  const configs = splitConfig({ ...cfg, socketPath: server.socketPath }, opts.generators);
  // Each generator reports its own progress; the line shows their sum.
  const latest = configs.map(() => ({ successes: 0, errors: 0, recentRate: 0 }));
  const results = await Promise.all(
    configs.map((c, i) =>
      spawnLoadGenerator(c, {
        cpus: opts.generatorCpus,
        hooks: {
          onWindow:
            i !== 0
              ? undefined
              : (edge) => {
                  const snap = server.pid === null ? null : sampleProcess(server.pid);
                  const sys = sampleSystem();
                  if (edge === 'start') [start, sysStart] = [snap, sys];
                  else [end, sysEnd] = [snap, sys];
                },
          onProgress: (p) => {
            latest[i] = p;
            if (i !== 0) return;
            const sum = (k: 'successes' | 'errors' | 'recentRate'): number => latest.reduce((t, x) => t + x[k], 0);
            opts.progress.show(
              `${opts.label} ${target} ${bar(p.elapsedMs / total)} ${(p.elapsedMs / 1000).toFixed(1)}/${(total / 1000).toFixed(1)} s ` +
                `${p.measuring ? 'measuring' : 'warm-up'} ${Math.round(sum('recentRate')).toLocaleString('en-US')} req/s ` +
                `ok ${sum('successes').toLocaleString('en-US')} err ${sum('errors')}`,
            );
          },
        },
      }),
    ),
  );
  opts.progress.clear();
  const status = server.exitStatus();
  if (status !== null) throw new Error(`${server.name} exited during the run (${status})${server.stderrTail() ? `\n${server.stderrTail().trim()}` : ''}`);
  const load = mergeLoadResults(results);
  const h = decodeHistogram(load.histogram);
  const latency = summarize(h);
  h.destroy();
  const proc = processSample(start, end, load.successes);
  return { target, pair: opts.pair, load, latency, process: proc, system: systemSample(sysStart, sysEnd, proc, load) };
}

function summarizeTarget(target: TargetKind, runs: readonly TargetRun[], generators: number): TargetSummary {
  const merged = mergeHistograms(runs.map((r) => r.load.histogram));
  const lags = runs.map((r) => r.load.sendLagHistogram).filter((x): x is string => x !== null);
  const lag = lags.length > 0 ? mergeHistograms(lags) : null;
  const errorKinds: Partial<Record<ErrorKind, number>> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.load.errorKinds)) errorKinds[k as ErrorKind] = (errorKinds[k as ErrorKind] ?? 0) + (v ?? 0);
  const procs = runs.map((r) => r.process).filter((p): p is ProcessSample => p !== null);
  const perCall = procs.map((p) => p.cpuUsPerCall).filter((v): v is number => v !== null);
  const delays = runs.map((r) => r.load.generatorLoopDelayUs?.max).filter((v): v is number => v !== undefined);
  const others = runs.map((r) => r.system?.otherPercent).filter((v): v is number => v !== null && v !== undefined);
  const summary: TargetSummary = {
    target,
    runs: runs.length,
    throughput: round(median(runs.map((r) => r.load.throughput))),
    latency: summarize(merged),
    distribution: distribution(merged),
    histogram: encodeHistogram(merged),
    distributionText: distributionText(merged),
    errors: runs.reduce((t, r) => t + r.load.errors, 0),
    errorKinds,
    cpuPercent: procs.length > 0 ? round(median(procs.map((p) => p.cpuPercent))) : null,
    cpuUsPerCall: perCall.length > 0 ? round(median(perCall), 2) : null,
    rssBytes: procs.length > 0 ? Math.max(...procs.map((p) => p.rssBytes)) : null,
    peakRssBytes: procs.length > 0 ? Math.max(...procs.map((p) => p.peakRssBytes)) : null,
    generatorCpuPercent: round(median(runs.map((r) => (r.load.generatorCpuMs * 100) / r.load.measuredMs / Math.max(1, generators)))),
    otherCpuPercent: others.length > 0 ? round(median(others)) : null,
    generatorLoopDelayMaxUs: delays.length > 0 ? Math.max(...delays) : null,
    sendLagP99: lag === null ? null : lag.getValueAtPercentile(99),
    saturated: runs.some((r) => r.load.saturated),
  };
  merged.destroy();
  lag?.destroy();
  return summary;
}

export interface RunHooks {
  /** Called after each measured run (for a log line). */
  onRun?(run: TargetRun, id: string): void;
}

export async function runScenario(spec: RunSpec, hooks: RunHooks = {}): Promise<ScenarioResult> {
  const id = spec.id ?? spec.scenario.name;
  const workload = workloadOf(spec.scenario, spec.workload);
  const progress = new ProgressLine(spec.progress);
  const serverCpus = spec.pin?.server ?? null;
  const targetKind: TargetKind = spec.target.kind === 'ours' ? 'runner' : 'external';

  const servers: ServerProcess[] = [];
  try {
    const target =
      spec.target.kind === 'ours'
        ? await startRunnerProcess({ cliPath: spec.target.cliPath, args: spec.target.args, fixtures: true, cpus: serverCpus })
        : await externalServer(spec.target.socketPath, spec.target.pid);
    servers.push(target);
    const baseline = spec.baseline ? await startBaselineProcess(serverCpus) : null;
    if (baseline) servers.push(baseline);

    const base: LoadConfig = {
      socketPath: '',
      connections: spec.connections,
      mode: spec.mode,
      rate: spec.rate,
      warmupMs: spec.warmupMs,
      durationMs: spec.durationMs,
      maxRequests: spec.maxRequests,
      callTimeoutMs: spec.callTimeoutMs,
      workload,
      progressMs: spec.progress && process.stderr.isTTY ? 250 : 0,
      maxBacklog: spec.rate === null ? 0 : Math.max(10_000, Math.ceil(spec.rate * 2)),
    };
    // The baseline answers a canned reply whatever the scenario: a Stop, or an unchanged response.
    const baselineCfg: LoadConfig = { ...base, workload: { ...workload, expect: workload.phase === 'req' ? 'stop' : 'resp' } };

    const runs: TargetRun[] = [];
    const repeated: ScenarioResult['repeated'] = [];
    for (let pair = 1; pair <= spec.pairs; pair++) {
      const order: Array<[ServerProcess, TargetKind, LoadConfig]> = [[target, targetKind, base]];
      if (baseline) order.push([baseline, 'baseline', baselineCfg]);
      if (pair % 2 === 1) order.reverse();
      for (const [server, kind, cfg] of order) {
        const label = `[${id} ${pair}/${spec.pairs}]`;
        for (;;) {
          const run = await measureOnce(server, kind, cfg, { generators: spec.generators, generatorCpus: spec.pin?.generator ?? null, pair, progress, label });
          hooks.onRun?.(run, id);
          const other = run.system?.otherPercent ?? null;
          const retry = spec.retryDisturbed;
          if (retry && other !== null && other >= retry.maxOtherPercent && retry.budget.left > 0) {
            retry.budget.left--;
            repeated.push({ target: kind, pair, otherCpuPercent: other });
            // Another process's burst usually lasts seconds: repeating at once would hit it again.
            await waitForQuiet(retry.maxOtherPercent, retry.waitQuietMs ?? 0);
            continue;
          }
          runs.push(run);
          break;
        }
      }
    }

    const runner = summarizeTarget(targetKind, runs.filter((r) => r.target === targetKind), spec.generators);
    const baselineSummary = baseline ? summarizeTarget('baseline', runs.filter((r) => r.target === 'baseline'), spec.generators) : null;
    let ratio: ScenarioResult['ratio'] = null;
    if (baselineSummary) {
      const perPair: number[] = [];
      const p99PerPair: number[] = [];
      const cpuPerPair: number[] = [];
      for (let pair = 1; pair <= spec.pairs; pair++) {
        const r = runs.find((x) => x.pair === pair && x.target === targetKind)!;
        const b = runs.find((x) => x.pair === pair && x.target === 'baseline')!;
        perPair.push(b.load.throughput > 0 ? round(r.load.throughput / b.load.throughput, 3) : 0);
        p99PerPair.push(b.latency.p99 > 0 ? round(r.latency.p99 / b.latency.p99, 2) : 0);
        const rc = r.process?.cpuUsPerCall;
        const bc = b.process?.cpuUsPerCall;
        if (rc && bc) cpuPerPair.push(round(rc / bc, 2));
      }
      ratio = {
        throughput: round(median(perPair), 3),
        throughputPerPair: perPair,
        p99: round(median(p99PerPair), 2),
        p99PerPair,
        cpuPerCall: cpuPerPair.length === spec.pairs ? round(median(cpuPerPair), 2) : null,
      };
    }

    const notes = [...spec.scenario.notes];
    const repeatGroups = new Map<string, number[]>();
    for (const r of repeated) {
      const key = `${r.target} run of pair ${r.pair}`;
      repeatGroups.set(key, [...(repeatGroups.get(key) ?? []), r.otherCpuPercent]);
    }
    for (const [key, others] of repeatGroups) {
      notes.push(`${key} repeated ${others.length === 1 ? 'once' : `${others.length} times`}: other processes used ${others.map((o) => `${Math.round(o)}%`).join(', ')} of a CPU during ${others.length === 1 ? 'it' : 'them'}`);
    }
    for (const s of [runner, baselineSummary]) {
      if (!s) continue;
      if (s.errors > 0) {
        const kinds = Object.entries(s.errorKinds).map(([k, v]) => `${k} ${v}`).join(', ');
        notes.push(`${s.target}: ${s.errors} failed calls (${kinds}); they are not in the latency figures`);
      }
      // In open loop the generator polls for its send times, so its CPU is always near 100%;
      // there a late send (waiting for a free connection included) is what says it fell behind.
      if (spec.mode === 'closed' && s.generatorCpuPercent >= 90) {
        notes.push(`${s.target}: the load generator used ${s.generatorCpuPercent}% of its CPU; the figure may be limited by the generator, not the server`);
      }
      if (s.otherCpuPercent !== null && s.otherCpuPercent >= 15) {
        notes.push(`${s.target}: other processes used about ${s.otherCpuPercent}% of a CPU during the runs; the figures are disturbed`);
      }
      if (s.generatorLoopDelayMaxUs !== null && s.generatorLoopDelayMaxUs >= 5000 && s.generatorLoopDelayMaxUs >= s.latency.p999 / 2) {
        notes.push(`${s.target}: the load generator's own event loop stalled up to ${(s.generatorLoopDelayMaxUs / 1000).toFixed(1)} ms; the tail latencies may include it`);
      }
      if (spec.mode === 'open' && s.sendLagP99 !== null && s.sendLagP99 >= 1000) {
        notes.push(`${s.target}: 1% of the calls were sent ${formatUs(s.sendLagP99)} or more after their intended time (waiting for a free connection, or the generator behind); that time is in their latency`);
      }
      if (s.saturated) notes.push(`${s.target}: open-loop backlog limit reached; the server could not keep up with ${spec.rate} req/s`);
    }
    if (spec.pin === null) notes.push('not pinned: the load generator and the server share the CPUs');
    if (baseline && (workload.reqBodyBytes > 0 || workload.respBodyBytes > 0 || spec.scenario.fixtures || workload.phase === 'resp')) {
      notes.push('the baseline answers a canned reply without any ExtraInfo round trip: the ratio includes the protocol work the scenario asks for');
    }

    return {
      id,
      scenario: spec.scenario.name,
      description: spec.scenario.description,
      phase: workload.phase,
      mode: spec.mode,
      connections: spec.connections,
      rate: spec.rate,
      warmupMs: spec.warmupMs,
      durationMs: spec.durationMs,
      pairs: spec.pairs,
      generators: spec.generators,
      targetCommand: target.command,
      runs,
      repeated,
      runner,
      baseline: baselineSummary,
      ratio,
      notes,
    };
  } finally {
    progress.clear();
    await Promise.all(servers.map((s) => s.stop()));
  }
}
