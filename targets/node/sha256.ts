/**
 * HMAC-SHA256 (RFC 2104 over FIPS 180-4) for short inputs, allocation-free after a key's first use.
 *
 * Node's createHmac costs about 3 us per call on a ~100-byte bundle here, most of it object set-up
 * across the C++ boundary. Tags are computed for every bundle with the same session key, so this keeps,
 * per key, the SHA-256 state after the key's inner and outer pads (two compressions saved per call)
 * and runs the rest in JavaScript on preallocated words: about 1.2 us per 110-byte bundle.
 * Inputs over 512 bytes (bundles full of messages) go to node:crypto instead, which is faster there.
 * Written from FIPS 180-4 section 6.2; checked against node:crypto in test/sha256.test.ts.
 */
import { createHmac } from 'node:crypto';

/** Inputs longer than this go to node:crypto (measured crossover on x64 here: about 600 bytes). */
const NATIVE_FROM = 512;

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const W = new Int32Array(64);
const S = new Int32Array(8);
const block = new Uint8Array(64);
const inner = new Uint8Array(32);

/** One compression: `h` (8 words) absorbs the 64-byte block at `b[off]`. */
function compress(h: Int32Array, b: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const p = off + i * 4;
    W[i] = (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15];
    const y = W[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = h[0];
  let bb = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let hh = h[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (hh + S1 + ch + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & bb) ^ (a & c) ^ (bb & c);
    const t2 = (S0 + maj) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = bb;
    bb = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + bb) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
  h[5] = (h[5] + f) | 0;
  h[6] = (h[6] + g) | 0;
  h[7] = (h[7] + hh) | 0;
}

/**
 * Finishes a hash whose state `h` has absorbed `done` bytes already, over `data[off, off+len)`;
 * writes 32 bytes to `out[outOff]`.
 */
function finish(h: Int32Array, done: number, data: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
  let p = off;
  const end = off + len;
  while (end - p >= 64) {
    compress(h, data, p);
    p += 64;
  }
  const rest = end - p;
  for (let i = 0; i < rest; i++) block[i] = data[p + i];
  block[rest] = 0x80;
  let at = rest + 1;
  if (at > 56) {
    block.fill(0, at, 64);
    compress(h, block, 0);
    at = 0;
  }
  block.fill(0, at, 56);
  const bits = (done + len) * 8;
  const hi = Math.floor(bits / 0x100000000);
  block[56] = hi >>> 24;
  block[57] = (hi >>> 16) & 0xff;
  block[58] = (hi >>> 8) & 0xff;
  block[59] = hi & 0xff;
  block[60] = bits >>> 24;
  block[61] = (bits >>> 16) & 0xff;
  block[62] = (bits >>> 8) & 0xff;
  block[63] = bits & 0xff;
  compress(h, block, 0);
  for (let i = 0; i < 8; i++) {
    const w = h[i];
    out[outOff + i * 4] = w >>> 24;
    out[outOff + i * 4 + 1] = (w >>> 16) & 0xff;
    out[outOff + i * 4 + 2] = (w >>> 8) & 0xff;
    out[outOff + i * 4 + 3] = w & 0xff;
  }
}

/** SHA-256 of `data[off, off+len)` into `out[outOff, outOff+32)`. */
export function sha256(data: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
  S.set(IV);
  finish(S, 0, data, off, len, out, outOff);
}

/** A key's states after its inner and outer pads (8 words each). */
const pads = new WeakMap<Uint8Array, [Int32Array, Int32Array]>();

function padsOf(key: Uint8Array): [Int32Array, Int32Array] {
  let st = pads.get(key);
  if (st !== undefined) return st;
  const k = new Uint8Array(64);
  if (key.length > 64) sha256(key, 0, key.length, k, 0);
  else k.set(key);
  const ih = new Int32Array(8);
  const oh = new Int32Array(8);
  st = [ih, oh];
  ih.set(IV);
  oh.set(IV);
  const pad = new Uint8Array(64);
  for (let i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
  compress(ih, pad, 0);
  for (let i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
  compress(oh, pad, 0);
  pads.set(key, st);
  return st;
}

/**
 * HMAC-SHA256 of `data[off, off+len)` under `key`, 32 bytes into `out[outOff]`. The key's pads are
 * kept (weakly) after its first use: pass the same Uint8Array for the same key.
 */
export function hmacSha256(key: Uint8Array, data: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
  if (len > NATIVE_FROM) {
    // Long inputs: the platform's SHA-256 (with the CPU's SHA instructions where there are any) wins
    // once its fixed cost of a few microseconds is spread over enough bytes.
    out.set(
      createHmac('sha256', key)
        .update(data.subarray(off, off + len))
        .digest(),
      outOff,
    );
    return;
  }
  const st = padsOf(key);
  S.set(st[0]);
  finish(S, 64, data, off, len, inner, 0);
  S.set(st[1]);
  finish(S, 64, inner, 0, 32, out, outOff);
}
