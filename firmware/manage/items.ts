/**
 * The management channel's framing (docs/PROTOCOL.md section 14.4): commands and replies travel on a
 * mux stream the gateway opens to the reserved target MANAGE_TARGET, each item (one CBOR map of
 * command.ts) preceded by its length as a u32, big-endian. The stream's credit is the flow control, so
 * an item may be far larger than one link message (a 16 MiB `update` goes in 16 KiB DATA frames,
 * never more in flight than the receiver granted); `maxItemBytes` bounds what a reader buffers.
 *
 *   +----------------+-----------------------------+
 *   | length u32 BE  |  item: `length` bytes       |   length 1..maxItemBytes
 *   +----------------+-----------------------------+
 *
 * A length of 0 or over `maxItemBytes` is HF_ERR_LIMIT (the reader is then broken: the stream must be
 * reset). Pure: no I/O; `push` returns the items a chunk completed.
 */
import { ErrorCode, hfError } from '../errors';

/** The mux target of the management channel (a name that resolves nowhere: RFC 2606 `.invalid`). */
export const MANAGE_TARGET = 'manage.holdfast.invalid:1';
export const MANAGE_HOST = 'manage.holdfast.invalid';
export const MANAGE_PORT = 1;
export const ITEM_HEADER_BYTES = 4;
/** Default bound of one item: the largest update (16 MiB) and room for its envelope. */
export const DEFAULT_MAX_ITEM_BYTES = 16 * 1024 * 1024 + 64 * 1024;

/** The 4-byte header of an item of `length` bytes. */
export function itemHeader(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 0xffffffff) throw hfError(ErrorCode.LIMIT, `management item of ${length} bytes: must be 1..2^32-1`);
  const h = new Uint8Array(ITEM_HEADER_BYTES);
  h[0] = length >>> 24;
  h[1] = (length >>> 16) & 0xff;
  h[2] = (length >>> 8) & 0xff;
  h[3] = length & 0xff;
  return h;
}

/** Collects items from a byte stream cut anywhere. */
export class ItemReader {
  readonly maxItemBytes: number;
  private readonly head = new Uint8Array(ITEM_HEADER_BYTES);
  private headFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private broken = false;

  constructor(maxItemBytes: number = DEFAULT_MAX_ITEM_BYTES) {
    if (!Number.isInteger(maxItemBytes) || maxItemBytes < 1 || maxItemBytes > 0xffffffff) throw hfError(ErrorCode.OPTION, `maxItemBytes must be an integer in 1..2^32-1, got ${String(maxItemBytes)}`);
    this.maxItemBytes = maxItemBytes;
  }

  /** Bytes of the item being read so far (0 between items): what a reader holds now. */
  get buffered(): number {
    return this.body === null ? this.headFill : this.bodyFill;
  }

  /** The items `chunk` completed, in order (each its own copy). A bad length: HF_ERR_LIMIT, and every later push throws too. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.broken) throw hfError(ErrorCode.LIMIT, 'management stream: broken by an earlier bad item length');
    const out: Uint8Array[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (this.body === null) {
        const n = Math.min(ITEM_HEADER_BYTES - this.headFill, chunk.length - off);
        this.head.set(chunk.subarray(off, off + n), this.headFill);
        this.headFill += n;
        off += n;
        if (this.headFill < ITEM_HEADER_BYTES) break;
        const h = this.head;
        const len = ((h[0] << 24) >>> 0) + (h[1] << 16) + (h[2] << 8) + h[3];
        this.headFill = 0;
        if (len === 0 || len > this.maxItemBytes) {
          this.broken = true;
          throw hfError(ErrorCode.LIMIT, `management item of ${len} bytes: must be 1..${this.maxItemBytes}`);
        }
        this.body = new Uint8Array(len);
        this.bodyFill = 0;
      }
      const n = Math.min(this.body.length - this.bodyFill, chunk.length - off);
      this.body.set(chunk.subarray(off, off + n), this.bodyFill);
      this.bodyFill += n;
      off += n;
      if (this.bodyFill === this.body.length) {
        out.push(this.body);
        this.body = null;
      }
    }
    return out;
  }
}
