/**
 * `header-rewrite` (request phase; no Go runner equivalent): set and remove the request headers
 * sent upstream, and set, add and remove headers of the response the client will get. Conf:
 *
 *   {
 *     "set": {"X-Api-Version": "2"},                request headers to set (one string each)
 *     "remove": ["X-Debug"],                        request headers to remove
 *     "resp_set": {"Cache-Control": "no-store"},    response headers to set: a string, or an
 *                                                   array for a repeated header (set-cookie)
 *     "resp_add": {"Set-Cookie": ["a=1", "b=2"]},   response header values to add
 *     "resp_remove": ["X-Frame-Options"]            response headers to remove
 *   }
 *
 * Every field is optional; at least one must be given. A request header takes one value: the
 * gateway sets request headers, it cannot add a second value (DECISIONS 5). Naming a header in
 * both `set` and `remove` (or `resp_set`/`resp_add` and `resp_remove`) is a conf error.
 *
 * The response fields travel in the Rewrite's `resp_headers`, which the gateway applies in the
 * request phase, before the upstream answers (PROTOCOL §3.2 step 4). So they act on what earlier
 * plugins of this request set (Lua plugins, earlier runner plugins) and on the response of a
 * later Stop; `resp_add` appends to values set earlier in this runner chain, while its first value
 * still replaces what a Lua plugin set. To change headers the upstream sends, use
 * `response-rewrite` under `ext-plugin-post-resp`.
 *
 * In `resp_headers` the gateway silently ignores `connection`, `content-length`,
 * `transfer-encoding`, `location`, `server`, `www-authenticate`, `content-encoding`,
 * `content-type`, `content-location` and `content-language`. Naming one of them in a `resp_*`
 * field is a conf error here, rather than a change that never happens.
 */
import { definePlugin } from '../plugin.js';
import { REWRITE_IGNORED_RESP_HEADERS } from '../protocol/constants.js';
import { headerMap, headerNameList, parseObject, type HeaderSpec } from './conf-check.js';

export interface HeaderRewriteConf {
  readonly set: readonly HeaderSpec[];
  readonly remove: readonly string[];
  readonly respSet: readonly HeaderSpec[];
  readonly respAdd: readonly HeaderSpec[];
  readonly respRemove: readonly string[];
}

const RESP_HEADERS_IGNORED = REWRITE_IGNORED_RESP_HEADERS;

function checkRespNames(field: string, names: readonly string[]): void {
  for (const name of names) {
    if (RESP_HEADERS_IGNORED.has(name.toLowerCase())) {
      throw new TypeError(
        `"${field}" names ${JSON.stringify(name)}, which the gateway silently ignores in a request-phase rewrite's response headers; ` +
          'change it in the response phase instead (response-rewrite under ext-plugin-post-resp)',
      );
    }
  }
}

/** Removing and writing the same header in one conf has no clear meaning; say so instead of picking one. */
function checkDisjoint(a: string, aNames: readonly string[], b: string, bNames: readonly string[]): void {
  const lower = new Set(aNames.map((n) => n.toLowerCase()));
  const both = bNames.find((n) => lower.has(n.toLowerCase()));
  if (both !== undefined) throw new TypeError(`"${a}" and "${b}" both name ${JSON.stringify(both.toLowerCase())}`);
}

const names = (specs: readonly HeaderSpec[]): string[] => specs.map((s) => s.name);

export default definePlugin<HeaderRewriteConf>({
  name: 'header-rewrite',
  parseConf(value) {
    const raw = parseObject(value, ['remove', 'resp_add', 'resp_remove', 'resp_set', 'set']);
    const conf: HeaderRewriteConf = {
      set: raw.set === undefined ? [] : headerMap(raw.set, 'set', false),
      remove: raw.remove === undefined ? [] : headerNameList(raw.remove, 'remove'),
      respSet: raw.resp_set === undefined ? [] : headerMap(raw.resp_set, 'resp_set', true),
      respAdd: raw.resp_add === undefined ? [] : headerMap(raw.resp_add, 'resp_add', true),
      respRemove: raw.resp_remove === undefined ? [] : headerNameList(raw.resp_remove, 'resp_remove'),
    };
    checkRespNames('resp_set', names(conf.respSet));
    checkRespNames('resp_add', names(conf.respAdd));
    checkRespNames('resp_remove', conf.respRemove);
    checkDisjoint('set', names(conf.set), 'remove', conf.remove);
    checkDisjoint('resp_set', names(conf.respSet), 'resp_remove', conf.respRemove);
    checkDisjoint('resp_add', names(conf.respAdd), 'resp_remove', conf.respRemove);
    if (Object.values(conf).every((list: readonly unknown[]) => list.length === 0)) {
      throw new TypeError('conf changes nothing: set at least one of set, remove, resp_set, resp_add, resp_remove');
    }
    return conf;
  },
  requestFilter(conf, _req, res) {
    for (const name of conf.remove) res.deleteHeader(name);
    for (const { name, values } of conf.set) res.setHeader(name, values[0]);
    for (const name of conf.respRemove) res.deleteRespHeader(name);
    // A resp_set list sets its first value and adds the rest; resp_add only adds.
    for (const { name, values } of conf.respSet) {
      res.setRespHeader(name, values[0]);
      for (let i = 1; i < values.length; i++) res.addRespHeader(name, values[i]);
    }
    for (const { name, values } of conf.respAdd) for (const v of values) res.addRespHeader(name, v);
  },
});
