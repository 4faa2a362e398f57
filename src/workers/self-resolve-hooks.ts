/**
 * Module resolution hooks (`module.register`, run on Node's loader thread) that make the bare
 * specifier `apisix-node-runner` name the running runner's own package. Without them a plugin in a
 * folder of its own (`--plugins /opt/my-plugins`) fails with "Cannot find package
 * 'apisix-node-runner'": Node looks for the package in node_modules folders above the plugin file,
 * never at the runner.
 *
 * They answer for every importer, even one whose folder has its own copy of the package installed
 * (for TypeScript types or its tests), rather than only when normal resolution fails. Two copies in
 * one process means two `definePlugin`s: the plugin is validated by the copy it happened to find,
 * of whatever version, while the runner trusts the `Symbol.for` brand and runs it with assumptions
 * of its own version; the errors it throws are not `instanceof` the runner's classes; and every
 * thread loads a second module graph. One copy means the runner that calls the plugin validated it.
 * (A copy there still serves the plugin's TypeScript types: those are read at compile time.)
 */
import type { ResolveHook } from 'node:module';

export const PACKAGE = 'apisix-node-runner';
/**
 * Answered only by these hooks, so a thread can ask whether they already resolve for it: from Node
 * 22.2 hooks registered on the main thread also serve worker threads, and registering again from
 * each pool thread would add one more link to the shared chain per thread started.
 */
export const HOOKS_PROBE = `#${PACKAGE}/self-resolve-hooks`;

export const resolve: ResolveHook = (specifier, context, nextResolve) => {
  if (specifier === HOOKS_PROBE) return { url: import.meta.url, shortCircuit: true };
  // Resolved as a self-reference from this file, through this package's own `exports`: the running
  // dist/index.js for the package itself (in a checkout running .build/, the checkout's dist/, as an
  // import from inside the checkout gets), `apisix-node-runner/package.json` works, and an unexported
  // subpath fails as it would from node_modules.
  if (specifier === PACKAGE || specifier.startsWith(`${PACKAGE}/`)) {
    return nextResolve(specifier, { ...context, parentURL: import.meta.url });
  }
  return nextResolve(specifier, context);
};
