/**
 * What crosses between the main thread and the pool's worker threads, on each worker's own
 * MessagePort. Batches are flat arrays of numbers plus one shared buffer: structured-cloning an
 * object per call cost a quarter of the main thread's time under load (no-op plugin on the pool).
 */
import type { MessagePort } from 'node:worker_threads';
import type { ExtraInfoQuery } from '../protocol/messages.js';
import type { ConfSource } from './conf-cache.js';
import type { RequestCallState } from './request-call.js';
import type { ResponseCallState } from './response-call.js';

export const PHASE_REQUEST = 0;
export const PHASE_RESPONSE = 1;

/** `workerData` of every pool thread. */
export interface WorkerInit {
  pluginPaths: readonly string[];
}

/** Numbers per call in `BatchMessage.calls`. */
export const CALL_FIELDS = 8;
/** Offsets within one call's numbers. */
export const CALL = { id: 0, phase: 1, offset: 2, length: 3, token: 4, from: 5, to: 6, last: 7 } as const;

export type CallState = RequestCallState | ResponseCallState;

/** Main -> worker: the calls of one event-loop turn bound for this thread. */
export interface BatchMessage {
  type: 'batch';
  seq: number;
  /**
   * Request payloads at the offsets the calls name, copied in by the main thread and out by the
   * worker before it decodes them; the worker writes reply frames after `used` while they fit.
   */
  buffer: SharedArrayBuffer;
  used: number;
  /** CALL_FIELDS numbers per call: id, phase, offset, length, token, from, to, last (0/1). */
  calls: number[];
  /** Each call's state from an earlier segment, or null for all when no call has any. */
  states: Array<CallState | null> | null;
  /** Confs this thread has not been sent yet: [token, fingerprint, source]. */
  confs: Array<[number, string, readonly ConfSource[]]>;
}

/** How an outcome is carried in `DoneMessage.results` (4 numbers each: id, kind, a, b). */
export const OUTCOME = { frameInBuffer: 0, frame: 1, state: 2, error: 3 } as const;
export const RESULT_FIELDS = 4;

export interface OutcomeError {
  type: 'plugin' | 'malformed' | 'internal';
  plugin: string | null;
  deny: boolean;
  message: string;
}

/** One call's end of a segment, as the main thread handles it. */
export type CallOutcome =
  | { id: number; kind: 'frame'; frame: Uint8Array }
  | { id: number; kind: 'state'; state: CallState }
  | { id: number; kind: 'error'; error: OutcomeError };

/** Measured filter CPU per plugin since the last report: [name, calls, total us]. */
export type FilterStats = Array<[string, number, number]>;

/** Worker -> main: the batch ran up to its calls' first awaits. */
export interface DoneMessage {
  type: 'done';
  seq: number;
  /**
   * RESULT_FIELDS numbers per finished call: id, kind, then for `frameInBuffer` the frame's offset
   * and length in the batch buffer, else an index into `extras`.
   */
  results: number[];
  extras: Array<Uint8Array | CallState | OutcomeError>;
  /** Calls still running (they report with `outcome` messages). */
  pending: number;
  /** How long the thread was busy running the batch, in microseconds (sizes later batches). */
  busyUs: number;
  stats: FilterStats;
}

/** Worker -> main. */
export type WorkerMessage =
  | DoneMessage
  | { type: 'outcome'; outcome: CallOutcome; stats: FilterStats }
  | { type: 'ask'; id: number; ask: number; query: ExtraInfoQuery };

/** Main -> worker. */
export type MainMessage =
  | BatchMessage
  | { type: 'answer'; ask: number; result: Uint8Array | null }
  | { type: 'refused'; ask: number; message: string }
  | { type: 'drop'; tokens: number[] };

/** A worker's first message on `parentPort` (piscina re-emits it as the pool's 'message'). */
export interface WorkerHello {
  type: 'anr-worker';
  threadId: number;
  port: MessagePort;
}

export function isWorkerHello(message: unknown): message is WorkerHello {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'anr-worker';
}
