import { strict as assert } from 'node:assert';
import { test, type TestContext } from 'node:test';
import { ConfCache, type ConfCacheOptions, type ConfEntry, type NewConfEntry } from '../../src/workers/conf-cache.js';

const TOKEN_MAX = 0xffffffff;

function fields(over: Partial<NewConfEntry> = {}): NewConfEntry {
  return {
    source: [],
    denial: null,
    requestChain: [],
    responseChain: [],
    missingIn: { request: [], response: [] },
    generation: 0,
    key: null,
    fingerprint: '[]',
    ...over,
  };
}

interface Harness {
  cache: ConfCache;
  deleted: ConfEntry[];
  clock: { ms: number };
}

/** A cache on a fake clock, closed at the end of the test. */
function harness(t: TestContext, options: Partial<ConfCacheOptions> = {}): Harness {
  const clock = { ms: 0 };
  const deleted: ConfEntry[] = [];
  const cache = new ConfCache({
    ttlMs: 10_000,
    maxTokens: 1000,
    firstToken: 1,
    now: () => clock.ms,
    onDelete: (entry) => deleted.push(entry),
    ...options,
  });
  t.after(() => cache.close());
  return { cache, deleted, clock };
}

test('tokens are non-zero, unique and increasing from firstToken', (t) => {
  const { cache } = harness(t, { firstToken: 1 });
  const tokens = Array.from({ length: 5 }, () => cache.insert(fields()).token);
  assert.deepEqual(tokens, [1, 2, 3, 4, 5]);
  const { cache: other } = harness(t, { firstToken: 123_456 });
  assert.deepEqual(
    Array.from({ length: 3 }, () => other.insert(fields()).token),
    [123_456, 123_457, 123_458],
  );
  assert.equal(cache.size, 5);
  for (const token of tokens) assert.equal(cache.get(token)?.token, token);
});

test('the counter wraps from 0xffffffff to 1, never issuing 0', (t) => {
  const { cache } = harness(t, { firstToken: TOKEN_MAX - 1 });
  const tokens = Array.from({ length: 4 }, () => cache.insert(fields()).token);
  assert.deepEqual(tokens, [TOKEN_MAX - 1, TOKEN_MAX, 1, 2]);
  assert.equal(cache.get(0), undefined);
});

test('after the wrap, tokens still live are skipped', (t) => {
  // Reaching a live token again takes 2^32 issues; simulate it by reporting tokens 1 and 2 as
  // present in the cache's token map for the duration of one insert.
  const { cache } = harness(t, { firstToken: TOKEN_MAX });
  const before = cache.insert(fields());
  assert.equal(before.token, TOKEN_MAX);
  const has = Map.prototype.has;
  const probed: unknown[] = [];
  Map.prototype.has = function (this: Map<unknown, unknown>, key: unknown): boolean {
    if (typeof key === 'number') probed.push(key);
    if (key === 1 || key === 2) return true;
    return has.call(this, key);
  };
  let entry: ConfEntry;
  try {
    entry = cache.insert(fields());
  } finally {
    Map.prototype.has = has;
  }
  assert.deepEqual(probed, [1, 2, 3], 'probes each candidate in order');
  assert.equal(entry.token, 3);
  assert.equal(cache.insert(fields()).token, 4, 'the counter continues after the skipped tokens');
});

test('a default first token is random in [1, 2^32 - 1]', (t) => {
  const first = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const cache = new ConfCache({ ttlMs: 1000, maxTokens: 10 });
    t.after(() => cache.close());
    const { token } = cache.insert(fields());
    assert.ok(Number.isInteger(token) && token >= 1 && token <= TOKEN_MAX, `token ${token} in range`);
    first.add(token);
  }
  assert.ok(first.size > 1, 'not the same first token every time');
});

test('an entry expires after ttlMs of disuse, not before', (t) => {
  const { cache, deleted, clock } = harness(t, { ttlMs: 1000 });
  const a = cache.insert(fields());
  const b = cache.insert(fields());
  clock.ms = 1000;
  assert.equal(cache.get(a.token), a, 'exactly ttlMs after the last use it still lives');
  clock.ms = 1001;
  assert.equal(cache.get(b.token), undefined, 'one ms later it is gone');
  assert.deepEqual(deleted, [b]);
  assert.equal(cache.size, 1);
  assert.equal(cache.get(b.token), undefined, 'stays gone');
  assert.equal(deleted.length, 1, 'onDelete once');
});

test('get() refreshes the lifetime', (t) => {
  const { cache, deleted, clock } = harness(t, { ttlMs: 1000 });
  const a = cache.insert(fields());
  for (clock.ms = 900; clock.ms <= 9000; clock.ms += 900) assert.equal(cache.get(a.token), a, `alive at ${clock.ms}`);
  const lastUse = clock.ms - 900;
  clock.ms = lastUse + 1000;
  assert.equal(cache.get(a.token), a);
  clock.ms += 1001;
  assert.equal(cache.get(a.token), undefined);
  assert.deepEqual(deleted, [a]);
});

test('sweep() removes expired entries that are never asked for again, calling onDelete', (t) => {
  const { cache, deleted, clock } = harness(t, { ttlMs: 1000 });
  const idle = cache.insert(fields());
  clock.ms = 600;
  const used = cache.insert(fields());
  clock.ms = 1001;
  cache.sweep();
  assert.deepEqual(deleted, [idle]);
  assert.equal(cache.size, 1);
  assert.equal(cache.get(used.token), used);
});

test('findByKey: the same live entry for the same key and fingerprint only', (t) => {
  const { cache, clock } = harness(t, { ttlMs: 1000 });
  const a = cache.insert(fields({ key: 'route-1#pre', fingerprint: 'f1' }));
  assert.equal(cache.findByKey('route-1#pre', 'f1'), a);
  assert.equal(cache.findByKey('route-1#pre', 'f1'), a);
  assert.equal(cache.findByKey('route-1#pre', 'f2'), undefined, 'another conf under the same key');
  assert.equal(cache.findByKey('route-2#pre', 'f1'), undefined, 'another key');
  clock.ms = 1000;
  assert.equal(cache.findByKey('route-1#pre', 'f1'), a, 'refreshed by the lookup');
  clock.ms = 2001;
  assert.equal(cache.findByKey('route-1#pre', 'f1'), undefined, 'not after expiry');
});

test('findByKey: a conf change under the same key maps the key to the new token; the old one expiring leaves it', (t) => {
  const { cache, clock } = harness(t, { ttlMs: 1000 });
  const old = cache.insert(fields({ key: 'k', fingerprint: 'v1' }));
  clock.ms = 500;
  const next = cache.insert(fields({ key: 'k', fingerprint: 'v2' }));
  assert.notEqual(next.token, old.token);
  assert.equal(cache.findByKey('k', 'v2'), next);
  clock.ms = 1200;
  assert.equal(cache.get(old.token), undefined, 'the old token expired');
  assert.equal(cache.findByKey('k', 'v2'), next, 'still mapped after the old entry left');
});

test('entries without a key are never found by key', (t) => {
  const { cache } = harness(t);
  cache.insert(fields({ key: null, fingerprint: 'f' }));
  assert.equal(cache.findByKey('null', 'f'), undefined);
  assert.equal(cache.findByKey('', 'f'), undefined);
});

test('at maxTokens, inserting evicts the least recently used entry and calls onDelete', (t) => {
  const { cache, deleted, clock } = harness(t, { maxTokens: 3, ttlMs: 3_600_000 });
  const a = cache.insert(fields());
  clock.ms = 10;
  const b = cache.insert(fields());
  clock.ms = 20;
  const c = cache.insert(fields());
  clock.ms = 5000;
  assert.equal(cache.get(a.token), a);
  const d = cache.insert(fields());
  assert.deepEqual(deleted, [b]);
  assert.equal(cache.size, 3);
  assert.equal(cache.get(b.token), undefined);
  for (const e of [a, c, d]) assert.equal(cache.get(e.token), e);
});

test('a token used continuously (every 500 ms) is not evicted while older idle ones are', (t) => {
  // Guards a fixed bug: the LRU move was gated on the time since the last *use*, which a token
  // used more often than once a second never exceeded, so the busiest token stayed oldest.
  const { cache, deleted, clock } = harness(t, { maxTokens: 3, ttlMs: 3_600_000 });
  const busy = cache.insert(fields({ fingerprint: 'busy' }));
  clock.ms = 100;
  const idle1 = cache.insert(fields({ fingerprint: 'idle1' }));
  clock.ms = 200;
  const idle2 = cache.insert(fields({ fingerprint: 'idle2' }));
  for (clock.ms = 500; clock.ms <= 20_000; clock.ms += 500) assert.equal(cache.get(busy.token), busy);
  const n1 = cache.insert(fields({ fingerprint: 'n1' }));
  assert.deepEqual(deleted.map((e) => e.fingerprint), ['idle1']);
  const n2 = cache.insert(fields({ fingerprint: 'n2' }));
  assert.deepEqual(deleted.map((e) => e.fingerprint), ['idle1', 'idle2']);
  assert.equal(cache.get(busy.token), busy);
  assert.equal(cache.get(idle1.token), undefined);
  assert.equal(cache.get(idle2.token), undefined);
  assert.equal(cache.get(n1.token), n1);
  assert.equal(cache.get(n2.token), n2);
});

test('eviction keeps insertion order among entries never used', (t) => {
  const { cache, deleted } = harness(t, { maxTokens: 2 });
  const a = cache.insert(fields());
  const b = cache.insert(fields());
  const c = cache.insert(fields());
  const d = cache.insert(fields());
  assert.deepEqual(deleted, [a, b]);
  assert.equal(cache.size, 2);
  assert.equal(cache.get(c.token), c);
  assert.equal(cache.get(d.token), d);
});

test('eviction drops the key mapping of the evicted entry', (t) => {
  const { cache } = harness(t, { maxTokens: 1 });
  cache.insert(fields({ key: 'k', fingerprint: 'f' }));
  cache.insert(fields({ key: 'other', fingerprint: 'f' }));
  assert.equal(cache.findByKey('k', 'f'), undefined);
});

test('the sweeper is an unref-ed interval that close() clears', (t) => {
  const created: NodeJS.Timeout[] = [];
  const cleared: unknown[] = [];
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  globalThis.setInterval = ((...args: Parameters<typeof realSet>) => {
    const handle = realSet(...args);
    created.push(handle);
    return handle;
  }) as unknown as typeof setInterval;
  globalThis.clearInterval = ((handle: NodeJS.Timeout) => {
    cleared.push(handle);
    realClear(handle);
  }) as unknown as typeof clearInterval;
  let cache: ConfCache;
  try {
    cache = new ConfCache({ ttlMs: 1000, maxTokens: 10 });
  } finally {
    globalThis.setInterval = realSet;
  }
  t.after(() => {
    globalThis.clearInterval = realClear;
  });
  assert.equal(created.length, 1);
  assert.equal(created[0].hasRef(), false);
  cache.close();
  assert.deepEqual(cleared, [created[0]]);
});
