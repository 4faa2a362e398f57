/**
 * `/metrics`: the Prometheus text exposition format 0.0.4, written here rather than through
 * prom-client. Our histograms already live in HdrHistogram (see histogram.ts); prom-client would
 * record every value a second time into its own buckets on the hot path, or need a custom collector
 * per metric to copy counts it has no API to set. The format itself is small: `# HELP`, `# TYPE`,
 * one sample a line, three escapes. test/metrics/prometheus.test.ts checks the output with an
 * independent parser (parse-prometheus-text-format) and a strict line grammar.
 *
 * Names follow the Prometheus conventions: `anr_` prefix, base units (seconds), `_total` on
 * counters, histograms as `_bucket{le}` / `_sum` / `_count`. docs/observability.md lists them all.
 */
import { memoryUsage } from 'node:process';
import type { LatencyHistogram } from './histogram.js';
import { RPC_TYPES, STAGES, type RunnerMetrics } from './runner-metrics.js';
import type { RunnerStats } from './stats.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Latency bucket bounds: 10 us to 60 s, as written in `le` and in microseconds. */
const LATENCY_BOUNDS = ['0.00001', '0.000025', '0.00005', '0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60'];
const LATENCY_BOUNDS_US = LATENCY_BOUNDS.map((s) => Math.round(Number(s) * 1e6));
const CALLS_BOUNDS = ['1', '2', '5', '10', '100', '1000', '10000', '100000'];
const CALLS_BOUNDS_N = CALLS_BOUNDS.map(Number);
const EVENT_LOOP_QUANTILES: Array<[string, 'p50' | 'p90' | 'p99' | 'p99_9']> = [
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.99', 'p99'],
  ['0.999', 'p99_9'],
];

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels | null): string {
  if (labels === null) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  // 12 significant digits: sums of many float microseconds carry noise in the last places.
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
}

class Exposition {
  readonly #lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', help: string): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels | null, value: number): this {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** One labelled histogram series: cumulative buckets, +Inf, sum and count (the sum divided by `divisor`). */
  histogram(name: string, labels: Labels, h: LatencyHistogram, bounds: readonly string[], boundValues: readonly number[], divisor: number): this {
    const counts = h.cumulativeCounts(boundValues);
    const total = h.count;
    for (let i = 0; i < bounds.length; i++) this.sample(`${name}_bucket`, { ...labels, le: bounds[i] }, counts[i]);
    this.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, total);
    this.sample(`${name}_sum`, labels, h.sum / divisor);
    return this.sample(`${name}_count`, labels, total);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

/** The whole exposition; `stats` comes from the same moment (buildStats). */
export function renderPrometheus(metrics: RunnerMetrics, stats: RunnerStats): string {
  const out = new Exposition();
  out.family('anr_info', 'gauge', 'Always 1; the runner version as a label.').sample('anr_info', { version: stats.runner.version }, 1);

  out.family('anr_calls_total', 'counter', 'Calls answered (reply written), by RPC type.');
  for (const type of RPC_TYPES) out.sample('anr_calls_total', { type }, stats.calls[type]);
  out.family('anr_calls_abandoned_total', 'counter', 'Calls whose connection closed before the reply could be written.');
  out.sample('anr_calls_abandoned_total', null, stats.callsAbandoned);
  out.family('anr_error_replies_total', 'counter', 'Error replies written, by wire error code (conf_token_not_found makes the gateway prepare again).');
  for (const [code, n] of Object.entries(stats.errorReplies)) out.sample('anr_error_replies_total', { code }, n);

  out.family('anr_conf_tokens', 'gauge', 'Live conf tokens in the conf cache.').sample('anr_conf_tokens', null, stats.confTokens.live);

  out.family('anr_connections_opened_total', 'counter', 'Gateway connections accepted.').sample('anr_connections_opened_total', null, stats.connections.opened);
  out.family('anr_connections_closed_total', 'counter', 'Gateway connections closed.').sample('anr_connections_closed_total', null, stats.connections.closed);
  out.family('anr_connections_open', 'gauge', 'Gateway connections open now.').sample('anr_connections_open', null, stats.connections.open);
  out.family('anr_connection_calls', 'histogram', 'Calls answered by each connection, recorded when it closes (connection reuse).');
  out.histogram('anr_connection_calls', {}, metrics.connectionCalls, CALLS_BOUNDS, CALLS_BOUNDS_N, 1);

  out.family('anr_extra_info_round_trips_total', 'counter', 'ExtraInfo queries sent to the gateway (one round trip each).');
  out.sample('anr_extra_info_round_trips_total', null, stats.extraInfo.roundTrips);
  out.family('anr_calls_with_extra_info_total', 'counter', 'Calls that sent at least one ExtraInfo query.');
  out.sample('anr_calls_with_extra_info_total', null, stats.extraInfo.callsWithExtraInfo);

  out.family('anr_calls_shed_total', 'counter', 'Calls shed because the worker pool held --max-queue calls.').sample('anr_calls_shed_total', null, stats.pool?.shed ?? 0);
  out.family('anr_worker_restarts_total', 'counter', 'Worker threads that exited or were replaced.').sample('anr_worker_restarts_total', null, stats.pool?.workerRestarts ?? 0);
  out.family('anr_pool_threads', 'gauge', 'Worker threads of the pool (0 without a pool).').sample('anr_pool_threads', null, stats.pool?.threads ?? 0);
  out.family('anr_pool_batches_total', 'counter', 'Batches handed to worker threads.').sample('anr_pool_batches_total', null, stats.pool?.batches ?? 0);
  out.family('anr_pool_calls_total', 'counter', 'Call segments handed to worker threads.').sample('anr_pool_calls_total', null, stats.pool?.calls ?? 0);

  out.family('anr_plugins', 'gauge', 'Loaded plugins by where they run now.');
  out.sample('anr_plugins', { placement: 'inline' }, stats.pluginsByPlacement.inline);
  out.sample('anr_plugins', { placement: 'pool' }, stats.pluginsByPlacement.pool);
  out.family('anr_plugin_info', 'gauge', 'Always 1 per loaded plugin: its declared placement (mode) and where it runs now.');
  for (const p of stats.plugins) if (p.mode !== null) out.sample('anr_plugin_info', { plugin: p.name, mode: p.mode, where: p.where ?? 'inline' }, 1);

  out.family('anr_call_duration_seconds', 'histogram', 'Time from a request frame complete to its reply written, by RPC type.');
  for (const type of RPC_TYPES) {
    const h = metrics.stage(type, 'total');
    if (type !== 'other' || h.count > 0) out.histogram('anr_call_duration_seconds', { type }, h, LATENCY_BOUNDS, LATENCY_BOUNDS_US, 1e6);
  }
  out.family(
    'anr_call_stage_duration_seconds',
    'histogram',
    'Time of one stage of a call, by RPC type: decode (payload, token, plan), queue (waiting for a worker thread), chain (plugins, less queue and ExtraInfo waits), extra_info (waiting for the gateway), encode_write.',
  );
  for (const type of RPC_TYPES) {
    for (const stage of STAGES) {
      if (stage === 'total') continue;
      const h = metrics.stage(type, stage);
      if (h.count > 0) out.histogram('anr_call_stage_duration_seconds', { type, stage }, h, LATENCY_BOUNDS, LATENCY_BOUNDS_US, 1e6);
    }
  }
  out.family('anr_plugin_filter_duration_seconds', 'histogram', "Time in one plugin's filter, less its ExtraInfo waits, by plugin and phase, on every thread.");
  const series = metrics.plugins();
  for (const s of series) {
    if (s.latency.count > 0) out.histogram('anr_plugin_filter_duration_seconds', { plugin: s.name, phase: s.phase }, s.latency, LATENCY_BOUNDS, LATENCY_BOUNDS_US, 1e6);
  }
  out.family('anr_plugin_extra_info_round_trips_total', 'counter', 'ExtraInfo queries sent while a plugin filter ran, by plugin and phase ("(needs prefetch)": declared needs fetched before a pool hand-off).');
  for (const s of series) {
    if (s.extraInfoRoundTrips > 0) out.sample('anr_plugin_extra_info_round_trips_total', { plugin: s.name, phase: s.phase }, s.extraInfoRoundTrips);
  }

  const loop = metrics.eventLoopDelay();
  out.family('anr_event_loop_delay_seconds', 'summary', "The main thread's event-loop delay since startup (perf_hooks.monitorEventLoopDelay sampled every 20 ms, less that period: how late each tick came).");
  for (const [q, key] of EVENT_LOOP_QUANTILES) out.sample('anr_event_loop_delay_seconds', { quantile: q }, loop[key] / 1e6);
  out.sample('anr_event_loop_delay_seconds_sum', null, loop.sum / 1e6);
  out.sample('anr_event_loop_delay_seconds_count', null, loop.count);

  const cpu = process.cpuUsage();
  out.family('process_cpu_seconds_total', 'counter', 'User and system CPU time of the runner process.').sample('process_cpu_seconds_total', null, (cpu.user + cpu.system) / 1e6);
  out.family('process_resident_memory_bytes', 'gauge', 'Resident memory of the runner process.').sample('process_resident_memory_bytes', null, memoryUsage.rss());
  out.family('process_start_time_seconds', 'gauge', 'Start of the runner process, seconds since the Unix epoch.');
  out.sample('process_start_time_seconds', null, Math.round(performance.timeOrigin / 1000));
  return out.text();
}
