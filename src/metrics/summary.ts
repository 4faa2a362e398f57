/**
 * The periodic summary line (`--summary-interval-s`, at info) and the final one at shutdown: what
 * the runner did since the previous line, in one line of the gateway's error.log. Counts are
 * differences between two stats documents; call latencies come from each RPC type's interval
 * histogram. Nothing is logged per request.
 */
import type { Logger } from 'pino';
import { formatCount, formatUs } from './format.js';
import type { HistogramSummary } from './histogram.js';
import { RPC_TYPES, type RpcTypeName, type RunnerMetrics } from './runner-metrics.js';
import type { RunnerStats } from './stats.js';

interface Totals {
  atMs: number;
  calls: Record<RpcTypeName, number>;
  errorReplies: number;
  connectionsOpened: number;
  connectionsClosed: number;
  extraInfo: number;
  shed: number;
  workerRestarts: number;
}

function totals(stats: RunnerStats, atMs: number): Totals {
  return {
    atMs,
    calls: { ...stats.calls },
    errorReplies: Object.values(stats.errorReplies).reduce((a, b) => a + b, 0),
    connectionsOpened: stats.connections.opened,
    connectionsClosed: stats.connections.closed,
    extraInfo: stats.extraInfo.roundTrips,
    shed: stats.pool?.shed ?? 0,
    workerRestarts: stats.pool?.workerRestarts ?? 0,
  };
}

export class SummaryReporter {
  readonly #metrics: RunnerMetrics;
  readonly #stats: (final: boolean) => Promise<RunnerStats>;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #last: Totals | null = null;
  #timer: NodeJS.Timeout | null = null;

  /** `stats` gathers a fresh document (worker figures included; `final`: in a shutdown, quickly). */
  constructor(metrics: RunnerMetrics, stats: (final: boolean) => Promise<RunnerStats>, logger: Logger, intervalS: number) {
    this.#metrics = metrics;
    this.#stats = stats;
    this.#log = logger;
    this.#intervalMs = intervalS * 1000;
  }

  start(): void {
    this.#last = { atMs: Date.now(), calls: { prepare_conf: 0, http_req_call: 0, http_resp_call: 0, other: 0 }, errorReplies: 0, connectionsOpened: 0, connectionsClosed: 0, extraInfo: 0, shed: 0, workerRestarts: 0 };
    if (this.#intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.log(false).catch((err: unknown) => this.#log.warn({ err }, 'summary line failed'));
    }, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Log one line covering the time since the previous one (`final`: the shutdown's). */
  async log(final: boolean): Promise<void> {
    const stats = await this.#stats(final);
    const now = Date.now();
    const current = totals(stats, now);
    const last = this.#last ?? current;
    this.#last = current;
    const seconds = Math.max(0.001, (now - last.atMs) / 1000);
    const calls = Object.fromEntries(RPC_TYPES.map((t) => [t, current.calls[t] - last.calls[t]])) as Record<RpcTypeName, number>;
    const httpCalls = calls.http_req_call + calls.http_resp_call;
    const latency: Partial<Record<RpcTypeName, Pick<HistogramSummary, 'p50' | 'p99' | 'max'>>> = {};
    const parts: string[] = [];
    for (const type of RPC_TYPES) {
      const h = this.#metrics.stage(type, 'total').takeInterval();
      if (h.count === 0 || type === 'prepare_conf' || type === 'other') continue;
      latency[type] = { p50: h.p50, p99: h.p99, max: h.max };
      parts.push(`${type} p50 ${formatUs(h.p50)} p99 ${formatUs(h.p99)}`);
    }
    const fields = {
      summary: final ? 'final' : 'periodic',
      intervalS: Math.round(seconds * 10) / 10,
      calls,
      callsPerSecond: Math.round(httpCalls / seconds),
      latencyUs: latency,
      errorReplies: current.errorReplies - last.errorReplies,
      connectionsOpened: current.connectionsOpened - last.connectionsOpened,
      connectionsClosed: current.connectionsClosed - last.connectionsClosed,
      connectionsOpen: stats.connections.open,
      confTokens: stats.confTokens.live,
      extraInfoRoundTrips: current.extraInfo - last.extraInfo,
      shed: current.shed - last.shed,
      workerRestarts: current.workerRestarts - last.workerRestarts,
      eventLoopDelayP99Us: stats.eventLoopDelayUs.p99,
    };
    const text =
      `${final ? 'final summary' : 'summary'} (${fields.intervalS} s): ${formatCount(httpCalls)} HTTP calls (${formatCount(fields.callsPerSecond)}/s)` +
      `${parts.length > 0 ? `, ${parts.join(', ')}` : ''}; ${calls.prepare_conf} PrepareConf, ${fields.errorReplies} error replies, ` +
      `${fields.connectionsOpened} connections opened (${fields.connectionsOpen} open), ${fields.extraInfoRoundTrips} ExtraInfo round trips, ` +
      `${fields.shed} shed, ${fields.workerRestarts} worker restarts, event-loop delay p99 ${formatUs(fields.eventLoopDelayP99Us)} (since start)`;
    this.#log.info(fields, text);
  }
}
