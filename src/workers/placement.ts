/**
 * Where each plugin's filters run (DECISIONS 15). `inline` and `pool` are fixed; `auto` starts on
 * the pool and follows the plugin's measured CPU time per call. A thread hop costs about 60 us of
 * round trip on the target machine (PERF-NOTES), so a plugin moves to the main thread when its
 * average is a quarter of that, and back once it passes the full hop cost: the gap keeps a plugin
 * near the line from flapping.
 */
import type { Logger } from 'pino';
import type { Plugin } from '../plugin.js';
import type { PreparedPlugin } from './chain.js';

export type Where = 'inline' | 'pool';

export interface PlacementOptions {
  /** Whether a worker pool exists; without one every plugin runs inline. */
  pool: boolean;
  /** Move an auto plugin to the main thread below this average CPU per call (us). */
  inlineBelowUs?: number;
  /** Move it back to the pool above this average (us). */
  poolAboveUs?: number;
  /** Calls per decision window. */
  windowCalls?: number;
  logger: Logger;
}

interface AutoState {
  where: Where;
  calls: number;
  cpuUs: number;
  moves: number;
  lastAverageUs: number | null;
}

/** A run of consecutive plugins of one chain that execute in the same place. */
export interface Segment {
  readonly where: Where;
  readonly from: number;
  readonly to: number;
  /** Some plugin in it declares ExtraInfo `needs` (fetched before a pool hand-off). */
  readonly needs: boolean;
}

export interface PlacementSnapshot {
  name: string;
  mode: Plugin['placement'];
  where: Where;
  averageCpuUs: number | null;
  moves: number;
}

export class PlacementTable {
  readonly #pool: boolean;
  readonly #inlineBelowUs: number;
  readonly #poolAboveUs: number;
  readonly #windowCalls: number;
  readonly #log: Logger;
  readonly #auto = new Map<string, AutoState>();
  /** Bumped on every move, so cached chain plans know to recompute. */
  version = 0;

  constructor(options: PlacementOptions) {
    this.#pool = options.pool;
    this.#inlineBelowUs = options.inlineBelowUs ?? 15;
    this.#poolAboveUs = options.poolAboveUs ?? 60;
    this.#windowCalls = options.windowCalls ?? 200;
    this.#log = options.logger;
  }

  where(plugin: Plugin): Where {
    if (!this.#pool) return 'inline';
    if (plugin.placement !== 'auto') return plugin.placement;
    return this.#state(plugin.name).where;
  }

  #state(name: string): AutoState {
    let state = this.#auto.get(name);
    if (state === undefined) {
      state = { where: 'pool', calls: 0, cpuUs: 0, moves: 0, lastAverageUs: null };
      this.#auto.set(name, state);
    }
    return state;
  }

  /** Feed measured CPU time (calls and their total, us) of an auto plugin, from either thread. */
  record(plugin: Plugin, calls: number, cpuUs: number): void {
    if (!this.#pool || plugin.placement !== 'auto') return;
    const state = this.#state(plugin.name);
    state.calls += calls;
    state.cpuUs += cpuUs;
    if (state.calls < this.#windowCalls) return;
    const average = state.cpuUs / state.calls;
    state.lastAverageUs = average;
    state.calls = 0;
    state.cpuUs = 0;
    const next: Where = state.where === 'pool' ? (average < this.#inlineBelowUs ? 'inline' : 'pool') : average > this.#poolAboveUs ? 'pool' : 'inline';
    if (next === state.where) return;
    state.where = next;
    state.moves++;
    this.version++;
    this.#log.info({ plugin: plugin.name, averageCpuUs: Math.round(average * 10) / 10, to: next }, `plugin "${plugin.name}" moved to the ${next === 'inline' ? 'main thread' : 'worker pool'}`);
  }

  /** For the main thread's inline runs: only auto plugins are measured (two clock reads each). */
  readonly meter = (plugin: Plugin, cpuUs: number): void => {
    this.record(plugin, 1, cpuUs);
  };

  /** Split a chain into runs of plugins that execute in the same place. */
  segments(chain: readonly PreparedPlugin[]): Segment[] {
    const out: Segment[] = [];
    for (let i = 0; i < chain.length; i++) {
      const { plugin } = chain[i];
      const where = this.where(plugin);
      const needs = plugin.needs.vars.length > 0 || plugin.needs.body;
      const last = out[out.length - 1];
      if (last !== undefined && last.where === where) out[out.length - 1] = { where, from: last.from, to: i + 1, needs: last.needs || needs };
      else out.push({ where, from: i, to: i + 1, needs });
    }
    return out;
  }

  snapshot(plugins: readonly Plugin[]): PlacementSnapshot[] {
    return plugins.map((p) => {
      const state = this.#auto.get(p.name);
      return { name: p.name, mode: p.placement, where: this.where(p), averageCpuUs: state?.lastAverageUs ?? null, moves: state?.moves ?? 0 };
    });
  }
}
