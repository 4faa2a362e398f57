/** The Unix-socket listener: accepts gateway connections and drains them on shutdown (DECISIONS 11). */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RunnerMetrics } from '../metrics/runner-metrics.js';
import { Connection, type FrameHandler } from './connection.js';
import { listenOnSocketPath, type SocketFile } from './socket-file.js';

export interface ServerStats {
  connectionsOpened: number;
  connectionsClosed: number;
  callsAnswered: number;
}

export class RunnerServer {
  readonly stats: ServerStats = { connectionsOpened: 0, connectionsClosed: 0, callsAnswered: 0 };
  #server: Server;
  #handler: FrameHandler;
  #log: Logger;
  #connections = new Set<Connection>();
  #nextId = 1;
  #socketFile: SocketFile | null = null;
  #draining: { check: () => void } | null = null;
  readonly #metrics: RunnerMetrics | null;

  constructor(handler: FrameHandler, logger: Logger, metrics: RunnerMetrics | null = null) {
    this.#handler = handler;
    this.#log = logger;
    this.#metrics = metrics;
    this.#server = createServer({ allowHalfOpen: false }, (socket) => this.#accept(socket));
    this.#server.on('error', (err) => this.#log.error({ err }, 'listener error'));
  }

  get connections(): number {
    return this.#connections.size;
  }

  get callsInFlight(): number {
    let n = 0;
    for (const c of this.#connections) if (c.busy) n++;
    return n;
  }

  async listen(path: string, mode: number): Promise<SocketFile> {
    this.#socketFile = await listenOnSocketPath(this.#server, path, mode);
    return this.#socketFile;
  }

  #accept(socket: Socket): void {
    const connection = new Connection(this.#nextId++, socket, this.#handler, this.#hooks, this.#metrics);
    this.#connections.add(connection);
    this.stats.connectionsOpened++;
    this.#log.debug({ conn: connection.id }, 'connection opened');
  }

  #hooks = {
    onCallDone: (): void => {
      this.stats.callsAnswered++;
      this.#draining?.check();
    },
    onClose: (connection: Connection): void => {
      this.#connections.delete(connection);
      this.stats.connectionsClosed++;
      this.#metrics?.connectionClosed(connection.calls);
      this.#log.debug({ conn: connection.id, calls: connection.calls }, 'connection closed');
      this.#draining?.check();
    },
  };

  /**
   * Stop accepting, keep serving calls on open connections until they all close or `drainMs`
   * passes, then answer whatever is still in flight SERVICE_UNAVAILABLE and close everything.
   * Resolves with the number of calls that were cut off.
   */
  async shutdown(drainMs: number): Promise<number> {
    // libuv unlinks the path a listener was bound to when it closes. After an atomic takeover that
    // is the temporary name, long gone; in the non-atomic fallback it is the public path, which a
    // newer runner may own by now: then leave the listener open (nothing can reach it through the
    // path any more) rather than delete the successor's socket. release() removes ours if still ours.
    const file = this.#socketFile;
    if (file === null || file.atomic) {
      this.#server.close();
      file?.release();
    } else if (file.release()) {
      this.#server.close();
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, drainMs);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#draining = {
        check: () => {
          if (this.#connections.size === 0) finish();
        },
      };
      this.#draining.check();
    });
    const cutOff = this.callsInFlight;
    for (const connection of this.#connections) connection.abortAndClose();
    return cutOff;
  }
}
