/**
 * Turns one request frame into one reply frame: decode, find the conf, run the chain, encode.
 * A chain whose plugins all run inline and return synchronously produces the reply frame directly
 * (no promise on the hot path). Otherwise the chain runs segment by segment, on the main thread or
 * on the worker pool, raced against its deadline and against the connection closing.
 */
import type { Logger } from 'pino';
import {
  CallTimeoutError,
  ConfTokenNotFoundError,
  FrameTooLargeError,
  MalformedPayloadError,
  OverloadedError,
  PluginFailedError,
  UnexpectedRpcTypeError,
  WorkerFailedError,
  describe,
  wireErrCode,
} from '../errors.js';
import type { CallSample, RunnerMetrics } from '../metrics/runner-metrics.js';
import {
  decodeExtraInfoResp,
  decodeHttpRespCallReq,
  decodePrepareConfReq,
  encodeErrResp,
  encodeExtraInfoReq,
  encodeHttpReqCallResp,
  encodeHttpRespCallResp,
  encodePrepareConfResp,
  readHttpReqCallReq,
} from '../protocol/codec.js';
import { ErrCode, RpcType } from '../protocol/constants.js';
import type { ExtraInfoQuery } from '../protocol/messages.js';
import { utf8 } from './bytes.js';
import type { CallBase, ExtraInfoPort } from './call-base.js';
import { runRequestChain, runResponseChain, type FilterMeter, type Phase, type PreparedPlugin } from './chain.js';
import type { ChainPlan, ConfCache, ConfEntry, ConfSource, Denial } from './conf-cache.js';
import type { Deadlines } from './deadlines.js';
import type { PlacementTable } from './placement.js';
import type { PluginRegistry } from './plugin-registry.js';
import { PHASE_REQUEST, PHASE_RESPONSE, type CallOutcome, type CallState } from './pool-messages.js';
import type { PoolRequest, WorkerPool } from './pool.js';
import { RequestCall } from './request-call.js';
import { ResponseCall } from './response-call.js';

/** The connection a call arrived on, as the call handler sees it (implemented in io). */
export interface CallChannel {
  /** Write an ExtraInfo query frame and resolve with the payload of the gateway's type-3 answer. */
  ask(frame: Buffer): Promise<Buffer>;
  /** Set by the handler while a call awaits: the connection calls it if it closes mid-call. */
  onAbort: ((reason: Error) => void) | null;
  /** The open call's figures, when metrics are on (read only by a handler that has metrics). */
  readonly sample?: CallSample | null;
}

/** The plugins a handler runs: swapped as a whole on reload. */
export interface PluginSet {
  registry: PluginRegistry;
  placement: PlacementTable;
  pool: WorkerPool | null;
  /** Bumped by every reload; conf entries built from an older one are rebuilt on next use. */
  generation: number;
}

export interface CallHandlerOptions {
  plugins: PluginSet;
  cache: ConfCache;
  deadlines: Deadlines;
  skipUnknownPlugins: boolean;
  logger: Logger;
  /** Record stage and plugin timings (the connections then carry a `sample`). Default: none. */
  metrics?: RunnerMetrics | null;
}

const PHASE_GATEWAY_PLUGIN: Record<Phase, string> = {
  request: 'ext-plugin-pre-req/post-req',
  response: 'ext-plugin-post-resp',
};

const TEXT_PLAIN = [{ name: 'Content-Type', value: 'text/plain; charset=utf-8' }] as const;
const TEXT_PLAIN_INIT = { 'Content-Type': 'text/plain; charset=utf-8' };
const OVERLOADED_BODY = 'the plugin runner is overloaded\n';

/** The phase-specific steps of running a call (see CallHandler#execute). */
interface CallOps<C> {
  runInline(entry: ConfEntry, plan: ChainPlan, call: C, startMs: number): void | Promise<void>;
  runSegments(payload: Buffer, entry: ConfEntry, plan: ChainPlan, call: C, sample: CallSample | null): Promise<Buffer | null>;
  encode(call: C): Buffer;
}

/** A call that can cross to the pool: its state travels as `S`. */
type SegmentCall<S extends CallState> = CallBase & { readonly pristine: boolean; exportState(): S; importState(state: S): void };

/** What differs between the request and the response phase when a chain runs in segments. */
interface PhaseOps {
  phase: typeof PHASE_REQUEST | typeof PHASE_RESPONSE;
  chain: readonly PreparedPlugin[];
  runInline(from: number, to: number, meter: FilterMeter | undefined): void | Promise<void>;
  body(): Promise<unknown>;
  /** The chain is over early (a Stop). */
  ended(): boolean;
  /** Answer as a denied chain when the pool sheds the call. */
  shed(): void;
}

/** Logs a recurring problem at most once a second per key, with the count of what it held back. */
class LogThrottle {
  #last = new Map<string, { at: number; held: number }>();

  pass(key: string): number | false {
    const now = performance.now();
    const state = this.#last.get(key);
    if (state !== undefined && now - state.at < 1000) {
      state.held++;
      return false;
    }
    const held = state?.held ?? 0;
    if (this.#last.size > 1000) this.#last.clear();
    this.#last.set(key, { at: now, held: 0 });
    return held;
  }
}

export class CallHandler {
  #plugins: PluginSet;
  readonly #cache: ConfCache;
  readonly #deadlines: Deadlines;
  readonly #skipUnknown: boolean;
  readonly #log: Logger;
  readonly #throttle = new LogThrottle();
  readonly #errFrames: Record<ErrCode, Buffer>;
  readonly #metrics: RunnerMetrics | null;
  /** With metrics: per phase, a meter recording every inline filter (and feeding auto placement). */
  readonly #meters: readonly [FilterMeter, FilterMeter] | null;
  /** The clock read that ended the last metered filter: a synchronous chain's end, without another read. */
  #clockMs = 0;

  constructor(options: CallHandlerOptions) {
    this.#plugins = options.plugins;
    this.#cache = options.cache;
    this.#deadlines = options.deadlines;
    this.#skipUnknown = options.skipUnknownPlugins;
    this.#log = options.logger;
    const metrics = (this.#metrics = options.metrics ?? null);
    const meter = (phase: number): FilterMeter => (plugin, cpuUs, endMs) => {
      metrics!.recordFilter(phase, plugin.name, cpuUs);
      this.#clockMs = endMs;
      this.#plugins.placement.record(plugin, 1, cpuUs);
    };
    this.#meters = metrics === null ? null : [meter(PHASE_REQUEST), meter(PHASE_RESPONSE)];
    this.#errFrames = {
      [ErrCode.BadRequest]: encodeErrResp(ErrCode.BadRequest),
      [ErrCode.ServiceUnavailable]: encodeErrResp(ErrCode.ServiceUnavailable),
      [ErrCode.ConfTokenNotFound]: encodeErrResp(ErrCode.ConfTokenNotFound),
    };
  }

  get plugins(): PluginSet {
    return this.#plugins;
  }

  /** Serve new calls with another plugin set (reload); calls already running finish with theirs. */
  swapPlugins(plugins: PluginSet): void {
    this.#plugins = plugins;
  }

  /** The error reply for a failure (see `wireErrCode`). Frames are immutable and shared. */
  errorFrame(err: unknown): Buffer {
    return this.#errFrames[wireErrCode(err)];
  }

  handle(type: number, payload: Buffer, channel: CallChannel): Buffer | Promise<Buffer> {
    try {
      switch (type) {
        case RpcType.HttpReqCall:
          return this.#httpReqCall(payload, channel);
        case RpcType.HttpRespCall:
          return this.#httpRespCall(payload, channel);
        case RpcType.PrepareConf:
          return this.#prepareConf(payload);
        default:
          // Type 0 and 3 are never requests; unknown types come from a newer or broken peer.
          throw new UnexpectedRpcTypeError(type);
      }
    } catch (err) {
      return this.#failed(err, null);
    }
  }

  // ---- PrepareConf ----

  #prepareConf(payload: Buffer): Buffer {
    const msg = decodePrepareConfReq(payload);
    const source: ConfSource[] = (msg.conf ?? []).map((e) => ({ name: utf8(e.name), value: e.value === null ? '' : utf8(e.value) }));
    const key = msg.key === null ? null : utf8(msg.key);
    const fingerprint = JSON.stringify(source);
    if (key !== null) {
      const existing = this.#cache.findByKey(key, fingerprint);
      if (existing !== undefined) return encodePrepareConfResp(existing.token);
    }
    const entry = this.#cache.insert({ source, key, fingerprint, ...this.#build(source) });
    if (entry.denial !== null) {
      this.#log.error({ token: entry.token, key, conf: source.map((s) => s.name) }, `conf denied, every call with this token answers 503: ${entry.denial.detail}`);
    } else {
      this.#log.debug({ token: entry.token, key, conf: source.map((s) => s.name) }, 'conf prepared');
    }
    return encodePrepareConfResp(entry.token);
  }

  /** Resolve names and parse values once. Any problem fails the whole conf closed (DECISIONS 1). */
  #build(source: readonly ConfSource[]): Pick<ConfEntry, 'denial' | 'requestChain' | 'responseChain' | 'missingIn' | 'generation'> {
    const { registry, generation } = this.#plugins;
    const chain: PreparedPlugin[] = [];
    let denial: Denial | null = null;
    for (const { name, value } of source) {
      const plugin = registry.get(name);
      if (plugin === undefined) {
        if (this.#skipUnknown) {
          this.#log.warn({ plugin: name }, `plugin "${name}" is not loaded: skipped (--skip-unknown-plugins)`);
          continue;
        }
        const reason = `plugin "${name}" is not loaded`;
        denial ??= { reason, detail: reason };
        continue;
      }
      try {
        chain.push({ plugin, conf: plugin.parseConf(value) });
      } catch (err) {
        // The error text stays in the log: JSON.parse quotes the value it failed on, and a plugin's
        // own message often quotes its whole conf (keys, upstream credentials).
        const reason = `plugin "${name}" rejected its configuration`;
        denial ??= { reason, detail: `${reason}: ${describe(err)}` };
      }
    }
    if (denial !== null) return { denial, requestChain: [], responseChain: [], missingIn: { request: [], response: [] }, generation };
    return {
      denial: null,
      requestChain: chain.filter((p) => p.plugin.requestFilter !== null),
      responseChain: chain.filter((p) => p.plugin.responseFilter !== null),
      missingIn: {
        request: chain.filter((p) => p.plugin.requestFilter === null).map((p) => p.plugin.name),
        response: chain.filter((p) => p.plugin.responseFilter === null).map((p) => p.plugin.name),
      },
      generation,
    };
  }

  #entry(token: number, phase: Phase): ConfEntry {
    const entry = this.#cache.get(token);
    if (entry === undefined) throw new ConfTokenNotFoundError(token);
    if (entry.generation !== this.#plugins.generation) {
      // Reloaded plugins: parse this conf again with the new modules (the token stays valid).
      Object.assign(entry, this.#build(entry.source), { plans: null });
      if (entry.denial !== null) this.#log.error({ token }, `conf denied after reload: ${entry.denial.detail}`);
    }
    if (!entry.warned[phase] && entry.missingIn[phase].length > 0) {
      entry.warned[phase] = true;
      this.#log.warn(
        { token, plugins: entry.missingIn[phase] },
        `plugins without a ${phase} filter are skipped when this conf runs in ${PHASE_GATEWAY_PLUGIN[phase]}`,
      );
    }
    return entry;
  }

  #plan(entry: ConfEntry, phase: Phase): ChainPlan {
    const { placement } = this.#plugins;
    if (entry.plans === null || entry.plans.version !== placement.version) {
      const plan = (chain: readonly PreparedPlugin[]): ChainPlan => {
        const segments = placement.segments(chain);
        return {
          segments,
          inline: segments.every((s) => s.where === 'inline'),
          metered: chain.some((p) => p.plugin.placement === 'auto' && placement.where(p.plugin) === 'inline'),
          denies: chain.some((p) => p.plugin.onError === 'deny'),
        };
      };
      entry.plans = { version: placement.version, request: plan(entry.requestChain), response: plan(entry.responseChain) };
    }
    return entry.plans[phase];
  }

  // ---- HTTPReqCall ----

  #httpReqCall(payload: Buffer, channel: CallChannel): Buffer | Promise<Buffer> {
    const req = readHttpReqCallReq(payload);
    const entry = this.#entry(req.confToken, 'request');
    if (entry.denial !== null) return this.#deny(req.id, entry.denial.reason);
    const sample = this.#metrics === null ? null : (channel.sample ?? null);
    const port = sample === null ? null : new MeteredPort(channel, sample, this.#metrics!, PHASE_REQUEST);
    const call = new RequestCall(req, port ?? portFor(channel));
    if (port !== null) port.call = call;
    return this.#execute(this.#requestOps, payload, entry, this.#plan(entry, 'request'), call, channel, sample);
  }

  /**
   * Runs a call's chain and produces its reply, the same way in both phases (`ops` holds what
   * differs). A chain that is all inline and synchronous answers in this turn, with no promise.
   */
  #execute<C extends RequestCall | ResponseCall>(
    ops: CallOps<C>,
    payload: Buffer,
    entry: ConfEntry,
    plan: ChainPlan,
    call: C,
    channel: CallChannel,
    sample: CallSample | null,
  ): Buffer | Promise<Buffer> {
    // With metrics, the clock read that ends the decode stage also starts the first filter.
    const startMs = sample === null ? 0 : (this.#clockMs = performance.now());
    if (plan.inline) {
      let pending: void | Promise<void>;
      try {
        pending = ops.runInline(entry, plan, call, startMs);
      } catch (err) {
        return this.#failed(err, call);
      }
      if (pending === undefined) {
        sample?.chainRan(startMs, this.#clockMs, call.extraInfoWaitMs);
        return ops.encode(call);
      }
      return this.#settle(pending, call, channel).then(
        () => {
          sample?.chainRan(startMs, performance.now(), call.extraInfoWaitMs);
          return ops.encode(call);
        },
        (err: unknown) => this.#failed(err, call),
      );
    }
    return this.#settle(ops.runSegments(payload, entry, plan, call, sample), call, channel).then(
      (frame) => {
        sample?.chainRan(startMs, performance.now(), call.extraInfoWaitMs);
        return frame ?? ops.encode(call);
      },
      (err: unknown) => this.#failed(err, call),
    );
  }

  /** What differs between the phases for #execute; built once per handler, not per call. */
  readonly #requestOps: CallOps<RequestCall> = {
    runInline: (entry, plan, call, startMs) =>
      runRequestChain(entry.requestChain, call, 0, entry.requestChain.length, this.#inlineMeter(plan, PHASE_REQUEST), startMs),
    runSegments: (payload, entry, plan, call, sample) => this.#runRequestSegments(payload, entry, plan, call, sample),
    encode: (call) => this.#encodeReq(call),
  };

  readonly #responseOps: CallOps<ResponseCall> = {
    runInline: (entry, plan, call, startMs) =>
      runResponseChain(entry.responseChain, call, 0, entry.responseChain.length, this.#inlineMeter(plan, PHASE_RESPONSE), startMs),
    runSegments: (payload, entry, plan, call, sample) => this.#runResponseSegments(payload, entry, plan, call, sample),
    encode: (call) => this.#encodeResp(call),
  };

  /** The meter of an inline chain: every filter with metrics on, else the auto plugins' only. */
  #inlineMeter(plan: ChainPlan, phase: number): FilterMeter | undefined {
    if (this.#meters !== null) return this.#meters[phase];
    return plan.metered ? this.#plugins.placement.meter : undefined;
  }

  /** A chain with pool segments: returns the worker's reply frame, or null to encode here. */
  #runRequestSegments(payload: Buffer, entry: ConfEntry, plan: ChainPlan, call: RequestCall, sample: CallSample | null): Promise<Buffer | null> {
    return this.#runSegments(payload, entry, plan, call, sample, {
      phase: PHASE_REQUEST,
      chain: entry.requestChain,
      runInline: (from, to, meter) => runRequestChain(entry.requestChain, call, from, to, meter),
      body: () => call.body(),
      ended: () => call.stopped,
      shed: () => call.stop(503, TEXT_PLAIN_INIT, OVERLOADED_BODY),
    });
  }

  #runResponseSegments(payload: Buffer, entry: ConfEntry, plan: ChainPlan, call: ResponseCall, sample: CallSample | null): Promise<Buffer | null> {
    return this.#runSegments(payload, entry, plan, call, sample, {
      phase: PHASE_RESPONSE,
      chain: entry.responseChain,
      runInline: (from, to, meter) => runResponseChain(entry.responseChain, call, from, to, meter),
      body: () => call.readBody(),
      ended: () => false,
      shed: () => {
        call.setStatus(503);
        call.setHeader('Content-Type', TEXT_PLAIN_INIT['Content-Type']);
        call.setBody(OVERLOADED_BODY);
      },
    });
  }

  async #runSegments<S extends CallState>(
    payload: Buffer,
    entry: ConfEntry,
    plan: ChainPlan,
    call: SegmentCall<S>,
    sample: CallSample | null,
    phase: PhaseOps,
  ): Promise<Buffer | null> {
    const { pool } = this.#plugins;
    const meter = this.#inlineMeter(plan, phase.phase);
    for (const segment of plan.segments) {
      if (phase.ended() || call.abortReason !== null) break;
      if (segment.where === 'inline' || pool === null) {
        const running = phase.runInline(segment.from, segment.to, meter);
        if (running !== undefined) await running;
        continue;
      }
      if (segment.needs) await prefetch(call, phase.chain, segment.from, segment.to, phase.body);
      onTheirWay(call, phase.chain, segment.from, segment.to);
      let outcome: CallOutcome;
      const request: PoolRequest = {
        phase: phase.phase,
        payload,
        token: entry.token,
        fingerprint: entry.fingerprint,
        source: entry.source,
        from: segment.from,
        to: segment.to,
        last: segment.to === phase.chain.length,
        state: call.pristine ? null : call.exportState(),
        dispatchedMs: 0,
      };
      const queuedMs = sample === null ? 0 : performance.now();
      try {
        outcome = await pool.run(call, request);
      } catch (err) {
        if (!(err instanceof OverloadedError)) throw err;
        this.#warnThrottled('overloaded', {}, `${err.message}: calls are shed`);
        // Shed as the chain's own failure would be answered (DECISIONS 2).
        if (!plan.denies) throw err;
        phase.shed();
        return null;
      }
      // The pool stamps when the call left in a batch: the time before that is the queue wait.
      if (sample !== null && request.dispatchedMs > 0) sample.waited(request.dispatchedMs - queuedMs);
      const frame = applyOutcome(outcome, call);
      if (frame !== null) return frame;
    }
    return null;
  }

  #encodeReq(call: RequestCall): Buffer {
    call.finish();
    try {
      return encodeHttpReqCallResp({ id: call.id, action: call.toAction() });
    } catch (err) {
      return this.#failed(err, call);
    }
  }

  #deny(id: number, reason: string): Buffer {
    return encodeHttpReqCallResp({
      id,
      action: { type: 'stop', status: 503, headers: TEXT_PLAIN, body: Buffer.from(`${reason}\n`) },
    });
  }

  #denyResponse(id: number, reason: string): Buffer {
    return encodeHttpRespCallResp({ id, status: 503, headers: TEXT_PLAIN, body: Buffer.from(`${reason}\n`) });
  }

  // ---- HTTPRespCall ----

  #httpRespCall(payload: Buffer, channel: CallChannel): Buffer | Promise<Buffer> {
    const req = decodeHttpRespCallReq(payload);
    const entry = this.#entry(req.confToken, 'response');
    // The upstream already answered, but its response can still be replaced: deny with a 503 the
    // route's allow_degradation cannot bypass.
    if (entry.denial !== null) return this.#denyResponse(req.id, entry.denial.reason);
    const sample = this.#metrics === null ? null : (channel.sample ?? null);
    const port = sample === null ? null : new MeteredPort(channel, sample, this.#metrics!, PHASE_RESPONSE);
    const call = new ResponseCall(req, port ?? portFor(channel));
    if (port !== null) port.call = call;
    return this.#execute(this.#responseOps, payload, entry, this.#plan(entry, 'response'), call, channel, sample);
  }

  #encodeResp(call: ResponseCall): Buffer {
    call.finish();
    try {
      return encodeHttpRespCallResp(call.toReply());
    } catch (err) {
      return this.#failed(err, call);
    }
  }

  // ---- shared ----

  /** Wait for an async chain, bounded by the call deadline and by the connection staying open. */
  #settle<T>(pending: Promise<T>, call: CallBase, channel: CallChannel): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = this.#deadlines.track(() => {
        const plugin = call.current;
        const err = new CallTimeoutError(plugin?.name ?? null, this.#deadlines.timeoutMs, plugin?.onError === 'deny');
        call.abort(err);
        reject(err);
      });
      channel.onAbort = (reason) => {
        deadline.clear();
        call.abort(reason);
        reject(reason);
      };
      pending.then(
        (value) => {
          deadline.clear();
          resolve(value);
        },
        (err: unknown) => {
          deadline.clear();
          reject(err);
        },
      );
    });
  }

  #failed(err: unknown, call: CallBase | null): Buffer {
    call?.finish();
    if (err instanceof PluginFailedError || err instanceof CallTimeoutError) {
      const plugin = err.plugin ?? 'chain';
      const held = this.#throttle.pass(`plugin:${plugin}:${err.code}`);
      if (held !== false) {
        const cause = err instanceof PluginFailedError ? err.cause : undefined;
        this.#log.warn({ plugin, id: call?.id, err: cause ?? err, heldBack: held || undefined }, err.message);
      }
      if (err.deny && call !== null) {
        // A fixed text: the error's message (logged above) can quote the request or the conf.
        const reason = `plugin "${plugin}" failed`;
        return call instanceof RequestCall ? this.#deny(call.id, reason) : this.#denyResponse(call.id, reason);
      }
      return this.#errFrames[ErrCode.ServiceUnavailable];
    }
    if (err instanceof ConfTokenNotFoundError) {
      // Normal after a runner restart or expiry: the gateway flushes its caches and re-prepares.
      this.#log.debug({ token: err.token }, err.message);
    } else if (err instanceof MalformedPayloadError || err instanceof UnexpectedRpcTypeError) {
      this.#warnThrottled(err.code, { err: err.message, id: call?.id }, `${err.message}: answered BAD_REQUEST`);
    } else if (err instanceof FrameTooLargeError) {
      this.#warnThrottled('too-large', { id: call?.id, payloadBytes: err.payloadBytes }, `${err.message}: answered SERVICE_UNAVAILABLE`);
    } else if (!(err instanceof OverloadedError) && (call === null || call.abortReason !== err)) {
      this.#warnThrottled('internal', { err, id: call?.id }, 'call failed, answered with an error reply');
    }
    return this.errorFrame(err);
  }

  #warnThrottled(key: string, fields: Record<string, unknown>, message: string): void {
    const held = this.#throttle.pass(key);
    if (held !== false) this.#log.warn({ ...fields, heldBack: held || undefined }, message);
  }
}

/**
 * Fetch what a pool segment's plugins declared (`needs`) before the hand-off: each query asked from
 * the worker would cost a thread round trip on top of the gateway's.
 */
async function prefetch(call: CallBase, chain: readonly PreparedPlugin[], from: number, to: number, body: () => Promise<unknown>): Promise<void> {
  for (let i = from; i < to; i++) {
    const { vars, body: wantsBody } = chain[i].plugin.needs;
    for (const name of vars) await call.varBytes(name);
    if (wantsBody) await body();
  }
}

/**
 * While a segment runs on a worker, the main thread does not know which of its plugins is running:
 * name the one a deadline should be blamed on, a `deny` plugin first, so a timeout in the pool
 * still answers as that plugin's onError says (DECISIONS 2).
 */
function onTheirWay(call: CallBase, chain: readonly PreparedPlugin[], from: number, to: number): void {
  const segment = chain.slice(from, to);
  call.current = (segment.find((p) => p.plugin.onError === 'deny') ?? segment[0]).plugin;
}

/** Continue after a pool segment: its reply frame, or its state taken over here (null). */
function applyOutcome<S>(outcome: CallOutcome, call: CallBase & { importState(state: S): void }): Buffer | null {
  switch (outcome.kind) {
    case 'frame':
      call.finish();
      return Buffer.from(outcome.frame.buffer, outcome.frame.byteOffset, outcome.frame.byteLength);
    case 'state':
      // The worker ran the same phase: its state is of this call's kind.
      call.importState(outcome.state as S);
      return null;
    case 'error': {
      const { type, plugin, deny, message } = outcome.error;
      if (type === 'plugin') throw new PluginFailedError(plugin ?? 'unknown', new Error(message), deny);
      if (type === 'malformed') throw new MalformedPayloadError(message);
      throw new WorkerFailedError(message);
    }
  }
}

/** ExtraInfo for one call over its connection (the connection serialises concurrent queries). */
function portFor(channel: CallChannel): ExtraInfoPort {
  return {
    query: (query: ExtraInfoQuery) => channel.ask(encodeExtraInfoReq(query)).then(extraInfoResult),
  };
}

/**
 * portFor with metrics on: each query is counted for the call and blamed on the filter running when
 * it was asked (on the pool: the plugin `onTheirWay` named; before a hand-off: the `needs` prefetch).
 * The call is created after its port, so the handler sets `call` right after.
 */
class MeteredPort implements ExtraInfoPort {
  call: CallBase | null = null;
  readonly #channel: CallChannel;
  readonly #sample: CallSample;
  readonly #metrics: RunnerMetrics;
  readonly #phase: number;

  constructor(channel: CallChannel, sample: CallSample, metrics: RunnerMetrics, phase: number) {
    this.#channel = channel;
    this.#sample = sample;
    this.#metrics = metrics;
    this.#phase = phase;
  }

  query(query: ExtraInfoQuery): Promise<Uint8Array | null> {
    this.#sample.extraInfoRounds++;
    this.#metrics.extraInfoRound(this.#phase, this.call?.current?.name ?? null);
    return this.#channel.ask(encodeExtraInfoReq(query)).then(extraInfoResult);
  }
}

function extraInfoResult(answer: Buffer): Uint8Array | null {
  return decodeExtraInfoResp(answer).result;
}
