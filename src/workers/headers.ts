/**
 * Header and arg state for one call. Reads see the original entries with the chain's changes
 * applied; writes are recorded as changes so the reply can be a diff (DECISIONS 6).
 */
import type { ArgsView, HeadersView, TextOrBytes } from '../plugin.js';
import type { OutEntry, RawEntry } from '../protocol/messages.js';
import { checkHeaderName, checkHeaderValue } from '../http-field.js';
import { EMPTY, bytesEqual, compact, latin1, toBytes, utf8 } from './bytes.js';

/**
 * Index of raw entries by name; built on first lookup. A flag arg (`?z`, value absent) is kept as
 * null so that setting it to `''` (`?z=`) still counts as a change.
 */
function indexEntries(entries: readonly RawEntry[] | null, lowerCase: boolean): Map<string, Array<Uint8Array | null>> {
  const index = new Map<string, Array<Uint8Array | null>>();
  if (entries === null) return index;
  for (const { name, value } of entries) {
    let key = utf8(name);
    if (lowerCase) key = key.toLowerCase();
    const values = index.get(key);
    if (values) values.push(value);
    else index.set(key, [value]);
  }
  return index;
}

const orEmpty = (value: Uint8Array | null): Uint8Array => value ?? EMPTY;

/**
 * A header a plugin sets, as its wire bytes: name and value checked once, here at the setter
 * (http-field.ts), never again at encode time. `where` names the API call in errors.
 */
export function headerBytes(name: string, value: TextOrBytes, where: string): Uint8Array {
  checkHeaderName(name, where);
  return checkHeaderValue(toBytes(value, `${where} header "${name}"`), name, where);
}

/** The string accessors of a header map, derived from its byte accessors. */
abstract class BytesHeadersView implements HeadersView {
  abstract getAllBytes(name: string): Uint8Array[];
  abstract entries(): Array<[string, string]>;

  getBytes(name: string): Uint8Array | null {
    return this.getAllBytes(name)[0] ?? null;
  }

  get(name: string): string | null {
    const bytes = this.getBytes(name);
    return bytes === null ? null : utf8(bytes);
  }

  getAll(name: string): string[] {
    return this.getAllBytes(name).map(utf8);
  }

  has(name: string): boolean {
    return this.getBytes(name) !== null;
  }
}

/** A request header list as the one value the gateway can set; an empty list deletes (as for args). */
function joined(name: string, values: readonly string[]): Uint8Array | null {
  for (const v of values) if (typeof v !== 'string') throw new TypeError(`header "${name}": a list must hold strings`);
  if (values.length > 0) return headerBytes(name, values.join(', '), 'setHeader()');
  checkHeaderName(name, 'setHeader()');
  return null;
}

/**
 * Request headers (pre-req / post-req). The gateway applies Rewrite headers with `set`, so a header
 * can be replaced or deleted, never given a second value (DECISIONS 5).
 */
export class RequestHeaders extends BytesHeadersView {
  #load: () => RawEntry[] | null;
  #index: Map<string, Array<Uint8Array | null>> | null = null;
  /** Lower-cased name -> new value, or null for delete. */
  readonly changes = new Map<string, Uint8Array | null>();

  constructor(load: () => RawEntry[] | null) {
    super();
    this.#load = load;
  }

  #original(name: string): Array<Uint8Array | null> | undefined {
    this.#index ??= indexEntries(this.#load(), true);
    return this.#index.get(name);
  }

  getAllBytes(name: string): Uint8Array[] {
    const key = name.toLowerCase();
    if (this.changes.has(key)) {
      const value = this.changes.get(key);
      return value ? [value] : [];
    }
    return this.#original(key)?.map(orEmpty) ?? [];
  }

  entries(): Array<[string, string]> {
    this.#original('');
    const out: Array<[string, string]> = [];
    for (const [name, values] of this.#index!) {
      if (this.changes.has(name)) continue;
      for (const value of values) out.push([name, utf8(orEmpty(value))]);
    }
    for (const [name, value] of this.changes) if (value) out.push([name, utf8(value)]);
    return out;
  }

  set(name: string, value: TextOrBytes | readonly string[]): void {
    const bytes = Array.isArray(value) ? joined(name, value) : headerBytes(name, value as TextOrBytes, 'setHeader()');
    this.changes.set(name.toLowerCase(), bytes);
  }

  delete(name: string): void {
    this.changes.set(checkHeaderName(name, 'deleteHeader()').toLowerCase(), null);
  }

  /**
   * The Rewrite `headers` diff: what the chain set or deleted. A set to the value the request already
   * has is dropped when the headers were read in this call anyway; decoding them only to find that
   * out cost more than the bytes it saves (bench/hot-path.ts: header-rewrite went from 5.2 to 1.6 us per call).
   */
  diff(): OutEntry[] | null {
    if (this.changes.size === 0) return null;
    const out: OutEntry[] = [];
    for (const [name, value] of this.changes) {
      if (value !== null && this.#index !== null) {
        const original = this.#index.get(name);
        const current = original?.length === 1 ? original[0] : null;
        if (current !== null && bytesEqual(value, current)) continue;
      }
      out.push({ name, value });
    }
    return out.length > 0 ? out : null;
  }
}

/** Query args. A first value replaces, later ones append, an absent value deletes (PROTOCOL §3.2 step 5). */
export class RequestArgs implements ArgsView {
  #load: () => RawEntry[] | null;
  #index: Map<string, Array<Uint8Array | null>> | null = null;
  /** Name -> new values, or null for delete. */
  readonly changes = new Map<string, Uint8Array[] | null>();

  constructor(load: () => RawEntry[] | null) {
    this.#load = load;
  }

  #original(name: string): Array<Uint8Array | null> | undefined {
    this.#index ??= indexEntries(this.#load(), false);
    return this.#index.get(name);
  }

  #values(name: string): Uint8Array[] {
    if (this.changes.has(name)) return this.changes.get(name) ?? [];
    return this.#original(name)?.map(orEmpty) ?? [];
  }

  get(name: string): string | null {
    const bytes = this.getBytes(name);
    return bytes === null ? null : utf8(bytes);
  }

  getAll(name: string): string[] {
    return this.#values(name).map(utf8);
  }

  getBytes(name: string): Uint8Array | null {
    return this.#values(name)[0] ?? null;
  }

  has(name: string): boolean {
    return this.#values(name).length > 0;
  }

  entries(): Array<[string, string | null]> {
    const out: Array<[string, string | null]> = [];
    for (const entry of this.#load() ?? []) {
      const name = utf8(entry.name);
      if (!this.changes.has(name)) out.push([name, entry.value === null ? null : utf8(entry.value)]);
    }
    for (const [name, values] of this.changes) for (const value of values ?? []) out.push([name, utf8(value)]);
    return out;
  }

  set(name: string, value: TextOrBytes | readonly TextOrBytes[]): void {
    const what = `arg "${name}"`;
    const values = Array.isArray(value) ? value.map((v: TextOrBytes) => toBytes(v, what)) : [toBytes(value as TextOrBytes, what)];
    this.changes.set(name, values.length > 0 ? values : null);
  }

  delete(name: string): void {
    this.changes.set(name, null);
  }

  /**
   * The wire names an arg name stands for. A name that is not valid UTF-8 (`?%FF=x`) reads with
   * U+FFFD; re-encoding that would name an arg the gateway does not have (and let a plugin that
   * strips unknown args be bypassed), so such names are sent as the original bytes.
   */
  #wireNames(name: string): Array<string | Uint8Array> {
    if (!name.includes('\uFFFD')) return [name];
    const raw: Uint8Array[] = [];
    for (const entry of this.#load() ?? []) {
      if (utf8(entry.name) === name && !raw.some((r) => bytesEqual(r, entry.name))) raw.push(entry.name);
    }
    return raw.length > 0 ? raw : [name];
  }

  diff(): OutEntry[] | null {
    if (this.changes.size === 0) return null;
    const out: OutEntry[] = [];
    for (const [name, values] of this.changes) {
      if (values === null) {
        for (const wireName of this.#wireNames(name)) out.push({ name: wireName, value: null });
        continue;
      }
      // As for headers: the no-op check only when the args were read in this call anyway.
      const original = this.#index?.get(name);
      if (original && original.length === values.length && values.every((v, i) => original[i] !== null && bytesEqual(v, original[i]!))) continue;
      const [wireName] = this.#wireNames(name);
      for (const value of values) out.push({ name: wireName, value });
    }
    return out.length > 0 ? out : null;
  }
}

/**
 * Response header operations for a Stop or for Rewrite `resp_headers`. The gateway sets the first
 * entry of a name and adds the later ones, and an absent value deletes; it must never see a delete
 * after a value of the same name (`add_header(name, nil)` raises in lua-resty-core).
 */
/** One name's response header operation: its values (first sets, later add), or null for delete. */
export type HeaderOp = { name: string; values: Uint8Array[] } | null;

export class ResponseHeaderOps {
  /** Lower-cased name -> the name as given and its values, or null for delete. */
  readonly ops: Map<string, HeaderOp>;

  constructor(initial?: ReadonlyArray<[string, HeaderOp]>) {
    this.ops = new Map(initial?.map(([key, op]) => [key, op && { name: op.name, values: [...op.values] }]));
  }

  /** Set (`add` false) or add one value, both already checked (`set`/`add`, `stop()`). */
  put(name: string, value: Uint8Array, add: boolean): void {
    const key = name.toLowerCase();
    const op = add ? this.ops.get(key) : undefined;
    if (op) op.values.push(value);
    else this.ops.set(key, { name, values: [value] });
  }

  set(name: string, value: TextOrBytes): void {
    this.put(name, headerBytes(name, value, 'setRespHeader()'), false);
  }

  add(name: string, value: TextOrBytes): void {
    this.put(name, headerBytes(name, value, 'addRespHeader()'), true);
  }

  delete(name: string): void {
    this.ops.set(checkHeaderName(name, 'deleteRespHeader()').toLowerCase(), null);
  }

  get size(): number {
    return this.ops.size;
  }

  /** Plain data, values compacted, for another thread. */
  export(): Array<[string, HeaderOp]> {
    return [...this.ops].map(([key, op]) => [key, op && { name: op.name, values: op.values.map(compact) }]);
  }

  entries(): OutEntry[] | null {
    if (this.ops.size === 0) return null;
    const out: OutEntry[] = [];
    for (const [key, op] of this.ops) {
      if (op === null) out.push({ name: key, value: null });
      else for (const value of op.values) out.push({ name: op.name, value });
    }
    return out;
  }
}

interface ListEntry {
  name: Uint8Array | string;
  key: string;
  value: Uint8Array;
}

/** The upstream header list as plain data, changes applied, for another thread. */
export type HeaderListState = Array<[name: Uint8Array | string, value: Uint8Array]>;

/** Hop-by-hop headers the gateway must not be handed back: it frames the response itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/**
 * The upstream response headers in `ext-plugin-post-resp`, kept as a full ordered list: the reply
 * always carries the whole set because a non-empty list replaces the upstream's headers and an
 * empty one drops the upstream Content-Type (DECISIONS 7). Untouched entries keep their exact bytes.
 */
export class ResponseHeaderList extends BytesHeadersView {
  #load: () => RawEntry[] | null;
  #list: ListEntry[] | null = null;
  constructor(load: () => RawEntry[] | null) {
    super();
    this.#load = load;
  }

  /** The list with its changes, values compacted. */
  export(): HeaderListState {
    return this.#entries().map((e) => [typeof e.name === 'string' ? e.name : compact(e.name), compact(e.value)]);
  }

  /** Continue from an exported list instead of the upstream's. */
  restore(state: HeaderListState): void {
    this.#list = state.map(([name, value]) => ({ name, key: (typeof name === 'string' ? name : latin1(name)).toLowerCase(), value }));
  }

  #entries(): ListEntry[] {
    if (this.#list === null) {
      this.#list = [];
      for (const { name, value } of this.#load() ?? []) {
        if (value !== null) this.#list.push({ name, key: latin1(name).toLowerCase(), value });
      }
    }
    return this.#list;
  }

  getAllBytes(name: string): Uint8Array[] {
    const key = name.toLowerCase();
    const out: Uint8Array[] = [];
    for (const entry of this.#entries()) if (entry.key === key) out.push(entry.value);
    return out;
  }

  override getBytes(name: string): Uint8Array | null {
    const key = name.toLowerCase();
    for (const entry of this.#entries()) if (entry.key === key) return entry.value;
    return null;
  }

  entries(): Array<[string, string]> {
    return this.#entries().map((e) => [e.key, utf8(e.value)]);
  }

  /** Replace every value of `name`, keeping the position of its first entry. */
  set(name: string, value: TextOrBytes): void {
    const bytes = headerBytes(name, value, 'setHeader()');
    const key = name.toLowerCase();
    const entry = { name, key, value: bytes };
    const list = this.#entries();
    const at = list.findIndex((e) => e.key === key);
    this.#list = list.filter((e) => e.key !== key);
    this.#list.splice(at < 0 ? this.#list.length : at, 0, entry);
  }

  add(name: string, value: TextOrBytes): void {
    const bytes = headerBytes(name, value, 'addHeader()');
    this.#entries().push({ name, key: name.toLowerCase(), value: bytes });
  }

  delete(name: string): void {
    const key = checkHeaderName(name, 'deleteHeader()').toLowerCase();
    this.#list = this.#entries().filter((e) => e.key !== key);
  }

  /** The full header set for the reply, without framing headers the gateway recomputes. */
  replyEntries(bodyChanged: boolean): OutEntry[] {
    const out: OutEntry[] = [];
    for (const entry of this.#entries()) {
      if (HOP_BY_HOP.has(entry.key)) continue;
      if (bodyChanged && entry.key === 'content-length') continue;
      out.push({ name: entry.name, value: entry.value });
    }
    return out;
  }
}
