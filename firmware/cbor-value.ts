/**
 * CBOR (RFC 8949) for whole JavaScript values: control items (control.ts) and session snapshots
 * (snapshot.ts). Both are rare, so this codec allocates freely; the per-message path is cbor.ts.
 *
 * encodeValue writes definite lengths and shortest heads:
 *   null f6, undefined f7 (CBOR undefined, so a field that is undefined comes back undefined),
 *   false f4, true f5;
 *   integers of magnitude up to 2^53-1 (safe integers) as major type 0 or 1;
 *   every other number (fractions, -0, NaN, infinities, beyond 2^53-1) as float64 `fb`: never float32
 *   or float16, which is what cbor-x wrote for fractions, so their bytes stay the same;
 *   strings as UTF-8 text (a lone surrogate becomes U+FFFD, as TextEncoder does);
 *   a Uint8Array (or subclass) as tag 64 + byte string, as cbor-x wrote it (docs/PROTOCOL.md section 7);
 *   arrays as arrays; plain objects (prototype Object.prototype or null) as maps with text keys, in
 *   Object.keys order.
 * Anything else (Map, Date, other typed arrays, bigint, functions, ...) throws HF_ERR_BUNDLE naming the
 * type, and so does nesting deeper than 16 levels (the decoder's limit; also catches cycles).
 *
 * decodeValue reads one item and nothing after it. First the whole input is walked by CborReader.skip
 * (the same rules as skipped items in a bundle): ill-formed, truncated, indefinite-length, reserved,
 * nested deeper than 16 levels (a tag counts as one), a length beyond the input, or bytes after the
 * item -> HF_ERR_CBOR, before anything is allocated. Then the value is built:
 *   integers whose value is a safe integer (|n| <= 2^53-1) -> number, larger -> HF_ERR_LIMIT;
 *   float16/32/64 -> number; byte strings, plain or inside tag 64 -> a Uint8Array copy;
 *   text -> string (invalid UTF-8 -> HF_ERR_CBOR); arrays -> arrays;
 *   maps -> plain objects (a key that is not text, or a key twice -> HF_ERR_BUNDLE);
 *   f4 f5 f6 f7 -> false true null undefined; `f8 00`..`f8 1f` -> HF_ERR_CBOR (not well-formed);
 *   any other tag or simple value -> HF_ERR_BUNDLE.
 */
import { CborReader, MajorType, U32_MAX } from './cbor';
import { ErrorCode, hfError } from './errors';

const { UINT, NINT, BYTES, TEXT, ARRAY, MAP, TAG } = MajorType;

/** Nesting limit: the item itself is level 0 (as CborReader.skip counts). */
const MAX_DEPTH = 16;
/** RFC 8746: a byte string as an array of unsigned 8-bit integers. */
const TAG_U8 = 64;

const utf8Enc = new TextEncoder();
const utf8Dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---- encoding -----------------------------------------------------------------------------------

/** Encodes `v` as CBOR; the returned array is the caller's. */
export function encodeValue(v: unknown): Uint8Array {
  const o = new ValueOut();
  o.value(v, 0);
  return o.buf.slice(0, o.pos);
}

/**
 * A growing output buffer values are encoded into, one after another (as encodeValue encodes one).
 * `buf[0, pos)` is what was written; the buffer is replaced (copied) when it grows.
 */
export class ValueOut {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  /** `bytes`: the buffer's first size (it doubles as needed). */
  constructor(bytes = 256) {
    this.buf = new Uint8Array(Math.max(16, bytes));
    this.view = new DataView(this.buf.buffer);
  }

  /** Leaves `n` bytes for the caller to fill (a length prefix, say); returns their position. */
  skip(n: number): number {
    const p = this.room(n);
    this.pos = p + n;
    return p;
  }

  /** Makes room for `n` more bytes; returns the position to write them at. */
  private room(n: number): number {
    if (this.pos + n > this.buf.length) {
      const b = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
      b.set(this.buf.subarray(0, this.pos));
      this.buf = b;
      this.view = new DataView(b.buffer);
    }
    return this.pos;
  }

  private byte(b: number): void {
    const p = this.room(1);
    this.buf[p] = b;
    this.pos = p + 1;
  }

  /** A head with argument `n` (an integer in 0..2^53-1), shortest form. */
  private head(major: number, n: number): void {
    const p = this.room(9);
    const b = this.buf;
    const m = major << 5;
    if (n < 24) {
      b[p] = m | n;
      this.pos = p + 1;
    } else if (n < 0x100) {
      b[p] = m | 24;
      b[p + 1] = n;
      this.pos = p + 2;
    } else if (n < 0x10000) {
      b[p] = m | 25;
      this.view.setUint16(p + 1, n);
      this.pos = p + 3;
    } else if (n <= U32_MAX) {
      b[p] = m | 26;
      this.view.setUint32(p + 1, n);
      this.pos = p + 5;
    } else {
      b[p] = m | 27;
      this.view.setUint32(p + 1, Math.floor(n / 0x100000000));
      this.view.setUint32(p + 5, n >>> 0);
      this.pos = p + 9;
    }
  }

  private bytes(src: Uint8Array): void {
    const p = this.room(src.length);
    this.buf.set(src, p);
    this.pos = p + src.length;
  }

  /** A text string: short ASCII ones (map keys, mostly) byte by byte, others through TextEncoder. */
  private text(v: string): void {
    const n = v.length;
    if (n <= 64) {
      // n <= 64: the head is one byte (n < 24) or two.
      const hs = n < 24 ? 1 : 2;
      const p = this.room(hs + n);
      const b = this.buf;
      let ascii = true;
      for (let i = 0; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        b[p + hs + i] = c;
      }
      if (ascii) {
        if (hs === 1) b[p] = (TEXT << 5) | n;
        else {
          b[p] = (TEXT << 5) | 24;
          b[p + 1] = n;
        }
        this.pos = p + hs + n;
        return;
      }
    }
    const s = utf8Enc.encode(v);
    this.head(TEXT, s.length);
    this.bytes(s);
  }

  private number(n: number): void {
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) {
      if (n >= 0) this.head(UINT, n);
      else this.head(NINT, -1 - n);
      return;
    }
    const p = this.room(9);
    this.buf[p] = 0xfb;
    this.view.setFloat64(p + 1, n);
    this.pos = p + 9;
  }

  /** Appends `v` (depth: its nesting level, 0 for a whole value); throws as encodeValue does. */
  value(v: unknown, depth = 0): void {
    if (depth > MAX_DEPTH) throw tooDeep();
    switch (typeof v) {
      case 'number':
        return this.number(v);
      case 'string':
        return this.text(v);
      case 'boolean':
        return this.byte(v ? 0xf5 : 0xf4);
      case 'undefined':
        return this.byte(0xf7);
      case 'object': {
        if (v === null) return this.byte(0xf6);
        if (v instanceof Uint8Array) {
          if (depth === MAX_DEPTH) throw tooDeep(); // the byte string is a level below its tag
          this.head(TAG, TAG_U8);
          this.head(BYTES, v.length);
          return this.bytes(v);
        }
        if (Array.isArray(v)) {
          this.head(ARRAY, v.length);
          for (let i = 0; i < v.length; i++) this.value(v[i], depth + 1);
          return;
        }
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) break;
        const rec = v as Record<string, unknown>;
        const keys = Object.keys(rec);
        this.head(MAP, keys.length);
        for (const k of keys) {
          this.value(k, depth + 1);
          this.value(rec[k], depth + 1);
        }
        return;
      }
    }
    throw hfError(ErrorCode.BUNDLE, `cannot encode a value of type ${typeName(v)}`);
  }
}

function tooDeep() {
  return hfError(ErrorCode.BUNDLE, `value nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
}

function typeName(v: unknown): string {
  if (typeof v !== 'object' || v === null) return typeof v;
  const c = (v as { constructor?: { name?: string } }).constructor;
  return typeof c?.name === 'string' && c.name !== '' ? c.name : 'object';
}

// ---- decoding -----------------------------------------------------------------------------------

const checker = new CborReader();

/**
 * Decodes the one CBOR item that is `buf[start, end)`. Byte strings come back as copies, so the result
 * does not share memory with `buf`. Throws as the file comment says.
 */
export function decodeValue(buf: Uint8Array, start = 0, end = buf.length): unknown {
  checker.reset(buf, start, end);
  checker.skip();
  if (checker.pos !== end) throw hfError(ErrorCode.CBOR, `${end - checker.pos} bytes after the item at byte ${checker.pos}`);
  return new In(buf, start).value();
}

/** Builds the value of input that CborReader.skip has accepted, so nothing here checks bounds. */
class In {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos: number;
  /** Additional information, argument and argument position of the last head. */
  private ai = 0;
  private arg = 0;
  private argAt = 0;

  constructor(buf: Uint8Array, pos: number) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
  }

  /** Reads a head; returns its major type. `arg` is exact up to 2^53 and at least 2^53 beyond. */
  private head(): number {
    const ib = this.buf[this.pos];
    const p = this.pos + 1;
    const ai = ib & 31;
    const v = this.view;
    this.ai = ai;
    this.argAt = p;
    this.arg = ai < 24 ? ai : ai === 24 ? this.buf[p] : ai === 25 ? v.getUint16(p) : ai === 26 ? v.getUint32(p) : v.getUint32(p) * 0x100000000 + v.getUint32(p + 4);
    this.pos = p + (ai < 24 ? 0 : 1 << (ai - 24));
    return ib >>> 5;
  }

  /** The body of the byte or text string whose head was just read. */
  private body(): Uint8Array {
    const b = this.buf.subarray(this.pos, this.pos + this.arg);
    this.pos += this.arg;
    return b;
  }

  value(): unknown {
    const at = this.pos;
    const major = this.head();
    const n = this.arg;
    switch (major) {
      case UINT:
        if (n > Number.MAX_SAFE_INTEGER) throw hfError(ErrorCode.LIMIT, `integer at byte ${at} is above 2^53-1`);
        return n;
      case NINT:
        if (n >= Number.MAX_SAFE_INTEGER) throw hfError(ErrorCode.LIMIT, `negative integer at byte ${at} is below -(2^53-1)`);
        return -1 - n;
      case BYTES:
        return copy(this.body());
      case TEXT:
        try {
          return utf8Dec.decode(this.body());
        } catch (e) {
          throw hfError(ErrorCode.CBOR, `text at byte ${at} is not valid UTF-8`, e);
        }
      case ARRAY: {
        const a: unknown[] = [];
        for (let i = 0; i < n; i++) a.push(this.value());
        return a;
      }
      case MAP: {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const kat = this.pos;
          if (this.buf[kat] >>> 5 !== TEXT) throw hfError(ErrorCode.BUNDLE, `map key at byte ${kat} is not text`);
          const k = this.value() as string;
          if (Object.hasOwn(o, k)) throw hfError(ErrorCode.BUNDLE, `map key "${k}" at byte ${kat} appears twice`);
          // defineProperty, not assignment: a key "__proto__" is data, not the object's prototype.
          Object.defineProperty(o, k, { value: this.value(), enumerable: true, writable: true, configurable: true });
        }
        return o;
      }
      case TAG: {
        if (n !== TAG_U8) throw hfError(ErrorCode.BUNDLE, `tag ${n} at byte ${at} (only tag 64, bytes, is known)`);
        const inner = this.pos;
        if (this.head() !== BYTES) throw hfError(ErrorCode.BUNDLE, `tag 64 at byte ${at} holds no byte string (byte ${inner})`);
        return copy(this.body());
      }
      default:
        return this.simple(at);
    }
  }

  /** Major type 7: simple values and floats. */
  private simple(at: number): unknown {
    const n = this.arg;
    switch (this.ai) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24:
        if (n < 32) throw hfError(ErrorCode.CBOR, `simple value ${n} at byte ${at} in two bytes (not well-formed)`);
        break;
      case 25:
        return half(n);
      case 26:
        return this.view.getFloat32(this.argAt);
      case 27:
        return this.view.getFloat64(this.argAt);
    }
    throw hfError(ErrorCode.BUNDLE, `simple value ${n} at byte ${at}`);
  }
}

/** A Uint8Array copy (not `slice`, which on a Node Buffer returns a view). */
function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** An IEEE 754 half-precision float (RFC 8949 Appendix D). */
function half(h: number): number {
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  const v = exp === 0 ? mant * 2 ** -24 : exp !== 31 ? (mant + 1024) * 2 ** (exp - 25) : mant === 0 ? Infinity : NaN;
  return h & 0x8000 ? -v : v;
}
