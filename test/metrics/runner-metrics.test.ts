import { strict as assert } from 'node:assert';
import { createHistogram } from 'node:perf_hooks';
import { test } from 'node:test';
import { EVENT_LOOP_RESOLUTION_MS, eventLoopDelaySummary, RunnerMetrics } from '../../src/metrics/runner-metrics.js';

const MS = 1e6;

test('event-loop delay: the sampling period comes off every figure, and an early tick is 0, not negative', () => {
  const h = createHistogram();
  h.record(Math.round(19.2 * MS)); // a tick 0.8 ms early
  h.record(20 * MS);
  h.record(25 * MS);
  h.record(120 * MS); // the loop blocked for about 100 ms
  const loop = eventLoopDelaySummary(h, EVENT_LOOP_RESOLUTION_MS);
  assert.equal(loop.count, 4);
  // HdrHistogram keeps 3 significant digits: a value reads back within 0.1% (20 us of 20 ms).
  assert.ok(loop.p50 >= 0 && loop.p50 <= 20, `p50 ${loop.p50} us`);
  assert.ok(Math.abs(loop.max - 100_000) <= 120, `max ${loop.max} us`);
  assert.ok(Math.abs(loop.p90 - 100_000) <= 120, `p90 ${loop.p90} us`);
  // The mean of the raw samples (46.05 ms) less the period.
  assert.ok(Math.abs(loop.mean - 26_050) <= 50, `mean ${loop.mean} us`);
  assert.ok(Math.abs(loop.sum - loop.mean * 4) <= 1, `sum ${loop.sum} us`);
  const early = createHistogram();
  for (let i = 0; i < 3; i++) early.record(Math.round(19.2 * MS));
  const { count, ...figures } = eventLoopDelaySummary(early, EVENT_LOOP_RESOLUTION_MS);
  assert.equal(count, 3);
  assert.deepEqual(figures, { mean: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0, sum: 0 });
  assert.deepEqual(eventLoopDelaySummary(createHistogram(), EVENT_LOOP_RESOLUTION_MS), { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0, sum: 0 });
});

/** Resolves once the monitor has recorded more than `count` samples (one per tick of its timer). */
async function samplesBeyond(metrics: RunnerMetrics, count: number): Promise<void> {
  while (metrics.eventLoopDelay().count <= count) await new Promise((resolve) => setTimeout(resolve, EVENT_LOOP_RESOLUTION_MS));
}

test('the real monitor: its figures leave out the sampling period', async (t) => {
  const metrics = new RunnerMetrics();
  t.after(() => metrics.close());
  const started = performance.now();
  metrics.startEventLoopMonitor();
  await samplesBeyond(metrics, 20);
  const loop = metrics.eventLoopDelay();
  const elapsedUs = (performance.now() - started) * 1000;
  // Each raw sample is the time between two ticks, so the raw samples add up to at most the time
  // the monitor ran, and their delays (each sample less the 20 ms period) to at most that time less
  // count x 20 ms. An identity, not a speed: it holds however late this busy machine wakes the loop
  // (a late tick adds to both sides), where "an idle loop reports under 1 ms" would not. Uncorrected,
  // the sum is the whole elapsed time and misses this by count x 20 ms. The 0.1% is HdrHistogram's
  // precision, in which the mean the sum comes from is kept.
  const bound = elapsedUs - loop.count * EVENT_LOOP_RESOLUTION_MS * 1000 + 0.001 * elapsedUs;
  assert.ok(loop.sum <= bound, `delays sum to ${loop.sum} us over ${loop.count} samples in ${Math.round(elapsedUs)} us (bound ${Math.round(bound)} us)`);
  assert.ok(loop.p50 <= loop.max && loop.mean <= loop.max);
});

test('the real monitor: a loop blocked for 100 ms shows at least half of it', async (t) => {
  const metrics = new RunnerMetrics();
  t.after(() => metrics.close());
  metrics.startEventLoopMonitor();
  await samplesBeyond(metrics, 0);
  const before = metrics.eventLoopDelay().count;
  const blockMs = 100;
  const until = performance.now() + blockMs;
  while (performance.now() < until) {
    // A plugin doing synchronous work on the main thread.
  }
  await samplesBeyond(metrics, before);
  // The timer cannot tick during the block, so one sample spans all of it: >= 100 ms, >= 80 ms
  // once the period is subtracted. Half is asserted, leaving room for HdrHistogram's rounding.
  const loop = metrics.eventLoopDelay();
  assert.ok(loop.max >= (blockMs / 2) * 1000, `max ${loop.max} us after a ${blockMs} ms block`);
});
