/**
 * HdrHistogram helpers (hdr-histogram-js). Every latency in the harness is an integer number of
 * microseconds; histograms keep 3 significant digits and grow as needed, and cross process
 * boundaries and result files as compressed base64.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { LatencySummary, PercentilePoint } from './types.js';

export type { Histogram };

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): Histogram {
  return decodeFromCompressedBase64(encoded, 32, false);
}

/** A new histogram holding every value of `encoded` (an empty list gives an empty histogram). */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  const merged = newHistogram();
  for (const e of encoded) {
    const h = decodeHistogram(e);
    merged.add(h);
    h.destroy();
  }
  return merged;
}

export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  if (count === 0) return { count: 0, min: 0, mean: 0, stdDev: 0, p50: 0, p90: 0, p99: 0, p999: 0, p9999: 0, max: 0 };
  return {
    count,
    min: h.minNonZeroValue,
    mean: Math.round(h.mean * 10) / 10,
    stdDev: Math.round(h.stdDeviation * 10) / 10,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    p9999: h.getValueAtPercentile(99.99),
    max: h.maxValue,
  };
}

/**
 * The percentile distribution for a plot with a logarithmic "1 / (1 - p)" axis: ten points per
 * decade (0, 20.6, 36.9, ... 90, ... 99, ... 99.9 ...) as far as the sample count supports, then
 * the maximum as percentile 100.
 */
export function distribution(h: Histogram, pointsPerDecade = 10): PercentilePoint[] {
  const count = h.totalCount;
  if (count === 0) return [];
  const points: PercentilePoint[] = [];
  const lastDecades = Math.log10(count);
  for (let i = 0; i / pointsPerDecade < lastDecades; i++) {
    const percentile = 100 * (1 - 10 ** (-i / pointsPerDecade));
    points.push({ percentile: Math.round(percentile * 1e6) / 1e6, valueUs: h.getValueAtPercentile(percentile) });
  }
  points.push({ percentile: 100, valueUs: h.maxValue });
  return points;
}

/** hdr-histogram-js's classic text table (values in µs), the "full HDR percentile distribution". */
export function distributionText(h: Histogram): string {
  return h.totalCount === 0 ? '(no samples)\n' : h.outputPercentileDistribution(5, 1);
}

/**
 * How many values are at least `value` (to the histogram's precision). Counting the calls a stall
 * reached, rather than reading a percentile, keeps the figure independent of how many calls the
 * run made in all, which is what a busy machine changes.
 */
export function countAtLeast(h: Histogram, value: number): number {
  const total = h.totalCount;
  // The n-th largest value is the one at rank total - n + 1; the count is the largest n whose
  // n-th largest value is still at least `value` (a binary search: the n-th largest only falls).
  const nthLargest = (n: number): number => h.getValueAtPercentile((100 * (total - n + 1)) / total);
  let lo = 0;
  let hi = total;
  while (lo < hi) {
    const n = Math.ceil((lo + hi) / 2);
    if (nthLargest(n) >= value) lo = n;
    else hi = n - 1;
  }
  return lo;
}
