/**
 * The reader on hand-laid payloads: the layouts real builders produce (PROTOCOL.md §2.8) and
 * every way an offset or length can point outside the payload.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { MalformedPayloadError } from '../../src/errors.js';
import {
  fieldPos,
  readBytes,
  readU16,
  readU32,
  readU8,
  rootTable,
  tableField,
  vectorField,
  vectorLength,
  vectorTable,
} from '../../src/protocol/table-reader.js';
import { guardedBytes } from '../support/guarded-bytes.js';

/** Little-endian writes at absolute positions, for laying out payloads by hand. */
class Layout {
  readonly buf: Buffer;
  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }
  u8(pos: number, value: number): this {
    this.buf.writeUInt8(value, pos);
    return this;
  }
  u16(pos: number, value: number): this {
    this.buf.writeUInt16LE(value, pos);
    return this;
  }
  u32(pos: number, value: number): this {
    this.buf.writeUInt32LE(value, pos);
    return this;
  }
  i32(pos: number, value: number): this {
    this.buf.writeInt32LE(value, pos);
    return this;
  }
  bytes(pos: number, hex: string): this {
    Buffer.from(hex, 'hex').copy(this.buf, pos);
    return this;
  }
}

/**
 * Scalars, with the vtable after its table (negative soffset):
 *   @0 root -> @4
 *   @4 table: soffset -12 (vtable @16); slot0 u32 @8, slot1 u16 @12, slot3 u8 @14
 *   @16 vtable: length 12 (4 slots), object 12, offsets 4, 8, 0 (explicit zero), 10
 */
function scalars(): Buffer {
  return new Layout(28)
    .u32(0, 4)
    .i32(4, -12)
    .u32(8, 0xdeadbeef)
    .u16(12, 0xbeef)
    .u8(14, 0x7f)
    .u16(16, 12)
    .u16(18, 12)
    .u16(20, 4)
    .u16(22, 8)
    .u16(24, 0)
    .u16(26, 10).buf;
}

/**
 * A vector of two tables sharing one vtable placed before them, under a root whose vtable
 * follows it:
 *   @0 root -> R @16
 *   @4 V1: length 6, object 8, slot0 4
 *   @16 R: soffset -40 (vtable @56); slot0 uoffset 8 -> vector @28
 *   @28 vector: 2 elements -> A @40, B @48
 *   @40 A: soffset 36 (V1), slot0 = 111      @48 B: soffset 44 (V1), slot0 = 222
 *   @56 R's vtable: length 6, object 8, slot0 4
 */
function sharedVtable(): Buffer {
  return new Layout(62)
    .u32(0, 16)
    .u16(4, 6)
    .u16(6, 8)
    .u16(8, 4)
    .i32(16, -40)
    .u32(20, 8)
    .u32(28, 2)
    .u32(32, 8)
    .u32(36, 12)
    .i32(40, 36)
    .u32(44, 111)
    .i32(48, 44)
    .u32(52, 222)
    .u16(56, 6)
    .u16(58, 8)
    .u16(60, 4).buf;
}

/**
 * Two strings, the way the gateway writes them (vectors/gateway_lua/README.md):
 *   @0 root -> @12;  @4 vtable: length 8, object 12, slot0 4, slot1 8
 *   @12 table: soffset 8; slot0 uoffset -> @24, slot1 uoffset -> @32
 *   @24 empty string: length 0, followed by "/0/0" instead of a NUL and zero padding
 *   @32 7 non-UTF-8 bytes that end exactly at the payload end (no terminator at all)
 */
function strings(): Buffer {
  return new Layout(43)
    .u32(0, 12)
    .u16(4, 8)
    .u16(6, 12)
    .u16(8, 4)
    .u16(10, 8)
    .i32(12, 8)
    .u32(16, 8)
    .u32(20, 12)
    .u32(24, 0)
    .bytes(28, '2f302f30')
    .u32(32, 7)
    .bytes(36, 'ff2f302f30fe41').buf;
}

test('scalars through a vtable after its table; zero and trimmed slots read as absent', () => {
  const p = scalars();
  const t = rootTable(p);
  assert.equal(t, 4);
  assert.equal(readU32(p, t, 0, 1), 0xdeadbeef);
  assert.equal(readU16(p, t, 1, 1), 0xbeef);
  assert.equal(readU8(p, t, 2, 9), 9, 'explicit zero entry -> default');
  assert.equal(readU8(p, t, 3, 9), 0x7f);
  assert.equal(readU32(p, t, 4, 77), 77, 'slot past the vtable -> default');
  assert.equal(fieldPos(p, t, 40), 0);
});

test('tables sharing a vtable before them, in a vector under a root with its vtable after it', () => {
  const p = sharedVtable();
  const r = rootTable(p);
  const vec = vectorField(p, r, 0);
  assert.equal(vectorLength(p, vec), 2);
  assert.equal(readU32(p, vectorTable(p, vec, 0), 0, 0), 111);
  assert.equal(readU32(p, vectorTable(p, vec, 1), 0, 0), 222);
  assert.equal(vectorField(p, r, 1), 0, 'slot past the vtable');
  assert.equal(tableField(p, r, 1), 0);
});

test('strings are bounded by their length prefix only: no NUL or zero padding required', () => {
  const p = strings();
  const t = rootTable(p);
  const empty = readBytes(p, t, 0);
  assert.ok(empty);
  assert.equal(empty.length, 0);
  const raw = readBytes(p, t, 1);
  assert.ok(raw);
  assert.equal(Buffer.from(raw).toString('hex'), 'ff2f302f30fe41');
  assert.equal(raw.buffer, p.buffer, 'a view, not a copy');
  assert.equal(readBytes(p, t, 2), null);
});

/**
 * Applies `edit` to a fresh `base` and expects `read` to throw MalformedPayloadError without
 * reading a byte outside the payload (the guard would throw another error first).
 */
function rejects(base: () => Buffer, edit: (p: Buffer) => void, read: (p: Uint8Array) => unknown, label: string): void {
  const p = base();
  edit(p);
  assert.throws(() => read(guardedBytes(p)), MalformedPayloadError, label);
}

test('every out-of-range offset or length throws MalformedPayloadError', () => {
  for (let length = 0; length < 4; length++) {
    assert.throws(() => rootTable(guardedBytes(new Uint8Array(length))), MalformedPayloadError, `${length}-byte payload`);
  }
  const root = (p: Uint8Array): number => rootTable(p);
  rejects(strings, (p) => p.writeUInt32LE(40, 0), root, 'table soffset past the end');
  rejects(strings, (p) => p.writeUInt32LE(0xffffffff, 0), root, 'root offset far past the end');
  rejects(strings, (p) => p.writeInt32LE(100, 12), root, 'vtable before the payload');
  rejects(strings, (p) => p.writeInt32LE(-40, 12), root, 'vtable after the payload');
  rejects(strings, (p) => p.writeInt32LE(-0x80000000, 12), root, 'most negative soffset');
  rejects(strings, (p) => p.writeInt32LE(0x7fffffff, 12), root, 'most positive soffset');
  rejects(strings, (p) => p.writeUInt16LE(2, 4), root, 'vtable shorter than its header');
  rejects(strings, (p) => p.writeUInt16LE(100, 4), root, 'vtable longer than the payload');
  rejects(strings, (p) => p.writeUInt32LE(0, 0), root, 'table at offset 0');
  // Table @12 of a 14-byte payload: its soffset would read 2 bytes that are not there.
  rejects(() => Buffer.from('0c00000004000400000000000800', 'hex'), () => undefined, root, 'soffset across the end');

  const slot0 = (p: Uint8Array): unknown => readBytes(p, rootTable(p), 0);
  const slot1 = (p: Uint8Array): unknown => readBytes(p, rootTable(p), 1);
  rejects(strings, (p) => p.writeUInt16LE(28, 8), (p) => readU32(p, rootTable(p), 0, 0), 'u32 field across the end');
  rejects(strings, (p) => p.writeUInt16LE(30, 8), (p) => readU16(p, rootTable(p), 0, 0), 'u16 field across the end');
  rejects(strings, (p) => p.writeUInt16LE(31, 8), (p) => readU8(p, rootTable(p), 0, 0), 'u8 field past the end');
  rejects(strings, (p) => p.writeUInt16LE(28, 8), slot0, 'uoffset field across the end');
  rejects(strings, (p) => p.writeUInt32LE(1000, 16), slot0, 'string past the end');
  rejects(strings, (p) => p.writeUInt32LE(0xffffffff, 16), slot0, 'string far past the end');
  rejects(strings, (p) => p.writeUInt32LE(24, 16), slot0, 'length prefix across the end');
  rejects(strings, (p) => p.writeUInt32LE(8, 32), slot1, 'string one byte too long');
  rejects(strings, (p) => p.writeUInt32LE(0xffffffff, 32), slot1, 'string length 2^32-1');

  const vector = (p: Uint8Array): unknown => vectorField(p, rootTable(p), 0);
  const element1 = (p: Uint8Array): unknown => {
    const vec = vectorField(p, rootTable(p), 0);
    return vectorTable(p, vec, 1);
  };
  rejects(sharedVtable, (p) => p.writeUInt32LE(9, 28), vector, 'element offsets past the end');
  rejects(sharedVtable, (p) => p.writeUInt32LE(0x40000000, 28), vector, 'huge element count (no hang, no allocation)');
  rejects(sharedVtable, (p) => p.writeUInt32LE(1000, 36), element1, 'element table past the end');
  rejects(sharedVtable, (p) => p.writeInt32LE(-100, 48), element1, 'element vtable past the end');
  rejects(sharedVtable, (p) => p.writeUInt32LE(1000, 20), vector, 'vector past the end');
  // A vector read as a table (a union member offset gone wrong): its "vtable" is garbage.
  rejects(sharedVtable, () => undefined, (p) => tableField(p, rootTable(p), 0), 'vector read as a table');
});

test('bounds are the payload view, not the buffer behind it', () => {
  const inner = strings();
  const backing = Buffer.alloc(inner.length + 64, 0x01);
  inner.copy(backing, 8);
  const view = backing.subarray(8, 8 + inner.length);
  const t = rootTable(view);
  assert.equal(Buffer.from(readBytes(view, t, 1) ?? []).toString('hex'), 'ff2f302f30fe41');
  view.writeUInt32LE(8, 32); // one byte too long: the backing buffer has it, the payload does not
  assert.throws(() => readBytes(view, t, 1), MalformedPayloadError);
  view.writeUInt32LE(inner.length, 0); // root just past the payload, inside the backing buffer
  assert.throws(() => rootTable(view), MalformedPayloadError);
});
