/**
 * Framing of the pair's control connection on a byte stream: each frame is a 4-byte big-endian
 * length, then that many bytes of one CBOR value (firmware/cbor-value.ts).
 */
import { ValueOut, decodeValue, encodeValue } from '../../../../firmware/cbor-value';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { takeBytes } from '../../net/chunks';

/** Default bound on one frame's CBOR bytes: 64 MiB. */
export const PEER_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Encodes `v` as one frame; the returned buffer is the caller's. */
export function encodePeerFrame(v: unknown): Buffer {
  const body = encodeValue(v);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** A batch starts with room for this many bytes (or as many as the last batch took). */
const BATCH_FIRST_BYTES = 4096;
const BATCH_MAX_FIRST_BYTES = 1024 * 1024;

/**
 * Frames queued for one write: each value is encoded as it is added, straight after the one before,
 * so a turn's records cost one buffer and one write, not one of each per record.
 */
export class PeerFrameBatch {
  private out = new ValueOut(BATCH_FIRST_BYTES);

  /** Bytes queued (frames with their length prefixes). */
  get bytes(): number {
    return this.out.pos;
  }

  /** Appends `v` as one frame; a value that cannot be encoded throws and leaves the batch as it was. */
  add(v: unknown): void {
    const out = this.out;
    const at = out.skip(4);
    try {
      out.value(v);
    } catch (e) {
      out.pos = at;
      throw e;
    }
    out.view.setUint32(at, out.pos - at - 4);
  }

  /** The queued frames as one buffer (the caller's), and an empty batch. */
  take(): Buffer {
    const out = this.out;
    const b = Buffer.from(out.buf.buffer, out.buf.byteOffset, out.pos);
    this.out = new ValueOut(Math.min(Math.max(BATCH_FIRST_BYTES, out.pos), BATCH_MAX_FIRST_BYTES));
    return b;
  }

  /** Forgets what is queued. */
  clear(): void {
    this.out.pos = 0;
  }
}

/** States of the decoder: reading the 4-byte length, or the body it announced. */
enum State {
  LENGTH = 0,
  BODY = 1,
}

/**
 * Turns chunks of a byte stream, split anywhere, into whole values. A frame announcing more than
 * `maxFrameBytes` (default 64 MiB) throws HF_ERR_PEER naming the length before its body is read;
 * a body that is not one well-formed CBOR value throws HF_ERR_PEER. After a throw the stream is
 * broken: the decoder keeps throwing the same error.
 */
export class PeerFrameDecoder {
  readonly maxFrameBytes: number;
  private state = State.LENGTH;
  private chunks: Buffer[] = [];
  private held = 0;
  private want = 4;
  private broken: Error | null = null;

  constructor(opts: { maxFrameBytes?: number } = {}) {
    const max = opts.maxFrameBytes ?? PEER_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < 1 || max > 0xffffffff) throw hfError(ErrorCode.OPTION, `maxFrameBytes must be an integer 1..4294967295, got ${String(max)}`);
    this.maxFrameBytes = max;
  }

  /** Bytes held of a frame not yet whole. */
  get buffered(): number {
    return this.held;
  }

  /**
   * Takes one chunk and returns the values it completed, in order. Bytes of an unfinished frame are
   * held by reference, so the caller must not reuse `chunk` (a socket's 'data' chunks are fresh).
   */
  push(chunk: Uint8Array): unknown[] {
    if (this.broken !== null) throw this.broken;
    const out: unknown[] = [];
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.held += chunk.length;
    }
    try {
      while (this.held >= this.want) {
        const bytes = this.take(this.want);
        if (this.state === State.LENGTH) {
          const len = bytes.readUInt32BE(0);
          if (len > this.maxFrameBytes) throw hfError(ErrorCode.PEER, `a frame of ${len} bytes is over maxFrameBytes ${this.maxFrameBytes}`);
          this.state = State.BODY;
          this.want = len;
        } else {
          out.push(decodeBody(bytes));
          this.state = State.LENGTH;
          this.want = 4;
        }
      }
    } catch (e) {
      this.broken = e as Error;
      this.chunks = [];
      this.held = 0;
      throw e;
    }
    return out;
  }

  /** The first `n` buffered bytes, removed from what is buffered. */
  private take(n: number): Buffer {
    this.held -= n;
    return takeBytes(this.chunks, n);
  }
}

function decodeBody(bytes: Buffer): unknown {
  try {
    return decodeValue(bytes);
  } catch (e) {
    const why = isHfError(e) ? `${e.code}: ${e.message}` : String(e);
    throw hfError(ErrorCode.PEER, `a frame of ${bytes.length} bytes is not one CBOR value (${why})`, e);
  }
}
