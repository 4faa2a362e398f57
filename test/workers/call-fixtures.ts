/**
 * Shared by the request-call, response-call and chain tests (not a test file itself): calls built
 * from real frames, and an ExtraInfo port that answers from a map and records every query.
 */
import { decodeHttpRespCallReq, encodeHttpReqCallReq, encodeHttpRespCallReq, readHttpReqCallReq } from '../../src/protocol/codec.js';
import type {
  ExtraInfoQuery,
  HttpReqCallReq,
  HttpReqCallReqInput,
  HttpRespCallReq,
  HttpRespCallReqInput,
  OutEntry,
} from '../../src/protocol/messages.js';
import type { ExtraInfoPort } from '../../src/workers/call-base.js';

/** A gateway HTTPReqCall as the runner receives it: encoded, then read back from the payload. */
export function reqCallFrom(input: Partial<HttpReqCallReqInput> = {}): HttpReqCallReq {
  const frame = encodeHttpReqCallReq({
    id: 7,
    srcIp: Uint8Array.of(127, 0, 0, 1),
    method: 'GET',
    path: '/hello',
    args: [],
    headers: [],
    confToken: 1,
    ...input,
  });
  return readHttpReqCallReq(frame.subarray(4));
}

export function respCallFrom(input: Partial<HttpRespCallReqInput> = {}): HttpRespCallReq {
  const frame = encodeHttpRespCallReq({ id: 9, status: 200, headers: [], confToken: 1, ...input });
  return decodeHttpRespCallReq(frame.subarray(4));
}

/** Answers: `var:<name>`, `reqBody`, `respBody`; anything not in the map answers null (absent). */
export class PortStub implements ExtraInfoPort {
  readonly queries: ExtraInfoQuery[] = [];
  readonly #answers: Map<string, string | Uint8Array | null>;

  constructor(answers: Record<string, string | Uint8Array | null> = {}) {
    this.#answers = new Map(Object.entries(answers));
  }

  async query(query: ExtraInfoQuery): Promise<Uint8Array | null> {
    this.queries.push(query);
    // Answer on a later turn, as a real round trip does.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const key = query.type === 'var' ? `var:${typeof query.name === 'string' ? query.name : Buffer.from(query.name).toString('latin1')}` : query.type;
    const answer = this.#answers.get(key) ?? null;
    return typeof answer === 'string' ? Buffer.from(answer, 'utf8') : answer;
  }
}

function text(bytes: string | Uint8Array): string {
  return typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('latin1');
}

/** Entries as `[name, value]` strings (Latin-1 for bytes, so every byte is visible), null kept. */
export function plain(entries: readonly OutEntry[] | null): Array<[string, string | null]> | null {
  if (entries === null) return null;
  return entries.map((e) => [text(e.name), e.value === null ? null : text(e.value)]);
}

export function latin1(bytes: Uint8Array | string | null): string | null {
  return bytes === null ? null : text(bytes);
}

/** The gateway's rule: per lower-cased name, an absent value must never follow a value. */
export function assertNoDeleteAfterValue(entries: readonly OutEntry[] | null): void {
  const hasValue = new Set<string>();
  for (const e of entries ?? []) {
    const key = text(e.name).toLowerCase();
    if (e.value === null && hasValue.has(key)) throw new Error(`delete of "${key}" after a value of the same name`);
    if (e.value !== null) hasValue.add(key);
  }
}
