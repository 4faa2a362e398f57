import { strict as assert } from 'node:assert';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SocketPathError } from '../../src/errors.js';
import { listenOnSocketPath } from '../../src/io/socket-file.js';

/** A fresh directory per test, removed with everything in it at the end. */
function freshDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'anr-sock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A server answering `<name>:<what it received>`, torn down (connections first) at the end of the test. */
function namedServer(t: TestContext, name: string): Server {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (data) => socket.write(`${name}:${data.toString()}`));
  });
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return server;
}

function connect(t: TestContext, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      t.after(() => socket.destroy());
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function ask(socket: Socket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (data) => {
      socket.off('error', reject);
      resolve(data.toString());
    });
    socket.once('error', reject);
    socket.write(message);
  });
}

async function askNew(t: TestContext, path: string, message: string): Promise<string> {
  return ask(await connect(t, path), message);
}

function currentUmask(): number {
  // process.umask() without an argument is deprecated (DEP0139); set and restore instead.
  const mask = process.umask(0o022);
  process.umask(mask);
  return mask;
}

test('takes over a stale regular file and leaves no temporary file behind', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  writeFileSync(path, 'stale');

  const file = await listenOnSocketPath(namedServer(t, 'a'), path, 0o766);
  assert.ok(lstatSync(path).isSocket());
  assert.equal(file.path, path);
  assert.equal(file.atomic, true);
  assert.notEqual(file.boundPath, path);
  assert.equal(lstatSync(path, { bigint: true }).ino, file.ino);
  assert.equal(await askNew(t, path, 'hi'), 'a:hi');
  assert.deepEqual(readdirSync(dir), ['runner.sock']);
});

test('takes over a stale socket that nobody listens on', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  // A socket file without a listener, as a SIGKILLed runner leaves it: bind elsewhere, hard-link
  // the inode to the path, then close (which unlinks only the bound name).
  const dead = createServer();
  await new Promise<void>((resolve) => dead.listen(join(dir, 'dead.sock'), resolve));
  linkSync(join(dir, 'dead.sock'), path);
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  assert.ok(lstatSync(path).isSocket());
  await assert.rejects(connect(t, path), { code: 'ECONNREFUSED' });

  await listenOnSocketPath(namedServer(t, 'b'), path, 0o766);
  assert.equal(await askNew(t, path, 'hi'), 'b:hi');
  assert.deepEqual(readdirSync(dir), ['runner.sock']);
});

for (const mode of [0o766, 0o700, 0o600, 0o777]) {
  test(`creates the socket with mode 0${mode.toString(8)} and restores the umask`, async (t) => {
    const dir = freshDir(t);
    const path = join(dir, 'runner.sock');
    const umaskBefore = currentUmask();
    const file = await listenOnSocketPath(namedServer(t, 'm'), path, mode);
    assert.equal(statSync(path).mode & 0o777, mode);
    assert.equal(file.mode, mode);
    assert.equal(currentUmask(), umaskBefore);
  });
}

test('the mode does not depend on the process umask', async (t) => {
  const dir = freshDir(t);
  const previous = process.umask(0o077);
  t.after(() => process.umask(previous));
  await listenOnSocketPath(namedServer(t, 'u'), join(dir, 'runner.sock'), 0o766);
  assert.equal(statSync(join(dir, 'runner.sock')).mode & 0o777, 0o766);
  assert.equal(currentUmask(), 0o077);
});

test('a second runner takes over while the first still serves its open connection', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  const oldServer = namedServer(t, 'old');
  const oldFile = await listenOnSocketPath(oldServer, path, 0o766);
  const oldConnection = await connect(t, path);
  assert.equal(await ask(oldConnection, '1'), 'old:1');

  const newServer = namedServer(t, 'new');
  const newFile = await listenOnSocketPath(newServer, path, 0o766);
  assert.notEqual(newFile.ino, oldFile.ino);

  // Both keep working on their own connections; new connections reach the new runner.
  const newConnection = await connect(t, path);
  assert.equal(await ask(newConnection, '2'), 'new:2');
  assert.equal(await ask(oldConnection, '3'), 'old:3');
  assert.equal(await askNew(t, path, '4'), 'new:4');

  // The old runner exits: release() must not remove the new runner's socket...
  assert.equal(oldFile.release(), false);
  assert.equal(lstatSync(path, { bigint: true }).ino, newFile.ino);
  // ...and neither must closing its server (libuv unlinks the bound name, the gone temporary one).
  oldConnection.destroy();
  await new Promise<void>((resolve, reject) => oldServer.close((err) => (err ? reject(err) : resolve())));
  assert.equal(lstatSync(path, { bigint: true }).ino, newFile.ino);
  assert.equal(await askNew(t, path, '5'), 'new:5');
  assert.equal(await ask(newConnection, '6'), 'new:6');

  // The current owner's release removes the path, once.
  assert.equal(newFile.release(), true);
  assert.throws(() => lstatSync(path), { code: 'ENOENT' });
  assert.equal(newFile.release(), false);
  assert.deepEqual(readdirSync(dir), []);
});

test('release() returns false when the path is gone or is another file, and never throws', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  const file = await listenOnSocketPath(namedServer(t, 'r'), path, 0o766);
  rmSync(path);
  assert.equal(file.release(), false);
  writeFileSync(path, 'someone else');
  assert.equal(file.release(), false);
  assert.equal(lstatSync(path).isFile(), true);
  rmSync(dir, { recursive: true });
  assert.equal(file.release(), false);
});

test('a missing directory, a directory at the path, or a file as the directory: SocketPathError naming the path', async (t) => {
  const dir = freshDir(t);
  const cases: Array<[string, RegExp]> = [];

  const missing = join(dir, 'no-such-dir', 'runner.sock');
  cases.push([missing, /socket directory ".*no-such-dir" does not exist/]);

  const isDir = join(dir, 'a-directory');
  mkdirSync(isDir);
  cases.push([isDir, /is a directory/]);

  writeFileSync(join(dir, 'plain-file'), '');
  const underFile = join(dir, 'plain-file', 'runner.sock');
  cases.push([underFile, /is not a directory/]);

  for (const [path, pattern] of cases) {
    const server = namedServer(t, 'e');
    await assert.rejects(listenOnSocketPath(server, path, 0o766), (err: unknown) => {
      assert.ok(err instanceof SocketPathError);
      assert.equal(err.code, 'ANR_ERR_SOCKET_PATH');
      assert.match(err.message, pattern);
      assert.ok(err.message.includes(JSON.stringify(path)), err.message);
      return true;
    });
    assert.equal(server.listening, false);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['a-directory', 'plain-file']);
});

/** A directory under a fresh temp dir whose path is exactly `bytes` long. */
function dirOfLength(t: TestContext, bytes: number): string {
  const base = freshDir(t);
  const dir = join(base, 'd'.repeat(bytes - base.length - 1));
  assert.equal(Buffer.byteLength(dir), bytes);
  mkdirSync(dir);
  return dir;
}

test('a 107-byte path still gets an atomic takeover through a shorter temporary name', async (t) => {
  const dir = dirOfLength(t, 90);
  const path = join(dir, 'apisix-1234.sock'); // 90 + 1 + 16 = 107 bytes
  assert.equal(Buffer.byteLength(path), 107);
  writeFileSync(path, 'stale');
  const file = await listenOnSocketPath(namedServer(t, 'l'), path, 0o766);
  assert.equal(file.atomic, true);
  assert.ok(Buffer.byteLength(file.boundPath) <= 107);
  assert.equal(await askNew(t, path, 'x'), 'l:x');
  assert.deepEqual(readdirSync(dir), ['apisix-1234.sock']);
});

test('with no room for a temporary name it falls back to unlink-then-bind at the path', async (t) => {
  const dir = dirOfLength(t, 104);
  const path = join(dir, 'r'); // 106 bytes: room for a 2-byte temporary name only
  writeFileSync(path, 'stale');
  const file = await listenOnSocketPath(namedServer(t, 'f'), path, 0o700);
  assert.equal(file.atomic, false);
  assert.equal(file.boundPath, path);
  assert.equal(statSync(path).mode & 0o777, 0o700);
  assert.equal(await askNew(t, path, 'y'), 'f:y');
  assert.equal(file.release(), true);
});

test('a path over 107 bytes is refused before touching the filesystem', async (t) => {
  const dir = dirOfLength(t, 100);
  const path = join(dir, 'runner.s'); // 109 bytes
  await assert.rejects(listenOnSocketPath(namedServer(t, 'z'), path, 0o766), (err: unknown) => {
    assert.ok(err instanceof SocketPathError);
    assert.match(err.message, /107 bytes, the Linux sun_path limit/);
    return true;
  });
  assert.deepEqual(readdirSync(dir), []);
});
