/**
 * A pool thread. It loads the same plugin modules as the main thread, keeps parsed confs per
 * token, and runs chain segments on payloads it copies out of the batch's shared buffer, writing
 * reply frames back into it.
 *
 * piscina starts, replaces and terminates these threads; calls do not travel as piscina tasks but
 * on a channel the thread opens at startup and hands to the main thread: there the batch format is
 * ours (flat numbers, confs sent once per thread), which the per-call cost needs.
 */
import { MessageChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { MalformedPayloadError, PluginFailedError, describe } from '../errors.js';
import { WorkerRecorder, type WorkerMetricsInit } from '../metrics/worker-channel.js';
import type { Plugin } from '../plugin.js';
import { builtinPlugins } from '../plugins/index.js';
import { decodeHttpRespCallReq, encodeHttpReqCallResp, encodeHttpRespCallResp, readHttpReqCallReq } from '../protocol/codec.js';
import type { ExtraInfoQuery } from '../protocol/messages.js';
import { compact, copyOut } from './bytes.js';
import type { ExtraInfoPort } from './call-base.js';
import { runRequestChain, runResponseChain, type PreparedPlugin } from './chain.js';
import type { ConfSource } from './conf-cache.js';
import { PluginRegistry } from './plugin-registry.js';
import {
  CALL,
  CALL_FIELDS,
  OUTCOME,
  PHASE_REQUEST,
  PHASE_RESPONSE,
  type BatchMessage,
  type CallOutcome,
  type CallState,
  type FilterStats,
  type MainMessage,
  type OutcomeError,
  type WorkerInit,
  type WorkerMessage,
} from './pool-messages.js';
import { RequestCall, type RequestCallState } from './request-call.js';
import { ResponseCall, type ResponseCallState } from './response-call.js';

const init = workerData as WorkerInit & WorkerMetricsInit;
const registry = new PluginRegistry();
registry.add(builtinPlugins, 'builtin');
await registry.load(init.pluginPaths);

interface Chains {
  fingerprint: string;
  request: PreparedPlugin[];
  response: PreparedPlugin[];
}

interface Task {
  id: number;
  phase: number;
  token: number;
  from: number;
  to: number;
  last: boolean;
  state: CallState | null;
}

const chains = new Map<number, Chains>();
const asks = new Map<number, { resolve: (v: Uint8Array | null) => void; reject: (e: Error) => void }>();
let nextAsk = 1;
let stats = new Map<string, [number, number]>();

const { port1: port, port2 } = new MessageChannel();
port.on('message', (message: MainMessage) => {
  switch (message.type) {
    case 'batch':
      runBatch(message);
      break;
    case 'answer':
      asks.get(message.ask)?.resolve(message.result);
      asks.delete(message.ask);
      break;
    case 'refused':
      asks.get(message.ask)?.reject(new Error(message.message));
      asks.delete(message.ask);
      break;
    case 'drop':
      for (const token of message.tokens) chains.delete(token);
      break;
  }
});
parentPort!.postMessage({ type: 'anr-worker', threadId, port: port2 }, [port2]);

function chainsFor(token: number, fingerprint: string, source: readonly ConfSource[]): void {
  if (chains.get(token)?.fingerprint === fingerprint) return;
  // The main thread already checked names and values (a deny chain never reaches the pool), but
  // these are this thread's own plugin instances, so each conf is parsed here once too.
  const chain: PreparedPlugin[] = [];
  for (const { name, value } of source) {
    const plugin = registry.get(name);
    if (plugin !== undefined) chain.push({ plugin, conf: plugin.parseConf(value) });
  }
  chains.set(token, {
    fingerprint,
    request: chain.filter((p) => p.plugin.requestFilter !== null),
    response: chain.filter((p) => p.plugin.responseFilter !== null),
  });
}

function meter(plugin: Plugin, cpuUs: number): void {
  if (plugin.placement !== 'auto') return;
  const entry = stats.get(plugin.name);
  if (entry === undefined) stats.set(plugin.name, [1, cpuUs]);
  else {
    entry[0]++;
    entry[1] += cpuUs;
  }
}

/** With metrics on, every filter is also recorded per plugin and phase (sent when the main thread asks). */
const recorder = init.metricsChannel ? new WorkerRecorder(init.metricsChannel) : null;
const meters = recorder === null ? [meter, meter] : [recorder.meter(PHASE_REQUEST, meter), recorder.meter(PHASE_RESPONSE, meter)];

function takeStats(): FilterStats {
  if (stats.size === 0) return [];
  const out: FilterStats = [...stats].map(([name, [calls, us]]) => [name, calls, us]);
  stats = new Map();
  return out;
}

function portFor(id: number): ExtraInfoPort {
  return {
    query: (query: ExtraInfoQuery) =>
      new Promise<Uint8Array | null>((resolve, reject) => {
        const ask = nextAsk++;
        asks.set(ask, { resolve, reject });
        port.postMessage({ type: 'ask', id, ask, query } satisfies WorkerMessage);
      }),
  };
}

function outcomeError(err: unknown): OutcomeError {
  if (err instanceof PluginFailedError) return { type: 'plugin', plugin: err.plugin, deny: err.deny, message: describe(err.cause) };
  if (err instanceof MalformedPayloadError) return { type: 'malformed', plugin: null, deny: false, message: err.message };
  return { type: 'internal', plugin: null, deny: false, message: describe(err) };
}

/** A finished segment: the reply frame when the chain is over, else the state for the main thread. */
type Finished = Buffer | CallState;

function finishRequest(call: RequestCall, task: Task): Finished {
  if (!task.last && !call.stopped) return call.exportState();
  call.finish();
  return encodeHttpReqCallResp({ id: call.id, action: call.toAction() });
}

function finishResponse(call: ResponseCall, task: Task): Finished {
  if (!task.last) return call.exportState();
  call.finish();
  return encodeHttpRespCallResp(call.toReply());
}

function runCall(task: Task, payload: Buffer): Finished | Promise<Finished> {
  const chain = chains.get(task.token);
  if (chain === undefined) throw new Error(`conf token ${task.token} was not sent to this thread`);
  if (task.phase === PHASE_REQUEST) {
    const call = new RequestCall(readHttpReqCallReq(payload), portFor(task.id), (task.state as RequestCallState | null) ?? undefined);
    const pending = runRequestChain(chain.request, call, task.from, task.to, meters[PHASE_REQUEST]);
    return pending === undefined ? finishRequest(call, task) : pending.then(() => finishRequest(call, task));
  }
  const call = new ResponseCall(decodeHttpRespCallReq(payload), portFor(task.id), (task.state as ResponseCallState | null) ?? undefined);
  const pending = runResponseChain(chain.response, call, task.from, task.to, meters[PHASE_RESPONSE]);
  return pending === undefined ? finishResponse(call, task) : pending.then(() => finishResponse(call, task));
}

function asOutcome(id: number, finished: Finished): CallOutcome {
  return finished instanceof Uint8Array ? { id, kind: 'frame', frame: compact(finished) } : { id, kind: 'state', state: finished };
}

/** A call that outlived its batch reports on its own. */
function report(outcome: CallOutcome): void {
  // A frame in an ArrayBuffer of its own is moved, not copied (large rewritten bodies).
  const transfer = outcome.kind === 'frame' && outcome.frame.byteLength >= 4096 ? [outcome.frame.buffer as ArrayBuffer] : [];
  port.postMessage({ type: 'outcome', outcome, stats: takeStats() } satisfies WorkerMessage, transfer);
}

/**
 * Runs every call of the batch up to its first await and answers at once: reply frames go into
 * the batch buffer after the payloads while they fit. Calls still waiting (on ExtraInfo, timers,
 * I/O) report on their own when done, so one slow call never holds back the others' replies.
 */
function runBatch(batch: BatchMessage): void {
  for (const [token, fingerprint, source] of batch.confs) {
    try {
      chainsFor(token, fingerprint, source);
    } catch {
      // parseConf threw here though it passed on the main thread; the token's calls fail below.
    }
  }
  // The calls' own time (parsing confs above is a one-off and would skew the batch sizing).
  const started = performance.now();
  const slab = Buffer.from(batch.buffer);
  let cursor = batch.used;
  const results: number[] = [];
  const extras: DoneExtras = [];
  const transfer: ArrayBuffer[] = [];
  let pending = 0;
  for (let i = 0; i < batch.calls.length; i += CALL_FIELDS) {
    const c = batch.calls;
    const task: Task = {
      id: c[i + CALL.id],
      phase: c[i + CALL.phase],
      token: c[i + CALL.token],
      from: c[i + CALL.from],
      to: c[i + CALL.to],
      last: c[i + CALL.last] === 1,
      state: batch.states?.[i / CALL_FIELDS] ?? null,
    };
    let finished: Finished | Promise<Finished>;
    try {
      // Copied out, not decoded in place: the plugins' views (headers, path, args, getBytes(), the
      // lazy getters) point into the payload and may be kept past the reply, and the batch buffer
      // is reused for the next batch once this one is answered; a kept view then read another
      // request's bytes (issue 8). Cost: about 0.9 us of CPU per 1.25 KiB call, mostly the
      // allocation (bench/pool-copy.ts); end to end, less than the pool scenarios' run-to-run noise.
      finished = runCall(task, copyOut(slab, c[i + CALL.offset], c[i + CALL.length]));
    } catch (err) {
      results.push(task.id, OUTCOME.error, extras.push(outcomeError(err)) - 1, 0);
      continue;
    }
    if (finished instanceof Promise) {
      pending++;
      finished.then(
        (done) => report(asOutcome(task.id, done)),
        (err: unknown) => report({ id: task.id, kind: 'error', error: outcomeError(err) }),
      );
    } else if (!(finished instanceof Uint8Array)) {
      results.push(task.id, OUTCOME.state, extras.push(finished) - 1, 0);
    } else if (cursor + finished.byteLength <= slab.byteLength) {
      slab.set(finished, cursor);
      results.push(task.id, OUTCOME.frameInBuffer, cursor, finished.byteLength);
      cursor += finished.byteLength;
    } else {
      const frame = compact(finished);
      if (frame.byteLength >= 4096) transfer.push(frame.buffer as ArrayBuffer);
      results.push(task.id, OUTCOME.frame, extras.push(frame) - 1, 0);
    }
  }
  const busyUs = (performance.now() - started) * 1000;
  port.postMessage({ type: 'done', seq: batch.seq, results, extras, pending, busyUs, stats: takeStats() } satisfies WorkerMessage, transfer);
}

type DoneExtras = Array<Uint8Array | CallState | OutcomeError>;

/** piscina's task entry point: calls never come this way (see the header comment). */
export default function ping(): number {
  return threadId;
}
