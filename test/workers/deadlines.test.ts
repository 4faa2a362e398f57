/**
 * The shared deadline timer on node:test's fake timers: time moves only when a test says so, so
 * "not before", "by then" and "never" are exact, and a busy machine changes nothing.
 */
import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import { Deadlines, type DeadlineHandle } from '../../src/workers/deadlines.js';

const TIMEOUT_MS = 40;
/** The timer's tick for TIMEOUT_MS (1/8 of it, at least 5 ms): an expiry is seen at the next tick. */
const TICK_MS = 5;

/** Fake setInterval and Date from 0; Deadlines reads the fake Date as its clock. */
function fakeTime(t: TestContext): { deadlines: Deadlines; advance(ms: number): void } {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 0 });
  // Node 20's fake setInterval keeps firing an interval cleared from inside its own callback, as
  // Deadlines does once nothing is pending (nodejs/node#59483, fixed in later lines): a cleared
  // interval's callback is dropped here, as a real one never runs again. The mock's reset at the
  // end of the test puts the real functions back.
  const fakeSet = globalThis.setInterval;
  const fakeClear = globalThis.clearInterval;
  const cleared = new WeakSet<object>();
  globalThis.setInterval = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const handle: NodeJS.Timeout = fakeSet((...a: unknown[]) => {
      if (!cleared.has(handle)) fn(...a);
    }, ms, ...args);
    return handle;
  }) as unknown as typeof setInterval;
  globalThis.clearInterval = ((handle: NodeJS.Timeout | undefined) => {
    if (handle) cleared.add(handle);
    fakeClear(handle);
  }) as unknown as typeof clearInterval;
  return {
    deadlines: new Deadlines(TIMEOUT_MS, () => Date.now()),
    // One millisecond at a time: the fake clock shows the end of a tick() to every timer it runs.
    advance(ms) {
      for (let i = 0; i < ms; i++) t.mock.timers.tick(1);
    },
  };
}

/**
 * Records the intervals Deadlines creates (only while `arm` runs, so no other timer is counted)
 * and which of them were cleared, through whatever setInterval is installed (real or fake) until
 * `restore()`, which must run before the fake timers are reset.
 */
function intervalWatch() {
  const created: NodeJS.Timeout[] = [];
  const cleared = new Set<unknown>();
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  let armed = false;
  globalThis.setInterval = ((...args: Parameters<typeof realSet>) => {
    const handle = realSet(...args);
    if (armed) created.push(handle);
    return handle;
  }) as unknown as typeof setInterval;
  globalThis.clearInterval = ((handle: NodeJS.Timeout) => {
    cleared.add(handle);
    realClear(handle);
  }) as unknown as typeof clearInterval;
  return {
    created,
    restore() {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
      for (const handle of created) realClear(handle);
    },
    arm<T>(fn: () => T): T {
      armed = true;
      try {
        return fn();
      } finally {
        armed = false;
      }
    },
    live: () => created.filter((h) => !cleared.has(h)),
  };
}

function expiry(deadlines: Deadlines): { handle: DeadlineHandle; count: () => number; at: () => number | null } {
  let count = 0;
  let at: number | null = null;
  const handle = deadlines.track(() => {
    count++;
    at = Date.now();
  });
  return { handle, count: () => count, at: () => at };
}

test('an entry expires once: not before timeoutMs after track(), at the first tick from then', (t) => {
  const { deadlines, advance } = fakeTime(t);
  advance(3);
  const entry = expiry(deadlines);
  advance(TIMEOUT_MS - 1);
  assert.equal(entry.count(), 0, 'not before its deadline');
  advance(TICK_MS);
  assert.equal(entry.count(), 1, 'by the first tick past its deadline');
  assert.ok(entry.at()! >= 3 + TIMEOUT_MS && entry.at()! <= 3 + TIMEOUT_MS + TICK_MS, `fired at ${entry.at()}`);
  advance(3 * TIMEOUT_MS);
  assert.equal(entry.count(), 1, 'fires exactly once');
});

test('clear() prevents the expiry', (t) => {
  const { deadlines, advance } = fakeTime(t);
  const cleared = expiry(deadlines);
  const kept = expiry(deadlines);
  cleared.handle.clear();
  advance(2 * TIMEOUT_MS);
  assert.equal(cleared.count(), 0);
  assert.equal(kept.count(), 1);
  cleared.handle.clear();
  kept.handle.clear(); // clearing after expiry is harmless
});

test('many entries expire in the order they were tracked, each at its own deadline', (t) => {
  const { deadlines, advance } = fakeTime(t);
  const order: number[] = [];
  // Half of them at the same moment, half spread over later ones (3 ms apart).
  for (let i = 0; i < 6; i++) {
    deadlines.track(() => order.push(i));
    if (i >= 3) advance(3);
  }
  const skipped = deadlines.track(() => order.push(-1));
  skipped.clear();
  // Now 9 ms in: entries 0-3 are due at 40, 4 at 43, 5 at 46.
  advance(TIMEOUT_MS - 9 - 1);
  assert.deepEqual(order, []);
  advance(1);
  assert.deepEqual(order, [0, 1, 2, 3]);
  advance(2 * TIMEOUT_MS);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
});

test('the shared timer is unref-ed: it never holds the process open', (t) => {
  // Real timers here (the fake ones have no ref state); nothing is waited for.
  const watch = intervalWatch();
  t.after(() => watch.restore());
  const deadlines = new Deadlines(TIMEOUT_MS);
  watch.arm(() => expiry(deadlines));
  watch.arm(() => expiry(deadlines));
  assert.equal(watch.created.length, 1, 'one timer for every pending entry');
  assert.equal(watch.created[0].hasRef(), false);
  deadlines.close();
  assert.deepEqual(watch.live(), []);
});

test('the shared timer stops once nothing is pending, restarts for a new entry, and close() stops it', (t) => {
  const { deadlines, advance } = fakeTime(t);
  const watch = intervalWatch();
  try {
    const first = watch.arm(() => expiry(deadlines));
    watch.arm(() => expiry(deadlines));
    assert.equal(watch.created.length, 1, 'one timer for every pending entry');
    advance(TIMEOUT_MS + TICK_MS);
    assert.equal(first.count(), 1);
    assert.deepEqual(watch.live(), [], 'stopped after the last expiry');

    // It restarts for a new entry, and stops again when that entry is cleared instead.
    const again = watch.arm(() => expiry(deadlines));
    assert.equal(watch.created.length, 2);
    assert.equal(watch.live().length, 1);
    again.handle.clear();
    advance(TICK_MS);
    assert.deepEqual(watch.live(), [], 'stopped at the next tick once the cleared entry left nothing pending');
    advance(TIMEOUT_MS);
    assert.equal(again.count(), 0);

    // close() stops it even with entries pending.
    const pending = watch.arm(() => expiry(deadlines));
    deadlines.close();
    assert.deepEqual(watch.live(), []);
    advance(2 * TIMEOUT_MS);
    assert.equal(pending.count(), 0);
  } finally {
    watch.restore();
  }
});
