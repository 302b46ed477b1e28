/**
 * The value codec (firmware/cbor-value.ts) and its two users:
 *  - hex fixtures, most from RFC 8949 Appendix A, encoded and decoded;
 *  - random values round-trip (seeded: a failure prints its seed; CV_SEED=n replays one);
 *  - interop with cbor-x both ways (the library control.ts and snapshot.ts used before);
 *  - bad input, written raw as hex, is refused with its code; a truncated input at every cut is
 *    HF_ERR_CBOR; values it cannot write are HF_ERR_BUNDLE;
 *  - control items encode to the bytes cbor-x wrote; unknown kinds and fields may hold any CBOR;
 *  - snapshots and journals written by cbor-x still restore.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Encoder, decode as cborxDecode } from 'cbor-x';
import { fromHex, toHex } from '../firmware/bytes';
import { ClientLink } from '../firmware/client-link';
import { type Control, Ctl, decodeControl, encodeControl } from '../firmware/control';
import { decodeValue, encodeValue } from '../firmware/cbor-value';
import { ErrorCode } from '../firmware/errors';
import { getU32, Journal, Rec } from '../firmware/journal';
import { ServerLink } from '../firmware/server-link';
import { type ClientData, type ServerData, decodeSnapshot } from '../firmware/snapshot';
import { nodeCrypto } from '../targets/node/crypto';
import { SIM_KEY, SimPair } from '../targets/sim/pair';
import { Prng } from '../targets/sim/prng';
import { MemoryStorage } from '../targets/sim/storage';
import { code, message } from './support/errors';
import { Manual } from './support/manual';

/** The encoder control.ts and snapshot.ts used before cbor-value.ts. */
const cborx = new Encoder({ useRecords: false, variableMapSize: true, mapsAsObjects: true });

const hex = (v: unknown) => toHex(encodeValue(v));
const dec = (h: string) => decodeValue(fromHex(h.replace(/\s+/g, '')));
const decCode = (h: string) => code(() => dec(h));

/** An object with these own properties in this order (defineProperty: "__proto__" stays a key). */
function obj(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

// ---- (a) fixtures --------------------------------------------------------------------------------

/** Encoded by us exactly as RFC 8949 Appendix A writes them (and decoded back). */
const APPENDIX_A: [unknown, string][] = [
  [0, '00'],
  [1, '01'],
  [10, '0a'],
  [23, '17'],
  [24, '1818'],
  [25, '1819'],
  [100, '1864'],
  [1000, '1903e8'],
  [1000000, '1a000f4240'],
  [1000000000000, '1b000000e8d4a51000'],
  [-1, '20'],
  [-10, '29'],
  [-100, '3863'],
  [-1000, '3903e7'],
  [1.1, 'fb3ff199999999999a'],
  [1.0e300, 'fb7e37e43c8800759c'],
  [-4.1, 'fbc010666666666666'],
  [false, 'f4'],
  [true, 'f5'],
  [null, 'f6'],
  [undefined, 'f7'],
  ['', '60'],
  ['a', '6161'],
  ['IETF', '6449455446'],
  ['"\\', '62225c'],
  ['\u00fc', '62c3bc'],
  ['\u6c34', '63e6b0b4'],
  ['\ud800\udd51', '64f0908591'],
  [[], '80'],
  [[1, 2, 3], '83010203'],
  [[1, [2, 3], [4, 5]], '8301820203820405'],
  [Array.from({ length: 25 }, (_, i) => i + 1), '98190102030405060708090a0b0c0d0e0f101112131415161718181819'],
  [{}, 'a0'],
  [{ a: 1, b: [2, 3] }, 'a26161016162820203'],
  [['a', { b: 'c' }], '826161a161626163'],
  [{ a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' }, 'a56161614161626142616361436164614461656145'],
];

/** Our choices where Appendix A has another (or no) encoding. */
const OURS: [string, unknown, string][] = [
  ['bytes as tag 64 (cbor-x did this; PROTOCOL.md section 7)', new Uint8Array([1, 2, 3, 4]), 'd8404401020304'],
  ['empty bytes as tag 64', new Uint8Array(0), 'd84040'],
  ['a view into a larger buffer: only its bytes', new Uint8Array([9, 1, 2, 9]).subarray(1, 3), 'd840420102'],
  ['1.5 as float64, never float16 (Appendix A: f93e00)', 1.5, 'fb3ff8000000000000'],
  ['100000.5 as float64', 100000.5, 'fb40f86a0800000000'],
  ['-0 as float64 (keeps the sign)', -0, 'fb8000000000000000'],
  ['NaN as float64', NaN, 'fb7ff8000000000000'],
  ['Infinity as float64', Infinity, 'fb7ff0000000000000'],
  ['-Infinity as float64', -Infinity, 'fbfff0000000000000'],
  ['2^32 as an 8-byte integer (cbor-x: float64)', 2 ** 32, '1b0000000100000000'],
  ['2^53-1, the largest integer head', 2 ** 53 - 1, '1b001fffffffffffff'],
  ['-(2^53-1), the smallest', -(2 ** 53 - 1), '3b001ffffffffffffe'],
  ['2^53 is not a safe integer: float64', 2 ** 53, 'fb4340000000000000'],
  ['-2^31-1 in a 4-byte head', -(2 ** 31) - 1, '3a80000000'],
  ['u32 max', 0xffffffff, '1affffffff'],
  ['keys in insertion order', { b: 1, a: 2 }, 'a2616201616102'],
  ['a key "__proto__" is a key', obj([['__proto__', 1]]), 'a1695f5f70726f746f5f5f01'],
  ['undefined in a map', { a: undefined }, 'a16161f7'],
  ['keys named like Object.prototype members are keys', { constructor: 1, toString: 2 }, 'a26b636f6e7374727563746f720168746f537472696e6702'],
  ['a hole in an array is undefined', [1, undefined, 3], '8301f703'], // eslint-disable-line no-sparse-arrays
  ['a lone surrogate becomes U+FFFD', 'a\ud800', '6461efbfbd'],
  ['a null-prototype object is a map', Object.assign(Object.create(null), { a: 1 }), 'a1616101'],
  ['a 24-byte string: 1-byte length', 'x'.repeat(24), '7818' + '78'.repeat(24)],
  ['a 256-item array: 2-byte count', new Array(256).fill(0), '990100' + '00'.repeat(256)],
];

test('encode: RFC 8949 Appendix A', () => {
  for (const [v, h] of APPENDIX_A) assert.is(hex(v), h, JSON.stringify(v));
});

test('encode: our choices (tag 64, float64, integers to 2^53-1, undefined, key order)', () => {
  for (const [label, v, h] of OURS) assert.is(hex(v), h, label);
});

test('decode: RFC 8949 Appendix A, and our own encodings back', () => {
  for (const [v, h] of APPENDIX_A) assert.equal(dec(h), v, h);
  for (const [label, v, h] of OURS) {
    const got = dec(h);
    if (label.startsWith('a lone surrogate')) assert.is(got, 'a\ufffd', label);
    else if (label.startsWith('a hole')) assert.equal(got, [1, undefined, 3], label);
    else if (v instanceof Uint8Array) assert.is(toHex(got as Uint8Array), toHex(v), label);
    else if (label.startsWith('a null-prototype')) assert.equal({ ...(got as object) }, { a: 1 }, label);
    else assert.equal(got, v, label);
  }
  assert.ok(Object.is(dec('fb8000000000000000'), -0), '-0 keeps its sign');
  const proto = dec('a1695f5f70726f746f5f5f01') as Record<string, unknown>;
  assert.is(Object.getPrototypeOf(proto), Object.prototype, '"__proto__" did not replace the prototype');
  assert.equal(Object.keys(proto), ['__proto__']);
  assert.equal(Object.keys(dec('a2616201616102') as object), ['b', 'a'], 'key order kept');
});

test('decode: what a peer or an older version may send', () => {
  const cases: [string, unknown][] = [
    // Appendix A encodings we do not write.
    ['f90000', 0],
    ['f93c00', 1],
    ['f93e00', 1.5],
    ['f97bff', 65504],
    ['fa47c35000', 100000],
    ['fa7f7fffff', 3.4028234663852886e38],
    ['f90001', 2 ** -24],
    ['f90400', 0.00006103515625],
    ['f9c400', -4],
    ['f97c00', Infinity],
    ['f9fc00', -Infinity],
    ['fa7f800000', Infinity],
    ['faff800000', -Infinity],
    ['fb7ff0000000000000', Infinity],
    ['4401020304', new Uint8Array([1, 2, 3, 4])],
    ['40', new Uint8Array(0)],
    // Every argument width, not only the shortest.
    ['1801', 1],
    ['190001', 1],
    ['1a00000001', 1],
    ['1b0000000000000001', 1],
    ['3800', -1],
    ['7801' + '61', 'a'],
    ['990001' + '01', [1]],
    ['ba00000001' + '6161' + '01', { a: 1 }],
    ['5b0000000000000001' + '07', new Uint8Array([7])],
    // cbor-x wrote integers from 2^32 as float64.
    ['fb41f0000000000000', 2 ** 32],
    ['fbc1f0000000100000', -(2 ** 32) - 1],
    // The byte order mark is text like any other.
    ['63efbbbf', '\ufeff'],
  ];
  for (const [h, want] of cases) {
    const got = dec(h);
    if (want instanceof Uint8Array) {
      assert.instance(got, Uint8Array, h);
      assert.is(toHex(got as Uint8Array), toHex(want), h);
    } else assert.equal(got, want, h);
  }
  assert.ok(Number.isNaN(dec('f97e00')) && Number.isNaN(dec('fa7fc00000')) && Number.isNaN(dec('fb7ff8000000000000')), 'NaN in each width');
  assert.ok(Object.is(dec('f98000'), -0), 'float16 -0');
});

test('decode: byte strings are copies, and start/end select the item', () => {
  // From a Node Buffer too (storage reads on the host are Buffers; Buffer#slice would be a view).
  const nb = Buffer.from('a16162d840420102', 'hex');
  const fromBuffer = decodeValue(nb) as { b: Uint8Array };
  assert.is(fromBuffer.b.constructor, Uint8Array);
  nb[7] = 9;
  assert.is(toHex(fromBuffer.b), '0102', 'a copy, not a view of the Buffer');
  const buf = fromHex('ff' + 'd840420102' + 'ff');
  const v = decodeValue(buf, 1, 6) as Uint8Array;
  assert.is(toHex(v), '0102');
  buf[4] = 9;
  assert.is(toHex(v), '0102', 'not a view of the input');
  assert.is(toHex(decodeValue(fromHex('420102')) as Uint8Array), '0102');
  // A view with a byteOffset: floats are read from the right place.
  const inner = fromHex('00fb3ff800000000000000').subarray(1, 10);
  assert.is(decodeValue(inner), 1.5);
});

// ---- (b) bad input ---------------------------------------------------------------------------------

const C = ErrorCode.CBOR;
const B = ErrorCode.BUNDLE;
const L = ErrorCode.LIMIT;
const nest = (n: number, inner: string) => '81'.repeat(n) + inner;

const BAD: [string, string, string][] = [
  // Not well-formed: HF_ERR_CBOR.
  ['', C, 'empty input'],
  ['18', C, 'head cut in its 1-byte argument'],
  ['1901', C, 'head cut in its 2-byte argument'],
  ['1a000000', C, 'head cut in its 4-byte argument'],
  ['1b00000000000000', C, 'head cut in its 8-byte argument'],
  ['41', C, 'byte string without its body'],
  ['5affffffff00', C, 'byte string of 2^32-1 bytes in 6 bytes (not allocated)'],
  ['5b0000000100000000', C, 'byte string of 2^32 bytes'],
  ['7bffffffffffffffff', C, 'text of 2^64-1 bytes'],
  ['9affffffff', C, 'array of 2^32-1 items in 5 bytes'],
  ['bbffffffffffffffff', C, 'map of 2^64-1 pairs'],
  ['820102ff', C, 'trailing byte after an array'],
  ['0000', C, 'two items'],
  ['a0f6', C, 'trailing null'],
  ['1c', C, 'reserved additional information 28'],
  ['3d', C, 'reserved additional information 29'],
  ['5e', C, 'reserved additional information 30'],
  ['fc', C, 'reserved additional information 28 in major 7'],
  ['1f', C, 'additional information 31 on an integer'],
  ['5f4101ff', C, 'indefinite byte string'],
  ['7f6161ff', C, 'indefinite text'],
  ['9f01ff', C, 'indefinite array'],
  ['bf616101ff', C, 'indefinite map'],
  ['ff', C, 'a stray break'],
  ['8201ff', C, 'a break inside a definite array'],
  [nest(17, '00'), C, 'an item at level 17'],
  [nest(16, 'd84040'), C, 'tag 64 at level 16: its byte string is at level 17'],
  ['61ff', C, 'text: byte ff'],
  ['6180', C, 'text: a lone continuation byte'],
  ['62c328', C, 'text: a bad continuation'],
  ['62c0af', C, 'text: overlong "/"'],
  ['63eda080', C, 'text: a surrogate (what cbor-x wrote for a lone surrogate)'],
  ['64f4908080', C, 'text: above U+10FFFF'],
  ['a1 61ff 01', C, 'a map key that is not UTF-8'],
  ['f800', C, 'simple value 0 in two bytes'],
  ['f81f', C, 'simple value 31 in two bytes'],
  // Well-formed, but not a value we take: HF_ERR_BUNDLE.
  ['a10102', B, 'an integer map key'],
  ['a1410001', B, 'a byte-string map key'],
  ['a1f601', B, 'a null map key'],
  ['a18001', B, 'an array map key'],
  ['a1d8404001', B, 'a tag-64 map key'],
  ['a2616101616102', B, 'a key twice'],
  ['a3616101616202616103', B, 'a key twice, not adjacent'],
  ['c074323031332d30332d32315432303a30343a30305a', B, 'tag 0 (date-time)'],
  ['c11a514b67b0', B, 'tag 1 (epoch time)'],
  ['c249010000000000000000', B, 'tag 2 (bignum)'],
  ['d818456449455446', B, 'tag 24 (embedded CBOR)'],
  ['d9d9f700', B, 'tag 55799 (self-described CBOR)'],
  ['d84100', B, 'tag 65 (a u16 array)'],
  ['d84000', B, 'tag 64 around an integer'],
  ['d8406161', B, 'tag 64 around text'],
  ['d840d84040', B, 'tag 64 around tag 64'],
  ['d84080', B, 'tag 64 around an array'],
  ['e0', B, 'simple value 0'],
  ['f3', B, 'simple value 19'],
  ['f820', B, 'simple value 32'],
  ['f8ff', B, 'simple value 255'],
  // Integers a number cannot hold exactly: HF_ERR_LIMIT.
  ['1b0020000000000000', L, '2^53'],
  ['1b0020000000000001', L, '2^53+1 (rounds to 2^53)'],
  ['1bffffffffffffffff', L, '2^64-1'],
  ['3b001fffffffffffff', L, '-2^53'],
  ['3bffffffffffffffff', L, '-2^64'],
  ['81' + '1b0100000000000000', L, 'inside an array'],
];

test('bad input is refused with its code', () => {
  for (const [h, want, label] of BAD) {
    const got = decCode(h);
    assert.is(got, want, `${label}: ${h} gave ${got}`);
  }
  assert.is(decCode(nest(16, '00')), 'no error', 'an item at level 16 is fine');
  assert.is(decCode(nest(15, 'd84040')), 'no error', 'tag 64 at level 15 is fine');
});

test('error messages say where', () => {
  assert.match(
    message(() => dec('82 01 c1 00')),
    'tag 1 at byte 2',
  );
  assert.match(
    message(() => dec('a2 6161 01 6161 02')),
    'map key "a" at byte 4 appears twice',
  );
  assert.match(
    message(() => dec('0000')),
    '1 bytes after the item at byte 1',
  );
  assert.match(
    message(() => dec('81 61 ff')),
    'text at byte 1 is not valid UTF-8',
  );
});

test('values it cannot write are HF_ERR_BUNDLE, naming the type', () => {
  class Thing {}
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  const cases: [unknown, string][] = [
    [new Map([[1, 2]]), 'Map'],
    [new Set([1]), 'Set'],
    [new Date(0), 'Date'],
    [new Uint16Array(2), 'Uint16Array'],
    [new Int8Array(2), 'Int8Array'],
    [new ArrayBuffer(2), 'ArrayBuffer'],
    [new DataView(new ArrayBuffer(2)), 'DataView'],
    [new Thing(), 'Thing'],
    [10n, 'bigint'],
    [Symbol('s'), 'symbol'],
    [() => 1, 'function'],
    [{ a: [new Map()] }, 'Map'],
    [cyclic, 'nested deeper than 16'],
    [nested(17), 'nested deeper than 16'],
    [nested(16, new Uint8Array(1)), 'nested deeper than 16'],
  ];
  for (const [v, name] of cases) {
    const f = () => encodeValue(v);
    assert.is(code(f), B, name);
    assert.match(message(f), name);
  }
  assert.is(hex(nested(16)), nest(16, '00'), 'level 16 is written');
  assert.is(hex(nested(15, new Uint8Array(1))), nest(15, 'd8404100'), 'bytes at level 15: their tag 64 at 15, the byte string at 16');
  assert.is(
    code(() => decodeValue(encodeValue(nested(15, new Uint8Array(1))))),
    'no error',
    'and that reads back',
  );
});

function nested(n: number, inner: unknown = 0): unknown {
  let v: unknown = inner;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

// ---- (c) random values ---------------------------------------------------------------------------

const INT_EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
const FLOATS = [0.5, -1.5, 1e-300, 5e-324, 1e300, -0, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, -(2 ** 60), 0.1];
// Not "constructor": dequal compares objects' `constructor`s by identity (a fixture covers it).
const KEYS = ['a', 'id', 'sid', '', '0', '17', 'ü', '\u6c34', 'toString', 'hasOwnProperty', '__proto__'];

interface Gen {
  /** Only what cbor-x writes and reads the same way as we do (see the interop tests). */
  forCborx: boolean;
}

function randomString(rng: Prng, g: Gen): string {
  const n = rng.chance(0.1) ? rng.range(24, 300) : rng.int(12);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    if (r < 5) s += String.fromCharCode(rng.range(0x20, 0x7e));
    else if (r < 7) s += String.fromCharCode(rng.range(0x80, 0x7ff));
    else if (r < 8) s += String.fromCharCode(rng.range(0x800, 0xd7ff));
    else if (r < 9) s += String.fromCodePoint(rng.range(0x10000, 0x10ffff));
    else s += g.forCborx ? '\ufeff' : String.fromCharCode(rng.range(0xe000, 0xffff));
  }
  return s;
}

function randomNumber(rng: Prng, g: Gen): number {
  switch (rng.int(6)) {
    case 0: {
      // cbor-x reads an 8-byte integer as a BigInt: keep those away from it.
      const edges = g.forCborx ? INT_EDGES.filter((x) => x < 2 ** 32) : INT_EDGES;
      return edges[rng.int(edges.length)] * (rng.chance(0.5) ? -1 : 1) || 0;
    }
    case 1:
      return rng.int(1000) - 500;
    case 2:
      return rng.u32();
    case 3:
      return g.forCborx ? -rng.u32() : (rng.u32() & 0x1fffff) * 2 ** 32 + rng.u32();
    case 4:
      return FLOATS[rng.int(FLOATS.length)];
    default:
      return (rng.next() - 0.5) * 10 ** rng.range(-5, 12);
  }
}

function randomValue(rng: Prng, g: Gen, depth = 0): unknown {
  switch (depth >= 5 ? rng.int(7) : rng.int(10)) {
    case 0:
      return rng.chance(0.5) ? null : undefined;
    case 1:
      return rng.chance(0.5);
    case 2:
    case 3:
      return randomNumber(rng, g);
    case 4:
      return randomString(rng, g);
    case 5: {
      const b = new Uint8Array(rng.chance(0.1) ? rng.range(24, 300) : rng.int(20));
      rng.fill(b);
      // Sometimes a view into a larger buffer.
      return rng.chance(0.3) ? new Uint8Array([...b, 1, 2]).subarray(0, b.length) : b;
    }
    case 6:
    case 7:
      return Array.from({ length: rng.chance(0.05) ? rng.range(24, 40) : rng.int(5) }, () => randomValue(rng, g, depth + 1));
    default: {
      const entries: [string, unknown][] = [];
      const seen = new Set<string>();
      for (let n = rng.int(6); n > 0; n--) {
        const k = rng.chance(0.4) ? KEYS[rng.int(KEYS.length)] : randomString(rng, g);
        if (seen.has(k) || (g.forCborx && k === '__proto__')) continue;
        seen.add(k);
        entries.push([k, randomValue(rng, g, depth + 1)]);
      }
      return obj(entries);
    }
  }
}

/** Runs `fn(seed)` for seeds 1..n (or CV_SEED alone), printing the seed of a failure. */
function seeded(n: number, what: string, fn: (seed: number) => void): void {
  const one = process.env.CV_SEED !== undefined ? Number(process.env.CV_SEED) : null;
  for (const seed of one !== null ? [one] : Array.from({ length: n }, (_, i) => i + 1)) {
    try {
      fn(seed);
    } catch (e) {
      console.log(`  ${what} failed for seed ${seed}; replay: CV_SEED=${seed} node tools/test.js cbor-value`);
      throw e;
    }
  }
}

test('random values round-trip, and re-encode to the same bytes (seeded)', () => {
  seeded(500, 'round trip', (seed) => {
    const rng = new Prng(seed);
    const v = randomValue(rng, { forCborx: false });
    const b = encodeValue(v);
    const back = decodeValue(b);
    assert.equal(back, v);
    assert.is(toHex(encodeValue(back)), toHex(b), 'same bytes again (key order, number forms)');
  });
});

test('random values truncated at every cut are HF_ERR_CBOR (seeded)', () => {
  seeded(200, 'truncation', (seed) => {
    const b = encodeValue(randomValue(new Prng(seed), { forCborx: false }));
    for (let k = 0; k < b.length; k++) {
      const got = code(() => decodeValue(b, 0, k));
      assert.is(got, C, `cut to ${k} of ${b.length} bytes: ${got}`);
    }
  });
});

test('fixtures truncated at every cut are HF_ERR_CBOR', () => {
  for (const h of [...APPENDIX_A.map((x) => x[1]), ...OURS.map((x) => x[2])]) {
    const b = fromHex(h);
    for (let k = 0; k < b.length; k++)
      assert.is(
        code(() => decodeValue(b, 0, k)),
        C,
        `${h} cut to ${k}`,
      );
  }
});

// ---- (d) interop with cbor-x ---------------------------------------------------------------------

test('ours -> cbor-x: cbor-x reads what we write (seeded)', () => {
  seeded(500, 'ours -> cbor-x', (seed) => {
    const v = randomValue(new Prng(seed), { forCborx: true });
    assert.equal(cborxDecode(encodeValue(v)), v);
  });
  // An 8-byte integer comes back from cbor-x as a BigInt of the same value.
  assert.is(cborxDecode(encodeValue(2 ** 53 - 1)), BigInt(2 ** 53 - 1));
});

test('cbor-x -> ours: we read what cbor-x writes with the options control.ts and snapshot.ts used (seeded)', () => {
  seeded(500, 'cbor-x -> ours', (seed) => {
    const v = randomValue(new Prng(seed), { forCborx: true });
    const b = cborx.encode(v);
    assert.equal(decodeValue(b), v);
  });
  // cbor-x wrote a Node Buffer as a plain byte string: it comes back as a Uint8Array.
  const got = decodeValue(cborx.encode({ k: Buffer.from([1, 2]) })) as { k: Uint8Array };
  assert.is(got.k.constructor, Uint8Array);
  assert.is(toHex(got.k), '0102');
});

test('ours and cbor-x write the same bytes for integers below 2^32, fractions, text, tag 64, arrays, maps (seeded)', () => {
  let same = 0;
  seeded(500, 'same bytes', (seed) => {
    const rng = new Prng(seed);
    const v = randomValue(rng, { forCborx: true });
    // The differences are documented: -0 (cbor-x: 00) and integers from 2^32 (cbor-x: float64).
    const differs = String(JSON.stringify(v, (_, x) => (Object.is(x, -0) || (Number.isSafeInteger(x) && (x >= 2 ** 32 || x < -(2 ** 32))) ? 'DIFF' : x))).includes('"DIFF"');
    if (differs) return;
    assert.is(toHex(encodeValue(v)), toHex(cborx.encode(v)));
    same++;
  });
  assert.ok(same > 300, `${same} of 500 compared`);
});

// ---- (e) control items -----------------------------------------------------------------------------

function u32(rng: Prng): number {
  const edges = [0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffffff];
  return rng.chance(0.3) ? edges[rng.int(edges.length)] : rng.u32();
}

function randomControl(rng: Prng): Control {
  const bytes = (n: number) => {
    const b = new Uint8Array(n);
    rng.fill(b);
    return b;
  };
  const lim = (): [number, number, number, number, number] => [u32(rng), u32(rng), u32(rng), u32(rng), u32(rng)];
  switch (rng.int(5)) {
    case 4:
      return { kind: Ctl.MOVED, url: `http://${randomString(rng, { forCborx: true })}`, tcp: rng.chance(0.5) ? '' : '127.0.0.1:9' };
    case 0:
      return {
        kind: Ctl.HELLO,
        id: randomString(rng, { forCborx: true }) || 'd',
        n: u32(rng),
        nonce: bytes(rng.range(8, 64)),
        proof: bytes(rng.range(0, 64)),
        seq: u32(rng),
        off: u32(rng),
        lim: lim(),
      };
    case 1:
      return { kind: Ctl.WELCOME, seq: u32(rng), off: u32(rng), hold: u32(rng), idle: u32(rng), held: u32(rng), lim: lim() };
    case 2:
      return { kind: Ctl.CLOSE, end: u32(rng) };
    default:
      return { kind: Ctl.ERROR, code: 'HF_ERR_PROTOCOL', message: rng.chance(0.2) ? 'm'.repeat(rng.range(1000, 1100)) : randomString(rng, { forCborx: true }) };
  }
}

/** What control.ts wrote with cbor-x. */
function cborxControl(c: Control): Uint8Array {
  switch (c.kind) {
    case Ctl.HELLO:
      return cborx.encode([c.kind, { id: c.id, n: c.n, nonce: c.nonce, proof: c.proof, seq: c.seq, off: c.off, lim: c.lim }]);
    case Ctl.WELCOME:
      return cborx.encode([c.kind, { seq: c.seq, off: c.off, hold: c.hold, idle: c.idle, held: c.held, lim: c.lim }]);
    case Ctl.CLOSE:
      return cborx.encode([c.kind, { end: c.end }]);
    case Ctl.ERROR:
      return cborx.encode([c.kind, { code: c.code, message: c.message.length > 1024 ? c.message.slice(0, 1021) + '...' : c.message }]);
    case Ctl.MOVED:
      return cborx.encode([c.kind, { url: c.url, tcp: c.tcp }]);
  }
}

test('control items encode to the bytes cbor-x wrote (seeded)', () => {
  seeded(500, 'control bytes', (seed) => {
    const c = randomControl(new Prng(seed));
    assert.is(toHex(encodeControl(c)), toHex(cborxControl(c)));
  });
});

test('control items: unknown kinds and unknown fields may hold any well-formed CBOR', () => {
  const item = (h: string) => {
    const b = fromHex(h.replace(/\s+/g, ''));
    return decodeControl(b, 0, b.length);
  };
  // [99, {"t": 1(1363896240), "b": 2^64-1, 1: 2, "h": 0f f8ff}]: ignored.
  assert.is(item('82 1863 a4 6174 c11a514b67b0 6162 1bffffffffffffffff 01 02 6168 f8ff'), null, 'unknown kind');
  // [3, {"end": 4, "t": 1(0), "x": 2^64-1}]: the known field is read, the others skipped.
  assert.equal(item('82 03 a3 63656e64 04 6174 c100 6178 1bffffffffffffffff'), { kind: Ctl.CLOSE, end: 4 }, 'unknown fields');
  // Still refused: a field name that is not text, a name twice, a known field that is not valid.
  assert.is(
    code(() => item('82 03 a2 63656e64 04 01 02')),
    B,
    'integer field name',
  );
  assert.is(
    code(() => item('82 03 a2 63656e64 04 63656e64 05')),
    B,
    'end twice',
  );
  assert.is(
    code(() => item('82 03 a3 63656e64 04 6178 00 6178 00')),
    B,
    'an unknown field twice',
  );
  assert.is(
    code(() => item('82 03 a1 63656e64 1bffffffffffffffff')),
    B,
    'end above 2^53: an invalid field',
  );
  assert.is(
    code(() => item('82 03 a1 63656e64 c100')),
    B,
    'end as a tag',
  );
  assert.is(
    code(() => item('82 03 a1 63656e64 fa3fc00000')),
    B,
    'end as a fraction',
  );
  assert.is(
    code(() => item('82 1863 80')),
    B,
    'fields not a map',
  );
  assert.is(
    code(() => item('82 03 a1 63656e64 04 00')),
    C,
    'trailing byte',
  );
  assert.is(
    code(() => item('82 1863 a1 6161 9f ff')),
    C,
    'indefinite inside an unknown kind',
  );
  assert.is(
    code(() => item('82 03 a1 6261ff 04')),
    C,
    'field name not UTF-8',
  );
  // Byte strings plain or inside tag 64 (PROTOCOL.md section 7).
  const hello = (nonce: string) => item('82 01 a7 626964 6164 616e 01 656e6f6e6365 ' + nonce + ' 6570726f6f66 40 63736571 00 636f6666 00 636c696d 85 01 190100 00 00 02');
  const plain = hello('48 0001020304050607') as { nonce: Uint8Array };
  const tagged = hello('d840 48 0001020304050607') as { nonce: Uint8Array };
  assert.is(toHex(plain.nonce), '0001020304050607');
  assert.is(toHex(tagged.nonce), '0001020304050607');
});

test('control items truncated at every cut are HF_ERR_CBOR', () => {
  seeded(100, 'control truncation', (seed) => {
    const b = encodeControl(randomControl(new Prng(seed)));
    for (let k = 0; k < b.length; k++)
      assert.is(
        code(() => decodeControl(b, 0, k)),
        C,
        `cut to ${k} of ${b.length}`,
      );
  });
});

// ---- (f) snapshots and journals written by cbor-x --------------------------------------------------

/** A session with messages in flight both ways, authenticated, on a wall clock (times above 2^32). */
function session(now: number): Manual {
  const m = new Manual({ maxMessages: 4 }, { maxMessages: 4 }, { device: SIM_KEY, gateway: SIM_KEY });
  m.now = now;
  m.open();
  m.deliverRequest();
  for (let i = 0; i < 6; i++) m.send(`up${i}`);
  for (let i = 0; i < 5; i++) m.gatewaySend(`down${i}`);
  m.deliverRequest();
  m.dropAll();
  return m;
}

/**
 * The bytes the cbor-x version of snapshot.ts wrote for the same snapshot: `enc.encode(s)` of the
 * object the link built, which is what decodeValue gives back (checked against cbor-x's own reading).
 */
function cborxSnapshot(ours: Uint8Array): Uint8Array {
  const s = decodeValue(ours);
  const old = cborx.encode(s);
  assert.equal(cborxDecode(old), s, 'cbor-x reads its snapshot as the object it was given');
  return old;
}

const clientConfig = { id: 'dev', random: () => {}, key: SIM_KEY, crypto: nodeCrypto };
const clientPort = { transmit: () => {}, deliver: () => true };
const serverPort = { answer: () => {}, transmit: () => {}, deliver: () => true };

test('snapshots written by cbor-x restore to the same session', () => {
  for (const start of [1000, 1_700_000_000_000]) {
    const m = session(start);
    const now = m.now;
    const ours = m.client.snapshot(now);
    const old = cborxSnapshot(ours);
    assert.ok(decodeSnapshot<ClientData>(old, 'client').link.skey instanceof Uint8Array, 'authenticated: the key is there');
    const a = ClientLink.restore(old, now, clientConfig, clientPort);
    const b = ClientLink.restore(ours, now, clientConfig, clientPort);
    assert.is(toHex(a.snapshot(now)), toHex(b.snapshot(now)), `client at ${start}`);
    assert.equal(decodeSnapshot<ClientData>(old, 'client'), decodeSnapshot<ClientData>(ours, 'client'));
    // Below 2^32 every number is one cbor-x wrote the same way: the bytes did not change at all.
    if (start < 2 ** 32) assert.is(toHex(ours), toHex(old), 'same bytes as cbor-x on a small clock');

    const server = m.server as ServerLink;
    const sOurs = server.snapshot(now);
    const sOld = cborxSnapshot(sOurs);
    const sa = ServerLink.restore(sOld, now, serverPort, nodeCrypto);
    const sb = ServerLink.restore(sOurs, now, serverPort, nodeCrypto);
    assert.is(toHex(sa.snapshot(now)), toHex(sb.snapshot(now)), `server at ${start}`);
    assert.equal(decodeSnapshot<ServerData>(sOld, 'server'), decodeSnapshot<ServerData>(sOurs, 'server'));
  }
});

test('a journal whose checkpoint cbor-x wrote restores like the one we write', () => {
  const pair = new SimPair({ seed: 5, durable: true });
  pair.start();
  pair.run(100);
  for (let i = 0; i < 30; i++) {
    pair.deviceSend(new Uint8Array(20).fill(i));
    pair.run(3);
  }
  pair.crash();
  const j = Journal.load(pair.storage)!;
  assert.ok(j.records.length > 0, 'records after the checkpoint');
  // The same journal with the checkpoint in cbor-x's bytes.
  const oldStorage = new MemoryStorage();
  const oj = new Journal(oldStorage, 1 << 16);
  oj.checkpoint(cborxSnapshot(j.checkpoint));
  for (const [type, body] of j.records) {
    if (type === Rec.MESSAGE) oj.pushed(body, 0, body.length);
    else if (type === Rec.RELEASED) oj.released(getU32(body, 0));
    else if (type === Rec.DELIVERED) oj.delivered(getU32(body, 0), getU32(body, 4));
  }
  const config = { ...clientConfig, id: pair.client.id };
  const now = pair.now;
  const a = ClientLink.fromJournal(oldStorage, now, config, clientPort)!;
  const b = ClientLink.fromJournal(pair.storage, now, config, clientPort)!;
  assert.ok(a.sid !== null && a.ep.sealer !== null, 'a live authenticated session');
  assert.is(toHex(a.snapshot(now)), toHex(b.snapshot(now)));
});

test('text: short ASCII written byte by byte is the same CBOR as through TextEncoder, at every head size and with non-ASCII', () => {
  const enc = new TextEncoder();
  for (const v of ['', 'a', 'x'.repeat(23), 'x'.repeat(24), 'x'.repeat(64), 'x'.repeat(65), 'é', 'ab€', `${'k'.repeat(30)}é`, '\u007f', '\ud800']) {
    const u = enc.encode(v);
    const head = u.length < 24 ? [0x60 | u.length] : u.length < 256 ? [0x78, u.length] : [0x79, u.length >> 8, u.length & 0xff];
    assert.equal(Array.from(encodeValue(v)), [...head, ...u], JSON.stringify(v));
    assert.is(decodeValue(encodeValue(v)), enc.encode(v).length === v.length ? v : new TextDecoder().decode(u));
  }
});

test.run();
