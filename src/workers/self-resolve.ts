/** Make `import ... from 'apisix-node-runner'` in plugin modules resolve to this runner (see self-resolve-hooks.ts). */
import { createRequire, register } from 'node:module';
import { HOOKS_PROBE, PACKAGE } from './self-resolve-hooks.js';

const HOOKS_URL = new URL('./self-resolve-hooks.js', import.meta.url);
const OWN_PACKAGE_JSON = ownPackageJson();
let active = false;

/**
 * Install the hooks on this thread before `pluginFile` is imported, unless Node already finds this
 * very package from there (plugins in the project that installed the runner, or inside its
 * checkout). Called on the main thread and in every pool thread: on Node 20 hooks registered on the
 * main thread do not reach worker threads.
 *
 * Only when needed because on Node 20 every thread that registers hooks gets a loader thread of its
 * own: `--threads 2` measured 121 MB RSS against 94 MB without (16 threads against 13).
 */
export function resolvePackageToSelf(pluginFile: string): void {
  if (active || findsThisPackage(pluginFile)) return;
  let answered = false;
  try {
    answered = import.meta.resolve(HOOKS_PROBE) === HOOKS_URL.href;
  } catch {
    // ERR_PACKAGE_IMPORT_NOT_DEFINED: nothing answers the probe on this thread yet
  }
  if (!answered) register(HOOKS_URL);
  active = true;
}

/** Any doubt (not found, another copy, a copy without `./package.json` exported) installs the hooks. */
function findsThisPackage(file: string): boolean {
  try {
    return createRequire(file).resolve(`${PACKAGE}/package.json`) === OWN_PACKAGE_JSON;
  } catch {
    return false;
  }
}

/** This package's package.json, found as a self-reference; null (always install the hooks) if not found. */
function ownPackageJson(): string | null {
  try {
    return createRequire(import.meta.url).resolve(`${PACKAGE}/package.json`);
  } catch {
    return null;
  }
}
