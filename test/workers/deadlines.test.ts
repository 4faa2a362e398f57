import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadlines, type DeadlineHandle } from '../../src/workers/deadlines.js';

const TIMEOUT_MS = 40;

/**
 * Records the intervals Deadlines creates (only while `arm` runs, so the test runner's own timers
 * are not counted) and which of them were cleared.
 */
function intervalWatch(t: TestContext) {
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
  t.after(() => {
    globalThis.setInterval = realSet;
    globalThis.clearInterval = realClear;
    for (const handle of created) realClear(handle);
  });
  return {
    created,
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

/**
 * The deadline timer is unref-ed (it must never hold the runner open), so a test awaiting an expiry
 * keeps the event loop alive itself, with a ref-ed guard timer that also bounds the wait.
 */
function within<T>(promise: Promise<T>, ms = 2000): Promise<T> {
  let guard: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(guard));
}

function expiry(deadlines: Deadlines): { handle: DeadlineHandle; fired: Promise<number>; count: () => number } {
  let count = 0;
  let resolve!: (at: number) => void;
  const fired = new Promise<number>((r) => (resolve = r));
  const handle = deadlines.track(() => {
    count++;
    resolve(performance.now());
  });
  return { handle, fired, count: () => count };
}

test('an entry expires once, no earlier than timeoutMs after track()', async () => {
  const deadlines = new Deadlines(TIMEOUT_MS);
  const start = performance.now();
  const { fired, count } = expiry(deadlines);
  const at = await within(fired);
  assert.ok(at - start >= TIMEOUT_MS, `fired after ${at - start} ms`);
  assert.ok(at - start < 1000, `fired after ${at - start} ms`);
  await sleep(3 * TIMEOUT_MS);
  assert.equal(count(), 1, 'fires exactly once');
});

test('clear() prevents the expiry', async () => {
  const deadlines = new Deadlines(TIMEOUT_MS);
  const cleared = expiry(deadlines);
  const kept = expiry(deadlines);
  cleared.handle.clear();
  await within(kept.fired);
  await sleep(TIMEOUT_MS);
  assert.equal(cleared.count(), 0);
  assert.equal(kept.count(), 1);
  cleared.handle.clear();
  kept.handle.clear(); // clearing after expiry is harmless
});

test('many entries expire in the order they were tracked', async () => {
  const deadlines = new Deadlines(TIMEOUT_MS);
  const order: number[] = [];
  const done: Array<Promise<void>> = [];
  for (let i = 0; i < 6; i++) {
    done.push(new Promise<void>((resolve) => deadlines.track(() => (order.push(i), resolve()))));
    // Half of them in the same turn, half spread over later turns.
    if (i >= 3) await sleep(3);
  }
  const skipped = deadlines.track(() => order.push(-1));
  skipped.clear();
  await within(Promise.all(done));
  await sleep(TIMEOUT_MS);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
});

test('the shared timer is unref-ed and stops once nothing is pending', async (t) => {
  const watch = intervalWatch(t);
  const deadlines = new Deadlines(TIMEOUT_MS);
  const first = watch.arm(() => expiry(deadlines));
  watch.arm(() => expiry(deadlines));
  assert.equal(watch.created.length, 1, 'one timer for every pending entry');
  assert.equal(watch.created[0].hasRef(), false, 'never holds the process open');
  await within(first.fired);
  await sleep(TIMEOUT_MS / 2);
  assert.deepEqual(watch.live(), [], 'stopped after the last expiry');

  // It restarts for a new entry, and stops again when that entry is cleared instead.
  const again = watch.arm(() => expiry(deadlines));
  assert.equal(watch.created.length, 2);
  assert.equal(watch.live().length, 1);
  again.handle.clear();
  await sleep(TIMEOUT_MS);
  assert.deepEqual(watch.live(), [], 'stopped once the cleared entry left nothing pending');
  assert.equal(again.count(), 0);

  // close() stops it even with entries pending.
  const pending = watch.arm(() => expiry(deadlines));
  deadlines.close();
  assert.deepEqual(watch.live(), []);
  await sleep(2 * TIMEOUT_MS);
  assert.equal(pending.count(), 0);
});
