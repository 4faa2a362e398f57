/**
 * The process lifecycle the gateway expects (DECISIONS.md 9-11, PROTOCOL.md §4.5), through the real
 * CLI as a child process: signals and draining, the socket path takeover on reload, socket mode,
 * the startup line, exiting with the parent.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { GatewaySimulator, routeConf } from '../support/gateway.js';
import { canConnect, CLI_PATH, RunnerProcess, type RunnerProcessOptions } from '../support/runner-process.js';
import { delay, EVENT_WAIT_MS, expectFailure, expectOk, FIXTURE_PLUGINS, until } from './harness.js';

const PLUGINS = ['--plugins', FIXTURE_PLUGINS];
/**
 * The gateway SIGKILLs its runner 1 s after SIGTERM. How long an exit takes depends on the machine,
 * so these tests check what makes it short (the drain is bounded by --drain-ms, an idle runner does
 * not wait for it, the exit is the runner's own: code 0, not a kill) and only report the time.
 */

async function startRunner(t: TestContext, options: RunnerProcessOptions = {}): Promise<RunnerProcess> {
  const runner = await RunnerProcess.start({ ...options, args: [...PLUGINS, ...(options.args ?? [])] });
  t.after(() => runner.cleanup());
  return runner;
}

function gateway(t: TestContext, socketPath: string): GatewaySimulator {
  const gw = new GatewaySimulator({ socketPath, readTimeoutMs: EVENT_WAIT_MS });
  t.after(() => gw.close());
  return gw;
}

const slowRoute = (delayMs: number) => routeConf(`route#slow#ext-plugin-pre-req#${delayMs}`, [['e2e-slow', { delayMs, announce: true }]]);
const whoami = routeConf('route#who#ext-plugin-pre-req#1', [['e2e-whoami', '{}']]);

async function whoAnswered(gw: GatewaySimulator): Promise<number> {
  const result = expectOk(await gw.httpReqCall(whoami, {}));
  return Number(result.clientResponse!.body!.toString());
}

describe('signals', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} with a call in flight that finishes within --drain-ms: its real reply, then exit 0`, async (t) => {
      // A drain window far longer than the call, so it finishes inside it however slow the machine;
      // the drain ends when the gateway's last connection closes.
      const runner = await startRunner(t, { args: ['--drain-ms', '20000'] });
      const gw = gateway(t, runner.socketPath);
      const pending = gw.httpReqCall(slowRoute(250), {});
      await runner.waitForLog((l) => l.e2e === 'slow-start');
      const stopping = runner.stop(signal);
      const result = expectOk(await pending);
      assert.equal(result.clientResponse?.body?.toString(), 'slow 250 ms done');
      gw.close();
      const stopped = await stopping;
      assert.deepEqual([stopped.code, stopped.signal], [0, null], runner.stderrLines.join('\n'));
      t.diagnostic(`exited ${Math.round(stopped.durationMs)} ms after ${signal}`);
      const line = runner.logs().find((l) => String(l.msg).includes(`stopped (${signal})`));
      assert.ok(line, 'the shutdown line');
      assert.equal(line.level, 'warn');
      assert.ok(!existsSync(runner.socketPath), 'its own socket file is removed');
    });
  }

  test('SIGTERM with a call that outlasts --drain-ms: SERVICE_UNAVAILABLE at the end of the drain, then exit 0', async (t) => {
    const runner = await startRunner(t);
    const gw = gateway(t, runner.socketPath);
    const pending = gw.httpReqCall(slowRoute(5000), {});
    await runner.waitForLog((l) => l.e2e === 'slow-start');
    const signalledAt = performance.now();
    const stopping = runner.stop('SIGTERM');
    const result = expectFailure(await pending);
    const answeredAfter = performance.now() - signalledAt;
    assert.equal(result.error, 'service unavailable');
    // Not before the drain ends (the plugin's 5 s would have given its real reply, not this one).
    assert.ok(answeredAfter >= 700, `cut off after the 800 ms drain, not before (${Math.round(answeredAfter)} ms)`);
    const stopped = await stopping;
    assert.deepEqual([stopped.code, stopped.signal], [0, null], runner.stderrLines.join('\n'));
    t.diagnostic(`answered after ${Math.round(answeredAfter)} ms, exited ${Math.round(stopped.durationMs)} ms after SIGTERM`);
  });

  test('an idle runner (its connections closed) exits at once on SIGTERM, without waiting for the drain', async (t) => {
    // A drain window longer than the test waits for the exit: only a runner that skips it passes.
    const runner = await startRunner(t, { args: ['--log-level', 'debug', '--drain-ms', '60000'] });
    const gw = gateway(t, runner.socketPath);
    expectOk(await gw.httpReqCall(whoami, {}));
    gw.close();
    const count = (msg: string) => runner.logs().filter((l) => l.msg === msg).length;
    await until(() => count('connection closed') === count('connection opened'), EVENT_WAIT_MS, 'the runner to see every connection close');
    const stopped = await runner.stop('SIGTERM', EVENT_WAIT_MS);
    assert.deepEqual([stopped.code, stopped.signal], [0, null]);
    t.diagnostic(`exited ${Math.round(stopped.durationMs)} ms after SIGTERM`);
  });

  test('a SIGTERM as soon as the socket exists is a clean shutdown (exit 0, socket removed), not a kill', async (t) => {
    // A gateway reload can come at any moment after the runner starts serving. Signalled the moment
    // the socket file appears (fs.watch on its directory), so the runner is at the end of its startup.
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'anr-e2e-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const socketPath = join(dir, 'runner.sock');
      const watcher = watch(dir);
      const appeared = new Promise<void>((resolve) => watcher.on('change', (_event, file) => file === 'runner.sock' && resolve()));
      const runner = await startRunner(t, { socketPath, ready: 'none' });
      await appeared;
      watcher.close();
      const stopped = await runner.stop('SIGTERM');
      assert.deepEqual(
        [stopped.code, stopped.signal],
        [0, null],
        `try ${i + 1}: ended by the default SIGTERM action (no handler installed yet); socket file left behind: ${existsSync(socketPath)}`,
      );
      assert.ok(!existsSync(socketPath));
    }
  });
});

describe('socket path', () => {
  test('a second runner on the same path: old connections stay on the old one, new ones go to the new one; the old one leaves the new socket alone', async (t) => {
    const first = await startRunner(t, { args: ['--drain-ms', '200'] });
    const oldGateway = gateway(t, first.socketPath);
    assert.equal(await whoAnswered(oldGateway), first.pid);

    const second = await startRunner(t, { socketPath: first.socketPath });
    const inode = statSync(second.socketPath).ino;
    // The old gateway worker's pooled connection still reaches the first runner.
    assert.equal(await whoAnswered(oldGateway), first.pid);
    assert.equal(await whoAnswered(gateway(t, first.socketPath)), second.pid);

    const stopped = await first.stop('SIGTERM');
    assert.equal(stopped.code, 0);
    assert.ok(existsSync(second.socketPath), 'the exiting runner did not delete the new socket (apache/apisix#11347)');
    assert.equal(statSync(second.socketPath).ino, inode);
    assert.equal(await whoAnswered(gateway(t, second.socketPath)), second.pid);
    rmSync(first.dir, { recursive: true, force: true });
  });

  for (const listenVia of ['flag', 'env'] as const) {
    const source = listenVia === 'flag' ? '--listen' : 'APISIX_LISTEN_ADDRESS';
    test(`a regular file named by ${source} is not replaced: exit 1 naming it, its content unchanged`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'anr-e2e-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const path = join(dir, 'notes.txt');
      writeFileSync(path, 'an operator\'s notes\n');
      const runner = await RunnerProcess.start({ socketPath: path, listenVia, ready: 'none', args: PLUGINS });
      t.after(() => runner.cleanup());
      // Before the fix it served on the path: notice that at once instead of waiting for an exit.
      const served = runner.waitForLog((l) => String(l.msg).includes('listening on'), 60_000).then(
        () => true,
        () => false,
      );
      const exit = await Promise.race([runner.exited, served.then((yes) => (yes ? null : runner.exited))]);
      assert.ok(exit !== null, `the runner took the file over: ${readdirSync(dir).join(', ')}`);
      const stderr = runner.stderrLines.join('\n');
      assert.deepEqual([exit.code, exit.signal], [1, null], stderr);
      assert.ok(stderr.includes(`socket path ${JSON.stringify(path)} is a regular file, not a socket`), stderr);
      assert.equal(readFileSync(path, 'utf8'), 'an operator\'s notes\n');
      assert.deepEqual(readdirSync(dir), ['notes.txt'], 'no temporary socket left behind');
    });
  }

  test('nothing, then a dead runner\'s socket, at the path are taken over', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'anr-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'runner.sock');
    const runner = await startRunner(t, { socketPath: path });
    assert.ok(statSync(path).isSocket());
    expectOk(await gateway(t, path).httpReqCall(whoami, {}));

    // SIGKILL leaves the socket file behind, refusing connections.
    await runner.kill();
    assert.ok(existsSync(path));
    assert.equal(await canConnect(path), false);
    const next = await startRunner(t, { socketPath: path });
    assert.equal(await whoAnswered(gateway(t, path)), next.pid);
  });

  test('socket mode 0766 by default, --socket-mode 0700 when asked', async (t) => {
    const [byDefault, strict] = await Promise.all([startRunner(t), startRunner(t, { args: ['--socket-mode', '0700'] })]);
    assert.equal(statSync(byDefault.socketPath).mode & 0o777, 0o766);
    assert.equal(statSync(strict.socketPath).mode & 0o777, 0o700);
    expectOk(await gateway(t, strict.socketPath).httpReqCall(whoami, {}));
  });

  test('the startup line (warn) names the socket path and where it came from', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'anr-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [fromEnv, fromFlag, fromApi7] = await Promise.all([
      startRunner(t, { env: { APISIX_CONF_EXPIRE_TIME: '1800' } }),
      startRunner(t, { listenVia: 'flag' }),
      startRunner(t, { listenVia: 'none', socketPath: join(dir, 'api7.sock'), env: { API7_LISTEN_ADDRESS: `unix:${join(dir, 'api7.sock')}` } }),
    ]);
    const cases: Array<[RunnerProcess, string]> = [
      [fromEnv, 'APISIX_LISTEN_ADDRESS'],
      [fromFlag, '--listen'],
      [fromApi7, 'API7_LISTEN_ADDRESS'],
    ];
    for (const [runner, source] of cases) {
      const line = runner.logs().find((l) => l.socketPath === runner.socketPath);
      assert.ok(line, `startup line of the ${source} runner`);
      assert.equal(line.level, 'warn');
      assert.equal(line.listenSource, source);
      assert.ok(String(line.msg).includes(`unix:${runner.socketPath}`), String(line.msg));
      assert.ok(String(line.msg).includes(source), String(line.msg));
    }
    const envLine = fromEnv.logs().find((l) => l.socketPath === fromEnv.socketPath)!;
    assert.equal(envLine.confExpireSeconds, 1800);
    assert.equal(envLine.confExpireSource, 'APISIX_CONF_EXPIRE_TIME');
    // Started by hand (--listen): the config snippet for the gateway goes to stdout.
    await until(() => fromFlag.stdout.includes('path_for_test'), EVENT_WAIT_MS, 'the gateway config snippet');
    assert.ok(fromFlag.stdout.includes(fromFlag.socketPath));
  });
});

describe('parent process', () => {
  /**
   * Starts an intermediate node process that spawns the runner (sharing its stdout/stderr pipes) and
   * prints the runner's pid. Resolves once the runner serves.
   */
  async function spawnViaParent(t: TestContext, extraArgs: string[]) {
    const dir = mkdtempSync(join(tmpdir(), 'anr-e2e-'));
    const socketPath = join(dir, 'runner.sock');
    const script = [
      "const { spawn } = require('node:child_process');",
      "const child = spawn(process.execPath, process.argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });",
      "process.stdout.write(String(child.pid) + '\\n');",
      'setInterval(() => {}, 60000);',
    ].join('\n');
    const parent = spawn(process.execPath, ['-e', script, CLI_PATH, 'run', ...PLUGINS, ...extraArgs], {
      env: { PATH: process.env.PATH ?? '', APISIX_LISTEN_ADDRESS: `unix:${socketPath}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    parent.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    parent.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    // 'close': every holder of the pipes is gone, i.e. the runner has exited too.
    const pipesClosed = new Promise<void>((resolve) => parent.once('close', () => resolve()));
    let runnerPid = 0;
    t.after(async () => {
      parent.kill('SIGKILL');
      if (runnerPid > 0 && isAlive(runnerPid)) process.kill(runnerPid, 'SIGKILL');
      await pipesClosed;
      rmSync(dir, { recursive: true, force: true });
    });
    await until(() => stdout.includes('\n'), EVENT_WAIT_MS, 'the runner pid');
    runnerPid = Number(stdout.trim());
    await until(() => stderr.includes('listening on'), EVENT_WAIT_MS, 'the runner startup line');
    await until(() => existsSync(socketPath), EVENT_WAIT_MS, 'the socket');
    assert.ok(await canConnect(socketPath));
    return { parent, runnerPid, socketPath, pipesClosed, stderr: () => stderr };
  }

  test('the runner exits by itself when its parent dies (and stays with --no-exit-with-parent)', async (t) => {
    const [bound, free] = await Promise.all([spawnViaParent(t, []), spawnViaParent(t, ['--no-exit-with-parent'])]);
    const killedAt = performance.now();
    bound.parent.kill('SIGKILL');
    free.parent.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      bound.pipesClosed,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`the runner outlived its parent by ${EVENT_WAIT_MS} ms`)), EVENT_WAIT_MS))),
    ]);
    clearTimeout(timer);
    t.diagnostic(`exited ${Math.round(performance.now() - killedAt)} ms after its parent`);
    assert.ok(!isAlive(bound.runnerPid), 'the runner process is gone');
    assert.match(bound.stderr(), /stopped \(parent-exit\)/);
    assert.ok(!existsSync(bound.socketPath), 'and removed its socket');

    // The --no-exit-with-parent runner is still serving well past the same point. Showing that
    // something does not happen takes a wait: longer than the 500 ms parent poll, so a runner that
    // did watch its parent would most likely have seen it gone (the wait can miss a bug on a slow
    // machine, never fail a correct runner).
    await delay(600);
    assert.ok(isAlive(free.runnerPid));
    assert.ok(await canConnect(free.socketPath));
    process.kill(free.runnerPid, 'SIGTERM');
    await free.pipesClosed;
  });
});

/** Whether `pid` is a live process (a zombie waiting for its new parent to reap it counts as gone). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
