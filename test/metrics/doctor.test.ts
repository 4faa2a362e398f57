/**
 * doctor with no runner answering on the endpoint: the setup checks against real socket files
 * (missing, a regular file, a stale socket left by a killed process, a live one with a closed
 * mode), and the command itself as a child process.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkSetup } from '../../src/metrics/doctor.js';
import { formatCheck, type Check } from '../../src/metrics/doctor-checks.js';
import { RunnerProcess } from '../support/runner-process.js';
import { runDoctor } from './doctor-cli.js';

/** A port nothing listens on: bound, read, closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function byId(checks: Check[], id: string): Check {
  const found = checks.find((c) => c.id === id);
  assert.ok(found, `${id} in ${checks.map((c) => c.id).join(', ')}`);
  return found;
}

describe('doctor: setup checks with no runner', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'anr-doctor-'));
    // mkdtemp makes 0700 directories: others could not reach a socket inside.
    chmodSync(dir, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a missing socket: the path and where it came from, then the troubleshooting words', async () => {
    const path = join(dir, 'missing.sock');
    const checks = await checkSetup({ APISIX_LISTEN_ADDRESS: `unix:${path}` }, undefined, 1000);
    assert.equal(formatCheck(byId(checks, 'listen-address')), `listen address: unix:${path} (from APISIX_LISTEN_ADDRESS): pass`);
    const exists = byId(checks, 'socket-exists');
    assert.equal(exists.verdict, 'fail');
    assert.equal(exists.text, `socket ${path}: does not exist`);
    assert.match(exists.fix!, /runner is not started, or the paths differ/);
    assert.match(exists.fix!, /path_for_test/);
    assert.equal(byId(checks, 'environment').verdict, 'not observed');
    assert.match(byId(checks, 'environment').fix!, /nginx_config\.envs/);
    assert.equal(byId(checks, 'allow-degradation').verdict, 'not observed');
    assert.ok(!checks.some((c) => c.id === 'socket-connectable'), 'nothing to connect to');
  });

  test('API7_LISTEN_ADDRESS is the fallback; with neither variable the default path is checked, with a warning', async () => {
    const path = join(dir, 'api7.sock');
    assert.equal(byId(await checkSetup({ API7_LISTEN_ADDRESS: `unix:${path}` }, undefined, 1000), 'listen-address').text, `listen address: unix:${path} (from API7_LISTEN_ADDRESS)`);
    const fallback = byId(await checkSetup({}, undefined, 1000), 'listen-address');
    assert.equal(fallback.verdict, 'warn');
    assert.equal(fallback.text, 'listen address: unix:/tmp/runner.sock (from default)');
    assert.match(fallback.fix!, /neither APISIX_LISTEN_ADDRESS nor API7_LISTEN_ADDRESS is set/);
    const bad = byId(await checkSetup({ APISIX_LISTEN_ADDRESS: 'tcp://127.0.0.1:1' }, undefined, 1000), 'listen-address');
    assert.equal(bad.verdict, 'fail');
    assert.match(bad.text, /only over Unix sockets/);
  });

  test('a regular file where the socket should be', async () => {
    const path = join(dir, 'file.sock');
    writeFileSync(path, 'not a socket');
    const exists = byId(await checkSetup({}, path, 1000), 'socket-exists');
    assert.equal(exists.verdict, 'fail');
    assert.equal(exists.text, `socket ${path}: is a regular file`);
  });

  test('a stale socket left by a killed process: connection refused', async () => {
    const path = join(dir, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.stdout.write('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const checks = await checkSetup({}, `unix:${path}`, 1000);
    assert.equal(byId(checks, 'socket-exists').verdict, 'pass');
    const connectable = byId(checks, 'socket-connectable');
    assert.equal(formatCheck(connectable).split(': ').slice(0, 3).join(': '), `socket ${path}: connection refused: fail`);
    assert.match(connectable.fix!, /stale socket file/);
  });

  test('a live socket: accepted; its mode decides whether the gateway\'s workers may connect', async (t) => {
    const path = join(dir, 'live.sock');
    const server: Server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(path, resolve));
    t.after(() => server.close());
    chmodSync(path, 0o766);
    let checks = await checkSetup({}, path, 1000);
    assert.equal(formatCheck(byId(checks, 'socket-connectable')), `socket ${path}: accepts connections: pass`);
    assert.equal(formatCheck(byId(checks, 'socket-permissions')), 'socket mode 0766: pass');
    chmodSync(path, 0o700);
    checks = await checkSetup({}, path, 1000);
    const closed = byId(checks, 'socket-permissions');
    assert.equal(closed.verdict, 'fail');
    assert.equal(closed.text, 'socket mode 0700');
    assert.match(closed.fix!, /--socket-mode 0766/);
    // A directory others cannot search hides even an open socket.
    chmodSync(path, 0o766);
    chmodSync(dir, 0o700);
    try {
      const hidden = byId(await checkSetup({}, path, 1000), 'socket-permissions');
      assert.equal(hidden.verdict, 'fail');
      assert.equal(hidden.text, `socket mode 0766, directories not searchable by others: ${dir}`);
    } finally {
      chmodSync(dir, 0o755);
    }
  });

  test('the command: no runner answering, a real runner without its endpoint, usage errors', async (t) => {
    const port = await closedPort();
    const missing = await runDoctor(['--metrics-addr', `127.0.0.1:${port}`, '--listen', join(dir, 'none.sock')]);
    assert.equal(missing.code, 1);
    const lines = missing.stdout.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^no runner answered at http://127\\.0\\.0\\.1:${port}/stats \\(.*ECONNREFUSED.*\\): checking the setup instead`));
    assert.ok(lines.includes(`listen address: unix:${join(dir, 'none.sock')} (from --listen): pass`), missing.stdout);
    assert.ok(lines.some((l) => l.startsWith(`socket ${join(dir, 'none.sock')}: does not exist: fail: `)), missing.stdout);

    // A runner started as the gateway starts it (the socket path in APISIX_LISTEN_ADDRESS).
    const runner = await RunnerProcess.start({ dir, socketPath: join(dir, 'runner.sock'), args: ['--threads', '0'] });
    t.after(() => runner.cleanup());
    const env = { APISIX_LISTEN_ADDRESS: `unix:${runner.socketPath}` };
    const healthy = await runDoctor(['--metrics-addr', `127.0.0.1:${port}`, '--json'], env);
    const report = JSON.parse(healthy.stdout) as { header: string; runner: unknown; checks: Check[] };
    assert.equal(report.runner, null);
    assert.deepEqual(
      report.checks.filter((c) => c.verdict !== 'not observed').map((c) => [c.id, c.verdict]),
      [
        ['listen-address', 'pass'],
        ['socket-exists', 'pass'],
        ['socket-connectable', 'pass'],
        ['socket-permissions', 'pass'],
      ],
    );
    assert.equal(healthy.code, 0);

    const usage = await runDoctor(['--bogus']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^apisix-node-runner doctor: .*--bogus/);
    const help = await runDoctor(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: apisix-node-runner doctor/);
  });
});
