/**
 * Runs a conf's plugins in order. Synchronous filters run without creating a single promise: the
 * chain only turns async at the first filter that returns one (most header/Stop plugins never do).
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

function failure(plugin: Plugin, call: CallBase, err: unknown): Error {
  // A malformed field found lazily is the gateway's fault, not the plugin's (answered BAD_REQUEST);
  // an abort reason (deadline, disconnect) is already the call's verdict.
  if (err instanceof MalformedPayloadError || (call.abortReason !== null && err === call.abortReason)) return err as Error;
  return new PluginFailedError(plugin.name, err, plugin.onError === 'deny');
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return value !== undefined && value !== null && typeof (value as PromiseLike<void>).then === 'function';
}

/** Pre-req / post-req: until a plugin stops the request. Plugins without a request filter were removed beforehand. */
export function runRequestChain(chain: readonly PreparedPlugin[], call: RequestCall, from = 0): void | Promise<void> {
  for (let i = from; i < chain.length; i++) {
    const { plugin, conf } = chain[i];
    call.current = plugin;
    let result: unknown;
    try {
      result = plugin.requestFilter!(conf, call, call);
    } catch (err) {
      throw failure(plugin, call, err);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        () => (call.stopped || call.abortReason !== null ? undefined : runRequestChain(chain, call, i + 1)),
        (err: unknown) => {
          throw failure(plugin, call, err);
        },
      );
    }
    if (call.stopped) break;
  }
  call.current = null;
}

/** Post-resp: every plugin with a response filter, in order. */
export function runResponseChain(chain: readonly PreparedPlugin[], call: ResponseCall, from = 0): void | Promise<void> {
  for (let i = from; i < chain.length; i++) {
    const { plugin, conf } = chain[i];
    call.current = plugin;
    let result: unknown;
    try {
      result = plugin.responseFilter!(conf, call, call);
    } catch (err) {
      throw failure(plugin, call, err);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        () => (call.abortReason !== null ? undefined : runResponseChain(chain, call, i + 1)),
        (err: unknown) => {
          throw failure(plugin, call, err);
        },
      );
    }
  }
  call.current = null;
}
