/**
 * The 4-byte frame header (PROTOCOL.md §1.2): byte 0 is the RPC type, bytes 1-3 the payload
 * length as an unsigned 24-bit big-endian integer. The FlatBuffers payload that follows is
 * little-endian; only this length is big-endian.
 */
import { FrameTooLargeError } from '../errors.js';
import { HEADER_BYTES, MAX_PAYLOAD_BYTES } from './constants.js';

/**
 * Writes a header at `target[offset..offset+3]`. A length past 2^24-1 throws instead of being
 * truncated: the Go runner's off-by-2x limit shows what a silently wrapped length does (the
 * gateway reads a shorter frame and loses sync, PROTOCOL.md §1.4).
 */
export function writeFrameHeader(target: Uint8Array, offset: number, type: number, payloadBytes: number): void {
  if (payloadBytes > MAX_PAYLOAD_BYTES) throw new FrameTooLargeError(payloadBytes);
  target[offset] = type;
  target[offset + 1] = payloadBytes >>> 16;
  target[offset + 2] = payloadBytes >>> 8;
  target[offset + 3] = payloadBytes;
}

/** Payload length announced by the header at `source[offset..offset+3]`. */
export function readFramePayloadBytes(source: Uint8Array, offset: number): number {
  return (source[offset + 1] << 16) | (source[offset + 2] << 8) | source[offset + 3];
}

/** Header + a copy of `payload` in one Buffer, ready for a single socket write. */
export function buildFrame(type: number, payload: Uint8Array): Buffer {
  if (payload.length > MAX_PAYLOAD_BYTES) throw new FrameTooLargeError(payload.length);
  // allocUnsafe: every byte is written below, and small frames come from Node's shared pool.
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  writeFrameHeader(frame, 0, type, payload.length);
  frame.set(payload, HEADER_BYTES);
  return frame;
}
