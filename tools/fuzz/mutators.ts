/**
 * Mutations of valid inputs, each drawn from a seeded Prng: bit flips, byte changes, truncation,
 * extension, deletion, splicing with another input, interesting integers written into CBOR heads
 * (lengths and counts at the edges of each head size), and duplicated items. `mutate` applies 1..4
 * of them and returns a new array (the input is not changed).
 */
import type { Prng } from '../../targets/sim/prng';
import { INTERESTING } from './generators';

export type Mutation = (p: Prng, b: Uint8Array, other: Uint8Array) => Uint8Array;

function at(p: Prng, b: Uint8Array): number {
  return b.length === 0 ? 0 : p.int(b.length);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((k, x) => k + x.length, 0);
  const out = new Uint8Array(n);
  let i = 0;
  for (const x of parts) {
    out.set(x, i);
    i += x.length;
  }
  return out;
}

const bitFlip: Mutation = (p, b) => {
  const c = b.slice();
  if (c.length > 0) c[at(p, c)] ^= 1 << p.int(8);
  return c;
};

const byteSet: Mutation = (p, b) => {
  const c = b.slice();
  if (c.length > 0) c[at(p, c)] = [0x00, 0xff, 0x7f, 0x80, 0x17, 0x18, 0x1b, 0x1f, 0x9f, 0xbf, 0x5f, 0xf7, p.int(256)][p.int(13)];
  return c;
};

const truncate: Mutation = (p, b) => b.slice(0, at(p, b));

const extend: Mutation = (p, b) => {
  const tail = new Uint8Array(1 + p.int(p.chance(0.9) ? 16 : 4096));
  if (p.chance(0.5)) p.fill(tail);
  return concat(b, tail);
};

const remove: Mutation = (p, b) => {
  const i = at(p, b);
  const n = 1 + p.int(Math.max(1, Math.min(32, b.length - i)));
  return concat(b.subarray(0, i), b.subarray(i + n));
};

const splice: Mutation = (p, b, other) => concat(b.subarray(0, at(p, b)), other.subarray(at(p, other)));

const insertOther: Mutation = (p, b, other) => {
  const i = at(p, b);
  const j = at(p, other);
  return concat(b.subarray(0, i), other.subarray(j, j + 1 + p.int(64)), b.subarray(i));
};

/** Positions of bytes that could be CBOR heads with a length or count (major 2..5). */
function heads(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const m = b[i] >>> 5;
    if (m >= 2 && m <= 5) out.push(i);
  }
  return out;
}

/** Writes an interesting integer as the argument of a head at a random position (keeping its major type). */
const interestingHead: Mutation = (p, b) => {
  const hs = heads(b);
  const i = hs.length === 0 ? at(p, b) : hs[p.int(hs.length)];
  if (b.length === 0) return b.slice();
  const major = b[i] & 0xe0;
  const ai = b[i] & 31;
  const oldLen = ai < 24 ? 1 : ai === 24 ? 2 : ai === 25 ? 3 : ai === 26 ? 5 : ai === 27 ? 9 : 1;
  const n = INTERESTING[p.int(INTERESTING.length)];
  let head: number[];
  const form = p.int(5); // 0: shortest; 1..4: a given width (non-shortest forms too)
  if ((form === 0 && n < 24) || (form === 1 && n < 24)) head = [major | n];
  else if ((form === 0 && n < 0x100) || (form === 2 && n < 0x100)) head = [major | 24, n];
  else if ((form === 0 && n < 0x10000) || (form === 3 && n < 0x10000)) head = [major | 25, n >>> 8, n & 0xff];
  else if (n <= 0xffffffff && form !== 4) head = [major | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  else {
    const hi = Math.floor(n / 0x100000000);
    const lo = n >>> 0;
    head = [major | 27, hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  }
  if (p.chance(0.1)) head = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff].slice(0, head.length).map((x, k) => (k === 0 ? major | 27 : x));
  return concat(b.subarray(0, i), Uint8Array.from(head), b.subarray(Math.min(b.length, i + oldLen)));
};

/** Copies a range of the input right after itself (a repeated item, key or message). */
const duplicate: Mutation = (p, b) => {
  const i = at(p, b);
  const n = 1 + p.int(Math.max(1, Math.min(64, b.length - i)));
  const part = b.subarray(i, i + n);
  return concat(b.subarray(0, i + n), part, b.subarray(i + n));
};

/** Bumps the count of the head at the start (the map of a bundle, the array of an item) by one. */
const countUp: Mutation = (_p, b) => {
  const c = b.slice();
  if (c.length > 0 && (c[0] & 31) < 23) c[0] += 1;
  return c;
};

export const MUTATIONS: readonly Mutation[] = [bitFlip, byteSet, truncate, extend, remove, splice, insertOther, interestingHead, interestingHead, duplicate, countUp, bitFlip];

/** 1..4 mutations of `b` (`other`: a second valid input to splice from). */
export function mutate(p: Prng, b: Uint8Array, other: Uint8Array): Uint8Array {
  let out = b;
  const n = 1 + p.int(4);
  for (let i = 0; i < n; i++) out = MUTATIONS[p.int(MUTATIONS.length)](p, out, other);
  return out === b ? b.slice() : out;
}
