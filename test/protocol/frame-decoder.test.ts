import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { MAX_PAYLOAD_BYTES } from '../../src/protocol/constants.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { loadVectors } from '../support/vectors.js';

interface Frame {
  type: number;
  payload: Buffer;
}

const vectors = loadVectors();
/** All 30 golden frames back to back, in a buffer of its own (not Node's shared pool). */
const stream = Buffer.concat(vectors.map((v) => v.frame));
const expected = vectors.map((v) => ({ type: v.type, hex: v.payload.toString('hex') }));

/** A copy of `bytes` in its own ArrayBuffer, so buffer identity proves or disproves a copy. */
function ownBuffer(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(bytes.length);
  out.set(bytes);
  return out;
}

function collect(): { decoder: FrameDecoder; frames: Frame[] } {
  const frames: Frame[] = [];
  return { decoder: new FrameDecoder((type, payload) => frames.push({ type, payload })), frames };
}

function feed(pieces: Buffer[]): Frame[] {
  const { decoder, frames } = collect();
  for (const piece of pieces) decoder.push(piece);
  assert.equal(decoder.bufferedBytes, 0);
  return frames;
}

function same(frames: Frame[], label: string): void {
  assert.deepEqual(
    frames.map((f) => ({ type: f.type, hex: f.payload.toString('hex') })),
    expected,
    label,
  );
}

test('all 30 frames in one chunk come back as views into that chunk', () => {
  const chunk = ownBuffer(stream);
  const frames = feed([chunk]);
  same(frames, 'one chunk');
  let offset = 0;
  for (const [i, f] of frames.entries()) {
    offset += 4;
    assert.equal(f.payload.buffer, chunk.buffer, `frame ${i} is not a copy`);
    assert.equal(f.payload.byteOffset, chunk.byteOffset + offset);
    offset += f.payload.length;
  }
});

test('the stream split in two at every offset gives the same frames', () => {
  for (let at = 0; at <= stream.length; at++) {
    const first = ownBuffer(stream.subarray(0, at));
    const second = ownBuffer(stream.subarray(at));
    const frames = feed([first, second]);
    same(frames, `split at ${at}`);
    // Frames wholly inside one piece are not copied, whichever side of the split they are on.
    let end = 0;
    for (const f of frames) {
      const start = end;
      end += 4 + f.payload.length;
      if (end <= at) assert.equal(f.payload.buffer, first.buffer, `split at ${at}`);
      else if (start + 4 >= at) assert.equal(f.payload.buffer, second.buffer, `split at ${at}`);
    }
  }
});

test('the stream in random-size pieces and one byte at a time gives the same frames', () => {
  let seed = 7;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let round = 0; round < 200; round++) {
    const pieces: Buffer[] = [];
    const maxPiece = 1 + Math.floor(random() * 600);
    for (let at = 0; at < stream.length; ) {
      const size = Math.min(stream.length - at, Math.floor(random() * maxPiece));
      pieces.push(stream.subarray(at, at + size)); // empty pieces included
      at += size;
    }
    same(feed(pieces), `random round ${round}`);
  }
  const single = [];
  for (let at = 0; at < stream.length; at++) single.push(stream.subarray(at, at + 1));
  same(feed(single), 'one byte at a time');
});

test('a zero-length payload is emitted as an empty Buffer, also with a split header', () => {
  const empty = Buffer.from('02000000', 'hex');
  for (const pieces of [[empty], [empty.subarray(0, 1), empty.subarray(1)], [empty.subarray(0, 3), empty.subarray(3)]]) {
    const frames = feed([...pieces, Buffer.alloc(0)]);
    assert.equal(frames.length, 1);
    assert.equal(frames[0].type, 2);
    assert.ok(Buffer.isBuffer(frames[0].payload));
    assert.equal(frames[0].payload.length, 0);
  }
  const frames = feed([Buffer.concat([empty, vectors[0].frame, empty])]);
  assert.deepEqual(
    frames.map((f) => f.payload.length),
    [0, vectors[0].payload.length, 0],
  );
});

test('a 2^24-1 byte payload accumulates across chunks and is assembled once', () => {
  const payload = Buffer.alloc(MAX_PAYLOAD_BYTES);
  for (let i = 0; i < payload.length; i += 4093) payload[i] = i & 0xff;
  payload[payload.length - 1] = 0xee;
  const frame = Buffer.concat([Buffer.from('04ffffff', 'hex'), payload, vectors[2].frame]);
  const { decoder, frames } = collect();
  decoder.push(frame.subarray(0, 2)); // header split
  assert.equal(decoder.bufferedBytes, 2);
  let at = 2;
  for (const size = 65536; at + size < frame.length - vectors[2].frame.length; at += size) {
    decoder.push(frame.subarray(at, at + size));
    assert.equal(decoder.bufferedBytes, at + size, 'holds what arrived, nothing preallocated');
    assert.equal(frames.length, 0);
  }
  decoder.push(frame.subarray(at));
  assert.equal(decoder.bufferedBytes, 0);
  assert.equal(frames.length, 2);
  assert.equal(frames[0].type, 4);
  assert.equal(frames[0].payload.length, MAX_PAYLOAD_BYTES);
  assert.ok(frames[0].payload.equals(payload));
  assert.equal(frames[1].payload.toString('hex'), vectors[2].payload.toString('hex'));
});

test('a header announcing 16 MiB then stalling holds only the bytes received', () => {
  const { decoder, frames } = collect();
  decoder.push(Buffer.from('02ffffff0c000000', 'hex'));
  assert.equal(decoder.bufferedBytes, 8);
  assert.equal(frames.length, 0);
});

test('a payload that arrives whole after its header is not copied, empty chunks between or not', () => {
  const frame = vectors[4].frame;
  const { decoder, frames } = collect();
  decoder.push(ownBuffer(frame.subarray(0, 4)));
  decoder.push(Buffer.alloc(0));
  const rest = ownBuffer(frame.subarray(4));
  decoder.push(rest);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].payload.buffer, rest.buffer);
});

test('reset drops a partial frame; the next push starts at a frame boundary', () => {
  const { decoder, frames } = collect();
  decoder.push(vectors[4].frame.subarray(0, 10));
  decoder.reset();
  assert.equal(decoder.bufferedBytes, 0);
  // Split inside the payload, so the frame is assembled from parts: none may be stale.
  const next = vectors[0].frame;
  decoder.push(next.subarray(0, 20));
  decoder.push(next.subarray(20));
  assert.equal(frames.length, 1);
  assert.equal(frames[0].payload.toString('hex'), vectors[0].payload.toString('hex'));
});

test('a reset from inside onFrame stops the rest of that chunk', () => {
  for (const split of [0, 10]) {
    const types: number[] = [];
    const decoder: FrameDecoder = new FrameDecoder((type) => {
      types.push(type);
      decoder.reset();
    });
    // With split 10 the first frame completes in the second push, from buffered parts.
    decoder.push(stream.subarray(0, split));
    decoder.push(stream.subarray(split));
    assert.deepEqual(types, [vectors[0].type], `split ${split}`);
    assert.equal(decoder.bufferedBytes, 0);
  }
});
