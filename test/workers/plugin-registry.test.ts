import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PluginLoadError } from '../../src/errors.js';
import { isPlugin, type PluginRequest, type RequestActions } from '../../src/plugin.js';
import { builtinPlugins } from '../../src/plugins/index.js';
import { PluginRegistry, pluginFiles } from '../../src/workers/plugin-registry.js';

// Tests run from .build/test/workers/; the fixture modules stay in the source tree.
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/plugin-modules/', import.meta.url));
const fixture = (...parts: string[]): string => join(FIXTURES, ...parts);

function loadError(...patterns: Array<RegExp | string>): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof PluginLoadError, `expected a PluginLoadError, got ${String(err)}`);
    assert.equal(err.code, 'ANR_ERR_PLUGIN_LOAD');
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} names ${p}`);
      else assert.match(err.message, p);
    }
    return true;
  };
}

async function load(...paths: string[]): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  await registry.load(paths);
  return registry;
}

describe('pluginFiles', () => {
  test('a file is itself', () => {
    assert.deepEqual(pluginFiles(fixture('one.mjs')), [fixture('one.mjs')]);
    assert.deepEqual(pluginFiles(fixture('plain.js')), [fixture('plain.js')]);
  });

  test('a folder gives its .js and .mjs files, sorted, dotfiles skipped, not recursive', () => {
    assert.deepEqual(pluginFiles(fixture('folder')), [fixture('folder', 'a.js'), fixture('folder', 'b.mjs')]);
    const top = pluginFiles(FIXTURES);
    assert.ok(!top.some((f) => f.includes(`${join('folder', '')}`)), 'no files from subfolders');
    assert.ok(!top.some((f) => f.endsWith('.cjs') || f.endsWith('.md')));
    assert.deepEqual(top, [...top].sort());
  });

  test('a non-existent path names the path', () => {
    const missing = fixture('no-such-plugin.mjs');
    assert.throws(() => pluginFiles(missing), loadError(`--plugins ${missing}`, /ENOENT/));
  });

  test('a file with another extension is refused', () => {
    const cjs = fixture('wrong-extension.cjs');
    assert.throws(() => pluginFiles(cjs), loadError(`--plugins ${cjs}: a plugin module must be a .js or .mjs file`));
    assert.throws(() => pluginFiles(fixture('README.md')), loadError('must be a .js or .mjs file'));
  });
});

describe('PluginRegistry.load', () => {
  test('a module default-exporting one plugin', async () => {
    const registry = await load(fixture('one.mjs'));
    const plugin = registry.get('fx-one');
    assert.ok(plugin && isPlugin(plugin));
    assert.equal(plugin.onError, 'deny');
    assert.deepEqual(registry.names(), ['fx-one']);
    assert.deepEqual(
      registry.entries().map((e) => [e.plugin.name, e.source]),
      [['fx-one', fixture('one.mjs')]],
    );
  });

  test('a module default-exporting an array (plugins and plain definitions)', async () => {
    const registry = await load(fixture('array.mjs'));
    assert.deepEqual(registry.names(), ['fx-array-1', 'fx-array-2']);
    const second = registry.get('fx-array-2')!;
    assert.ok(isPlugin(second));
    assert.equal(second.requestFilter, null);
    assert.equal(typeof second.responseFilter, 'function');
  });

  test('a plain definition object is validated and keeps itself as `this`', async () => {
    const registry = await load(fixture('plain.js'));
    const plugin = registry.get('fx-plain')!;
    assert.ok(isPlugin(plugin));
    assert.equal(plugin.onError, 'fail');
    const conf = plugin.parseConf('abc');
    const set: Array<[string, unknown]> = [];
    const res = { setHeader: (name: string, value: unknown) => set.push([name, value]) } as unknown as RequestActions;
    await plugin.requestFilter!(conf, {} as PluginRequest, res);
    assert.deepEqual(set, [['x-fx-plain', 'abc']]);
  });

  test('a folder loads its modules in name order', async () => {
    const registry = await load(fixture('folder'));
    assert.deepEqual(
      registry.entries().map((e) => [e.plugin.name, e.source]),
      [
        ['fx-folder-a', fixture('folder', 'a.js')],
        ['fx-folder-b', fixture('folder', 'b.mjs')],
      ],
    );
  });

  test('several paths add up; get() of an unknown name is undefined', async () => {
    const registry = await load(fixture('one.mjs'), fixture('folder'), fixture('plain.js'));
    assert.deepEqual(registry.names(), ['fx-folder-a', 'fx-folder-b', 'fx-one', 'fx-plain']);
    assert.equal(registry.get('fx-unknown'), undefined);
  });

  test('no default export', async () => {
    const file = fixture('no-default.mjs');
    await assert.rejects(load(file), loadError(`${file}: no default export`));
  });

  test('a default export that is not an object', async () => {
    const file = fixture('non-object.mjs');
    await assert.rejects(load(file), loadError(`${file}: default export must be a plugin made with definePlugin() (got number)`));
    const nul = fixture('null-default.mjs');
    await assert.rejects(load(nul), loadError(`${nul}: default export must be a plugin made with definePlugin() (got null)`));
  });

  test('an array with a bad item names its index; an empty array is refused', async () => {
    const file = fixture('bad-array-item.mjs');
    await assert.rejects(load(file), loadError(`${file}: default export[1] must be a plugin`, '(got string)'));
    const empty = fixture('empty-array.mjs');
    await assert.rejects(load(empty), loadError(`${empty}: the default export is an empty array`));
  });

  test('an invalid plain definition names the file and the problem', async () => {
    const file = fixture('invalid-definition.mjs');
    await assert.rejects(load(file), (err: unknown) => {
      loadError(`${file}: plugin "fx-no-filter" defines neither requestFilter nor responseFilter`)(err);
      assert.ok((err as Error).cause instanceof PluginLoadError);
      return true;
    });
  });

  test('an import that throws names the file and keeps the cause', async () => {
    const file = fixture('throws.mjs');
    await assert.rejects(load(file), (err: unknown) => {
      loadError(`${file}: import failed: fixture failed while loading`)(err);
      assert.equal(((err as Error).cause as Error).message, 'fixture failed while loading');
      return true;
    });
  });

  test('a non-existent path and a wrong extension fail the load', async () => {
    await assert.rejects(load(fixture('missing-dir')), loadError(/ENOENT/, 'missing-dir'));
    await assert.rejects(load(fixture('wrong-extension.cjs')), loadError('must be a .js or .mjs file'));
  });

  test('two plugins with the same name: the message names both sources', async () => {
    await assert.rejects(
      load(fixture('dup')),
      loadError(`plugin "fx-dup" is defined twice: in ${fixture('dup', 'first.mjs')} and in ${fixture('dup', 'second.mjs')}`),
    );
    await assert.rejects(
      load(fixture('folder', 'a.js'), fixture('folder')),
      loadError(`plugin "fx-folder-a" is defined twice: in ${fixture('folder', 'a.js')} and in ${fixture('folder', 'a.js')}`),
    );
  });

  test('a plugin clashing with a built-in', async () => {
    const registry = new PluginRegistry();
    registry.add(builtinPlugins, 'builtin');
    assert.ok(registry.get('say'));
    const file = fixture('say-clash.mjs');
    await assert.rejects(registry.load([file]), loadError(`plugin "say" is defined twice: in builtin and in ${file}`));
    assert.equal(registry.get('say'), builtinPlugins[0], 'the built-in stays');
  });
});

describe("PluginRegistry.load: 'apisix-node-runner' from a folder outside the package", () => {
  // A folder under the OS temp dir: no node_modules above it has the package (issue 8, item 5).
  // The runner here is .build/; the name resolves through the package's exports, to dist/ (npm test builds it).
  function outsideFolder(t: TestContext, files: Readonly<Record<string, string>>): string {
    const dir = mkdtempSync(join(tmpdir(), 'anr-plugins-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  test('resolves to the runner without a node_modules of its own, and despite a copy in one', async (t) => {
    const plugin = (name: string) =>
      `import { definePlugin } from 'apisix-node-runner';\nexport default definePlugin({ name: '${name}', requestFilter() {} });\n`;
    const bare = outsideFolder(t, { 'bare.mjs': plugin('fx-bare') });
    const withCopy = outsideFolder(t, {
      'with-copy.mjs': plugin('fx-with-copy'),
      'node_modules/apisix-node-runner/package.json': JSON.stringify({ name: 'apisix-node-runner', type: 'module', exports: './index.js' }),
      'node_modules/apisix-node-runner/index.js': "export function definePlugin() { throw new Error('the folder copy'); }\n",
    });
    const registry = await load(bare, withCopy);
    assert.ok(isPlugin(registry.get('fx-bare')));
    assert.ok(isPlugin(registry.get('fx-with-copy')));
  });

  test('a subpath the package does not export fails the load, naming the file', async (t) => {
    const dir = outsideFolder(t, { 'deep.mjs': "export { definePlugin as default } from 'apisix-node-runner/dist/plugin.js';\n" });
    await assert.rejects(load(dir), loadError(join(dir, 'deep.mjs'), 'import failed', /not defined by "exports"/));
  });
});
