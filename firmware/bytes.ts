/**
 * Byte copies without allocation. `Uint8Array#set(src.subarray(...))` allocates a view object per call,
 * which on the per-message path adds up to garbage-collector work; below `LOOP_MAX` bytes a plain loop
 * is as fast and allocates nothing. Larger copies take the native path (one small view per call).
 */
const LOOP_MAX = 512;

/** Copies `src[srcOff, srcOff+len)` to `dst[dstOff, ...)`. Ranges must be in bounds (not checked). */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (len <= LOOP_MAX) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
  } else if (srcOff === 0 && len === src.length) {
    dst.set(src, dstOff);
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
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
