/**
 * Keyed hashing for device authentication and per-bundle tags. Real targets use the platform's
 * HMAC-SHA256; nothing here is implemented in `firmware/`.
 */
export interface Crypto {
  /**
   * HMAC-SHA256 of `data[off, off+len)` under `key`; writes the 32-byte result to `out[outOff, outOff+32)`.
   * `out` is the caller's; nothing is kept.
   */
  hmac(key: Uint8Array, data: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void;
}
