/** Conversions between the wire's raw bytes and the plugin API's strings (DECISIONS 8). */
import type { TextOrBytes } from '../plugin.js';

const EMPTY = new Uint8Array(0);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function utf8(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('utf8');
}

export function latin1(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('latin1');
}

/**
 * Plugins are plain JS: a missing conf field easily arrives as `undefined`. Refuse it here, inside
 * the filter, so the failure follows the plugin's `onError` (a deny plugin must not fail open later
 * in the encoder).
 */
function checkTextOrBytes(value: unknown, what: string): asserts value is TextOrBytes {
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw new TypeError(`${what} must be a string or a Uint8Array (got ${value === null ? 'null' : typeof value})`);
  }
}

export function toBytes(value: TextOrBytes, what = 'value'): Uint8Array {
  checkTextOrBytes(value, what);
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

export function toBuffer(value: TextOrBytes, what = 'value'): Buffer {
  checkTextOrBytes(value, what);
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : asBuffer(value);
}

/**
 * A body set by a plugin, as stored for the reply. Empty bodies are refused: on the wire length 0
 * means "no body", so the gateway would silently keep the original instead.
 */
export function bodyToSet(body: TextOrBytes, what: string): Buffer {
  const buffer = toBuffer(body, what);
  if (buffer.byteLength === 0) throw new TypeError(`${what}: the gateway cannot set an empty body (length 0 means "unchanged")`);
  return buffer;
}

/**
 * The bytes in an ArrayBuffer of their own. Structured clone copies a view's whole ArrayBuffer, and
 * wire values are views into 64 KiB socket reads or 8 KiB Buffer pool slabs.
 */
export function compact(bytes: Uint8Array): Uint8Array {
  // A view of shared memory must be copied too: that memory is reused for the next batch.
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !(bytes.buffer instanceof SharedArrayBuffer);
  return own ? bytes : new Uint8Array(bytes);
}

/**
 * `length` bytes of `source` from `offset`, in memory that is never reused for anything else. Node's
 * pooled allocation for small ones: an ArrayBuffer per copy cost twice as much (bench/pool-copy.ts).
 */
export function copyOut(source: Buffer, offset: number, length: number): Buffer {
  const own = Buffer.allocUnsafe(length);
  source.copy(own, 0, offset, offset + length);
  return own;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && asBuffer(a).equals(b);
}

/** `$binary_remote_addr` as text: dotted IPv4, RFC 5952 IPv6, else the bytes as Latin-1 (`unix:`). */
export function formatIp(bytes: Uint8Array | null): string {
  if (bytes === null) return '';
  if (bytes.byteLength === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.byteLength !== 16) return latin1(bytes);
  // IPv4-mapped (::ffff:a.b.c.d) keeps its dotted tail, as nginx's $remote_addr and RFC 5952 §5 do.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // RFC 5952: compress the longest run (of two or more) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export { EMPTY };
