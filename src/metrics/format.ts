/** Figures as people read them in a log line or doctor's report. */

/** Microseconds as `850 us`, `4.1 ms`, `2.3 s`. */
export function formatUs(us: number): string {
  if (us < 1000) return `${Math.round(us)} us`;
  if (us < 1_000_000) return `${trim(us / 1000)} ms`;
  return `${trim(us / 1_000_000)} s`;
}

/** A count as `999`, `12.3k`, `1.2M`. */
export function formatCount(n: number): string {
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${trim(n / 1000)}k`;
  return `${trim(n / 1_000_000)}M`;
}

/** A ratio with two significant figures at most, `1.0` style for whole numbers. */
export function formatRatio(x: number): string {
  if (x >= 100) return String(Math.round(x));
  if (x >= 10) return x.toFixed(0);
  return x.toFixed(1);
}

/** 3 significant figures at most, no trailing `.0`: `1.2`, `12.5`, `125`, `1`. */
function trim(x: number): string {
  return x >= 100 ? String(Math.round(x)) : x.toFixed(1).replace(/\.0$/, '');
}
