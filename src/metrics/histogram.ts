/**
 * Latency histograms in microseconds: HdrHistogram (hdr-histogram-js) for storage, merging and
 * percentiles, fed through a staging array of counts laid out exactly like that histogram.
 *
 * Why the staging array: `recordValue` of hdr-histogram-js computes each index with Math.log2,
 * Math.floor and Math.pow and costs 90-130 ns per value on the target machine (node 20, 2 cores),
 * about 10% of a whole `say` call through the call handler (bench/hot-path.ts) for one histogram.
 * The same index from Math.clz32 into a preallocated Float64Array costs 9-16 ns and allocates
 * nothing. The staged counts move into the HdrHistogram when something reads it (a scrape, /stats,
 * the summary line), with `recordValueWithCount` per non-empty bucket, so percentiles, maxima and
 * merges are HdrHistogram's own. test/metrics/histogram.test.ts checks that both index every value
 * alike.
 */
import { Float64Histogram } from 'hdr-histogram-js';

/** 1 h in microseconds: the longest call deadline (`--call-timeout-ms` at most 3,600,000). */
export const HIGHEST_TRACKABLE_US = 3_600_000_000;
/** 2 significant digits: values within 1% (HdrHistogram's `numberOfSignificantValueDigits`). */
export const SIGNIFICANT_DIGITS = 2;

/*
 * The layout HdrHistogram derives from (lowest 1, highest 3.6e9, 2 digits): 256 sub-buckets
 * (2^ceil(log2(2 * 10^2))), half of them 128 = 2^7, unit magnitude 0; 25 buckets to cover 3.6e9,
 * so (25 + 1) * 128 = 3328 counts.
 */
const SUB_BUCKET_HALF_MAGNITUDE = 7;
const SUB_BUCKET_HALF_COUNT = 1 << SUB_BUCKET_HALF_MAGNITUDE;
const SUB_BUCKET_MASK = 2 * SUB_BUCKET_HALF_COUNT - 1;
/** 32 - unitMagnitude - subBucketHalfCountMagnitude - 1: HdrHistogram's leadingZeroCountBase for 32-bit values. */
const LEADING_ZERO_COUNT_BASE = 32 - 0 - SUB_BUCKET_HALF_MAGNITUDE - 1;
export const COUNTS_LENGTH = 26 * SUB_BUCKET_HALF_COUNT;

/** The counts-array index HdrHistogram gives `us` (rounded, clamped to 0..HIGHEST_TRACKABLE_US). */
export function countsIndex(us: number): number {
  // NaN and negatives (a clock difference a hair below zero) land on 0; 3.6e9 < 2^32 fits `>>> 0`.
  const value = us >= HIGHEST_TRACKABLE_US ? HIGHEST_TRACKABLE_US : us > 0 ? (us + 0.5) >>> 0 : 0;
  const bucket = LEADING_ZERO_COUNT_BASE - Math.clz32(value | SUB_BUCKET_MASK);
  return ((bucket + 1) << SUB_BUCKET_HALF_MAGNITUDE) + (value >>> bucket) - SUB_BUCKET_HALF_COUNT;
}

/** The lowest value HdrHistogram keeps at `index` (recording it lands on the same index). */
export function valueAtIndex(index: number): number {
  let bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) - 1;
  let sub = (index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
  if (bucket < 0) {
    sub -= SUB_BUCKET_HALF_COUNT;
    bucket = 0;
  }
  return sub * 2 ** bucket;
}

/** Percentiles of one histogram, in its unit (microseconds for latencies). 0 everywhere when empty. */
export interface HistogramSummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9: number;
  max: number;
}

const EMPTY_SUMMARY: Readonly<HistogramSummary> = Object.freeze({ count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p99_9: 0, max: 0 });

function newHdr(): Float64Histogram {
  // Float64 counts: exact to 2^53, where 32-bit counts would wrap after 2^31 calls in one bucket.
  const hdr = new Float64Histogram(1, HIGHEST_TRACKABLE_US, SIGNIFICANT_DIGITS);
  hdr.autoResize = false;
  return hdr;
}

function summarize(hdr: Float64Histogram): HistogramSummary {
  const count = hdr.totalCount;
  if (count === 0) return { ...EMPTY_SUMMARY };
  return {
    count,
    mean: Math.round(hdr.mean * 10) / 10,
    p50: hdr.getValueAtPercentile(50),
    p90: hdr.getValueAtPercentile(90),
    p99: hdr.getValueAtPercentile(99),
    p99_9: hdr.getValueAtPercentile(99.9),
    // Java's getMaxValue(): the top of the maximum's bucket, like the percentiles.
    max: hdr.highestEquivalentValue(hdr.maxValue),
  };
}

/** Non-empty staged buckets as [index, count, index, count, ...]: what a worker thread sends. */
export type SparseCounts = number[];

export class LatencyHistogram {
  /** Sum of every value recorded (Prometheus `_sum`); exact, where HdrHistogram's mean is bucketed. */
  sum = 0;
  readonly #staged = new Float64Array(COUNTS_LENGTH);
  #pending = 0;
  #hdr: Float64Histogram | null = null;
  /** Values since the last `takeInterval()` (the periodic summary line), when asked for. */
  #interval: Float64Histogram | null;

  constructor(options: { interval?: boolean } = {}) {
    this.#interval = options.interval === true ? newHdr() : null;
  }

  /** The hot-path operation: no allocation, no logarithm. */
  record(value: number): void {
    this.#staged[countsIndex(value)]++;
    this.#pending++;
    this.sum += value > 0 ? value : 0;
  }

  /** Values recorded so far (staged or not). */
  get count(): number {
    return (this.#hdr?.totalCount ?? 0) + this.#pending;
  }

  /** Take over another thread's staged counts (see `takeSparse`). */
  addSparse(counts: SparseCounts, sum: number): void {
    for (let i = 0; i + 1 < counts.length; i += 2) {
      const index = counts[i];
      if (index >= 0 && index < COUNTS_LENGTH) {
        this.#staged[index] += counts[i + 1];
        this.#pending += counts[i + 1];
      }
    }
    this.sum += sum;
  }

  /** The staged counts, emptied (a worker thread's side of a merge). */
  takeSparse(): SparseCounts {
    const out: SparseCounts = [];
    if (this.#pending === 0) return out;
    const staged = this.#staged;
    for (let i = 0; i < COUNTS_LENGTH; i++) {
      if (staged[i] !== 0) {
        out.push(i, staged[i]);
        staged[i] = 0;
      }
    }
    this.#pending = 0;
    return out;
  }

  /** Everything recorded, as an HdrHistogram (read it, do not keep it: later reads flush into it). */
  hdr(): Float64Histogram {
    this.#flush();
    return (this.#hdr ??= newHdr());
  }

  summary(): HistogramSummary {
    this.#flush();
    return this.#hdr === null ? { ...EMPTY_SUMMARY } : summarize(this.#hdr);
  }

  /** What was recorded since the previous call (needs `interval: true`). */
  takeInterval(): HistogramSummary {
    this.#flush();
    if (this.#interval === null) throw new Error('this histogram keeps no interval');
    const out = summarize(this.#interval);
    this.#interval.reset();
    return out;
  }

  /**
   * Cumulative counts at each upper bound (Prometheus `le` buckets, same unit as the values), to
   * HdrHistogram's resolution: a bucket of the histogram counts below a bound when its lowest
   * value is at most the bound.
   */
  cumulativeCounts(bounds: readonly number[]): number[] {
    const hdr = this.hdr();
    const out = new Array<number>(bounds.length).fill(0);
    if (hdr.totalCount === 0) return out;
    const last = hdr.countsArrayIndex(hdr.maxValue);
    let b = 0;
    let running = 0;
    for (let i = 0; i <= last && b < bounds.length; i++) {
      const value = hdr.valueFromIndex(i);
      while (b < bounds.length && value > bounds[b]) out[b++] = running;
      running += hdr.getCountAtIndex(i);
    }
    while (b < bounds.length) out[b++] = running;
    return out;
  }

  #flush(): void {
    if (this.#pending === 0) return;
    const hdr = (this.#hdr ??= newHdr());
    const staged = this.#staged;
    for (let i = 0; i < COUNTS_LENGTH; i++) {
      const n = staged[i];
      if (n === 0) continue;
      const value = valueAtIndex(i);
      hdr.recordValueWithCount(value, n);
      this.#interval?.recordValueWithCount(value, n);
      staged[i] = 0;
    }
    this.#pending = 0;
  }
}
