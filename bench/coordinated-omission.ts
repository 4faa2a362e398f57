/**
 * Why the harness measures latency from each call's intended send time: one 200 ms stall of a fake
 * server, under an open loop (1,000 calls/s) and a closed loop (4 connections). The open loop's
 * p99 carries the stall; the closed loop only records it on the calls in flight, so its p99 hides
 * it (its max does not). `npm test` asserts only what the stall forces whatever the machine does
 * (test/bench/coordinated-omission.test.ts); the p99s are figures of a quiet machine, checked here.
 *
 *   npm run build:test && node .build/bench/coordinated-omission.js
 *
 * Exits 1 when the open loop's p99 misses the stall or the closed loop's p99 shows it (on a busy
 * machine, pauses of its own can do that: run it on a quiet one).
 */
import { countAtLeast, decodeHistogram } from '../src/bench/histogram.js';
import { spawnLoadGenerator } from '../src/bench/load-generator.js';
import { quickConfig, startFake } from '../test/bench/support/helpers.js';

const STALL_MS = 200;
const server = await startFake('stall', { stallMs: STALL_MS, stallAfterMs: 700 });
const closedServer = await startFake('stall', { stallMs: STALL_MS, stallAfterMs: 700 });
try {
  const runs = [
    ['open loop, 1,000 calls/s', await spawnLoadGenerator(quickConfig(server.socketPath, { mode: 'open', rate: 1000, connections: 4, warmupMs: 200, durationMs: 1500 }), { cpus: null })],
    ['closed loop, 4 connections', await spawnLoadGenerator(quickConfig(closedServer.socketPath, { mode: 'closed', connections: 4, warmupMs: 200, durationMs: 1500 }), { cpus: null })],
  ] as const;
  const p99s: number[] = [];
  for (const [name, r] of runs) {
    const h = decodeHistogram(r.histogram);
    const p99 = h.getValueAtPercentile(99);
    p99s.push(p99);
    const slow = countAtLeast(h, (STALL_MS * 1000) / 2);
    process.stdout.write(
      `${name}: ${r.successes} calls, ${r.errors} errors, p50 ${h.getValueAtPercentile(50)} us, p99 ${p99} us, max ${h.maxValue} us, ${slow} calls of ${STALL_MS / 2} ms or more\n`,
    );
  }
  const [open, closed] = p99s;
  const shown = open >= (STALL_MS * 1000) / 2;
  const hidden = closed < (STALL_MS * 1000) / 4;
  process.stdout.write(`the ${STALL_MS} ms stall ${shown ? 'shows' : 'does NOT show'} in the open loop's p99, and is ${hidden ? 'hidden from' : 'NOT hidden from'} the closed loop's\n`);
  process.exitCode = shown && hidden ? 0 : 1;
} finally {
  await Promise.all([server.stop(), closedServer.stop()]);
}
