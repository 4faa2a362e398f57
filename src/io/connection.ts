/**
 * One gateway connection: frames in, one call at a time, replies out, ExtraInfo queries nested in
 * the open call. The gateway is lock-step (PROTOCOL §4.1): it sends the next request only after
 * reading the reply, so a frame that arrives while a call is open is either the answer to our
 * ExtraInfo query or, from a misbehaving peer, kept until the call ends.
 */
import type { Socket } from 'node:net';
import { ConnectionClosedError, ShuttingDownError } from '../errors.js';
import type { CallSample, RunnerMetrics } from '../metrics/runner-metrics.js';
import { RpcType } from '../protocol/constants.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import type { CallChannel } from '../workers/call-handler.js';

/** What a connection needs from the call layer. */
export interface FrameHandler {
  handle(type: number, payload: Buffer, channel: CallChannel): Buffer | Promise<Buffer>;
  errorFrame(err: unknown): Buffer;
}

export interface ConnectionHooks {
  onCallDone(connection: Connection): void;
  onClose(connection: Connection): void;
}

interface Ask {
  frame: Buffer;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
}

export class Connection implements CallChannel {
  readonly id: number;
  onAbort: ((reason: Error) => void) | null = null;
  /** Calls answered on this connection (connection reuse). */
  calls = 0;
  /** The open call's timings, with metrics on. */
  readonly sample: CallSample | null;
  #socket: Socket;
  #handler: FrameHandler;
  #hooks: ConnectionHooks;
  #decoder: FrameDecoder;
  #busy = false;
  #closed = false;
  /** Frames that arrived while a call was open (never from a well-behaved gateway). */
  #backlog: Array<[number, Buffer]> | null = null;
  /** The query on the wire, and the ones waiting for it: the gateway answers one at a time. */
  #asking: Ask | null = null;
  #asks: Ask[] = [];
  /** Answers still owed for queries of calls that already ended; dropped when they arrive. */
  #staleAnswers = 0;

  constructor(id: number, socket: Socket, handler: FrameHandler, hooks: ConnectionHooks, metrics: RunnerMetrics | null = null) {
    this.id = id;
    this.sample = metrics === null ? null : metrics.sample();
    this.#socket = socket;
    this.#handler = handler;
    this.#hooks = hooks;
    this.#decoder = new FrameDecoder(this.#onFrame);
    socket.on('data', this.#onData);
    // EPIPE/ECONNRESET: the gateway went away; 'close' follows and does the cleanup.
    socket.on('error', noop);
    socket.on('close', this.#onClose);
  }

  get busy(): boolean {
    return this.#busy;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onData = (chunk: Buffer): void => {
    this.#decoder.push(chunk);
  };

  #onFrame = (type: number, payload: Buffer): void => {
    if (type === RpcType.ExtraInfo) {
      if (this.#asking !== null) {
        const ask = this.#asking;
        this.#asking = null;
        this.#sendNextAsk();
        ask.resolve(payload);
        return;
      }
      if (this.#staleAnswers > 0) {
        this.#staleAnswers--;
        return;
      }
    }
    if (this.#busy) {
      (this.#backlog ??= []).push([type, payload]);
      return;
    }
    this.#dispatch(type, payload);
  };

  #dispatch(type: number, payload: Buffer): void {
    this.sample?.begin(type);
    let reply: Buffer | Promise<Buffer>;
    try {
      reply = this.#handler.handle(type, payload, this);
    } catch (err) {
      reply = this.#handler.errorFrame(err);
    }
    if (reply instanceof Uint8Array) {
      // Queries a filter fired without awaiting must not follow the reply onto the wire: the
      // gateway would read them as part of the next call (or an idle connection).
      if (this.#asking !== null || this.#asks.length > 0) this.#dropAsks(new ConnectionClosedError());
      this.calls++;
      this.#socket.write(reply);
      this.sample?.end(reply);
      this.#hooks.onCallDone(this);
      return;
    }
    this.#busy = true;
    reply.then(
      (frame) => this.#finish(frame),
      (err: unknown) => this.#finish(this.#handler.errorFrame(err)),
    );
  }

  #finish(frame: Buffer): void {
    this.#busy = false;
    this.onAbort = null;
    // Only when needed: an Error (with its stack) per call cost 4% of the main thread under load.
    if (this.#asking !== null || this.#asks.length > 0) this.#dropAsks(new ConnectionClosedError());
    if (!this.#closed) {
      this.calls++;
      this.#socket.write(frame);
      this.sample?.end(frame);
    } else {
      this.sample?.abandon();
    }
    this.#hooks.onCallDone(this);
    while (this.#backlog !== null && this.#backlog.length > 0 && !this.#busy && !this.#closed) {
      const [type, payload] = this.#backlog.shift()!;
      this.#dispatch(type, payload);
    }
  }

  /** CallChannel: one ExtraInfo round trip, queued behind any query already on the wire. */
  ask(frame: Buffer): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new ConnectionClosedError());
    return new Promise<Buffer>((resolve, reject) => {
      this.#asks.push({ frame, resolve, reject });
      if (this.#asking === null) this.#sendNextAsk();
    });
  }

  #sendNextAsk(): void {
    const next = this.#asks.shift();
    if (next === undefined) return;
    this.#asking = next;
    this.#socket.write(next.frame);
  }

  #dropAsks(reason: Error): void {
    if (this.#asking !== null) {
      // Its answer is still coming: recognise it as stale rather than as a new request.
      this.#staleAnswers++;
      this.#asking.reject(reason);
      this.#asking = null;
    }
    for (const ask of this.#asks.splice(0)) ask.reject(reason);
  }

  #onClose = (): void => {
    this.#closed = true;
    this.#decoder.reset();
    const reason = new ConnectionClosedError();
    this.#dropAsks(reason);
    this.onAbort?.(reason);
    this.#hooks.onClose(this);
  };

  /** Shutdown past the drain window: answer an open call SERVICE_UNAVAILABLE, then close. */
  abortAndClose(): void {
    if (this.#closed) return;
    if (this.#busy) {
      const reason = new ShuttingDownError();
      const frame = this.#handler.errorFrame(reason);
      this.#socket.write(frame);
      this.sample?.end(frame);
      this.#closed = true;
      this.onAbort?.(reason);
    }
    this.#closed = true;
    this.#socket.end();
  }
}

function noop(): void {}
