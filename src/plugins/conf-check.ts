/**
 * Conf validation shared by the built-in plugins. A rejected conf fails its route closed and the
 * message goes to the runner's log (the client's 503 only names the plugin), so each message names
 * the field at fault and shows what was given.
 */
import { checkHeaderName, checkHeaderValue } from '../http-field.js';

export type ConfObject = Record<string, unknown>;

/** A short rendering of a bad value for an error message. */
export function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Parse a route's value as a JSON object with only the given fields. Unknown fields are rejected
 * because they are almost always a misspelt known one, which would otherwise be silently ignored.
 * An empty value is `{}`, so a missing required field is reported by name.
 */
export function parseObject(value: string, fields: readonly string[]): ConfObject {
  let raw: unknown = {};
  if (value.trim() !== '') {
    try {
      raw = JSON.parse(value);
    } catch (err) {
      throw new TypeError(`conf is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new TypeError(`conf must be a JSON object (got ${show(raw)})`);
  for (const key of Object.keys(raw)) {
    if (!fields.includes(key)) throw new TypeError(`unknown field ${JSON.stringify(key)} (the fields are ${fields.join(', ')})`);
  }
  return raw as ConfObject;
}

export function isObject(value: unknown): value is ConfObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function optionalString(value: unknown, field: string): string | undefined {
  if (value !== undefined && typeof value !== 'string') throw new TypeError(`"${field}" must be a string (got ${show(value)})`);
  return value;
}

export function optionalInteger(value: unknown, field: string, min: number, max: number, what = 'an integer'): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`"${field}" must be ${what} from ${min} to ${max} (got ${show(value)})`);
  }
  return value;
}

/**
 * Header names and values are checked by the rules the setters apply (http-field.ts), here at
 * PrepareConf, so a bad route conf becomes a deny chain at once instead of failing every call.
 */
function headerValue(value: unknown, field: string, name: string): Buffer {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string (got ${show(value)})`);
  const bytes = Buffer.from(value, 'utf8');
  checkHeaderValue(bytes, name, field);
  return bytes;
}

/** One header of a header map, values pre-encoded so a filter only hands them on. */
export interface HeaderSpec {
  name: string;
  values: Buffer[];
}

/**
 * A `{"Name": "value"}` object; with `allowLists`, a value may also be a non-empty array of
 * strings, for headers that repeat (`set-cookie`). Names are compared case-insensitively, so
 * `{"X-A": .., "x-a": ..}` is rejected rather than one entry quietly winning.
 */
export function headerMap(value: unknown, field: string, allowLists: boolean): HeaderSpec[] {
  if (!isObject(value)) throw new TypeError(`"${field}" must be an object of header names to ${allowLists ? 'strings or string arrays' : 'strings'} (got ${show(value)})`);
  const seen = new Set<string>();
  return Object.entries(value).map(([name, v]) => {
    const at = `"${field}"[${JSON.stringify(name)}]`;
    checkHeaderName(name, `"${field}"`);
    const key = name.toLowerCase();
    if (seen.has(key)) throw new TypeError(`"${field}" names ${JSON.stringify(key)} twice (header names are case-insensitive)`);
    seen.add(key);
    if (!Array.isArray(v)) return { name, values: [headerValue(v, at, name)] };
    if (!allowLists) throw new TypeError(`${at} must be a string (got ${show(v)})`);
    if (v.length === 0) throw new TypeError(`${at} must not be an empty array`);
    return { name, values: v.map((item, i) => headerValue(item, `${at}[${i}]`, name)) };
  });
}

/** A `["Name", ...]` array; names returned lower-cased, duplicates rejected. */
export function headerNameList(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw new TypeError(`"${field}" must be an array of header names (got ${show(value)})`);
  const names = value.map((name, i) => {
    if (typeof name !== 'string') throw new TypeError(`"${field}"[${i}] must be a string (got ${show(name)})`);
    return checkHeaderName(name, `"${field}"[${i}]`).toLowerCase();
  });
  const dup = names.find((name, i) => names.indexOf(name) !== i);
  if (dup !== undefined) throw new TypeError(`"${field}" names ${JSON.stringify(dup)} twice (header names are case-insensitive)`);
  return names;
}
