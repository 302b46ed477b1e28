/**
 * Framing for the direct TCP transport: each bundle travels as `[length u32 big-endian][bundle]`, in
 * both directions. `FrameReader` reassembles frames from socket chunks; a length of 0 or over its
 * limit throws HF_ERR_LIMIT (the stream cannot be resynchronised: the caller closes it).
 */
import { copyBytes } from '../../../firmware/bytes';
import { ErrorCode, hfError } from '../../../firmware/errors';
import { takeBytes } from './chunks';

export const FRAME_HEAD = 4;

/**
 * An epoch frame: a length of 0, then the sender's pair epoch (u32 big-endian). A gateway of a pair
 * sends one before its first frame on a connection and again when its epoch changed (PROTOCOL
 * 11.4), so a device fences a superseded primary on TCP as it does by `x-holdfast-epoch` on HTTP.
 */
export function epochFrame(epoch: number): Buffer {
  const f = Buffer.alloc(FRAME_HEAD + 4);
  f.writeUInt32BE(epoch >>> 0, FRAME_HEAD);
  return f;
}

/** Builds a frame around `body[0, len)` (copies: the link's buffer is valid only during the call). */
export function frame(body: Uint8Array, len: number): Buffer {
  const f = Buffer.allocUnsafe(FRAME_HEAD + len);
  f.writeUInt32BE(len, 0);
  copyBytes(f, FRAME_HEAD, body, 0, len);
  return f;
}

/** Writable end of a socket, as far as FrameWriter needs it. */
export interface FrameSink {
  write(chunk: Uint8Array): boolean;
  readonly writableLength: number;
}

/**
 * Writes frames to sockets (one, or all of a listener's), reusing one buffer while each socket takes
 * each write whole at once (a socket that queues a write keeps a reference to its buffer: then the
 * next frame gets a new one).
 * Saves an allocation and its page faults per bundle, which for large bundles is most of the cost.
 */
export class FrameWriter {
  private buf: Buffer | null = null;
  private readonly minBytes: number;

  /** `minBytes`: the smallest buffer taken; it grows (by powers of two) to the largest frame written. */
  constructor(minBytes = 2048) {
    this.minBytes = minBytes;
  }

  write(sink: FrameSink, body: Uint8Array, len: number): void {
    let f = this.buf;
    if (f === null || f.length < FRAME_HEAD + len) {
      let n = this.minBytes;
      while (n < FRAME_HEAD + len) n *= 2;
      f = Buffer.allocUnsafeSlow(n);
    }
    f.writeUInt32BE(len, 0);
    copyBytes(f, FRAME_HEAD, body, 0, len);
    sink.write(f.subarray(0, FRAME_HEAD + len));
    // Written through to the kernel: the buffer is ours again. Queued: the socket holds it.
    this.buf = sink.writableLength === 0 ? f : null;
  }
}

/**
 * Reassembles frames from socket chunks. A partial frame is kept as the chunks that arrived (no
 * buffer of the announced length is allocated before the whole frame is there), so what a reader
 * holds is at most `FRAME_HEAD + limit - 1` bytes between frames. The limit can be changed between
 * frames (`setLimit`, e.g. from inside `onFrame`): the gateway takes only a small first frame from a
 * connection that has not proved a key yet.
 */
export class FrameReader {
  private maxFrame: number;
  private what = '';
  private chunks: Buffer[] = [];
  private have = 0;
  private need = -1;
  private halted = false;
  /** Takes epoch frames (a length of 0) and tells them here; null: a length of 0 is HF_ERR_LIMIT. */
  private onEpoch: ((epoch: number) => void) | null = null;
  /** The body being read is an epoch frame's. */
  private epochBody = false;

  /** `maxFrame`: the largest frame body taken, bytes. */
  constructor(maxFrame: number) {
    this.maxFrame = maxFrame;
  }

  /**
   * Sets the largest frame body taken from the next header on, bytes; `what` is said in the
   * HF_ERR_LIMIT message (e.g. "before authentication").
   */
  setLimit(maxFrame: number, what = ''): void {
    this.maxFrame = maxFrame;
    this.what = what;
  }

  /** Takes epoch frames from now on (see epochFrame), telling each to `on`. */
  takeEpochs(on: (epoch: number) => void): void {
    this.onEpoch = on;
  }

  /** The largest frame body taken now, bytes. */
  get limit(): number {
    return this.maxFrame;
  }

  /** Drops what is buffered and ignores every later chunk (the connection is being closed). */
  halt(): void {
    this.halted = true;
    this.chunks = [];
    this.have = 0;
    this.need = -1;
  }

  /** Feeds socket bytes; calls `onFrame` for each complete frame (its bytes are the caller's). */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    if (this.halted) return;
    this.chunks.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (this.halted) return;
      if (this.need < 0) {
        if (this.have < FRAME_HEAD) return;
        const len = this.take(FRAME_HEAD).readUInt32BE(0);
        this.epochBody = len === 0 && this.onEpoch !== null;
        if (this.epochBody) this.need = 4;
        else if (len === 0 || len > this.maxFrame) throw hfError(ErrorCode.LIMIT, `frame of ${len} bytes, limit 1..${this.maxFrame}${this.what === '' ? '' : ` ${this.what}`}`);
        else this.need = len;
      }
      if (this.have < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      if (this.epochBody) (this.onEpoch as (epoch: number) => void)(body.readUInt32BE(0));
      else onFrame(body);
    }
  }

  /** Bytes buffered (a partial frame). */
  get buffered(): number {
    return this.have;
  }

  /** The first `n` buffered bytes, removed from what is buffered. */
  private take(n: number): Buffer {
    this.have -= n;
    return takeBytes(this.chunks, n);
  }
}
