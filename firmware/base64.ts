/**
 * Base64 (RFC 4648 section 4, with padding) for byte arguments that arrive as JSON text. Strict:
 * only the standard alphabet, padding to a multiple of 4, no white space, and unused bits zero, so
 * each byte string has exactly one text. Rare and small, so it allocates freely.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/** The text of `b`. */
export function toBase64(b: Uint8Array): string {
  let s = '';
  let i = 0;
  for (; i + 3 <= b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + ALPHABET[n & 63];
  }
  const left = b.length - i;
  if (left === 1) {
    const n = b[i] << 16;
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + '==';
  } else if (left === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + '=';
  }
  return s;
}

/** The bytes of `s`, or null when `s` is not strict base64. */
export function fromBase64(s: string): Uint8Array | null {
  if (s.length % 4 !== 0) return null;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let n = 0;
    const last = i + 4 === s.length;
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      if (last && j >= 4 - pad) {
        if (c !== 61) return null;
        n <<= 6;
        continue;
      }
      const v = c < 128 ? VALUE[c] : -1;
      if (v < 0) return null;
      n = (n << 6) | v;
    }
    const bytes = last ? 3 - pad : 3;
    if (bytes < 3 && (n & (bytes === 1 ? 0xffff : 0xff)) !== 0) return null;
    out[o++] = n >>> 16;
    if (bytes > 1) out[o++] = (n >>> 8) & 0xff;
    if (bytes > 2) out[o++] = n & 0xff;
  }
  return out;
}
