import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { FrameTooLargeError } from '../../src/errors.js';
import { MAX_PAYLOAD_BYTES } from '../../src/protocol/constants.js';
import { buildFrame, readFramePayloadBytes, writeFrameHeader } from '../../src/protocol/frame.js';

test('the header is the type byte then a 24-bit big-endian length', () => {
  const header = Buffer.alloc(6, 0xaa);
  writeFrameHeader(header, 1, 4, 0x0a0b0c);
  assert.equal(header.toString('hex'), 'aa040a0b0caa');
  assert.equal(readFramePayloadBytes(header, 1), 0x0a0b0c);
  assert.equal(buildFrame(2, Buffer.from('0c000000', 'hex')).toString('hex'), '020000040c000000');
});

test('a payload of exactly 2^24-1 bytes is framed, one byte more throws FrameTooLargeError', () => {
  const payload = Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x5a);
  const frame = buildFrame(3, payload.subarray(0, MAX_PAYLOAD_BYTES));
  assert.equal(frame.subarray(0, 4).toString('hex'), '03ffffff');
  assert.equal(frame.length, 4 + MAX_PAYLOAD_BYTES);
  assert.equal(frame[frame.length - 1], 0x5a);
  assert.throws(() => buildFrame(3, payload), FrameTooLargeError);
  assert.throws(() => writeFrameHeader(Buffer.alloc(4), 0, 3, MAX_PAYLOAD_BYTES + 1), FrameTooLargeError);
});
