import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { build } from 'hdr-histogram-js';
import { COUNTS_LENGTH, HIGHEST_TRACKABLE_US, LatencyHistogram, SIGNIFICANT_DIGITS, countsIndex, valueAtIndex } from '../../src/metrics/histogram.js';
import { seededRandom } from '../support/prng.js';

function reference() {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_TRACKABLE_US, numberOfSignificantValueDigits: SIGNIFICANT_DIGITS, bitBucketSize: 64, useWebAssembly: false });
}

describe('LatencyHistogram', () => {
  test('the staging layout is HdrHistogram\'s: same length, same index for every value, bucket values map back', () => {
    const hdr = reference() as unknown as { countsArrayLength: number; countsArrayIndex(v: number): number };
    assert.equal(COUNTS_LENGTH, hdr.countsArrayLength);
    const values = [0, 1, 2, 127, 128, 255, 256, 257, 511, 512, 1000, 1003, 1004, 65_535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1 - 2 ** 30, HIGHEST_TRACKABLE_US];
    for (let v = 0; v < 70_000; v += 7) values.push(v);
    for (let e = 0; e < 32; e++) values.push(2 ** e - 1, 2 ** e, 2 ** e + 1);
    for (const v of values) {
      if (v > HIGHEST_TRACKABLE_US) continue;
      assert.equal(countsIndex(v), hdr.countsArrayIndex(v), `index of ${v}`);
    }
    for (let i = 0; i < COUNTS_LENGTH; i++) {
      const value = valueAtIndex(i);
      if (value <= HIGHEST_TRACKABLE_US) assert.equal(countsIndex(value), i, `value ${value} of index ${i}`);
    }
  });

  test('out-of-range values are clamped, fractions rounded, NaN and negatives count as 0', () => {
    assert.equal(countsIndex(-3), countsIndex(0));
    assert.equal(countsIndex(Number.NaN), countsIndex(0));
    assert.equal(countsIndex(1e12), countsIndex(HIGHEST_TRACKABLE_US));
    assert.equal(countsIndex(4.6), countsIndex(5));
    assert.equal(countsIndex(4.4), countsIndex(4));
  });

  test('percentiles, count, max and sum agree with values recorded into hdr-histogram-js directly', () => {
    const random = seededRandom(42);
    const h = new LatencyHistogram();
    const ref = reference();
    let sum = 0;
    for (let i = 0; i < 20_000; i++) {
      // Log-uniform from 1 us to 100 ms.
      const v = Math.round(Math.exp(random() * Math.log(100_000)));
      h.record(v);
      ref.recordValue(v);
      sum += v;
    }
    const s = h.summary();
    assert.equal(s.count, 20_000);
    assert.equal(h.count, 20_000);
    assert.equal(s.p50, ref.getValueAtPercentile(50));
    assert.equal(s.p90, ref.getValueAtPercentile(90));
    assert.equal(s.p99, ref.getValueAtPercentile(99));
    assert.equal(s.p99_9, ref.getValueAtPercentile(99.9));
    assert.ok(Math.abs(s.max - ref.maxValue) / ref.maxValue <= 0.01, `max ${s.max} within 1% of ${ref.maxValue}`);
    assert.equal(h.sum, sum);
    // Recording more after a read flushes again.
    h.record(5);
    assert.equal(h.summary().count, 20_001);
  });

  test('sparse snapshots move counts between histograms without loss or double counting', () => {
    const worker = new LatencyHistogram();
    const main = new LatencyHistogram();
    for (let v = 1; v <= 1000; v++) worker.record(v);
    const first = worker.takeSparse();
    assert.ok(first.length > 0 && first.length % 2 === 0);
    main.addSparse(first, 500_500);
    assert.deepEqual(worker.takeSparse(), [], 'taken counts are gone');
    worker.record(2000);
    main.addSparse(worker.takeSparse(), 2000);
    const s = main.summary();
    assert.equal(s.count, 1001);
    assert.equal(main.sum, 502_500);
    assert.ok(s.max >= 2000 && s.max <= 2020);
  });

  test('cumulative counts at bounds, and the interval view that the summary line resets', () => {
    const h = new LatencyHistogram({ interval: true });
    for (const v of [5, 10, 11, 99, 100, 101, 1000, 50_000]) h.record(v);
    assert.deepEqual(h.cumulativeCounts([1, 10, 100, 1000, 1_000_000]), [0, 2, 5, 7, 8]);
    const first = h.takeInterval();
    assert.equal(first.count, 8);
    h.record(7);
    const second = h.takeInterval();
    assert.equal(second.count, 1);
    assert.equal(second.p50, 7);
    assert.equal(h.summary().count, 9, 'the cumulative view keeps everything');
    assert.throws(() => new LatencyHistogram().takeInterval(), /no interval/);
  });

  test('an empty histogram summarises to zeros', () => {
    assert.deepEqual(new LatencyHistogram().summary(), { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0 });
    assert.deepEqual(new LatencyHistogram().cumulativeCounts([1, 2]), [0, 0]);
  });
});
