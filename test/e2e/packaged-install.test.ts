/**
 * The package as users get it: `npm pack` of a fresh checkout (the sources without dist/ or
 * .build/, node_modules as `npm ci` left it), installed from the tarball into an empty folder, run
 * through its bin, serving plugins that live in folders of their own over a real socket.
 *
 * Slow by nature (a full tsc build inside `npm pack`, an npm install): everything expensive happens
 * once in `before`, with timeouts sized for a loaded 2-core machine; nothing here measures time.
 * The install runs with --prefer-offline: the dependencies are in the npm cache after `npm ci`.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HELP_TEXT } from '../../src/options.js';
import { GatewaySimulator, routeConf } from '../support/gateway.js';
import { RunnerProcess } from '../support/runner-process.js';
import { expectOk } from './harness.js';

// Tests run from .build/test/e2e/.
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** Build output and local state a fresh clone does not have (.gitignore). */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.build', '.git', '.scratch', join('bench', 'results')]);
const SETUP_TIMEOUT_MS = 600_000;
const TEST_TIMEOUT_MS = 180_000;
const READY_TIMEOUT_MS = 60_000;

interface Output {
  stdout: string;
  stderr: string;
}

/**
 * npm run by `npm test` exports the outer project to its children (npm_config_local_prefix,
 * npm_package_*, npm_lifecycle_*): left in, the npm started here would act on the repository instead
 * of its cwd. Registry, cache and TLS settings (npm_config_*) stay.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (lower === 'init_cwd' || lower === 'npm_config_local_prefix') continue;
    if (lower.startsWith('npm_') && !lower.startsWith('npm_config_')) continue;
    env[key] = value;
  }
  return env;
}

function run(command: string, args: readonly string[], cwd: string): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: npmEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The plugin the README shows, taken from the README itself so the two cannot drift apart. */
function readmePlugin(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const block = /```js\n(\/\/ plugins\/add-header\.mjs\n[\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README.md shows plugins/add-header.mjs in a js block');
  return block[1]!;
}

/** A plugin that runs on a worker thread and says which one. */
const POOL_PLUGIN = `import { threadId } from 'node:worker_threads';
import { definePlugin } from 'apisix-node-runner';

export default definePlugin({
  name: 'which-thread',
  placement: 'pool',
  requestFilter(_conf, _req, res) {
    res.setHeader('x-thread', String(threadId));
  },
});
`;

describe('the packed and installed package', () => {
  let work = '';
  let installDir = '';
  let packedFiles: string[] = [];

  before(
    async () => {
      work = mkdtempSync(join(tmpdir(), 'anr-pack-'));
      const checkout = join(work, 'checkout');
      cpSync(REPO, checkout, {
        recursive: true,
        filter: (src) => {
          const rel = relative(REPO, src);
          if (NOT_IN_A_CLONE.has(rel.split(sep)[0]!) || NOT_IN_A_CLONE.has(rel)) return false;
          return !rel.endsWith('.sock') && !rel.endsWith('.log');
        },
      });
      symlinkSync(join(REPO, 'node_modules'), join(checkout, 'node_modules'), 'dir');
      const packed = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', work], checkout)).stdout) as [
        { filename: string; files: { path: string }[] },
      ];
      packedFiles = packed[0].files.map((f) => f.path);
      installDir = join(work, 'install');
      mkdirSync(installDir);
      writeFileSync(join(installDir, 'package.json'), JSON.stringify({ name: 'anr-install-check', private: true }));
      await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed[0].filename)], installDir);
    },
    { timeout: SETUP_TIMEOUT_MS },
  );

  after(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  /** A folder of its own (outside the install and the repository) holding `files`. */
  function folder(name: string, files: Readonly<Record<string, string>>): string {
    const dir = join(work, name);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  async function serve(t: TestContext, pluginDir: string): Promise<GatewaySimulator> {
    // The socket's folder inside `work`, so `after` removes it even when a start fails.
    const dir = mkdtempSync(join(work, 'runner-'));
    const runner = await RunnerProcess.start({
      dir,
      cliPath: join(installDir, 'node_modules', '.bin', 'apisix-node-runner'),
      args: ['--plugins', pluginDir, '--threads', '1'],
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    t.after(() => runner.cleanup());
    const gw = new GatewaySimulator({ socketPath: runner.socketPath, readTimeoutMs: 30_000 });
    t.after(() => gw.close());
    return gw;
  }

  test('npm pack ships the built code and the docs, no tests, sources or build state', { timeout: TEST_TIMEOUT_MS }, () => {
    for (const needed of ['package.json', 'README.md', 'LICENSE', 'dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'dist/workers/pool-worker.js', 'docs/plugin-api.md']) {
      assert.ok(packedFiles.includes(needed), `${needed} is in the tarball (${packedFiles.length} files)`);
    }
    const stray = packedFiles.filter((p) => !/^(package\.json|README\.md|LICENSE|dist\/.+|docs\/.+)$/.test(p));
    assert.deepEqual(stray, [], 'only package.json, README.md, LICENSE, dist/ and docs/');
  });

  test('npx apisix-node-runner --help prints the help and exits 0', { timeout: TEST_TIMEOUT_MS }, async () => {
    // --yes=false: never fetch a package of that name from the registry when the local bin is missing.
    const { stdout } = await run('npx', ['--yes=false', 'apisix-node-runner', '--help'], installDir);
    assert.equal(stdout, HELP_TEXT);
  });

  test('serves the README plugin from a folder without node_modules, on the main thread and a worker thread', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const plugins = folder('plugins', { 'add-header.mjs': readmePlugin(), 'which-thread.mjs': POOL_PLUGIN });
    const gw = await serve(t, plugins);
    const route = routeConf('route#1#ext-plugin-pre-req#1', [
      ['add-header', { value: 'from a plugin folder' }],
      ['which-thread', '{}'],
    ]);
    const result = expectOk(await gw.httpReqCall(route, { headers: [['x-debug', '1']] }));
    const headers = result.upstreamRequest!.headers;
    assert.deepEqual(headers['x-added'], ['from a plugin folder']);
    assert.ok(Number(headers['x-thread']![0]) > 0, `which-thread ran on a worker thread (threadId ${headers['x-thread']![0]})`);
  });

  test('serves plugins from a folder inside the project that installed the runner', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    // Here Node already finds the running copy in the project's node_modules: no hooks are installed.
    const plugins = join(installDir, 'plugins');
    mkdirSync(plugins);
    writeFileSync(join(plugins, 'which-thread.mjs'), POOL_PLUGIN);
    const gw = await serve(t, plugins);
    const result = expectOk(await gw.httpReqCall(routeConf('route#3#ext-plugin-pre-req#1', [['which-thread', '{}']]), {}));
    assert.ok(Number(result.upstreamRequest!.headers['x-thread']![0]) > 0, 'which-thread ran on a worker thread');
  });

  test('a plugin folder with its own node_modules: its packages resolve from there, apisix-node-runner is the runner itself', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const plugin = (name: string, placement: string) => `import { definePlugin } from 'apisix-node-runner';
import { greeting } from 'greeting';

export default definePlugin({
  name: '${name}',
  placement: '${placement}',
  requestFilter(_conf, _req, res) {
    res.setHeader('x-${name}', greeting);
  },
});
`;
    const plugins = folder('plugins-with-deps', {
      'inline.mjs': plugin('greet-inline', 'inline'),
      'pool.mjs': plugin('greet-pool', 'pool'),
      'node_modules/greeting/package.json': JSON.stringify({ name: 'greeting', version: '1.0.0', type: 'module', exports: './index.js' }),
      'node_modules/greeting/index.js': "export const greeting = 'hello from node_modules';\n",
      // A second copy of the API, as `npm install apisix-node-runner` for types would leave: the
      // plugins must get the runner's own definePlugin, never this one.
      'node_modules/apisix-node-runner/package.json': JSON.stringify({ name: 'apisix-node-runner', version: '0.0.1', type: 'module', exports: './index.js' }),
      'node_modules/apisix-node-runner/index.js': "export function definePlugin() { throw new Error('the plugin folder\\'s own apisix-node-runner was loaded'); }\n",
    });
    const gw = await serve(t, plugins);
    const route = routeConf('route#2#ext-plugin-pre-req#1', [
      ['greet-inline', '{}'],
      ['greet-pool', '{}'],
    ]);
    const result = expectOk(await gw.httpReqCall(route, {}));
    const headers = result.upstreamRequest!.headers;
    assert.deepEqual(headers['x-greet-inline'], ['hello from node_modules']);
    assert.deepEqual(headers['x-greet-pool'], ['hello from node_modules']);
  });
});
