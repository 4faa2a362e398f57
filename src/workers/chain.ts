/**
 * Runs a conf's plugins in order, or a segment of them (the rest may run on another thread).
 * Synchronous filters run without creating a single promise: the chain only turns async at the
 * first filter that returns one (most header/Stop plugins never do).
 */
import { MalformedPayloadError, PluginFailedError } from '../errors.js';
import type { Plugin } from '../plugin.js';
import type { CallBase } from './call-base.js';
import type { RequestCall } from './request-call.js';
import type { ResponseCall } from './response-call.js';

export interface PreparedPlugin {
  readonly plugin: Plugin;
  /** What `parseConf` returned for this route's value. */
  readonly conf: unknown;
}

export type Phase = 'request' | 'response';

/**
 * Receives each filter's CPU estimate in microseconds: its run time less the time it spent waiting
 * for the gateway's ExtraInfo answers. Calls interleaved with it on the same thread can only make
 * the figure larger, which errs toward keeping a plugin off the main thread. `endMs` is the clock
 * read that ended the filter (`performance.now()`), for a caller that wants the chain's end without
 * reading the clock again.
 */
export type FilterMeter = (plugin: Plugin, cpuUs: number, endMs: number) => void;

function failure(plugin: Plugin, call: CallBase, err: unknown): Error {
  // A malformed field found lazily is the gateway's fault, not the plugin's (answered BAD_REQUEST);
  // an abort reason (deadline, disconnect) is already the call's verdict.
  if (err instanceof MalformedPayloadError || (call.abortReason !== null && err === call.abortReason)) return err as Error;
  return new PluginFailedError(plugin.name, err, plugin.onError === 'deny');
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return value !== undefined && value !== null && typeof (value as PromiseLike<void>).then === 'function';
}

/** Reads the clock once: the end of this filter, and the start of the next one. */
function report(meter: FilterMeter, plugin: Plugin, call: CallBase, started: number, waitedBefore: number): number {
  const now = performance.now();
  meter(plugin, (now - started - (call.extraInfoWaitMs - waitedBefore)) * 1000, now);
  return now;
}

type Invoke<C extends CallBase> = (entry: PreparedPlugin, call: C) => unknown;

const invokeRequest: Invoke<RequestCall> = ({ plugin, conf }, call) => plugin.requestFilter!(conf, call, call);
const invokeResponse: Invoke<ResponseCall> = ({ plugin, conf }, call) => plugin.responseFilter!(conf, call, call);
const requestStopped = (call: RequestCall): boolean => call.stopped;
const never = (): boolean => false;

function run<C extends CallBase>(
  chain: readonly PreparedPlugin[],
  call: C,
  from: number,
  to: number,
  invoke: Invoke<C>,
  stopped: (call: C) => boolean,
  meter: FilterMeter | undefined,
  startMs: number,
): void | Promise<void> {
  // Metered, one clock read per filter: each filter starts where the previous one ended, the first
  // where the caller last read the clock (`startMs`), if it did. performance.now() costs 40-80 ns
  // here, as much as a light filter.
  let clock = startMs;
  for (let i = from; i < to; i++) {
    const entry = chain[i];
    call.current = entry.plugin;
    let waitedBefore = 0;
    if (meter !== undefined) {
      if (clock === 0) clock = performance.now();
      waitedBefore = call.extraInfoWaitMs;
    }
    let result: unknown;
    try {
      result = invoke(entry, call);
    } catch (err) {
      throw failure(entry.plugin, call, err);
    }
    if (isThenable(result)) {
      const started = clock;
      return Promise.resolve(result).then(
        () => {
          const now = meter === undefined ? 0 : report(meter, entry.plugin, call, started, waitedBefore);
          return stopped(call) || call.abortReason !== null ? undefined : run(chain, call, i + 1, to, invoke, stopped, meter, now);
        },
        (err: unknown) => {
          throw failure(entry.plugin, call, err);
        },
      );
    }
    if (meter !== undefined) clock = report(meter, entry.plugin, call, clock, waitedBefore);
    if (stopped(call)) break;
  }
  call.current = null;
}

/**
 * Pre-req / post-req, plugins `from` to `to` (exclusive), until one stops the request. With a
 * `meter`, `startMs` is a clock read the caller just made (the first filter's start), or 0.
 */
export function runRequestChain(
  chain: readonly PreparedPlugin[],
  call: RequestCall,
  from = 0,
  to = chain.length,
  meter?: FilterMeter,
  startMs = 0,
): void | Promise<void> {
  return run(chain, call, from, to, invokeRequest, requestStopped, meter, startMs);
}

/** Post-resp, plugins `from` to `to` (exclusive); `meter` and `startMs` as for runRequestChain. */
export function runResponseChain(
  chain: readonly PreparedPlugin[],
  call: ResponseCall,
  from = 0,
  to = chain.length,
  meter?: FilterMeter,
  startMs = 0,
): void | Promise<void> {
  return run(chain, call, from, to, invokeResponse, never, meter, startMs);
}
