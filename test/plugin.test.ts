import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { PluginLoadError } from '../src/errors.js';
import { definePlugin, isPlugin, type PluginDefinition } from '../src/plugin.js';

const noop = (): void => {};

function loadError(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof PluginLoadError, `expected a PluginLoadError, got ${String(err)}`);
    assert.equal(err.code, 'ANR_ERR_PLUGIN_LOAD');
    assert.match(err.message, pattern);
    return true;
  };
}

test('definePlugin: the name is a string of 1 to 128 characters', () => {
  assert.equal(definePlugin({ name: 'a', requestFilter: noop }).name, 'a');
  assert.equal(definePlugin({ name: 'x'.repeat(128), requestFilter: noop }).name.length, 128);
  assert.throws(() => definePlugin({ name: '', requestFilter: noop }), loadError(/1 to 128 characters \(got ""\)/));
  assert.throws(() => definePlugin({ name: 'x'.repeat(129), requestFilter: noop }), loadError(/1 to 128 characters/));
  assert.throws(() => definePlugin({ name: 42 as unknown as string, requestFilter: noop }), loadError(/got 42/));
  assert.throws(() => definePlugin({ requestFilter: noop } as unknown as PluginDefinition), loadError(/1 to 128 characters/));
});

test('definePlugin: a definition must be an object', () => {
  assert.throws(() => definePlugin(null as unknown as PluginDefinition), loadError(/takes an object/));
  assert.throws(() => definePlugin('say' as unknown as PluginDefinition), loadError(/takes an object/));
});

test('definePlugin: parseConf, requestFilter and responseFilter must be functions when given', () => {
  for (const key of ['parseConf', 'requestFilter', 'responseFilter'] as const) {
    const def = { name: 'p', requestFilter: noop, [key]: 'not a function' } as unknown as PluginDefinition;
    assert.throws(() => definePlugin(def), loadError(new RegExp(`plugin "p": ${key} must be a function`)));
  }
});

test('definePlugin: at least one filter is required', () => {
  assert.throws(() => definePlugin({ name: 'empty' }), loadError(/plugin "empty" defines neither requestFilter nor responseFilter/));
  assert.throws(() => definePlugin({ name: 'empty', parseConf: () => ({}) }), loadError(/neither/));
  const onlyResponse = definePlugin({ name: 'r', responseFilter: noop });
  assert.equal(onlyResponse.requestFilter, null);
  assert.equal(typeof onlyResponse.responseFilter, 'function');
  const onlyRequest = definePlugin({ name: 'q', requestFilter: noop });
  assert.equal(onlyRequest.responseFilter, null);
});

test("definePlugin: onError is 'fail' (default) or 'deny'", () => {
  assert.equal(definePlugin({ name: 'p', requestFilter: noop }).onError, 'fail');
  assert.equal(definePlugin({ name: 'p', requestFilter: noop, onError: 'fail' }).onError, 'fail');
  assert.equal(definePlugin({ name: 'p', requestFilter: noop, onError: 'deny' }).onError, 'deny');
  assert.throws(
    () => definePlugin({ name: 'p', requestFilter: noop, onError: 'ignore' as 'fail' }),
    loadError(/plugin "p": onError must be 'fail' or 'deny' \(got "ignore"\)/),
  );
  assert.throws(() => definePlugin({ name: 'p', requestFilter: noop, onError: 1 as unknown as 'fail' }), loadError(/got 1/));
});

test('definePlugin: the default parseConf is JSON.parse, with an empty value giving {}', () => {
  const p = definePlugin({ name: 'p', requestFilter: noop });
  assert.deepEqual(p.parseConf('{"a":1,"b":[true,null]}'), { a: 1, b: [true, null] });
  assert.deepEqual(p.parseConf('"text"'), 'text');
  assert.deepEqual(p.parseConf(''), {});
  assert.deepEqual(p.parseConf('  \n'), {});
  const first = p.parseConf('') as object;
  assert.notEqual(p.parseConf(''), first, 'every route gets its own object');
  assert.throws(() => p.parseConf('{not json'), SyntaxError);
});

test('definePlugin: a custom parseConf and the filters keep the definition as `this`', () => {
  const calls: string[] = [];
  const def = {
    name: 'bound',
    prefix: 'conf:',
    parseConf(this: { prefix: string }, value: string) {
      return this.prefix + value;
    },
    requestFilter(this: { prefix: string }) {
      calls.push(`req ${this.prefix}`);
    },
    responseFilter(this: { prefix: string }) {
      calls.push(`resp ${this.prefix}`);
    },
  };
  const p = definePlugin(def as PluginDefinition<string>);
  assert.equal(p.parseConf('x'), 'conf:x');
  const { requestFilter, responseFilter } = p;
  void requestFilter!('', null as never, null as never);
  void responseFilter!('', null as never, null as never);
  assert.deepEqual(calls, ['req conf:', 'resp conf:']);
});

test('definePlugin: the result is frozen', () => {
  const p = definePlugin({ name: 'frozen', requestFilter: noop });
  assert.ok(Object.isFrozen(p));
  assert.throws(() => {
    (p as { name: string }).name = 'other';
  }, TypeError);
  assert.throws(() => {
    (p as unknown as Record<string, unknown>).extra = 1;
  }, TypeError);
  assert.equal(p.name, 'frozen');
});

test('isPlugin: true only for definePlugin results', () => {
  const def = { name: 'p', requestFilter: noop };
  assert.equal(isPlugin(definePlugin(def)), true);
  assert.equal(isPlugin(def), false);
  assert.equal(isPlugin({ ...definePlugin(def) }), true, 'the brand is an own enumerable symbol, so a spread copy keeps it');
  assert.equal(isPlugin(null), false);
  assert.equal(isPlugin(undefined), false);
  assert.equal(isPlugin(42), false);
  assert.equal(isPlugin('p'), false);
  assert.equal(isPlugin({ [Symbol('apisix-node-runner.plugin')]: true }), false, 'a local symbol is not the brand');
});

test('isPlugin: the brand is Symbol.for, so it holds across two instances of the module', async () => {
  // A query string makes a second, separate instance of the same module file.
  const other = (await import(new URL('../src/plugin.js?second-instance', import.meta.url).href)) as typeof import('../src/plugin.js');
  assert.notEqual(other.definePlugin, definePlugin, 'really two module instances');
  const fromOther = other.definePlugin({ name: 'other', requestFilter: noop });
  assert.equal(isPlugin(fromOther), true);
  assert.equal(other.isPlugin(definePlugin({ name: 'mine', requestFilter: noop })), true);
});
