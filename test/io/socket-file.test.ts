import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SocketPathError, SocketPathOccupiedError } from '../../src/errors.js';
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

/**
 * A socket file without a listener at `path`, as a SIGKILLed runner leaves it: bind at a short name
 * in the same directory, hard-link the inode to the path, then close (which unlinks only the bound name).
 */
async function staleSocket(path: string): Promise<void> {
  // A 2-byte name: the fallback test's directory leaves no room for more.
  const bound = join(dirname(path), '.z');
  const dead = createServer();
  await new Promise<void>((resolve) => dead.listen(bound, resolve));
  linkSync(bound, path);
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  assert.ok(lstatSync(path).isSocket());
}

test('takes over a stale socket that nobody listens on, and leaves no temporary file behind', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  await staleSocket(path);
  await assert.rejects(connect(t, path), { code: 'ECONNREFUSED' });

  const file = await listenOnSocketPath(namedServer(t, 'b'), path, 0o766);
  assert.ok(lstatSync(path).isSocket());
  assert.equal(file.path, path);
  assert.equal(file.atomic, true);
  assert.notEqual(file.boundPath, path);
  assert.equal(lstatSync(path, { bigint: true }).ino, file.ino);
  assert.equal(await askNew(t, path, 'hi'), 'b:hi');
  assert.deepEqual(readdirSync(dir), ['runner.sock']);
});

test('takes over a path where nothing is', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  await listenOnSocketPath(namedServer(t, 'n'), path, 0o766);
  assert.equal(await askNew(t, path, 'hi'), 'n:hi');
  assert.deepEqual(readdirSync(dir), ['runner.sock']);
});

/** Asserts the rejection of `path` as holding `kind`: the error names both, and the server is not left listening. */
async function assertRefused(server: Server, path: string, kind: string): Promise<void> {
  await assert.rejects(listenOnSocketPath(server, path, 0o766), (err: unknown) => {
    assert.ok(err instanceof SocketPathOccupiedError, String(err));
    assert.equal(err.code, 'ANR_ERR_SOCKET_PATH_OCCUPIED');
    assert.equal(err.path, path);
    assert.equal(err.kind, kind);
    assert.ok(err.message.includes(`${JSON.stringify(path)} is ${kind}, not a socket`), err.message);
    return true;
  });
  assert.equal(server.listening, false);
}

test('anything but a socket at the path is refused and left untouched', async (t) => {
  const dir = freshDir(t);
  const target = join(dir, 'precious.txt');
  writeFileSync(target, 'precious');
  const liveSocket = join(dir, 'live.sock');
  await listenOnSocketPath(namedServer(t, 'live'), liveSocket, 0o766);

  const cases: Array<[string, string, (path: string) => void]> = [
    ['regular file', 'a regular file', (path) => writeFileSync(path, 'my data')],
    ['empty regular file', 'a regular file', (path) => writeFileSync(path, '')],
    ['directory', 'a directory', (path) => mkdirSync(path)],
    ['symlink to a file', 'a symbolic link', (path) => symlinkSync(target, path)],
    // Renaming over a link replaces the link, not what it points to: the link is the operator's.
    ['symlink to a socket', 'a symbolic link', (path) => symlinkSync(liveSocket, path)],
    ['dangling symlink', 'a symbolic link', (path) => symlinkSync(join(dir, 'nowhere'), path)],
    ['fifo', 'a FIFO', (path) => execFileSync('mkfifo', [path])],
  ];
  for (const [name, kind, make] of cases) {
    const path = join(dir, `${name.replaceAll(' ', '-')}.sock`);
    make(path);
    const before = lstatSync(path, { bigint: true });
    const listing = readdirSync(dir).sort();
    await assertRefused(namedServer(t, 'x'), path, kind);
    const after = lstatSync(path, { bigint: true });
    assert.deepEqual([after.ino, after.mode, after.mtimeNs], [before.ino, before.mode, before.mtimeNs], name);
    if (after.isFile()) assert.equal(readFileSync(path, 'utf8'), name === 'regular file' ? 'my data' : '', name);
    assert.deepEqual(readdirSync(dir).sort(), listing, `${name}: no temporary file left behind`);
  }
  assert.equal(readFileSync(target, 'utf8'), 'precious');
  assert.equal(await askNew(t, liveSocket, 'still'), 'live:still');
});

test('a file that appears at the path while the socket is being bound is refused too (checked before the rename)', async (t) => {
  const dir = freshDir(t);
  const path = join(dir, 'runner.sock');
  const server = namedServer(t, 'late');
  // 'listening' fires once the temporary name is bound, before the takeover continues: the window
  // between the first check and the rename, where a file can appear.
  server.once('listening', () => writeFileSync(path, 'arrived late'));
  await assertRefused(server, path, 'a regular file');
  assert.equal(readFileSync(path, 'utf8'), 'arrived late');
  assert.deepEqual(readdirSync(dir), ['runner.sock'], 'the temporary socket is gone');
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

test('a missing directory, or a file as the directory: SocketPathError naming the path', async (t) => {
  const dir = freshDir(t);
  const cases: Array<[string, RegExp]> = [];

  const missing = join(dir, 'no-such-dir', 'runner.sock');
  cases.push([missing, /socket directory ".*no-such-dir" does not exist/]);

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
  assert.deepEqual(readdirSync(dir), ['plain-file']);
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
  await staleSocket(path);
  const file = await listenOnSocketPath(namedServer(t, 'l'), path, 0o766);
  assert.equal(file.atomic, true);
  assert.ok(Buffer.byteLength(file.boundPath) <= 107);
  assert.equal(await askNew(t, path, 'x'), 'l:x');
  assert.deepEqual(readdirSync(dir), ['apisix-1234.sock']);
});

test('with no room for a temporary name it falls back to unlink-then-bind at the path', async (t) => {
  const dir = dirOfLength(t, 104);
  const path = join(dir, 'r'); // 106 bytes: room for a 2-byte temporary name only
  await staleSocket(path);
  const file = await listenOnSocketPath(namedServer(t, 'f'), path, 0o700);
  assert.equal(file.atomic, false);
  assert.equal(file.boundPath, path);
  assert.equal(statSync(path).mode & 0o777, 0o700);
  assert.equal(await askNew(t, path, 'y'), 'f:y');
  assert.equal(file.release(), true);
});

test('the unlink-then-bind fallback refuses a regular file too', async (t) => {
  const dir = dirOfLength(t, 104);
  const path = join(dir, 'r');
  writeFileSync(path, 'my data');
  await assertRefused(namedServer(t, 'f'), path, 'a regular file');
  assert.equal(readFileSync(path, 'utf8'), 'my data');
  assert.deepEqual(readdirSync(dir), ['r']);
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
