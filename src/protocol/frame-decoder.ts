/**
 * Bytes in, frames out: a synchronous state machine with no I/O (PROTOCOL.md §1.6, §6.1-6.3).
 *
 * The socket is a byte stream, so a frame may arrive in any number of chunks, split anywhere,
 * header included, and a chunk may hold several frames (the gateway sends one frame at a time per
 * connection, but nothing in the stream guarantees it).
 *
 * Copies are avoided where the common case allows: a payload that lies inside one chunk is
 * emitted as a subarray of that chunk. Only a payload spread over several chunks is concatenated,
 * once, when its last byte arrives. Nothing is preallocated from the announced length: a header
 * can announce 16 MiB and then stall, and the memory held must track the bytes received.
 *
 * The announced length is at most 2^24-1 by construction (3-byte field), so no length check is
 * needed here. A zero-length payload is emitted as an empty Buffer; the dispatcher answers it
 * BAD_REQUEST (PROTOCOL.md §6.3).
 */
import { HEADER_BYTES } from './constants.js';
import { readFramePayloadBytes } from './frame.js';

const EMPTY = Buffer.alloc(0);

export type FrameHandler = (type: number, payload: Buffer) => void;

export class FrameDecoder {
  readonly #onFrame: FrameHandler;
  /** Header bytes of the incomplete frame seen so far: 0 at a frame boundary, 4 once the payload is pending. */
  #headerFill = 0;
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #type = 0;
  #payloadBytes = 0;
  readonly #parts: Buffer[] = [];
  #partsBytes = 0;
  /** Bumped by reset(), so a reset from inside onFrame stops the loop over the current chunk. */
  #epoch = 0;

  constructor(onFrame: FrameHandler) {
    this.#onFrame = onFrame;
  }

  /** Bytes held for the frame not yet complete (header bytes included). */
  get bufferedBytes(): number {
    return this.#headerFill + this.#partsBytes;
  }

  /** Drops any partial frame (after the socket ended or errored). */
  reset(): void {
    this.#headerFill = 0;
    this.#parts.length = 0;
    this.#partsBytes = 0;
    this.#epoch++;
  }

  /**
   * Feeds one chunk; calls onFrame for every frame it completes, in order. If onFrame throws, the
   * exception propagates and the rest of this chunk is not parsed: the stream is out of step from
   * then on, so the caller should close the connection.
   */
  push(chunk: Buffer): void {
    const end = chunk.length;
    const epoch = this.#epoch;
    let pos = 0;

    if (this.#headerFill > 0) {
      pos = this.#continuePending(chunk);
      if (pos < 0 || epoch !== this.#epoch) return;
    }

    while (end - pos >= HEADER_BYTES) {
      const type = chunk[pos];
      const payloadBytes = readFramePayloadBytes(chunk, pos);
      const payloadStart = pos + HEADER_BYTES;
      if (end - payloadStart < payloadBytes) {
        this.#type = type;
        this.#payloadBytes = payloadBytes;
        this.#headerFill = HEADER_BYTES;
        if (payloadStart < end) {
          this.#parts.push(chunk.subarray(payloadStart));
          this.#partsBytes = end - payloadStart;
        }
        return;
      }
      pos = payloadStart + payloadBytes;
      this.#onFrame(type, payloadBytes === 0 ? EMPTY : chunk.subarray(payloadStart, pos));
      if (epoch !== this.#epoch) return;
    }

    for (; pos < end; pos++) this.#header[this.#headerFill++] = chunk[pos];
  }

  /**
   * Continues the frame begun in earlier chunks. Returns the position in `chunk` after it, or -1
   * when the chunk ended before the frame did.
   */
  #continuePending(chunk: Buffer): number {
    let pos = 0;
    if (this.#headerFill < HEADER_BYTES) {
      while (this.#headerFill < HEADER_BYTES && pos < chunk.length) this.#header[this.#headerFill++] = chunk[pos++];
      if (this.#headerFill < HEADER_BYTES) return -1;
      this.#type = this.#header[0];
      this.#payloadBytes = readFramePayloadBytes(this.#header, 0);
    }

    const missing = this.#payloadBytes - this.#partsBytes;
    const available = chunk.length - pos;
    if (available < missing) {
      if (available > 0) {
        this.#parts.push(chunk.subarray(pos));
        this.#partsBytes += available;
      }
      return -1;
    }

    const parts = this.#parts;
    const type = this.#type;
    let payload: Buffer;
    if (this.#payloadBytes === 0) {
      payload = EMPTY;
    } else if (parts.length === 0) {
      payload = chunk.subarray(pos, pos + missing);
    } else {
      parts.push(chunk.subarray(pos, pos + missing));
      payload = Buffer.concat(parts, this.#payloadBytes);
      parts.length = 0;
    }
    this.#headerFill = 0;
    this.#partsBytes = 0;
    this.#onFrame(type, payload);
    return pos + missing;
  }
}
