/**
 * `response-rewrite` (response filter, `ext-plugin-post-resp`): set the status and headers of the
 * upstream response, and replace its body or rewrite it with regex filters. Conf, as in the Go
 * runner (`cmd/go-runner/plugins/response_rewrite.go`):
 *
 *   {"status": 200, "headers": {"X-Server-Id": "9527"}, "body": "replaced"}
 *   {"filters": [{"regex": "world", "scope": "global", "replace": "node"}]}
 *
 * - `status`: integer from 100 to 599 (the Go runner, by a bug, always writes 200 when set).
 * - `headers`: header name -> value, set on the response (replacing the upstream's values). A value
 *   may also be an array of strings, for a repeated header such as `set-cookie` (an extension).
 *   `connection`, `keep-alive`, `transfer-encoding` and `content-length` are refused: the gateway
 *   frames the response itself.
 * - `body`: a non-empty string that replaces the body (the gateway cannot send an empty one).
 * - `filters`: each `{regex, scope, replace}` rewrites the body in order; `scope` is `"once"` (the
 *   first match, the default, as in APISIX's Lua response-rewrite) or `"global"` (every match).
 *   `replace` is literal text (`$1` is not expanded, as in Go). The body is modified only if some
 *   filter matched, and only when it is valid UTF-8 (a binary body is left alone); a rewrite that
 *   leaves nothing keeps the upstream body, since the gateway cannot send an empty one. `body` and
 *   `filters` cannot both be given: the Go runner silently ignores `body` then.
 *
 * Regexes are JavaScript's, not Go's RE2: most simple patterns are the same, but e.g. RE2's inline
 * `(?i)` is a syntax error here. A regex that does not compile rejects the conf.
 *
 * Differences from the Go runner: no `X-Resp-A6-Runner` header is added; `global` replaces every
 * match of the regex (Go replaces every occurrence of the first match's text); an unknown `scope`
 * is a conf error (Go silently does nothing); a conf that changes nothing is refused.
 * The upstream body is read from the gateway only when filters are configured.
 */
import { isUtf8 } from 'node:buffer';
import { definePlugin, type UpstreamResponse } from '../plugin.js';
import { headerMap, isObject, optionalInteger, optionalString, parseObject, show, type HeaderSpec } from './conf-check.js';

interface Filter {
  /** Global (`g`) for scope `global`; stateless between calls since `replace()` resets `lastIndex`. */
  readonly regex: RegExp;
  /** `replace` with `$` escaped, so `String.prototype.replace` inserts it literally. */
  readonly replacement: string;
}

export interface ResponseRewriteConf {
  readonly status: number | undefined;
  readonly headers: readonly HeaderSpec[];
  readonly body: Buffer | undefined;
  readonly filters: readonly Filter[];
}

/**
 * Framing headers belong to the gateway: the runner drops the hop-by-hop ones from the reply, and
 * Content-Length whenever the body changes (DECISIONS 7); a configured one would lie otherwise.
 */
const FRAMING = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function parseFilters(value: unknown): Filter[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(`"filters" must be a non-empty array of {regex, scope, replace} (got ${show(value)})`);
  return value.map((item: unknown, i): Filter => {
    const at = `filters[${i}]`;
    if (!isObject(item)) throw new TypeError(`"${at}" must be an object {regex, scope, replace} (got ${show(item)})`);
    for (const key of Object.keys(item)) {
      if (key !== 'regex' && key !== 'scope' && key !== 'replace') throw new TypeError(`"${at}": unknown field ${JSON.stringify(key)} (the fields are regex, scope, replace)`);
    }
    const source = optionalString(item.regex, `${at}.regex`);
    if (!source) throw new TypeError(`"${at}.regex" must be a non-empty string`);
    const scope = optionalString(item.scope, `${at}.scope`) ?? 'once';
    if (scope !== 'once' && scope !== 'global') throw new TypeError(`"${at}.scope" must be "once" or "global" (got ${show(scope)})`);
    const replace = optionalString(item.replace, `${at}.replace`);
    if (replace === undefined) throw new TypeError(`"${at}.replace" is required (a string; "" deletes the match)`);
    let regex: RegExp;
    try {
      regex = new RegExp(source, scope === 'global' ? 'g' : '');
    } catch (err) {
      throw new TypeError(`"${at}.regex" does not compile: ${(err as Error).message}`);
    }
    return { regex, replacement: replace.replaceAll('$', '$$$$') };
  });
}

async function applyFilters(filters: readonly Filter[], res: UpstreamResponse): Promise<void> {
  // The only place the body is asked of the gateway (once per call: the call caches it).
  const original = await res.readBody();
  if (original === null || !isUtf8(original)) return;
  const text = original.toString('utf8');
  let rewritten = text;
  for (const { regex, replacement } of filters) rewritten = rewritten.replace(regex, replacement);
  if (rewritten !== text) res.setBody(rewritten);
}

export default definePlugin<ResponseRewriteConf>({
  name: 'response-rewrite',
  parseConf(value) {
    const raw = parseObject(value, ['body', 'filters', 'headers', 'status']);
    const status = optionalInteger(raw.status, 'status', 100, 599, 'an integer HTTP status');
    const headers = raw.headers === undefined ? [] : headerMap(raw.headers, 'headers', true);
    for (const { name } of headers) {
      if (FRAMING.has(name.toLowerCase())) {
        throw new TypeError(`"headers" cannot set ${JSON.stringify(name)}: framing headers belong to the gateway, which frames the response itself`);
      }
    }
    const body = optionalString(raw.body, 'body');
    if (body === '') throw new TypeError('"body" must not be empty: the gateway cannot replace a body with an empty one');
    const filters = parseFilters(raw.filters);
    if (body !== undefined && filters.length > 0) throw new TypeError('"body" and "filters" cannot both be set: "filters" rewrite the upstream body, "body" replaces it');
    if (status === undefined && headers.length === 0 && body === undefined && filters.length === 0) {
      throw new TypeError('conf changes nothing: set at least one of status, headers, body, filters');
    }
    return { status, headers, body: body === undefined ? undefined : Buffer.from(body, 'utf8'), filters };
  },
  // Synchronous unless filters need the body, so the chain stays promise-free in the common case.
  responseFilter(conf, _req, res) {
    if (conf.status !== undefined) res.setStatus(conf.status);
    for (const { name, values } of conf.headers) {
      res.setHeader(name, values[0]);
      for (let i = 1; i < values.length; i++) res.addHeader(name, values[i]);
    }
    if (conf.body !== undefined) res.setBody(conf.body);
    else if (conf.filters.length > 0) return applyFilters(conf.filters, res);
  },
});
