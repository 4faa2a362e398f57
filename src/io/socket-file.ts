/**
 * Taking over and releasing the socket path (DECISIONS.md 10, PROTOCOL.md §4.5 "reload race").
 *
 * On a gateway reload the new privileged agent spawns the next runner on the SAME path while the
 * old runner still serves its open connections and has up to 1 s before SIGKILL. So:
 * - startup takes the path over atomically: bind a temporary socket in the same directory with the
 *   final mode, then rename() it over the path. A gateway worker connecting during the takeover
 *   finds either the old socket or the new one, never no file (unlink-then-bind leaves a gap where
 *   connects fail with ENOENT);
 * - only a socket is ever replaced (a previous runner's, live or stale): anything else at the path
 *   (an operator's file passed to `--listen` by mistake, a directory, a symlink) is refused with
 *   SocketPathOccupiedError and left untouched;
 * - exit removes the path only if it is still our inode. The exiting runner deleting the next
 *   runner's socket is apache/apisix#11347 ("apisix reload sometimes causes the plug-in's sock file
 *   to disappear").
 *
 * libuv fact this relies on: closing a Unix-socket server unlinks the path the handle was BOUND to
 * (`uv__pipe_close` calls `unlink(handle->pipe_fname)`). Here that is the temporary name, which the
 * rename already removed, so `server.close()` is harmless: it can never delete the real path, whoever
 * owns it by then. Only in the fallback (no room for a temporary name, see `boundPath`) is the bound
 * path the real one.
 */
import { randomBytes } from 'node:crypto';
import { type BigIntStats, chmodSync, lstatSync, renameSync, type Stats, statSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { SocketPathError, SocketPathOccupiedError } from '../errors.js';
import { MAX_SOCKET_PATH_BYTES } from '../options.js';
/** A temporary name that collides with an existing file is retried with fresh randomness. */
const TEMP_NAME_ATTEMPTS = 5;

/** A socket file served by this process. */
export interface SocketFile {
  /** The socket path served (without `unix:`). */
  readonly path: string;
  /**
   * The path the server handle is bound to, which libuv unlinks when the server closes: a temporary
   * name that no longer exists after the takeover, or `path` itself in the non-atomic fallback (then
   * closing the server can delete a successor's socket; see `atomic`).
   */
  readonly boundPath: string;
  /** Whether the takeover was an atomic rename (true unless the directory left no room for a temporary name). */
  readonly atomic: boolean;
  /** Device and inode of our socket file; `release()` compares them with what is at `path`. */
  readonly dev: bigint;
  readonly ino: bigint;
  /** The file mode (permission bits) the socket was created with. */
  readonly mode: number;
  /**
   * Unlinks `path` if it is still our socket (same dev and inode), and returns whether it did. A
   * different inode is the next runner's socket and is left alone. Never throws; idempotent.
   */
  release(): boolean;
}

/**
 * Makes `server` listen on the Unix socket `path` with file mode `mode`, replacing the socket that
 * is there, if any (a stale one, or a previous runner's live one). A startup failure (exit 1) when:
 * @throws SocketPathOccupiedError (`ANR_ERR_SOCKET_PATH_OCCUPIED`) naming the path and what is
 *   there, when it is not a socket; nothing is touched.
 * @throws SocketPathError (`ANR_ERR_SOCKET_PATH`) naming the path, when it is not absolute or too
 *   long, its directory is missing or not a directory, or the socket cannot be created there.
 */
export async function listenOnSocketPath(server: Server, path: string, mode: number): Promise<SocketFile> {
  checkPath(path);
  const dir = dirname(path);

  let boundPath: string | null = null;
  for (let attempt = 0; attempt < TEMP_NAME_ATTEMPTS && boundPath === null; attempt++) {
    const temp = tempPath(dir, path);
    if (temp === null) break;
    try {
      await bindWithMode(server, temp, mode);
      boundPath = temp;
    } catch (err) {
      // EADDRINUSE: a file already has this temporary name; never unlink it, it is not ours.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw bindError(path, err);
    }
  }

  const atomic = boundPath !== null;
  if (boundPath === null) {
    // Fallback when the directory's path is so long that no temporary name fits in 107 bytes:
    // unlink-then-bind, with a short window where the path is missing. Checked again right before
    // the unlink, with the same remaining race as the rename below.
    refuseNonSocket(path);
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw bindError(path, err);
    }
    try {
      await bindWithMode(server, path, mode);
    } catch (err) {
      throw bindError(path, err);
    }
    boundPath = path;
  }

  let stats: BigIntStats;
  try {
    stats = applyMode(boundPath, mode);
    if (atomic) {
      // Checked again right before the rename, which replaces whatever it finds: the first check
      // ran before the bind. Still racy: a file created at the path between this lstat and the
      // rename (microseconds) is replaced. POSIX has no "rename only over a socket"; Linux
      // renameat2's RENAME_NOREPLACE would also refuse the previous runner's socket, which a reload
      // must replace, and RENAME_EXCHANGE (swap, inspect, swap back) is not exposed by Node.
      // Acceptable: only a process allowed to write to this directory can create that file, and it
      // could as well delete it; the data loss this prevents, a --listen or APISIX_LISTEN_ADDRESS
      // naming an existing file, is no race.
      refuseNonSocket(path);
      renameSync(boundPath, path);
    }
  } catch (err) {
    // Closing unlinks the temporary name (libuv), so nothing is left behind.
    server.close();
    if (err instanceof SocketPathOccupiedError) throw err;
    throw new SocketPathError(`cannot take over the socket path ${JSON.stringify(path)}: ${describeFsError(err)}`, {
      cause: err,
    });
  }

  // rename() keeps the inode, so the stats taken at the temporary name identify our file even if
  // another runner has already renamed its own socket over `path` since.
  const { dev, ino } = stats;
  let released = false;
  return Object.freeze({
    path,
    boundPath,
    atomic,
    dev,
    ino,
    mode,
    release(): boolean {
      if (released) return false;
      try {
        const current = lstatSync(path, { bigint: true });
        if (current.dev !== dev || current.ino !== ino) return false;
        // A successor could rename its socket over the path between this lstat and the unlink; POSIX
        // has no unlink-if-inode, and the window is a few microseconds at the very end of a drain.
        unlinkSync(path);
        released = true;
        return true;
      } catch {
        return false;
      }
    },
  });
}

function checkPath(path: string): void {
  if (!isAbsolute(path)) {
    throw new SocketPathError(`socket path must be absolute (got ${JSON.stringify(path)})`);
  }
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new SocketPathError(
      `socket path must be at most ${MAX_SOCKET_PATH_BYTES} bytes, the Linux sun_path limit (got ${bytes} bytes: ${JSON.stringify(path)})`,
    );
  }
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) {
      throw new SocketPathError(`socket directory ${JSON.stringify(dir)} is not a directory (socket path ${JSON.stringify(path)})`);
    }
  } catch (err) {
    if (err instanceof SocketPathError) throw err;
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be used: ${describeFsError(err)}`;
    throw new SocketPathError(`socket directory ${JSON.stringify(dir)} ${reason} (socket path ${JSON.stringify(path)})`, {
      cause: err,
    });
  }
  refuseNonSocket(path);
}

/**
 * Throws SocketPathOccupiedError when something other than a socket is at `path`. `lstat`, not
 * `stat`: a symbolic link is refused even when it points to a socket, since renaming over it
 * replaces the link, which the operator made on purpose.
 */
function refuseNonSocket(path: string): void {
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    // Unknown is not "nothing": replacing it could destroy a file.
    throw new SocketPathError(`cannot inspect the socket path ${JSON.stringify(path)}: ${describeFsError(err)}`, { cause: err });
  }
  if (!stats.isSocket()) throw new SocketPathOccupiedError(path, fileKind(stats));
}

function fileKind(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'a file of unknown type';
}

/**
 * A fresh name in `dir` of at most 107 bytes, or null when none fits. Preferably `.anr-<pid>-<random>`
 * (pid in base 36, so an operator can tell whose leftover it is); else a dot and as much randomness
 * as fits, at least 4 characters; a successful bind never leaves it behind either way.
 */
function tempPath(dir: string, path: string): string | null {
  const room = MAX_SOCKET_PATH_BYTES - Buffer.byteLength(dir) - 1;
  const random = randomBytes(8).toString('hex');
  const preferred = `.anr-${process.pid.toString(36)}-${random.slice(0, 8)}`;
  if (preferred.length <= room) return join(dir, preferred);
  const short = `.${random.slice(0, Math.min(room - 1, 12))}`;
  if (short.length >= 5 && join(dir, short) !== path) return join(dir, short);
  return null;
}

/**
 * `server.listen()` on a pipe binds synchronously (net.Server#_listen2 -> Pipe#bind in the primary
 * process), so a umask set around the call applies to the socket file as the kernel creates it:
 * there is no moment where the file exists with a looser or tighter mode. The umask is process-wide
 * (worker threads included), which is why it is restored in the same synchronous block.
 */
function bindWithMode(server: Server, path: string, mode: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    const previous = process.umask(0o777 & ~mode);
    try {
      server.listen(path);
    } catch (err) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(err);
    } finally {
      process.umask(previous);
    }
  });
}

/**
 * Verifies the mode the umask produced. A directory with a default ACL ignores the umask, so chmod
 * when it differs (the file is not yet at its public path when the takeover is atomic).
 */
function applyMode(path: string, mode: number): BigIntStats {
  let stats = lstatSync(path, { bigint: true });
  if ((Number(stats.mode) & 0o777) !== mode) {
    chmodSync(path, mode);
    stats = lstatSync(path, { bigint: true });
  }
  return stats;
}

function bindError(path: string, err: unknown): SocketPathError {
  return new SocketPathError(`cannot listen on the socket path ${JSON.stringify(path)}: ${describeFsError(err)}`, {
    cause: err,
  });
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e && typeof e.code === 'string' ? `${e.code} (${e.message})` : String(err);
}
