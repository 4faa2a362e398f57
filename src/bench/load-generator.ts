/**
 * The load generator: plays the gateway's side of the ext-plugin protocol over a Unix socket, the
 * way APISIX's `ext-plugin/init.lua` does (PROTOCOL.md §3-4), and measures every call.
 *
 * - C connections, one call in flight on each (the gateway never pipelines); PrepareConf once, on
 *   its own connection, before the load starts, and again after CONF_TOKEN_NOT_FOUND, where the call
 *   is retried (3 attempts in all, as `communicate()` does).
 * - The runner's ExtraInfo queries are answered from the workload (variables, request body, response
 *   body; a second RespBody query in one call gets an empty result, as from the real gateway).
 * - Every final reply is decoded and checked: its type, its id, and the expected action. A wrong id,
 *   a wrong action, an error frame, an unexpected type, an undecodable payload, a truncated frame,
 *   a connection closed mid-call and a call with no reply in `callTimeoutMs` are errors, never
 *   successes. After any error the connection is closed and reopened, as the gateway does.
 * - Closed loop: each connection sends its next call as soon as the previous one is answered.
 *   Open loop: calls are due at a fixed rate whatever the server does, and a call's latency is taken
 *   from its *intended* send time, so a server stall shows up in every call it delayed, including
 *   those that waited for a free connection (no coordinated omission).
 * - Calls whose (intended) start falls in the warm-up are sent but not measured.
 *
 * Run in its own process (`spawnLoadGenerator`), so its CPU does not compete with the measurement of
 * the server's; `LoadGenerator` itself also runs in-process for tests and embedding.
 */
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  decodeErrResp,
  decodeExtraInfoReq,
  decodeHttpReqCallResp,
  decodeHttpRespCallResp,
  decodePrepareConfResp,
} from '../protocol/codec.js';
import { ActionType, ErrCode, RpcType } from '../protocol/constants.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { encodeHistogram, newHistogram, type Histogram } from './histogram.js';
import type { ErrorKind, GeneratorMessage, HarnessMessage, LoadConfig, LoadResult } from './types.js';
import { encodeWorkload, type CallTemplate, type EncodedWorkload } from './workload.js';

/** The gateway gives up on a call after 3 attempts when the runner keeps answering CONF_TOKEN_NOT_FOUND. */
const MAX_ATTEMPTS = 3;
const MAX_ERROR_SAMPLES = 8;
/** Time allowed for the connections and the first PrepareConf before the load starts. */
const SETUP_TIMEOUT_MS = 10_000;
const RECONNECT_DELAY_AFTER_CONNECT_ERROR_MS = 50;

interface Call {
  id: number;
  /** Intended start (open loop) or first send (closed loop), performance.now() ms. */
  intended: number;
  /** Index into the connection's `frames`. */
  template: number;
  token: number;
  attempts: number;
  measured: boolean;
  respBodyAsked: boolean;
  sentAt: number;
}

export interface GeneratorHooks {
  /** The measured window opens (warm-up over) or closes. */
  onWindow?(edge: 'start' | 'end'): void;
  onProgress?(p: { elapsedMs: number; measuring: boolean; successes: number; errors: number; recentRate: number }): void;
}

/** One request/reply exchange on a fresh connection (PrepareConf). */
function exchange(socketPath: string, frame: Buffer, timeoutMs: number): Promise<{ type: number; payload: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let done = false;
    const finish = (err: Error | null, value?: { type: number; payload: Buffer }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new Error(`no PrepareConf reply in ${timeoutMs} ms`)), timeoutMs);
    const decoder = new FrameDecoder((type, payload) => finish(null, { type, payload: Buffer.from(payload) }));
    socket.on('connect', () => socket.write(frame));
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error('connection closed before the PrepareConf reply')));
  });
}

class GenConnection {
  /**
   * This connection's own copies of its share of the request templates: the id and token are
   * patched in place and the same Buffer is written again for a later call. Safe because the
   * gateway side is lock-step: the reply to a request can only arrive once the server has read the
   * whole request, so the previous write of the buffer is complete by the time it is reused. It
   * saves a copy and a Buffer object per call; in a profile of the generator at 130k calls/s, GC
   * was 16% of its busy time, and the per-call copy about 2%.
   */
  frames: CallTemplate[] = [];
  nextFrame = 0;
  socket: Socket | null = null;
  connected = false;
  call: Call | null = null;
  /** A call to (re)send once connected (a CONF_TOKEN_NOT_FOUND retry). */
  pending: Call | null = null;
  readonly decoder: FrameDecoder;
  readonly #gen: LoadGenerator;

  constructor(gen: LoadGenerator) {
    this.#gen = gen;
    this.decoder = new FrameDecoder((type, payload) => gen.onFrame(this, type, payload));
  }

  open(): void {
    const socket = connect(this.#gen.config.socketPath);
    this.socket = socket;
    this.connected = false;
    this.decoder.reset();
    socket.on('connect', () => {
      if (this.socket !== socket) return;
      this.connected = true;
      this.#gen.onConnected(this);
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      this.#gen.bytesReceived += chunk.length;
      this.decoder.push(chunk);
    });
    socket.on('error', () => {
      // 'close' follows and does the accounting.
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      const wasConnected = this.connected;
      this.connected = false;
      this.#gen.onClosed(this, wasConnected);
    });
  }

  /** Closes on purpose (after an error); the 'close' handler is detached, so the caller decides what follows. */
  drop(): void {
    const socket = this.socket;
    this.socket = null;
    this.connected = false;
    this.decoder.reset();
    socket?.destroy();
  }

  write(frame: Buffer): void {
    this.#gen.bytesSent += frame.length;
    this.socket!.write(frame);
  }
}

export class LoadGenerator {
  readonly config: LoadConfig;
  bytesSent = 0;
  bytesReceived = 0;
  readonly #hooks: GeneratorHooks;
  readonly #enc: EncodedWorkload;
  readonly #expectType: number;
  readonly #hist: Histogram = newHistogram();
  readonly #lagHist: Histogram | null;
  readonly #conns: GenConnection[] = [];
  /** Open loop: connected connections without a call. */
  readonly #free: GenConnection[] = [];
  /** Open loop: intended start times waiting for a free connection. */
  #backlog: number[] = [];
  #backlogHead = 0;
  #nextIntended = 0;
  #interval = 0;

  #token = 0;
  #refreshing: Promise<number> | null = null;
  #nextId = 1;

  #t0 = 0;
  #warmupEnd = 0;
  #end = Number.POSITIVE_INFINITY;
  #windowEnd = 0;
  #measuring = false;
  #stopping = false;
  #finished = false;
  #resolve: ((r: LoadResult) => void) | null = null;
  #timers: NodeJS.Timeout[] = [];
  #tickTimer: NodeJS.Timeout | undefined = undefined;
  #cpuAtStart: NodeJS.CpuUsage | null = null;
  /** The generator's own event-loop delay over the window: its pauses (GC) end up in the latencies. */
  #loopDelay: IntervalHistogram | null = null;
  #cpuMs = 0;

  #requests = 0;
  #successes = 0;
  #errors = 0;
  readonly #errorKinds: Partial<Record<ErrorKind, number>> = {};
  readonly #errorSamples: string[] = [];
  #extraInfo = 0;
  #prepareConfs = 0;
  #tokenNotFound = 0;
  #reconnects = 0;
  #maxBacklog = 0;
  #saturated = false;
  #progressCount = 0;
  #progressAt = 0;

  constructor(config: LoadConfig, hooks: GeneratorHooks = {}) {
    if (!(config.connections >= 1)) throw new RangeError('connections must be at least 1');
    if (config.mode === 'open' && !(config.rate !== null && config.rate > 0)) throw new RangeError('open loop needs a rate > 0');
    this.config = config;
    this.#hooks = hooks;
    this.#enc = encodeWorkload(config.workload);
    this.#expectType = config.workload.phase === 'req' ? RpcType.HttpReqCall : RpcType.HttpRespCall;
    this.#lagHist = config.mode === 'open' ? newHistogram() : null;
  }

  /** Mean header bytes of the request templates (for the report). */
  get meanHeaderBytes(): number {
    return this.#enc.meanHeaderBytes;
  }

  async run(): Promise<LoadResult> {
    this.#token = await this.#prepare();
    await this.#openAll();
    return new Promise<LoadResult>((resolve) => {
      this.#resolve = resolve;
      this.#start();
    });
  }

  async #prepare(): Promise<number> {
    const { type, payload } = await exchange(this.config.socketPath, this.#enc.prepareConf, SETUP_TIMEOUT_MS);
    this.#prepareConfs++;
    if (type === RpcType.Error) throw new Error(`PrepareConf answered with error code ${decodeErrResp(payload).code}`);
    if (type !== RpcType.PrepareConf) throw new Error(`PrepareConf answered with frame type ${type}`);
    const { confToken } = decodePrepareConfResp(payload);
    if (confToken === 0) throw new Error('PrepareConf answered token 0');
    return confToken;
  }

  /** A fresh token after CONF_TOKEN_NOT_FOUND; concurrent callers share one PrepareConf. */
  #refreshToken(stale: number): Promise<number> {
    if (this.#token !== stale) return Promise.resolve(this.#token);
    this.#refreshing ??= this.#prepare().then(
      (token) => {
        this.#token = token;
        this.#refreshing = null;
        return token;
      },
      (err: unknown) => {
        this.#refreshing = null;
        throw err;
      },
    );
    return this.#refreshing;
  }

  #openAll(): Promise<void> {
    return new Promise((resolve, reject) => {
      let waiting = this.config.connections;
      const timer = setTimeout(() => reject(new Error(`could not open ${this.config.connections} connections in ${SETUP_TIMEOUT_MS} ms`)), SETUP_TIMEOUT_MS);
      this.#setupDone = () => {
        if (--waiting === 0) {
          clearTimeout(timer);
          this.#setupDone = null;
          this.#setupFailed = null;
          resolve();
        }
      };
      this.#setupFailed = (err) => {
        clearTimeout(timer);
        this.#setupDone = null;
        this.#setupFailed = null;
        reject(err);
      };
      const templates = this.#enc.calls;
      const n = this.config.connections;
      for (let i = 0; i < n; i++) {
        const c = new GenConnection(this);
        // Connection i sends templates i, i + n, i + 2n...: all of them are in use across connections.
        for (let t = i % templates.length; t < templates.length; t += n) c.frames.push({ ...templates[t], frame: Buffer.from(templates[t].frame) });
        this.#conns.push(c);
        c.open();
      }
    });
  }

  #setupDone: (() => void) | null = null;
  #setupFailed: ((err: Error) => void) | null = null;

  #start(): void {
    const cfg = this.config;
    this.#setupFailed = null;
    this.#t0 = performance.now();
    this.#warmupEnd = this.#t0 + cfg.warmupMs;
    this.#end = this.#warmupEnd + cfg.durationMs;
    this.#progressAt = this.#t0;

    const at = (ms: number, fn: () => void): void => {
      this.#timers.push(setTimeout(fn, Math.max(0, ms - performance.now())));
    };
    if (cfg.warmupMs > 0) at(this.#warmupEnd, () => this.#openWindow());
    else this.#openWindow();
    at(this.#end, () => this.#endNow('time'));

    const scanEvery = Math.min(500, Math.max(10, cfg.callTimeoutMs / 4));
    this.#timers.push(setInterval(() => this.#scanTimeouts(), scanEvery));
    if (cfg.progressMs > 0) this.#timers.push(setInterval(() => this.#progress(), cfg.progressMs));

    if (cfg.mode === 'closed') {
      for (const c of this.#conns) this.#startCall(c, performance.now());
    } else {
      this.#interval = 1000 / cfg.rate!;
      this.#nextIntended = this.#t0;
      for (const c of this.#conns) this.#free.push(c);
      this.#tick();
    }
  }

  #openWindow(): void {
    if (this.#measuring || this.#finished) return;
    this.#measuring = true;
    this.#cpuAtStart = process.cpuUsage();
    this.#loopDelay = monitorEventLoopDelay({ resolution: 1 });
    this.#loopDelay.enable();
    this.#hooks.onWindow?.('start');
  }

  /** Closes the measured window (time is up, enough requests, or saturation): no new calls from now on. */
  #endNow(reason: 'time' | 'count' | 'saturated'): void {
    if (this.#stopping) return;
    const now = performance.now();
    // Every call due by now belongs to the run, including those the tick has not queued yet because
    // the generator itself was held up (GC, a busy machine) until past the end: dropping them would
    // hide exactly the delay an open loop exists to show. (A run bounded by count has all it wants.)
    if (this.config.mode === 'open' && reason !== 'count') this.#queueDue(now);
    this.#end = Math.min(this.#end, now);
    this.#stopping = true;
    this.#windowEnd = now;
    if (!this.#measuring) this.#openWindow();
    if (this.#cpuAtStart) {
      const cpu = process.cpuUsage(this.#cpuAtStart);
      this.#cpuMs = (cpu.user + cpu.system) / 1000;
    }
    this.#loopDelay?.disable();
    this.#hooks.onWindow?.('end');
    // In-flight calls and the open-loop backlog may finish; past this, whatever is left is an error.
    this.#timers.push(setTimeout(() => this.#finish(), this.config.callTimeoutMs + 1000));
    if (this.config.mode === 'open' && !this.#saturated) this.#dispatch();
    this.#maybeFinish();
  }

  /** Open loop: every call due by `now` (and before the window's end) joins the backlog. */
  #queueDue(now: number): void {
    while (this.#nextIntended <= now && this.#nextIntended < this.#end) {
      this.#backlog.push(this.#nextIntended);
      this.#nextIntended += this.#interval;
    }
  }

  #tick = (): void => {
    if (this.#stopping) return;
    this.#queueDue(performance.now());
    this.#dispatch();
    const waiting = this.#backlog.length - this.#backlogHead;
    if (waiting > this.#maxBacklog) this.#maxBacklog = waiting;
    if (waiting > this.config.maxBacklog) {
      this.#saturated = true;
      this.#endNow('saturated');
      return;
    }
    if (this.#nextIntended >= this.#end) return;
    const wait = this.#nextIntended - performance.now();
    // Timers have about 1 ms granularity: sleep until just before the next call is due, then poll.
    if (wait > 1.5) this.#tickTimer = setTimeout(this.#tick, wait - 1.2);
    else setImmediate(this.#tick);
  };

  #dispatch(): void {
    const backlog = this.#backlog;
    while (this.#backlogHead < backlog.length && this.#free.length > 0) {
      const c = this.#free.pop()!;
      const intended = backlog[this.#backlogHead++];
      this.#startCall(c, intended);
    }
    if (this.#backlogHead > 4096 && this.#backlogHead * 2 > backlog.length) {
      this.#backlog = backlog.slice(this.#backlogHead);
      this.#backlogHead = 0;
    }
  }

  #startCall(c: GenConnection, intended: number): void {
    const measured = intended >= this.#warmupEnd && intended < this.#end;
    const call: Call = {
      id: this.#newId(),
      intended,
      template: c.nextFrame,
      token: this.#token,
      attempts: 1,
      measured,
      respBodyAsked: false,
      sentAt: 0,
    };
    c.nextFrame = (c.nextFrame + 1) % c.frames.length;
    if (measured) {
      this.#requests++;
      if (this.#lagHist !== null) this.#lagHist.recordValue(Math.max(0, Math.round((performance.now() - intended) * 1000)));
    }
    this.#send(c, call);
    if (measured && this.config.maxRequests !== null && this.#requests >= this.config.maxRequests) {
      // The run is bounded by count: calls still waiting for a connection are not part of it (sent
      // after this one, they would be measured too, past the bound, whenever the open loop's
      // backlog is not empty when the count is reached).
      this.#backlogHead = this.#backlog.length;
      this.#endNow('count');
    }
  }

  #newId(): number {
    const id = this.#nextId;
    this.#nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  #send(c: GenConnection, call: Call): void {
    const t = c.frames[call.template];
    const frame = t.frame;
    frame.writeUInt32LE(call.id, t.idPos);
    frame.writeUInt32LE(call.token, t.tokenPos);
    call.sentAt = performance.now();
    c.call = call;
    c.write(frame);
  }

  onConnected(c: GenConnection): void {
    if (this.#setupDone !== null) {
      this.#setupDone();
      return;
    }
    if (c.pending !== null) {
      const call = c.pending;
      c.pending = null;
      call.token = this.#token;
      call.id = this.#newId();
      this.#send(c, call);
      return;
    }
    this.#next(c);
  }

  onClosed(c: GenConnection, wasConnected: boolean): void {
    if (this.#setupFailed !== null) {
      this.#setupFailed(new Error(`cannot connect to ${this.config.socketPath}`));
      return;
    }
    const call = c.call;
    if (call !== null) {
      const kind: ErrorKind = c.decoder.bufferedBytes > 0 ? 'truncated' : 'closed';
      const detail = kind === 'truncated' ? `connection closed inside a frame (${c.decoder.bufferedBytes} bytes of it received)` : 'connection closed before the reply';
      this.#fail(c, call, kind, detail, false);
    } else if (c.pending !== null) {
      const pending = c.pending;
      c.pending = null;
      this.#fail(c, pending, wasConnected ? 'closed' : 'connect', `retry connection failed`, false);
    }
    this.#reopen(c, wasConnected ? 0 : RECONNECT_DELAY_AFTER_CONNECT_ERROR_MS);
  }

  #reopen(c: GenConnection, delayMs: number): void {
    this.#retire(c);
    const backlog = this.#backlog.length - this.#backlogHead;
    if (this.#finished || (this.#stopping && c.pending === null && backlog === 0)) {
      this.#maybeFinish();
      return;
    }
    this.#reconnects++;
    if (delayMs > 0) this.#timers.push(setTimeout(() => c.open(), delayMs));
    else setImmediate(() => c.open());
  }

  /** Takes a connection that is going away off the open loop's free list. */
  #retire(c: GenConnection): void {
    const i = this.#free.indexOf(c);
    if (i >= 0) this.#free.splice(i, 1);
  }

  onFrame(c: GenConnection, type: number, payload: Buffer): void {
    const call = c.call;
    if (call === null) {
      this.#countError('unexpected-type', `frame of type ${type} with no call open`, this.#measuring && !this.#stopping);
      c.drop();
      this.#reopen(c, 0);
      return;
    }
    try {
      if (type === RpcType.ExtraInfo) {
        this.#answerExtraInfo(c, call, payload);
      } else if (type === this.#expectType) {
        this.#checkReply(c, call, payload);
      } else if (type === RpcType.Error) {
        const { code } = decodeErrResp(payload);
        if (code === ErrCode.ConfTokenNotFound) this.#retryAfterTokenNotFound(c, call);
        else this.#fail(c, call, 'error-frame', `error frame, code ${code}`, true);
      } else {
        this.#fail(c, call, 'unexpected-type', `reply of frame type ${type}, expected ${this.#expectType}`, true);
      }
    } catch (err) {
      if (c.call === call) this.#fail(c, call, 'malformed', `undecodable reply of type ${type}: ${(err as Error).message}`, true);
    }
  }

  #answerExtraInfo(c: GenConnection, call: Call, payload: Buffer): void {
    const { infoType, info } = decodeExtraInfoReq(payload);
    if (call.measured) this.#extraInfo++;
    const enc = this.#enc;
    let frame: Buffer;
    if (info === null) {
      this.#fail(c, call, 'bad-extra-info', `ExtraInfo query with unsupported info type ${infoType}`, true);
      return;
    } else if (info.type === 'var') {
      const name = info.name === null ? '' : Buffer.from(info.name.buffer, info.name.byteOffset, info.name.length).toString('latin1');
      frame = enc.varFrames.get(name) ?? enc.absentFrame;
    } else if (info.type === 'reqBody') {
      frame = enc.reqBodyFrame;
    } else if (this.config.workload.phase === 'resp') {
      // The gateway drains the upstream body on the first ask; a second ask gets an empty result.
      frame = call.respBodyAsked ? enc.emptyFrame : enc.respBodyFrame;
      call.respBodyAsked = true;
    } else {
      frame = enc.absentFrame;
    }
    c.write(frame);
  }

  #checkReply(c: GenConnection, call: Call, payload: Buffer): void {
    const expect = this.config.workload.expect;
    let id: number;
    let problem: string | null = null;
    if (this.#expectType === RpcType.HttpReqCall) {
      const reply = decodeHttpReqCallResp(payload);
      id = reply.id;
      const kind = reply.action === null ? 'none' : reply.action.type;
      if (expect !== 'any' && expect !== kind) {
        problem = `action ${kind} (type tag ${reply.actionType}), expected ${expect}`;
      } else if (reply.action === null && reply.actionType !== ActionType.None && expect === 'none') {
        problem = `unknown action type tag ${reply.actionType}`;
      }
    } else {
      const reply = decodeHttpRespCallResp(payload);
      id = reply.id;
      if (expect === 'resp-body' && (reply.body === null || reply.body.length === 0)) problem = 'response reply without a body, expected a body rewrite';
    }
    if (id !== call.id) {
      this.#fail(c, call, 'wrong-id', `reply id ${id}, expected ${call.id}`, true);
      return;
    }
    if (problem !== null) {
      this.#fail(c, call, 'wrong-action', problem, true);
      return;
    }
    this.#succeed(c, call);
  }

  #retryAfterTokenNotFound(c: GenConnection, call: Call): void {
    this.#tokenNotFound++;
    if (call.attempts >= MAX_ATTEMPTS) {
      this.#fail(c, call, 'token', `CONF_TOKEN_NOT_FOUND after ${MAX_ATTEMPTS} attempts`, true);
      return;
    }
    // The gateway closes the connection after any error reply, flushes its token cache, prepares
    // the conf again and retries the whole call on a new connection.
    call.attempts++;
    c.call = null;
    c.drop();
    c.pending = call;
    this.#refreshToken(call.token).then(
      () => {
        if (this.#finished) return;
        this.#reconnects++;
        c.open();
      },
      (err: unknown) => {
        c.pending = null;
        this.#fail(c, call, 'token', `PrepareConf after CONF_TOKEN_NOT_FOUND failed: ${(err as Error).message}`, false);
        this.#reopen(c, RECONNECT_DELAY_AFTER_CONNECT_ERROR_MS);
      },
    );
  }

  #succeed(c: GenConnection, call: Call): void {
    c.call = null;
    if (call.measured) {
      this.#successes++;
      this.#hist.recordValue(Math.round((performance.now() - call.intended) * 1000));
    }
    this.#progressCount++;
    this.#next(c);
  }

  #countError(kind: ErrorKind, message: string, measured: boolean): void {
    if (!measured) return;
    this.#errors++;
    this.#errorKinds[kind] = (this.#errorKinds[kind] ?? 0) + 1;
    if (this.#errorSamples.length < MAX_ERROR_SAMPLES) this.#errorSamples.push(`${kind}: ${message}`);
  }

  /** Counts the call as an error; with `close`, drops the connection and opens a new one (the gateway's way). */
  #fail(c: GenConnection, call: Call, kind: ErrorKind, message: string, close: boolean): void {
    if (c.call === call) c.call = null;
    this.#countError(kind, message, call.measured);
    if (close) {
      c.drop();
      this.#reopen(c, 0);
    }
    this.#maybeFinish();
  }

  /** The connection is free: closed loop sends the next call, open loop takes the next due one. */
  #next(c: GenConnection): void {
    if (this.#finished) return;
    if (this.config.mode === 'closed') {
      if (!this.#stopping) this.#startCall(c, performance.now());
      else this.#maybeFinish();
      return;
    }
    this.#free.push(c);
    this.#dispatch();
    this.#maybeFinish();
  }

  #scanTimeouts(): void {
    const now = performance.now();
    const limit = this.config.callTimeoutMs;
    for (const c of this.#conns) {
      const call = c.call;
      if (call !== null && now - call.sentAt > limit) this.#fail(c, call, 'timeout', `no reply in ${limit} ms`, true);
    }
  }

  #progress(): void {
    const now = performance.now();
    const recentRate = (this.#progressCount * 1000) / Math.max(1, now - this.#progressAt);
    this.#progressCount = 0;
    this.#progressAt = now;
    this.#hooks.onProgress?.({
      elapsedMs: Math.round(now - this.#t0),
      measuring: this.#measuring && !this.#stopping,
      successes: this.#successes,
      errors: this.#errors,
      recentRate: Math.round(recentRate),
    });
  }

  #maybeFinish(): void {
    if (!this.#stopping || this.#finished) return;
    if (this.#backlogHead < this.#backlog.length && !this.#saturated) return;
    for (const c of this.#conns) if (c.call !== null || c.pending !== null) return;
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const t of this.#timers) clearTimeout(t);
    clearTimeout(this.#tickTimer);
    // Whatever is still open now has had callTimeoutMs: errors, as is every due call never sent.
    for (const c of this.#conns) {
      if (c.call !== null) this.#countError('timeout', 'no reply before the run ended', c.call.measured);
      if (c.pending !== null) this.#countError('token', 'retry still pending when the run ended', c.pending.measured);
      c.call = null;
      c.pending = null;
      c.drop();
    }
    for (let i = this.#backlogHead; i < this.#backlog.length; i++) {
      const intended = this.#backlog[i];
      this.#requests += intended >= this.#warmupEnd ? 1 : 0;
      this.#countError('not-sent', this.#saturated ? 'backlog limit reached (saturated)' : 'no free connection before the run ended', intended >= this.#warmupEnd);
    }
    this.#backlogHead = this.#backlog.length;
    const measuredMs = Math.max(1, this.#windowEnd - this.#warmupEnd);
    const result: LoadResult = {
      mode: this.config.mode,
      connections: this.config.connections,
      rate: this.config.rate,
      measuredMs: Math.round(measuredMs * 1000) / 1000,
      requests: this.#requests,
      successes: this.#successes,
      errors: this.#errors,
      errorKinds: this.#errorKinds,
      errorSamples: this.#errorSamples,
      throughput: Math.round((this.#successes * 1000 * 10) / measuredMs) / 10,
      histogram: encodeHistogram(this.#hist),
      sendLagHistogram: this.#lagHist === null ? null : encodeHistogram(this.#lagHist),
      maxBacklog: this.#maxBacklog,
      saturated: this.#saturated,
      extraInfoQueries: this.#extraInfo,
      prepareConfs: this.#prepareConfs,
      confTokenNotFound: this.#tokenNotFound,
      reconnects: this.#reconnects,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      generatorCpuMs: Math.round(this.#cpuMs),
      generatorLoopDelayUs: this.#loopDelay === null ? null : loopDelaySummary(this.#loopDelay),
    };
    this.#resolve?.(result);
  }
}

/** Event-loop delay beyond the 1 ms sampling interval, µs. */
function loopDelaySummary(h: IntervalHistogram): { p99: number; max: number } {
  // The monitor's timer fires every `resolution` ms; what it reports is how late it fired (ns).
  const us = (ns: number): number => Math.max(0, Math.round(ns / 1000 - 1000));
  return { p99: us(h.percentile(99)), max: us(h.max) };
}

// ---- the process boundary -----------------------------------------------------------------------

const CHILD_FLAG = '--apisix-bench-load-generator';
export const LOAD_GENERATOR_MODULE = fileURLToPath(import.meta.url);

export interface SpawnOptions {
  /** `taskset -c CPUS` for the process (null: no pinning). */
  cpus: string | null;
  hooks?: GeneratorHooks;
}

/**
 * Runs one load-generator process (`node load-generator.js`, optionally under `taskset`) with an
 * IPC channel, hands it `config` and resolves with its result. The window and progress hooks fire
 * as the child reports them.
 */
export function spawnLoadGenerator(config: LoadConfig, options: SpawnOptions): Promise<LoadResult> {
  // --single-threaded: no V8 background threads (concurrent GC marking, JIT compilation). Pinned to
  // one CPU, they time-slice with the main thread, which then misses its send times and its replies
  // by a scheduler slice (several ms). Measured on the project's machine, open loop at 20k calls/s
  // for 4 s: 3,251 involuntary context switches without the flag, 107 with it; the closed-loop
  // throughput did not change (139-157k calls/s either way).
  const nodeArgs = ['--single-threaded', LOAD_GENERATOR_MODULE, CHILD_FLAG];
  const [cmd, args] = options.cpus === null ? [process.execPath, nodeArgs] : ['taskset', ['-c', options.cpus, process.execPath, ...nodeArgs]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  return new Promise<LoadResult>((resolve, reject) => {
    let result: LoadResult | null = null;
    let failure: string | null = null;
    child.on('message', (msg: GeneratorMessage) => {
      switch (msg.type) {
        case 'ready':
          child.send({ type: 'run', config } satisfies HarnessMessage);
          break;
        case 'window':
          options.hooks?.onWindow?.(msg.edge);
          break;
        case 'progress':
          options.hooks?.onProgress?.(msg);
          break;
        case 'result':
          result = msg.result;
          break;
        case 'failed':
          failure = msg.message;
          break;
      }
    });
    child.on('error', (err) => reject(new Error(`load generator could not start: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (result !== null) resolve(result);
      else reject(new Error(`load generator ${failure ?? `exited (code ${code}, signal ${signal}) without a result`}${stderr ? `\n${stderr.trim()}` : ''}`));
    });
  });
}

function isMainModule(): boolean {
  if (!process.argv.includes(CHILD_FLAG) || typeof process.send !== 'function' || !process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(LOAD_GENERATOR_MODULE);
  } catch {
    return false;
  }
}

function send(msg: GeneratorMessage): Promise<void> {
  return new Promise((resolve) => process.send!(msg, undefined, {}, () => resolve()));
}

if (isMainModule()) {
  // The harness went away (killed, crashed): nobody will read the result; do not keep loading the server.
  process.on('disconnect', () => process.exit(1));
  process.on('message', (msg: HarnessMessage) => {
    if (msg.type !== 'run') return;
    const gen = new LoadGenerator(msg.config, {
      onWindow: (edge) => void send({ type: 'window', edge }),
      onProgress: (p) => void send({ type: 'progress', ...p }),
    });
    gen.run().then(
      async (result) => {
        await send({ type: 'result', result });
        process.exit(0);
      },
      async (err: unknown) => {
        await send({ type: 'failed', message: (err as Error).message ?? String(err) });
        process.exit(1);
      },
    );
  });
  void send({ type: 'ready' });
}
