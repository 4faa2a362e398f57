/**
 * The plugin API: what a plugin author writes against. Everything here is data in, data out and
 * async-capable, so a plugin behaves the same on the main thread and in a worker thread.
 */
import { PluginLoadError } from './errors.js';

/** A header or arg value as the plugin API accepts it: text (UTF-8) or exact bytes. */
export type TextOrBytes = string | Uint8Array;

/** Headers for `stop()`: a record (an array value gives repeated entries) or `[name, value]` pairs. */
export type HeadersInit =
  | Readonly<Record<string, TextOrBytes | readonly TextOrBytes[]>>
  | Iterable<readonly [string, TextOrBytes]>;

/** Read access to a multi-valued, case-insensitive header map (request or upstream response). */
export interface HeadersView {
  /** The first value, UTF-8 decoded, or null when the header is absent. */
  get(name: string): string | null;
  /** Every value, in arrival order (a `set-cookie` list stays a list). */
  getAll(name: string): string[];
  /** The first value as the exact bytes the gateway sent. */
  getBytes(name: string): Uint8Array | null;
  getAllBytes(name: string): Uint8Array[];
  has(name: string): boolean;
  /** Every `[name, value]` entry, names lower-cased, repeated names repeated. */
  entries(): Array<[string, string]>;
}

/** Read access to the query args (names are case-sensitive). */
export interface ArgsView {
  /** The first value, or null when absent. A flag arg with no `=` (`?z`) gives `''`. */
  get(name: string): string | null;
  getAll(name: string): string[];
  getBytes(name: string): Uint8Array | null;
  has(name: string): boolean;
  /** Every `[name, value]`; `value` is null for a flag arg with no `=`. */
  entries(): Array<[string, string | null]>;
}

/** The request as seen in `ext-plugin-pre-req` / `ext-plugin-post-req`, with earlier plugins' changes applied. */
export interface PluginRequest {
  /** The gateway's call id (debugging only: not unique over time). */
  readonly id: number;
  /** `GET`, `POST`, ... */
  readonly method: string;
  /** The path the upstream will see (nginx-decoded unless a plugin before set `$upstream_uri`). */
  readonly path: string;
  readonly pathBytes: Uint8Array;
  /** `127.0.0.1`, `2001:db8::1`, or the raw bytes as Latin-1 text (`unix:` for a Unix-socket client). */
  readonly srcIp: string;
  readonly srcIpBytes: Uint8Array;
  /** Request headers, names lower-case. */
  readonly headers: HeadersView;
  readonly args: ArgsView;
  /** An nginx/APISIX variable (`remote_addr`, `route_id`, `http_x_foo`...), asked of the gateway once per call. */
  var(name: string): Promise<string | null>;
  varBytes(name: string): Promise<Uint8Array | null>;
  /** The request body (asked of the gateway once per call), or null when there is none. */
  body(): Promise<Buffer | null>;
  /** The request body as UTF-8 text. */
  text(): Promise<string | null>;
  /** Aborted when the call passes its deadline or the gateway disconnects. */
  readonly signal: AbortSignal;
}

/**
 * What a request filter can do. Changes accumulate along the chain; `stop()` ends it. Every header
 * setter, `stop()` included, throws an `InvalidHeaderError` for a name that is not an RFC 9110
 * token or a value with CR, LF, NUL or another control byte, or a space or tab at either end
 * (docs/plugin-api.md, "Header names and values").
 */
export interface RequestActions {
  /** Answer the client now (the upstream is not called). Status 0 or omitted means 200. */
  stop(status?: number, headers?: HeadersInit, body?: TextOrBytes): void;
  readonly stopped: boolean;
  /** Rewrite the upstream path (raw, unescaped: the gateway escapes it; `?` cannot add a query). */
  setPath(path: TextOrBytes): void;
  /**
   * Set a request header. The gateway replaces all existing values, so a list is sent as one value
   * joined with `, `. It cannot add a second value to a request header.
   */
  setHeader(name: string, value: TextOrBytes | readonly string[]): void;
  deleteHeader(name: string): void;
  /** Replace an arg's values (an array gives a repeated arg). */
  setArg(name: string, value: TextOrBytes | readonly TextOrBytes[]): void;
  deleteArg(name: string): void;
  /** Response headers for the client. The gateway ignores hop-by-hop and entity headers here (see docs). */
  setRespHeader(name: string, value: TextOrBytes): void;
  addRespHeader(name: string, value: TextOrBytes): void;
  deleteRespHeader(name: string): void;
  /** Replace the request body sent upstream (APISIX >= 3.6). Throws on an empty body: the gateway cannot set one. */
  setBody(body: TextOrBytes): void;
}

/** The call context of `ext-plugin-post-resp`: only the id and variables are known about the request. */
export interface ResponseCallRequest {
  readonly id: number;
  var(name: string): Promise<string | null>;
  varBytes(name: string): Promise<Uint8Array | null>;
  readonly signal: AbortSignal;
}

/**
 * The upstream response in `ext-plugin-post-resp`, with earlier plugins' changes applied. The
 * header setters check names and values as `RequestActions` does (`InvalidHeaderError`).
 */
export interface UpstreamResponse {
  readonly status: number;
  /** Upstream headers in the upstream's case; lookups are case-insensitive. */
  readonly headers: HeadersView;
  /** The upstream body (read from the gateway once per call and cached), or null when empty. */
  readBody(): Promise<Buffer | null>;
  readText(): Promise<string | null>;
  setStatus(status: number): void;
  setHeader(name: string, value: TextOrBytes): void;
  addHeader(name: string, value: TextOrBytes): void;
  deleteHeader(name: string): void;
  /** Replace the body sent to the client. Throws on an empty body: the gateway cannot send one. */
  setBody(body: TextOrBytes): void;
}

type Awaitable<T> = T | Promise<T>;

export interface PluginDefinition<C = unknown> {
  /** The name routes use in `conf[].name`. 1 to 128 characters. */
  name: string;
  /**
   * Parse and validate one route's `value` (a string, normally JSON). Runs once per PrepareConf, not
   * per request. Throw to reject the conf: the route then fails closed (Stop 503, body
   * `plugin "name" rejected its configuration`); the error's message goes only to the runner's log.
   * Default: `JSON.parse` of a non-empty value, `{}` for an empty one.
   */
  parseConf?(value: string): C;
  requestFilter?(conf: C, req: PluginRequest, res: RequestActions): Awaitable<void>;
  responseFilter?(conf: C, req: ResponseCallRequest, res: UpstreamResponse): Awaitable<void>;
  /**
   * What a failure (throw, rejection, deadline) of this plugin answers. `'fail'` (default): the
   * error reply SERVICE_UNAVAILABLE, so the route's `allow_degradation` decides. `'deny'`: Stop 503,
   * which no degradation setting bypasses. Auth plugins should say `'deny'`.
   */
  onError?: 'fail' | 'deny';
  /**
   * Where the filters run. `'auto'` (default): start on the worker pool and move to the main thread
   * while the measured CPU time per call stays well below the cost of a thread hop. `'pool'`: always
   * on a worker thread (CPU-heavy work). `'inline'`: always on the main thread, for plugins that keep
   * state in module or conf scope (rate limits, caches): each worker thread has its own instances.
   */
  placement?: Placement;
  /**
   * ExtraInfo the filters will ask for, fetched from the gateway before the call is handed to a
   * worker thread: saves one thread round trip per query. Lazy `var()`/`body()` calls still work.
   * `body` is the request body in the request phase and the upstream body in the response phase.
   */
  needs?: PluginNeeds;
}

export type Placement = 'inline' | 'pool' | 'auto';

export interface PluginNeeds {
  readonly vars?: readonly string[];
  readonly body?: boolean;
}

/**
 * Method-style signatures are checked bivariantly, so a `Plugin<MyConf>` is also a `Plugin`: the
 * registry holds plugins of every conf type, and each filter only ever gets its own parseConf's result.
 */
type RequestFilter<C> = { bivariant(conf: C, req: PluginRequest, res: RequestActions): Awaitable<void> }['bivariant'];
type ResponseFilter<C> = { bivariant(conf: C, req: ResponseCallRequest, res: UpstreamResponse): Awaitable<void> }['bivariant'];

/** A validated plugin, as returned by `definePlugin`. */
export interface Plugin<C = unknown> {
  readonly name: string;
  readonly onError: 'fail' | 'deny';
  readonly placement: Placement;
  readonly needs: { readonly vars: readonly string[]; readonly body: boolean };
  parseConf(value: string): C;
  readonly requestFilter: RequestFilter<C> | null;
  readonly responseFilter: ResponseFilter<C> | null;
}

const NAME_MAX = 128;
const PLUGIN = Symbol.for('apisix-node-runner.plugin');

function defaultParseConf(value: string): unknown {
  return value.trim() === '' ? {} : JSON.parse(value);
}

/** Validate a plugin definition once, at import time, and freeze it. */
export function definePlugin<C = unknown>(def: PluginDefinition<C>): Plugin<C> {
  if (def === null || typeof def !== 'object') throw new PluginLoadError('definePlugin() takes an object');
  const { name } = def;
  if (typeof name !== 'string' || name.length === 0 || name.length > NAME_MAX) {
    throw new PluginLoadError(`plugin name must be a string of 1 to ${NAME_MAX} characters (got ${JSON.stringify(name)})`);
  }
  for (const key of ['parseConf', 'requestFilter', 'responseFilter'] as const) {
    if (def[key] !== undefined && typeof def[key] !== 'function') {
      throw new PluginLoadError(`plugin "${name}": ${key} must be a function`);
    }
  }
  if (!def.requestFilter && !def.responseFilter) {
    throw new PluginLoadError(`plugin "${name}" defines neither requestFilter nor responseFilter`);
  }
  const onError = def.onError ?? 'fail';
  if (onError !== 'fail' && onError !== 'deny') {
    throw new PluginLoadError(`plugin "${name}": onError must be 'fail' or 'deny' (got ${JSON.stringify(onError)})`);
  }
  const placement = def.placement ?? 'auto';
  if (placement !== 'inline' && placement !== 'pool' && placement !== 'auto') {
    throw new PluginLoadError(`plugin "${name}": placement must be 'inline', 'pool' or 'auto' (got ${JSON.stringify(placement)})`);
  }
  const needs = def.needs ?? {};
  if (needs === null || typeof needs !== 'object') throw new PluginLoadError(`plugin "${name}": needs must be an object`);
  const vars = needs.vars ?? [];
  if (!Array.isArray(vars) || vars.some((v) => typeof v !== 'string' || v === '')) {
    throw new PluginLoadError(`plugin "${name}": needs.vars must be an array of variable names`);
  }
  if (needs.body !== undefined && typeof needs.body !== 'boolean') throw new PluginLoadError(`plugin "${name}": needs.body must be a boolean`);
  const plugin: Plugin<C> & { [PLUGIN]: true } = {
    name,
    onError,
    placement,
    needs: Object.freeze({ vars: Object.freeze([...new Set(vars)]), body: needs.body === true }),
    parseConf: def.parseConf ? def.parseConf.bind(def) : (defaultParseConf as (value: string) => C),
    requestFilter: def.requestFilter ? def.requestFilter.bind(def) : null,
    responseFilter: def.responseFilter ? def.responseFilter.bind(def) : null,
    [PLUGIN]: true,
  };
  return Object.freeze(plugin);
}

export function isPlugin(value: unknown): value is Plugin {
  return typeof value === 'object' && value !== null && (value as { [PLUGIN]?: unknown })[PLUGIN] === true;
}
