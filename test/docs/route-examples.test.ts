/**
 * The route examples in the docs are meant to be pasted into a gateway (Admin API, `a7 route
 * create -f`, `a7 config sync -f`): every JSON or YAML code block that configures
 * `ext-plugin-pre-req`, `-post-req` or `-post-resp` must parse, follow the gateway's schema for
 * those plugins (`init.lua`: `conf` an array of `{name: 1-128 characters, value: string}`,
 * `allow_degradation` a boolean), and name plugins this repository ships, with values their
 * `parseConf` accepts. A pasted example must never turn into a 503.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { definePlugin, type Plugin, type PluginDefinition } from '../../src/plugin.js';
import { builtinPlugins } from '../../src/plugins/index.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PHASE = /^ext-plugin-(pre-req|post-req|post-resp)$/;
const PHASE_REFERENCE = /ext-plugin-(pre-req|post-req|post-resp)/;
const BLOCK = /^```(json|yaml)\n([\s\S]*?)^```$/gm;

function docFiles(): string[] {
  return ['README.md', 'deploy/README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
}

/** A block as data; a JSON fragment (`"plugins": {...}`) is read as the members of an object. */
function parseBlock(lang: string, text: string): unknown {
  if (lang === 'yaml') return parseYaml(text, { uniqueKeys: true });
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(`{${text}}`);
  }
}

function* phaseConfigs(value: unknown, path: string): Generator<{ path: string; phase: string; config: unknown }> {
  if (value === null || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) {
    const here = `${path}.${key}`;
    if (PHASE.test(key)) yield { path: here, phase: key, config: child };
    else yield* phaseConfigs(child, here);
  }
}

test('every ext-plugin route example in the docs parses, follows the schema, and names plugins that accept its values', async () => {
  const greeting = (await import(pathToFileURL(join(REPO, 'deploy/plugins/greeting.mjs')).href)) as { default: PluginDefinition };
  const plugins = new Map<string, Plugin>([...builtinPlugins, definePlugin(greeting.default)].map((p) => [p.name, p]));
  let checked = 0;
  for (const file of docFiles()) {
    for (const block of readFileSync(join(REPO, file), 'utf8').matchAll(BLOCK)) {
      const [, lang, text] = block;
      if (!PHASE_REFERENCE.test(text!)) continue;
      const line = readFileSync(join(REPO, file), 'utf8').slice(0, block.index).split('\n').length;
      const where = `${file}:${line}`;
      let data: unknown;
      assert.doesNotThrow(() => (data = parseBlock(lang!, text!)), `${where}: the ${lang} block parses`);
      for (const { path, config } of phaseConfigs(data, where)) {
        assert.ok(config !== null && typeof config === 'object' && !Array.isArray(config), `${path} is an object`);
        const { conf, allow_degradation: degrade, ...rest } = config as Record<string, unknown>;
        assert.deepEqual(Object.keys(rest), [], `${path} has only conf and allow_degradation`);
        assert.ok(degrade === undefined || typeof degrade === 'boolean', `${path}.allow_degradation is a boolean`);
        assert.ok(Array.isArray(conf) && conf.length > 0, `${path}.conf is a non-empty array`);
        for (const [i, entry] of conf.entries()) {
          const { name, value } = entry as { name: unknown; value: unknown };
          const at = `${path}.conf[${i}]`;
          assert.ok(typeof name === 'string' && name.length >= 1 && name.length <= 128, `${at}.name is 1-128 characters`);
          assert.equal(typeof value, 'string', `${at}.value is a string`);
          const plugin = plugins.get(name);
          assert.ok(plugin, `${at}: "${name}" is a plugin this repository ships`);
          assert.doesNotThrow(() => plugin.parseConf(value as string), `${at}: ${name} accepts ${String(value)}`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked >= 10, `the docs' route examples were found (${checked} conf entries)`);
});
