/**
 * Byte copies without allocation.
 *
 * `Uint8Array#set(src.subarray(...))` allocates a view per call (so does Node's Buffer#copy), and a
 * JavaScript byte loop costs 1-2 ns a byte, which for messages of a few hundred bytes is most of the
 * per-message cost. So:
 *   - within one ArrayBuffer (an endpoint keeps its rings and bundle buffers in one arena) a copy is
 *     `copyWithin` on a view of the whole buffer: native, no allocation;
 *   - a whole foreign array goes in with `set`: native, no allocation;
 *   - part of a foreign array, up to `LONG` bytes, is copied four bytes at a time through DataViews
 *     kept per buffer; a longer part goes with `set` on a view of it: one small allocation beside a
 *     native copy (memcpy runs at several GB/s, the word loop at well under one), so bulk payloads
 *     cost one view per message, not a byte loop;
 *   - short copies are a loop (cheaper than any call).
 * Views are created once per ArrayBuffer and kept in WeakMaps.
 */
const SHORT = 24;
/** From this many bytes a partial copy between two buffers allocates a view and copies natively. */
const LONG = 512;

const wholes = new WeakMap<ArrayBufferLike, Uint8Array>();
const views = new WeakMap<ArrayBufferLike, DataView>();

// The two buffers used last, at hand without a map lookup (a pair of endpoints alternates).
let buf0: ArrayBufferLike | null = null;
let view0: Uint8Array | null = null;
let buf1: ArrayBufferLike | null = null;
let view1: Uint8Array | null = null;

function wholeView(b: ArrayBufferLike): Uint8Array {
  if (b === buf0) return view0 as Uint8Array;
  if (b === buf1) {
    const v = view1 as Uint8Array;
    buf1 = buf0;
    view1 = view0;
    buf0 = b;
    view0 = v;
    return v;
  }
  let v = wholes.get(b);
  if (v === undefined) {
    v = new Uint8Array(b);
    wholes.set(b, v);
  }
  buf1 = buf0;
  view1 = view0;
  buf0 = b;
  view0 = v;
  return v;
}

function dataView(b: ArrayBufferLike): DataView {
  let v = views.get(b);
  if (v === undefined) {
    v = new DataView(b);
    views.set(b, v);
  }
  return v;
}

function wordCopy(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  const dd = dataView(dst.buffer);
  const ds = dataView(src.buffer);
  const d = dst.byteOffset + dstOff;
  const s = src.byteOffset + srcOff;
  let i = 0;
  for (; i + 4 <= len; i += 4) dd.setUint32(d + i, ds.getUint32(s + i, true), true);
  for (; i < len; i++) dst[dstOff + i] = src[srcOff + i];
}

/** Copies `src[srcOff, srcOff+len)` to `dst[dstOff, ...)`. Ranges must be in bounds (not checked). */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (len <= SHORT) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
  } else if (dst.buffer === src.buffer) {
    const s = src.byteOffset + srcOff;
    wholeView(dst.buffer).copyWithin(dst.byteOffset + dstOff, s, s + len);
  } else if (srcOff === 0 && len === src.length) {
    dst.set(src, dstOff);
  } else if (len >= LONG) {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  } else {
    wordCopy(dst, dstOff, src, srcOff, len);
  }
}

/**
 * Copies `src[srcOff, srcOff+len)` into a ring slab (its length a power of two) from position
 * `pos & (slab.length - 1)`, wrapping at the slab's end. `len` must not exceed the slab.
 */
export function copyIntoRing(slab: Uint8Array, pos: number, src: Uint8Array, srcOff: number, len: number): void {
  const p = pos & (slab.length - 1);
  const first = Math.min(len, slab.length - p);
  copyBytes(slab, p, src, srcOff, first);
  if (first < len) copyBytes(slab, 0, src, srcOff + first, len - first);
}

/** Copies `len` bytes of a ring slab from position `pos` (wrapping at its end) to `dst[dstOff, ...)`. */
export function copyOutOfRing(dst: Uint8Array, dstOff: number, slab: Uint8Array, pos: number, len: number): void {
  const p = pos & (slab.length - 1);
  const first = Math.min(len, slab.length - p);
  copyBytes(dst, dstOff, slab, p, first);
  if (first < len) copyBytes(dst, dstOff + first, slab, 0, len - first);
}

/** Constant-time equality of two byte ranges (for session ids and proofs). */
export function equalBytes(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): boolean {
  let d = 0;
  for (let i = 0; i < len; i++) d |= a[aOff + i] ^ b[bOff + i];
  return d === 0;
}

/** Lower-case hex of a byte range (for logs and ids). */
export function toHex(b: Uint8Array, off = 0, len = b.length - off): string {
  let s = '';
  for (let i = 0; i < len; i++) s += (b[off + i] < 16 ? '0' : '') + b[off + i].toString(16);
  return s;
}

/** Bytes from hex; whitespace is ignored. Throws on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  const h = hex.replace(/\s+/g, '');
  if (h.length % 2 !== 0 || /[^0-9a-fA-F]/.test(h)) throw new TypeError(`not hex: ${hex.slice(0, 40)}`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
  return out;
}
