/** The plugins this process can run: the built-in set plus modules from `--plugins` (DECISIONS 14). */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginLoadError, describe } from '../errors.js';
import { definePlugin, isPlugin, type Plugin, type PluginDefinition } from '../plugin.js';
import { resolvePackageToSelf } from './self-resolve.js';

const MODULE_EXTENSIONS = new Set(['.js', '.mjs']);
let reloads = 0;

export interface RegisteredPlugin {
  readonly plugin: Plugin;
  /** `builtin` or the module file it came from. */
  readonly source: string;
}

/** The `.js`/`.mjs` files a `--plugins` path names: the file itself, or a folder's files (not recursive), sorted. */
export function pluginFiles(path: string): string[] {
  let stats;
  try {
    stats = statSync(path);
  } catch (err) {
    throw new PluginLoadError(`--plugins ${path}: ${describe(err)}`, { cause: err });
  }
  if (!stats.isDirectory()) {
    if (!MODULE_EXTENSIONS.has(extname(path))) throw new PluginLoadError(`--plugins ${path}: a plugin module must be a .js or .mjs file`);
    return [path];
  }
  const files = readdirSync(path)
    .filter((name) => MODULE_EXTENSIONS.has(extname(name)) && !name.startsWith('.'))
    .sort()
    .map((name) => join(path, name));
  // Most likely the wrong folder: starting without the plugins would deny every route using them.
  if (files.length === 0) throw new PluginLoadError(`--plugins ${path}: the folder has no .js or .mjs files`);
  return files;
}

function asPlugins(exported: unknown, file: string): Plugin[] {
  const items = Array.isArray(exported) ? exported : [exported];
  if (items.length === 0) throw new PluginLoadError(`${file}: the default export is an empty array`);
  return items.map((item, i) => {
    if (isPlugin(item)) return item;
    if (item === null || typeof item !== 'object') {
      throw new PluginLoadError(`${file}: default export${Array.isArray(exported) ? `[${i}]` : ''} must be a plugin made with definePlugin() (got ${item === null ? 'null' : typeof item})`);
    }
    try {
      return definePlugin(item as PluginDefinition);
    } catch (err) {
      throw new PluginLoadError(`${file}: ${describe(err)}`, { cause: err });
    }
  });
}

export class PluginRegistry {
  #byName = new Map<string, RegisteredPlugin>();

  /** Register plugins; two with the same name are an error naming both sources. */
  add(plugins: readonly Plugin[], source: string): void {
    for (const plugin of plugins) {
      const existing = this.#byName.get(plugin.name);
      if (existing) {
        throw new PluginLoadError(`plugin "${plugin.name}" is defined twice: in ${existing.source} and in ${source}`);
      }
      this.#byName.set(plugin.name, { plugin, source });
    }
  }

  /**
   * Import every module under `paths` and register what they export. `fresh` (a reload) imports
   * each file under a new URL so this thread gets its current contents; modules those files import
   * themselves stay cached on this thread (worker threads start with an empty cache).
   */
  async load(paths: readonly string[], { fresh = false } = {}): Promise<void> {
    for (const path of paths) {
      for (const file of pluginFiles(path)) {
        let mod: { default?: unknown };
        const url = pathToFileURL(file);
        if (fresh) url.searchParams.set('reload', String(++reloads));
        resolvePackageToSelf(file);
        try {
          mod = (await import(url.href)) as { default?: unknown };
        } catch (err) {
          throw new PluginLoadError(`${file}: import failed: ${describe(err)}`, { cause: err });
        }
        if (mod.default === undefined) throw new PluginLoadError(`${file}: no default export (export default definePlugin({...}))`);
        this.add(asPlugins(mod.default, file), file);
      }
    }
  }

  get(name: string): Plugin | undefined {
    return this.#byName.get(name)?.plugin;
  }

  names(): string[] {
    return [...this.#byName.keys()].sort();
  }

  entries(): RegisteredPlugin[] {
    return [...this.#byName.values()];
  }
}
