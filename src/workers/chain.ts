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
 * the figure larger, which errs toward keeping a plugin off the main thread.
 */
export type FilterMeter = (plugin: Plugin, cpuUs: number) => void;

function failure(plugin: Plugin, call: CallBase, err: unknown): Error {
  // A malformed field found lazily is the gateway's fault, not the plugin's (answered BAD_REQUEST);
  // an abort reason (deadline, disconnect) is already the call's verdict.
  if (err instanceof MalformedPayloadError || (call.abortReason !== null && err === call.abortReason)) return err as Error;
  return new PluginFailedError(plugin.name, err, plugin.onError === 'deny');
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return value !== undefined && value !== null && typeof (value as PromiseLike<void>).then === 'function';
}

function report(meter: FilterMeter, plugin: Plugin, call: CallBase, started: number, waitedBefore: number): void {
  meter(plugin, (performance.now() - started - (call.extraInfoWaitMs - waitedBefore)) * 1000);
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
): void | Promise<void> {
  for (let i = from; i < to; i++) {
    const entry = chain[i];
    call.current = entry.plugin;
    const started = meter === undefined ? 0 : performance.now();
    const waitedBefore = meter === undefined ? 0 : call.extraInfoWaitMs;
    let result: unknown;
    try {
      result = invoke(entry, call);
    } catch (err) {
      throw failure(entry.plugin, call, err);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        () => {
          if (meter !== undefined) report(meter, entry.plugin, call, started, waitedBefore);
          return stopped(call) || call.abortReason !== null ? undefined : run(chain, call, i + 1, to, invoke, stopped, meter);
        },
        (err: unknown) => {
          throw failure(entry.plugin, call, err);
        },
      );
    }
    if (meter !== undefined) report(meter, entry.plugin, call, started, waitedBefore);
    if (stopped(call)) break;
  }
  call.current = null;
}

/** Pre-req / post-req, plugins `from` to `to` (exclusive), until one stops the request. */
export function runRequestChain(
  chain: readonly PreparedPlugin[],
  call: RequestCall,
  from = 0,
  to = chain.length,
  meter?: FilterMeter,
): void | Promise<void> {
  return run(chain, call, from, to, invokeRequest, requestStopped, meter);
}

/** Post-resp, plugins `from` to `to` (exclusive). */
export function runResponseChain(
  chain: readonly PreparedPlugin[],
  call: ResponseCall,
  from = 0,
  to = chain.length,
  meter?: FilterMeter,
): void | Promise<void> {
  return run(chain, call, from, to, invokeResponse, never, meter);
}
