/**
 * Soak: our runner under steady load for minutes, its resident memory sampled every few seconds.
 * A leak shows as RSS still growing after the first minute (caches warm, JIT settled, pool
 * threads started). Target (issue 3): RSS at the end within 10% of RSS after the first minute.
 *
 *   npm run build:test && node .build/bench/soak.js [--minutes 5] [--rate 4000] [--scenario extra-var-pool]
 *
 * The default scenario crosses the most moving parts per call: a plugin on the worker pool that
 * asks the gateway for a variable from the worker thread (batches, shared-memory slabs, the
 * ExtraInfo relay), at a fixed open-loop rate. Exits 1 when the target is missed or a call failed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { spawnLoadGenerator } from '../src/bench/load-generator.js';
import { sampleProcess } from '../src/bench/proc-stats.js';
import { findScenario, workloadOf } from '../src/bench/scenarios.js';
import { startRunnerProcess } from '../src/bench/servers.js';
import type { LoadResult } from '../src/bench/types.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    rate: { type: 'string', default: '4000' },
    scenario: { type: 'string', default: 'extra-var-pool' },
    threads: { type: 'string', default: '2' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const scenario = findScenario(values.scenario!);
if (!(minutes > 1) || !(rate > 0) || scenario === undefined) {
  process.stderr.write('soak: --minutes must be above 1, --rate positive, --scenario a bench scenario name\n');
  process.exit(2);
}

const SAMPLE_MS = 5000;
const durationMs = minutes * 60_000;
const runner = await startRunnerProcess({ cpus: null, args: ['--threads', values.threads!] });
const samples: Array<{ atS: number; rssMiB: number }> = [];
const started = performance.now();
const sampler = setInterval(() => {
  const snap = runner.pid === null ? null : sampleProcess(runner.pid);
  if (snap !== null) samples.push({ atS: Math.round((performance.now() - started) / 1000), rssMiB: Math.round((snap.rssBytes / 2 ** 20) * 10) / 10 });
}, SAMPLE_MS);

let result: LoadResult;
try {
  result = await spawnLoadGenerator(
    {
      socketPath: runner.socketPath,
      connections: 16,
      mode: 'open',
      rate,
      warmupMs: 0,
      durationMs,
      maxRequests: null,
      callTimeoutMs: 10_000,
      workload: workloadOf(scenario),
      progressMs: 0,
      maxBacklog: Math.max(10_000, rate * 2),
    },
    { cpus: null },
  );
} finally {
  clearInterval(sampler);
  await runner.stop();
}

const afterFirstMinute = samples.find((s) => s.atS >= 60) ?? samples[0];
const last = samples[samples.length - 1];
const growth = last.rssMiB / afterFirstMinute.rssMiB - 1;
const errors = result.errors;
const pass = Math.abs(growth) <= 0.1 && errors === 0;
const summary = {
  command: `node .build/bench/soak.js --minutes ${minutes} --rate ${rate} --scenario ${scenario.name} --threads ${values.threads}`,
  scenario: scenario.name,
  rate,
  minutes,
  calls: result.requests,
  errorKinds: result.errorKinds,
  errors,
  rssAfterFirstMinuteMiB: afterFirstMinute.rssMiB,
  rssAtEndMiB: last.rssMiB,
  growthPercent: Math.round(growth * 1000) / 10,
  pass,
  samples,
};
mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../../bench/results/soak.json', import.meta.url), JSON.stringify(summary, null, 2));
process.stdout.write(
  `soak ${scenario.name} at ${rate}/s for ${minutes} min: ${result.requests} calls, ${errors} errors; ` +
    `RSS ${afterFirstMinute.rssMiB} MiB after the first minute, ${last.rssMiB} MiB at the end ` +
    `(${summary.growthPercent >= 0 ? '+' : ''}${summary.growthPercent}%): ${pass ? 'pass' : 'FAIL'} (target within 10%)\n`,
);
process.exit(pass ? 0 : 1);
