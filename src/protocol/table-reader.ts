/**
 * A minimal, bounds-checked FlatBuffers reader for the ext-plugin payloads.
 *
 * Why hand-written rather than the `flatbuffers` runtime's ByteBuffer: that runtime checks no
 * offset at all (a bad uoffset silently reads past the payload as zeros), and a C++-style
 * Verifier is too strict for real gateway frames, which write empty strings without a NUL
 * terminator (PROTOCOL.md §2.8, vectors/gateway_lua/05). So this reader checks exactly what
 * keeps every read inside the payload, and nothing else:
 * - strings and vectors are read by their length prefix only (no terminator, no padding check);
 * - a slot past the end of a (trimmed) vtable, or a 0 entry, is an absent field;
 * - vtables may be shared and lie on either side of their table (signed soffset).
 * Every violation throws MalformedPayloadError, which the dispatcher answers BAD_REQUEST
 * (PROTOCOL.md §6.5); framing stays in sync because the length came from the frame header.
 *
 * Positions are byte offsets into the payload. 0 means "absent": no object can start there,
 * because offset 0 holds the root uoffset (a table at 0 would have soffset 0, so a vtable of
 * length 0, which `checkTable` rejects).
 *
 * Reads go through plain functions over (bytes, position) so the hot path allocates nothing but
 * the subarray views it returns. A table position must come from `rootTable`, `tableField` or
 * `vectorTable`, which validate the table and its vtable; field reads rely on that.
 */
import { MalformedPayloadError } from '../errors.js';

function u16(buf: Uint8Array, pos: number): number {
  return buf[pos] | (buf[pos + 1] << 8);
}

function u32(buf: Uint8Array, pos: number): number {
  return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
}

function i32(buf: Uint8Array, pos: number): number {
  return buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24);
}

function fail(what: string, pos: number, buf: Uint8Array): never {
  throw new MalformedPayloadError(`${what} at payload offset ${pos} is out of range (payload is ${buf.length} bytes)`);
}

/** Validates the table at `table` and its vtable; returns `table`. */
function checkTable(buf: Uint8Array, table: number): number {
  // `table` may come from a u32 sum, so it can lie far past the end; the comparisons are on
  // plain numbers (no 32-bit wrap), which keeps them exact.
  if (table + 4 > buf.length) fail('table', table, buf);
  const vtable = table - i32(buf, table);
  if (vtable < 0 || vtable + 4 > buf.length) fail('vtable', vtable, buf);
  const vtableBytes = u16(buf, vtable);
  if (vtableBytes < 4 || vtable + vtableBytes > buf.length) fail('vtable', vtable, buf);
  return table;
}

/** Position of the root table (payload offset 0 holds its uoffset: no size prefix, no file id). */
export function rootTable(buf: Uint8Array): number {
  if (buf.length < 4) fail('root offset', 0, buf);
  return checkTable(buf, u32(buf, 0));
}

/**
 * Position of field `slot` of `table`, or 0 when absent (slot past a trimmed vtable, or an
 * explicit 0 entry as the gateway's Lua builder writes them). Not yet checked against the
 * payload end: the typed readers below do that with the field's size.
 */
export function fieldPos(buf: Uint8Array, table: number, slot: number): number {
  const vtable = table - i32(buf, table);
  const entry = 4 + 2 * slot;
  if (entry + 2 > u16(buf, vtable)) return 0;
  const offset = u16(buf, vtable + entry);
  return offset === 0 ? 0 : table + offset;
}

export function readU8(buf: Uint8Array, table: number, slot: number, dflt: number): number {
  const pos = fieldPos(buf, table, slot);
  if (pos === 0) return dflt;
  if (pos + 1 > buf.length) fail('u8 field', pos, buf);
  return buf[pos];
}

export function readU16(buf: Uint8Array, table: number, slot: number, dflt: number): number {
  const pos = fieldPos(buf, table, slot);
  if (pos === 0) return dflt;
  if (pos + 2 > buf.length) fail('u16 field', pos, buf);
  return u16(buf, pos);
}

export function readU32(buf: Uint8Array, table: number, slot: number, dflt: number): number {
  const pos = fieldPos(buf, table, slot);
  if (pos === 0) return dflt;
  if (pos + 4 > buf.length) fail('u32 field', pos, buf);
  return u32(buf, pos);
}

/** Follows the uoffset stored at `pos`; the target is not checked yet. */
function deref(buf: Uint8Array, pos: number): number {
  if (pos + 4 > buf.length) fail('offset field', pos, buf);
  return pos + u32(buf, pos);
}

/**
 * A string or `[ubyte]` field as a view into the payload (no copy, no charset: header and arg
 * bytes may be obs-text), or null when absent. Only the length prefix bounds it.
 */
export function readBytes(buf: Uint8Array, table: number, slot: number): Uint8Array | null {
  const pos = fieldPos(buf, table, slot);
  if (pos === 0) return null;
  const vec = deref(buf, pos);
  if (vec + 4 > buf.length) fail('vector', vec, buf);
  const start = vec + 4;
  const end = start + u32(buf, vec);
  if (end > buf.length) fail('vector data', start, buf);
  return buf.subarray(start, end);
}

/** Position of the sub-table in field `slot` (a union member), validated, or 0 when absent. */
export function tableField(buf: Uint8Array, table: number, slot: number): number {
  const pos = fieldPos(buf, table, slot);
  return pos === 0 ? 0 : checkTable(buf, deref(buf, pos));
}

/**
 * Position of the vector of tables in field `slot` (its length word), or 0 when absent. The
 * element offsets are checked to lie inside the payload, so `vectorTable` needs no length check
 * and a loop over `vectorLength` is bounded by the payload size.
 */
export function vectorField(buf: Uint8Array, table: number, slot: number): number {
  const pos = fieldPos(buf, table, slot);
  if (pos === 0) return 0;
  const vec = deref(buf, pos);
  if (vec + 4 > buf.length) fail('vector', vec, buf);
  if (vec + 4 + 4 * u32(buf, vec) > buf.length) fail('vector data', vec + 4, buf);
  return vec;
}

export function vectorLength(buf: Uint8Array, vec: number): number {
  return u32(buf, vec);
}

/** Position of table element `index` of the vector at `vec`, validated. */
export function vectorTable(buf: Uint8Array, vec: number, index: number): number {
  const elem = vec + 4 + 4 * index;
  return checkTable(buf, elem + u32(buf, elem));
}
