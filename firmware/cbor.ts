/**
 * A small fixed-layout CBOR (RFC 8949) writer and a validating reader, for the per-message hot path.
 * Neither allocates: the writer fills a buffer its owner allocated once, the reader walks a buffer the
 * caller owns and hands back numbers and offsets, never views or copies.
 *
 * Only what bundles need: unsigned integers up to 2^32-1, byte strings, arrays, maps (definite
 * lengths only), and skipping any well-formed item (for unknown keys and control items).
 */
import { copyBytes, copyOutOfRing } from './bytes';
import { ErrorCode, hfError } from './errors';

const MAJOR_UINT = 0;
const MAJOR_NINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;

/** Largest value the fixed-layout fields carry (sequence numbers and offsets are free-running u32). */
export const U32_MAX = 0xffffffff;
/** Nesting limit when skipping unknown items. */
const MAX_DEPTH = 16;

export const MajorType = { UINT: MAJOR_UINT, NINT: MAJOR_NINT, BYTES: MAJOR_BYTES, TEXT: MAJOR_TEXT, ARRAY: MAJOR_ARRAY, MAP: MAJOR_MAP, TAG: MAJOR_TAG, SIMPLE: MAJOR_SIMPLE } as const;

/** Bytes a header of the given argument takes (1, 2, 3 or 5). */
export function headerSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/**
 * Writes CBOR into `buf` from `pos`. Methods throw HF_ERR_LIMIT when the buffer would overflow; the
 * bytes written so far stay in place but `pos` is what the caller checks before committing.
 */
export class CborWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  reset(): void {
    this.pos = 0;
  }

  /** Free bytes left. */
  get room(): number {
    return this.buf.length - this.pos;
  }

  private head(major: number, n: number): void {
    const b = this.buf;
    let p = this.pos;
    const m = major << 5;
    if (n < 24) {
      if (p + 1 > b.length) throw overflow(b.length);
      b[p++] = m | n;
    } else if (n < 0x100) {
      if (p + 2 > b.length) throw overflow(b.length);
      b[p++] = m | 24;
      b[p++] = n;
    } else if (n < 0x10000) {
      if (p + 3 > b.length) throw overflow(b.length);
      b[p++] = m | 25;
      b[p++] = n >>> 8;
      b[p++] = n & 0xff;
    } else {
      if (p + 5 > b.length) throw overflow(b.length);
      b[p++] = m | 26;
      b[p++] = n >>> 24;
      b[p++] = (n >>> 16) & 0xff;
      b[p++] = (n >>> 8) & 0xff;
      b[p++] = n & 0xff;
    }
    this.pos = p;
  }

  /** An unsigned integer, 0..2^32-1. */
  uint(n: number): void {
    this.head(MAJOR_UINT, n >>> 0);
  }

  arrayHeader(count: number): void {
    this.head(MAJOR_ARRAY, count);
  }

  mapHeader(count: number): void {
    this.head(MAJOR_MAP, count);
  }

  /** A byte-string header; the caller then writes exactly `len` bytes with `copy`. */
  bytesHeader(len: number): void {
    this.head(MAJOR_BYTES, len);
  }

  /** Copies `src[off, off+len)` verbatim (the body of a byte string, or a pre-encoded item). */
  copy(src: Uint8Array, off: number, len: number): void {
    if (this.pos + len > this.buf.length) throw overflow(this.buf.length);
    copyBytes(this.buf, this.pos, src, off, len);
    this.pos += len;
  }

  /** Raw bytes from a ring slab: `len` of them from position `pos`, wrapping at its end (see copyOutOfRing). */
  copyFromRing(slab: Uint8Array, pos: number, len: number): void {
    if (this.pos + len > this.buf.length) throw overflow(this.buf.length);
    copyOutOfRing(this.buf, this.pos, slab, pos, len);
    this.pos += len;
  }

  /** A whole byte string. */
  bytes(src: Uint8Array, off = 0, len = src.length - off): void {
    this.bytesHeader(len);
    this.copy(src, off, len);
  }
}

function overflow(size: number) {
  return hfError(ErrorCode.LIMIT, `bundle does not fit its ${size}-byte buffer`);
}

/**
 * Reads CBOR from `buf[pos, end)`. Every method validates what it reads and throws HF_ERR_CBOR for
 * malformed or truncated input and HF_ERR_BUNDLE for a well-formed item of the wrong type.
 * `field` names the bundle field in error messages.
 */
export class CborReader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;
  /** Set by `head`: the argument of the last header (for arguments above 2^32-1, `big` is true). */
  private arg = 0;
  private big = false;

  reset(buf: Uint8Array, start = 0, end = buf.length): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Major type of the next item, without consuming it. */
  peekMajor(): number {
    if (this.pos >= this.end) throw truncated(this.pos);
    return this.buf[this.pos] >>> 5;
  }

  /** Reads a header and returns its major type; the argument is left in `arg`/`big`. */
  private head(): number {
    const b = this.buf;
    let p = this.pos;
    if (p >= this.end) throw truncated(p);
    const ib = b[p++];
    const major = ib >>> 5;
    const ai = ib & 31;
    this.big = false;
    if (ai < 24) {
      this.arg = ai;
    } else if (ai === 24) {
      if (p + 1 > this.end) throw truncated(p);
      this.arg = b[p++];
    } else if (ai === 25) {
      if (p + 2 > this.end) throw truncated(p);
      this.arg = (b[p] << 8) | b[p + 1];
      p += 2;
    } else if (ai === 26) {
      if (p + 4 > this.end) throw truncated(p);
      this.arg = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      p += 4;
    } else if (ai === 27) {
      if (p + 8 > this.end) throw truncated(p);
      const hi = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
      p += 8;
      this.big = hi !== 0;
      this.arg = hi !== 0 ? U32_MAX : lo;
    } else if (ai === 31) {
      throw hfError(ErrorCode.CBOR, `indefinite-length item at byte ${this.pos} (only definite lengths are allowed)`);
    } else {
      throw hfError(ErrorCode.CBOR, `reserved additional information ${ai} at byte ${this.pos}`);
    }
    this.pos = p;
    return major;
  }

  private expect(major: number, field: string): number {
    const at = this.pos;
    const m = this.head();
    if (m !== major) {
      throw hfError(ErrorCode.BUNDLE, `${field}: expected ${majorName(major)} at byte ${at}, found ${majorName(m)}`);
    }
    return this.arg;
  }

  /** An unsigned integer in 0..max (default 2^32-1). */
  uint(field: string, max = U32_MAX): number {
    const at = this.pos;
    const n = this.expect(MAJOR_UINT, field);
    if (this.big || n > max) throw hfError(ErrorCode.LIMIT, `${field}: ${this.big ? '> 2^32-1' : n} at byte ${at} is over ${max}`);
    return n;
  }

  /** An array header with at most `max` items; returns the count. */
  arrayHeader(field: string, max: number): number {
    const at = this.pos;
    const n = this.expect(MAJOR_ARRAY, field);
    if (this.big || n > max) throw hfError(ErrorCode.LIMIT, `${field}: ${n} items at byte ${at}, limit ${max}`);
    return n;
  }

  /** A map header with at most `max` pairs; returns the count. */
  mapHeader(field: string, max: number): number {
    const at = this.pos;
    const n = this.expect(MAJOR_MAP, field);
    if (this.big || n > max) throw hfError(ErrorCode.LIMIT, `${field}: ${n} pairs at byte ${at}, limit ${max}`);
    return n;
  }

  /**
   * A byte string of at most `max` bytes: returns its length; its body starts at `pos` on return and
   * the reader has already moved past it, so the body is `buf[pos - len, pos)`.
   */
  bytes(field: string, max: number): number {
    const at = this.pos;
    const n = this.expect(MAJOR_BYTES, field);
    if (this.big || n > max) throw hfError(ErrorCode.LIMIT, `${field}: ${this.big ? '> 2^32-1' : n} bytes at byte ${at}, limit ${max}`);
    if (this.pos + n > this.end) throw truncated(this.pos);
    this.pos += n;
    return n;
  }

  /** Skips one well-formed item of any type (depth-limited). */
  skip(depth = 0): void {
    if (depth > MAX_DEPTH) throw hfError(ErrorCode.CBOR, `nesting deeper than ${MAX_DEPTH} at byte ${this.pos}`);
    const major = this.head();
    const n = this.arg;
    switch (major) {
      case MAJOR_UINT:
      case MAJOR_NINT:
      case MAJOR_SIMPLE:
        return;
      case MAJOR_BYTES:
      case MAJOR_TEXT:
        if (this.big || this.pos + n > this.end) throw truncated(this.pos);
        this.pos += n;
        return;
      case MAJOR_ARRAY:
        if (this.big || n > this.end - this.pos) throw truncated(this.pos);
        for (let i = 0; i < n; i++) this.skip(depth + 1);
        return;
      case MAJOR_MAP:
        if (this.big || n > this.end - this.pos) throw truncated(this.pos);
        for (let i = 0; i < n * 2; i++) this.skip(depth + 1);
        return;
      case MAJOR_TAG:
        this.skip(depth + 1);
        return;
    }
  }
}

function truncated(at: number) {
  return hfError(ErrorCode.CBOR, `input ends inside an item at byte ${at}`);
}

function majorName(m: number): string {
  return ['unsigned integer', 'negative integer', 'byte string', 'text string', 'array', 'map', 'tag', 'simple/float'][m];
}
