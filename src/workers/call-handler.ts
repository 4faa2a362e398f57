/**
 * Turns one request frame into one reply frame: decode, find the conf, run the chain, encode.
 * Synchronous chains return the reply frame directly (no promise on the hot path); a chain that
 * awaits is raced against its deadline and against the connection closing.
 */
import type { Logger } from 'pino';
import {
  CallTimeoutError,
  ConfTokenNotFoundError,
  FrameTooLargeError,
  MalformedPayloadError,
  PluginFailedError,
  UnexpectedRpcTypeError,
  describe,
  wireErrCode,
} from '../errors.js';
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
import { runRequestChain, runResponseChain, type Phase, type PreparedPlugin } from './chain.js';
import type { ConfCache, ConfEntry, ConfSource } from './conf-cache.js';
import type { Deadlines } from './deadlines.js';
import type { PluginRegistry } from './plugin-registry.js';
import { RequestCall } from './request-call.js';
import { ResponseCall } from './response-call.js';

/** The connection a call arrived on, as the call handler sees it (implemented in io). */
export interface CallChannel {
  /** Write an ExtraInfo query frame and resolve with the payload of the gateway's type-3 answer. */
  ask(frame: Buffer): Promise<Buffer>;
  /** Set by the handler while a call awaits: the connection calls it if it closes mid-call. */
  onAbort: ((reason: Error) => void) | null;
}

export interface CallHandlerOptions {
  registry: PluginRegistry;
  cache: ConfCache;
  deadlines: Deadlines;
  skipUnknownPlugins: boolean;
  logger: Logger;
}

const PHASE_GATEWAY_PLUGIN: Record<Phase, string> = {
  request: 'ext-plugin-pre-req/post-req',
  response: 'ext-plugin-post-resp',
};

const TEXT_PLAIN = [{ name: 'Content-Type', value: 'text/plain; charset=utf-8' }] as const;

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
  readonly #registry: PluginRegistry;
  readonly #cache: ConfCache;
  readonly #deadlines: Deadlines;
  readonly #skipUnknown: boolean;
  readonly #log: Logger;
  readonly #throttle = new LogThrottle();
  readonly #errFrames: Record<ErrCode, Buffer>;

  constructor(options: CallHandlerOptions) {
    this.#registry = options.registry;
    this.#cache = options.cache;
    this.#deadlines = options.deadlines;
    this.#skipUnknown = options.skipUnknownPlugins;
    this.#log = options.logger;
    this.#errFrames = {
      [ErrCode.BadRequest]: encodeErrResp(ErrCode.BadRequest),
      [ErrCode.ServiceUnavailable]: encodeErrResp(ErrCode.ServiceUnavailable),
      [ErrCode.ConfTokenNotFound]: encodeErrResp(ErrCode.ConfTokenNotFound),
    };
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
      this.#log.error({ token: entry.token, key, conf: source.map((s) => s.name) }, `conf denied, every call with this token answers 503: ${entry.denial}`);
    } else {
      this.#log.debug({ token: entry.token, key, conf: source.map((s) => s.name) }, 'conf prepared');
    }
    return encodePrepareConfResp(entry.token);
  }

  /** Resolve names and parse values once. Any problem fails the whole conf closed (DECISIONS 1). */
  #build(source: readonly ConfSource[]): Pick<ConfEntry, 'denial' | 'requestChain' | 'responseChain' | 'missingIn'> {
    const chain: PreparedPlugin[] = [];
    let denial: string | null = null;
    for (const { name, value } of source) {
      const plugin = this.#registry.get(name);
      if (plugin === undefined) {
        if (this.#skipUnknown) {
          this.#log.warn({ plugin: name }, `plugin "${name}" is not loaded: skipped (--skip-unknown-plugins)`);
          continue;
        }
        denial ??= `plugin "${name}" is not loaded`;
        continue;
      }
      try {
        chain.push({ plugin, conf: plugin.parseConf(value) });
      } catch (err) {
        denial ??= `plugin "${name}" rejected its conf: ${describe(err)}`;
      }
    }
    if (denial !== null) return { denial, requestChain: [], responseChain: [], missingIn: { request: [], response: [] } };
    return {
      denial: null,
      requestChain: chain.filter((p) => p.plugin.requestFilter !== null),
      responseChain: chain.filter((p) => p.plugin.responseFilter !== null),
      missingIn: {
        request: chain.filter((p) => p.plugin.requestFilter === null).map((p) => p.plugin.name),
        response: chain.filter((p) => p.plugin.responseFilter === null).map((p) => p.plugin.name),
      },
    };
  }

  #entry(token: number, phase: Phase): ConfEntry {
    const entry = this.#cache.get(token);
    if (entry === undefined) throw new ConfTokenNotFoundError(token);
    if (!entry.warned[phase] && entry.missingIn[phase].length > 0) {
      entry.warned[phase] = true;
      this.#log.warn(
        { token, plugins: entry.missingIn[phase] },
        `plugins without a ${phase} filter are skipped when this conf runs in ${PHASE_GATEWAY_PLUGIN[phase]}`,
      );
    }
    return entry;
  }

  // ---- HTTPReqCall ----

  #httpReqCall(payload: Buffer, channel: CallChannel): Buffer | Promise<Buffer> {
    const req = readHttpReqCallReq(payload);
    const entry = this.#entry(req.confToken, 'request');
    if (entry.denial !== null) return this.#deny(req.id, entry.denial);
    const call = new RequestCall(req, portFor(channel));
    let pending: void | Promise<void>;
    try {
      pending = runRequestChain(entry.requestChain, call);
    } catch (err) {
      return this.#failed(err, call);
    }
    if (pending === undefined) return this.#encodeReq(call);
    return this.#settle(pending, call, channel).then(
      () => this.#encodeReq(call),
      (err: unknown) => this.#failed(err, call),
    );
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
    if (entry.denial !== null) return this.#denyResponse(req.id, entry.denial);
    const call = new ResponseCall(req, portFor(channel));
    let pending: void | Promise<void>;
    try {
      pending = runResponseChain(entry.responseChain, call);
    } catch (err) {
      return this.#failed(err, call);
    }
    if (pending === undefined) return this.#encodeResp(call);
    return this.#settle(pending, call, channel).then(
      () => this.#encodeResp(call),
      (err: unknown) => this.#failed(err, call),
    );
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
  #settle(pending: Promise<void>, call: CallBase, channel: CallChannel): Promise<void> {
    return new Promise<void>((resolve, reject) => {
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
        () => {
          deadline.clear();
          resolve();
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
    } else if (call === null || call.abortReason !== err) {
      this.#warnThrottled('internal', { err, id: call?.id }, 'call failed, answered with an error reply');
    }
    return this.errorFrame(err);
  }

  #warnThrottled(key: string, fields: Record<string, unknown>, message: string): void {
    const held = this.#throttle.pass(key);
    if (held !== false) this.#log.warn({ ...fields, heldBack: held || undefined }, message);
  }
}

/** ExtraInfo for one call over its connection (the connection serialises concurrent queries). */
function portFor(channel: CallChannel): ExtraInfoPort {
  return {
    query: (query: ExtraInfoQuery) => channel.ask(encodeExtraInfoReq(query)).then((answer) => decodeExtraInfoResp(answer).result),
  };
}
