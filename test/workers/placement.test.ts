/**
 * PlacementTable (DECISIONS 15): fixed placements, `auto` following measured CPU per call with
 * hysteresis, the version that invalidates cached chain plans, and chain segments.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import pino from 'pino';
import { definePlugin, type Placement, type Plugin } from '../../src/plugin.js';
import type { PreparedPlugin } from '../../src/workers/chain.js';
import { PlacementTable, type PlacementOptions } from '../../src/workers/placement.js';

const logger = pino({ level: 'silent' });

function plugin(name: string, placement?: Placement): Plugin {
  return definePlugin({ name, ...(placement === undefined ? {} : { placement }), requestFilter() {} });
}

function table(options: Partial<PlacementOptions> = {}): PlacementTable {
  return new PlacementTable({ pool: true, logger, ...options });
}

const prepared = (...plugins: Plugin[]): PreparedPlugin[] => plugins.map((p) => ({ plugin: p, conf: {} }));

/** Feeds one full window of `calls` calls averaging `averageUs`, one call at a time (as `meter` does). */
function feed(t: PlacementTable, p: Plugin, calls: number, averageUs: number): void {
  for (let i = 0; i < calls; i++) t.record(p, 1, averageUs);
}

describe('PlacementTable', () => {
  test('fixed placements stay where declared, whatever is measured', () => {
    const t = table({ windowCalls: 10 });
    const inline = plugin('fixed-inline', 'inline');
    const pool = plugin('fixed-pool', 'pool');
    assert.equal(t.where(inline), 'inline');
    assert.equal(t.where(pool), 'pool');
    feed(t, inline, 100, 1000);
    feed(t, pool, 100, 0.1);
    assert.equal(t.where(inline), 'inline');
    assert.equal(t.where(pool), 'pool');
    assert.equal(t.version, 0, 'no move, no new version');
    const snap = t.snapshot([inline, pool]);
    assert.deepEqual(
      snap.map((s) => [s.name, s.mode, s.where, s.averageCpuUs, s.moves]),
      [
        ['fixed-inline', 'inline', 'inline', null, 0],
        ['fixed-pool', 'pool', 'pool', null, 0],
      ],
    );
  });

  test('auto is the default and starts on the pool', () => {
    const t = table();
    const p = plugin('auto-default');
    assert.equal(p.placement, 'auto');
    assert.equal(t.where(p), 'pool');
    assert.deepEqual(t.snapshot([p])[0], { name: 'auto-default', mode: 'auto', where: 'pool', averageCpuUs: null, moves: 0 });
  });

  test('auto moves inline only after a full window below the lower threshold', () => {
    const t = table({ windowCalls: 50, inlineBelowUs: 15, poolAboveUs: 60 });
    const p = plugin('auto-light', 'auto');
    feed(t, p, 49, 2);
    assert.equal(t.where(p), 'pool', 'no decision before the window is full');
    assert.equal(t.version, 0);
    t.record(p, 1, 2);
    assert.equal(t.where(p), 'inline');
    assert.equal(t.version, 1);
    const snap = t.snapshot([p])[0];
    assert.equal(snap.averageCpuUs, 2);
    assert.equal(snap.moves, 1);
  });

  test('a batch report counts its calls: one record of a whole window decides at once', () => {
    const t = table({ windowCalls: 200 });
    const p = plugin('auto-batched', 'auto');
    t.record(p, 199, 199 * 3);
    assert.equal(t.where(p), 'pool');
    t.record(p, 5, 5 * 3);
    assert.equal(t.where(p), 'inline');
  });

  test('auto moves back to the pool above the upper threshold; in between it stays put (hysteresis)', () => {
    const t = table({ windowCalls: 20, inlineBelowUs: 15, poolAboveUs: 60 });
    const p = plugin('auto-flappy', 'auto');
    // On the pool, an average between the thresholds keeps it there...
    for (let w = 0; w < 5; w++) feed(t, p, 20, 40);
    assert.equal(t.where(p), 'pool');
    assert.equal(t.version, 0);
    // ...just under the lower threshold moves it inline,
    feed(t, p, 20, 14);
    assert.equal(t.where(p), 'inline');
    assert.equal(t.version, 1);
    // where averages between the thresholds (even well above the lower one) keep it inline,
    for (const avg of [16, 40, 59, 30, 60]) feed(t, p, 20, avg);
    assert.equal(t.where(p), 'inline', 'no flapping between the thresholds');
    assert.equal(t.version, 1);
    // and only passing the upper threshold moves it back.
    feed(t, p, 20, 61);
    assert.equal(t.where(p), 'pool');
    assert.equal(t.version, 2);
    // Back on the pool, the same in-between averages do not move it again.
    for (const avg of [16, 40, 59]) feed(t, p, 20, avg);
    assert.equal(t.where(p), 'pool');
    assert.equal(t.version, 2);
    feed(t, p, 20, 1);
    assert.equal(t.where(p), 'inline');
    assert.equal(t.version, 3);
    assert.equal(t.snapshot([p])[0].moves, 3);
  });

  test('each window is judged on its own calls (the counters reset after a decision)', () => {
    const t = table({ windowCalls: 10, inlineBelowUs: 15, poolAboveUs: 60 });
    const p = plugin('auto-windows', 'auto');
    feed(t, p, 10, 1000); // a slow first window
    assert.equal(t.where(p), 'pool');
    feed(t, p, 10, 1); // the next one alone decides
    assert.equal(t.where(p), 'inline');
    assert.equal(t.snapshot([p])[0].averageCpuUs, 1);
  });

  test('the version bumps on every move of any plugin, and only then', () => {
    const t = table({ windowCalls: 5 });
    const a = plugin('auto-a', 'auto');
    const b = plugin('auto-b', 'auto');
    const versions: number[] = [];
    feed(t, a, 5, 1);
    versions.push(t.version);
    feed(t, b, 5, 100); // stays on the pool
    versions.push(t.version);
    feed(t, b, 5, 1);
    versions.push(t.version);
    feed(t, a, 5, 500);
    versions.push(t.version);
    assert.deepEqual(versions, [1, 1, 2, 3]);
  });

  test('meter feeds one call per measurement', () => {
    const t = table({ windowCalls: 3 });
    const p = plugin('auto-metered', 'auto');
    t.meter(p, 1);
    t.meter(p, 1);
    assert.equal(t.where(p), 'pool');
    t.meter(p, 1);
    assert.equal(t.where(p), 'inline');
  });

  test('segments() splits a chain into runs of consecutive plugins in one place', () => {
    const t = table({ windowCalls: 1 });
    const i1 = plugin('seg-i1', 'inline');
    const i2 = plugin('seg-i2', 'inline');
    const p1 = plugin('seg-p1', 'pool');
    const p2 = plugin('seg-p2', 'pool');
    const auto = plugin('seg-auto', 'auto');
    assert.deepEqual(t.segments([]), []);
    // A segment records whether any of its plugins declared ExtraInfo needs (prefetched before a hand-off).
    const needy = definePlugin({ name: 'needy', placement: 'pool', needs: { vars: ['route_id'] }, requestFilter() {} });
    assert.deepEqual(t.segments(prepared(p1, needy)), [{ where: 'pool', from: 0, to: 2, needs: true }]);
    assert.deepEqual(t.segments(prepared(i1)), [{ where: 'inline', from: 0, to: 1, needs: false }]);
    assert.deepEqual(t.segments(prepared(p1, p2)), [{ where: 'pool', from: 0, to: 2, needs: false }]);
    assert.deepEqual(t.segments(prepared(i1, i2, p1, p2, i1)), [
      { where: 'inline', from: 0, to: 2, needs: false },
      { where: 'pool', from: 2, to: 4, needs: false },
      { where: 'inline', from: 4, to: 5, needs: false },
    ]);
    assert.deepEqual(t.segments(prepared(i1, p1, i2, p2)), [
      { where: 'inline', from: 0, to: 1, needs: false },
      { where: 'pool', from: 1, to: 2, needs: false },
      { where: 'inline', from: 2, to: 3, needs: false },
      { where: 'pool', from: 3, to: 4, needs: false },
    ]);
    // An auto plugin joins the run of wherever it is now.
    const chain = prepared(p1, auto, i1);
    assert.deepEqual(t.segments(chain), [
      { where: 'pool', from: 0, to: 2, needs: false },
      { where: 'inline', from: 2, to: 3, needs: false },
    ]);
    t.record(auto, 1, 1);
    assert.equal(t.where(auto), 'inline');
    assert.deepEqual(t.segments(chain), [
      { where: 'pool', from: 0, to: 1, needs: false },
      { where: 'inline', from: 1, to: 3, needs: false },
    ]);
  });

  test('without a pool every plugin is inline, nothing is measured, the version never moves', () => {
    const t = table({ pool: false, windowCalls: 2 });
    const p = plugin('nopool-pool', 'pool');
    const a = plugin('nopool-auto', 'auto');
    const i = plugin('nopool-inline', 'inline');
    assert.equal(t.where(p), 'inline');
    assert.equal(t.where(a), 'inline');
    assert.equal(t.where(i), 'inline');
    feed(t, a, 10, 1000);
    t.meter(a, 1000);
    assert.equal(t.where(a), 'inline');
    assert.equal(t.version, 0);
    assert.deepEqual(t.segments(prepared(i, p, a, p)), [{ where: 'inline', from: 0, to: 4, needs: false }]);
    assert.deepEqual(
      t.snapshot([p, a, i]).map((s) => [s.name, s.mode, s.where, s.averageCpuUs, s.moves]),
      [
        ['nopool-pool', 'pool', 'inline', null, 0],
        ['nopool-auto', 'auto', 'inline', null, 0],
        ['nopool-inline', 'inline', 'inline', null, 0],
      ],
    );
  });

  test('defaults: 15 us / 60 us thresholds, 200-call windows', () => {
    const t = table();
    const p = plugin('defaults', 'auto');
    feed(t, p, 199, 14.9);
    assert.equal(t.where(p), 'pool');
    t.record(p, 1, 14.9);
    assert.equal(t.where(p), 'inline');
    feed(t, p, 200, 60);
    assert.equal(t.where(p), 'inline', 'exactly the upper threshold is not above it');
    feed(t, p, 200, 60.5);
    assert.equal(t.where(p), 'pool');
    feed(t, p, 200, 15);
    assert.equal(t.where(p), 'pool', 'exactly the lower threshold is not below it');
  });
});
