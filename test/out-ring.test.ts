/**
 * OutRing unit tests: capacity in slots and bytes (backpressure, never growth), HF_ERR_TOO_BIG,
 * payload copies across the slab end, cumulative release with stale and too-far acknowledgements,
 * per-message transmit state, and free-running u32 sequence numbers and offsets across 2^32.
 * Ends with a seeded randomized comparison against an Array model.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OutRing, RING_DEFAULTS, SACKED, FAST_RETX } from '../firmware/out-ring';
import { CborReader, CborWriter } from '../firmware/cbor';
import { ErrorCode, type ErrorCodeValue, isHfError } from '../firmware/errors';

// ---- helpers ---------------------------------------------------------------------------------

/** A payload whose bytes depend on `tag` and position, so mix-ups and shifts show. */
function payload(len: number, tag: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (tag * 31 + i * 7 + 1) & 0xff;
  return b;
}

function throwsCode(fn: () => unknown, code: ErrorCodeValue, what: string): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== null, `${what}: expected ${code}, nothing was thrown`);
  assert.ok(isHfError(caught), `${what}: expected an HfError, got ${String(caught)}`);
  assert.is((caught as { code: string }).code, code, `${what}: error code`);
}

function state(r: OutRing) {
  return { head: r.head, tail: r.tail, headOff: r.headOff, tailOff: r.tailOff, length: r.length, usedBytes: r.usedBytes, isEmpty: r.isEmpty };
}

/** Message `seq` as copyOut returns it (into a fresh buffer of exactly its length). */
function copied(r: OutRing, seq: number): Uint8Array {
  const dst = new Uint8Array(r.lenOf(seq));
  const n = r.copyOut(seq, dst);
  assert.is(n, dst.length, `copyOut(${seq}) length`);
  return dst;
}

/** Message `seq` as writePayload encodes it, decoded with CborReader; also checks the header bytes by hand. */
function written(r: OutRing, seq: number): Uint8Array {
  const len = r.lenOf(seq);
  const w = new CborWriter(new Uint8Array(len + 9));
  w.pos = 3; // not at the start of the buffer, to prove it writes at pos
  r.writePayload(seq, w);
  const hdr = len < 24 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
  assert.is(w.pos, 3 + hdr + len, `writePayload(${seq}) size`);
  // By hand: major type 2 (byte string) with the length as argument.
  const b = w.buf;
  if (len < 24) assert.is(b[3], 0x40 | len);
  else if (len < 0x100) assert.equal([b[3], b[4]], [0x58, len]);
  else if (len < 0x10000) assert.equal([b[3], (b[4] << 8) | b[5]], [0x59, len]);
  else assert.equal([b[3], ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0], [0x5a, len]);
  const rd = new CborReader();
  rd.reset(b, 3, w.pos);
  const n = rd.bytes('payload', 1 << 30);
  assert.is(n, len);
  assert.ok(rd.done, 'nothing after the byte string');
  return b.slice(rd.pos - n, rd.pos);
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.unreachable(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

function checkBoth(r: OutRing, seq: number, expected: Uint8Array, what: string): void {
  sameBytes(copied(r, seq), expected, `${what} (copyOut)`);
  sameBytes(written(r, seq), expected, `${what} (writePayload)`);
}

// ---- construction ----------------------------------------------------------------------------

test("defaults: RING_DEFAULTS slots and slab (the link's ring sizes), starts empty at 0/0", () => {
  const r = new OutRing();
  assert.is(r.slots, RING_DEFAULTS.slots);
  assert.is(r.bytes, RING_DEFAULTS.bytes);
  assert.equal(state(r), { head: 0, tail: 0, headOff: 0, tailOff: 0, length: 0, usedBytes: 0, isEmpty: true });
  assert.ok(r.fits(0));
  assert.ok(r.fits(RING_DEFAULTS.bytes));
  assert.not.ok(r.fits(RING_DEFAULTS.bytes + 1));
});

test('options are validated: powers of two in range, seq/off u32', () => {
  throwsCode(() => new OutRing({ slots: 3 }), ErrorCode.OPTION, 'slots 3');
  throwsCode(() => new OutRing({ slots: 0 }), ErrorCode.OPTION, 'slots 0');
  throwsCode(() => new OutRing({ bytes: 100 }), ErrorCode.OPTION, 'bytes 100');
  throwsCode(() => new OutRing({ bytes: 1.5 }), ErrorCode.OPTION, 'bytes 1.5');
  throwsCode(() => new OutRing({ seq: -1 }), ErrorCode.OPTION, 'seq -1');
  throwsCode(() => new OutRing({ seq: 2 ** 32 }), ErrorCode.OPTION, 'seq 2^32');
  throwsCode(() => new OutRing({ off: 2 ** 32 }), ErrorCode.OPTION, 'off 2^32');
  const r = new OutRing({ slots: 1, bytes: 1, seq: 0xffffffff, off: 0xffffffff });
  assert.equal(state(r), { head: 0xffffffff, tail: 0xffffffff, headOff: 0xffffffff, tailOff: 0xffffffff, length: 0, usedBytes: 0, isEmpty: true });
});

// ---- capacity: slots ---------------------------------------------------------------------------

test('slot capacity: capacity-1, capacity, capacity+1 messages', () => {
  const r = new OutRing({ slots: 4, bytes: 1024 });
  for (let i = 0; i < 3; i++) assert.ok(r.push(payload(10, i)), `push ${i}`);
  assert.is(r.length, 3);
  assert.ok(r.fits(10), 'capacity-1: one slot left');
  assert.ok(r.fits(0));
  assert.ok(r.push(payload(10, 3)), 'the capacity-th message fits');
  assert.is(r.length, 4);
  assert.not.ok(r.fits(0), 'no slot left, even for an empty message');
  assert.not.ok(r.fits(1));
  const before = state(r);
  assert.is(r.push(payload(10, 4)), false, 'capacity+1: backpressure');
  assert.is(r.push(new Uint8Array(0)), false, 'capacity+1, empty message: backpressure');
  assert.equal(state(r), before, 'a refused push changes nothing');
  for (let i = 0; i < 4; i++) checkBoth(r, i, payload(10, i), `message ${i} intact after refused pushes`);
  assert.is(r.release(1), 1);
  assert.ok(r.fits(10));
  assert.ok(r.push(payload(10, 4)), 'a released slot is reused');
  assert.is(r.length, 4);
  for (let i = 1; i <= 4; i++) checkBoth(r, i, payload(10, i), `message ${i}`);
});

test('one slot: every push needs the previous message released', () => {
  const r = new OutRing({ slots: 1, bytes: 64 });
  for (let i = 0; i < 5; i++) {
    assert.ok(r.push(payload(7, i)));
    assert.not.ok(r.push(payload(1, 99)));
    checkBoth(r, i, payload(7, i), `message ${i}`);
    assert.is(r.release(i + 1), 1);
    assert.ok(r.isEmpty);
  }
  assert.is(r.headOff, 35);
  assert.is(r.tailOff, 35);
});

// ---- capacity: bytes ---------------------------------------------------------------------------

test('byte capacity: capacity-1, capacity, capacity+1 bytes held', () => {
  const r = new OutRing({ slots: 16, bytes: 64 });
  assert.ok(r.push(payload(60, 0)));
  assert.ok(r.push(payload(3, 1)));
  assert.is(r.usedBytes, 63, 'capacity-1 bytes held');
  assert.ok(r.fits(1));
  assert.not.ok(r.fits(2));
  const before = state(r);
  assert.is(r.push(payload(2, 2)), false, 'capacity+1 bytes: backpressure');
  assert.equal(state(r), before);
  assert.ok(r.push(payload(1, 2)), 'exactly capacity bytes');
  assert.is(r.usedBytes, 64);
  assert.not.ok(r.fits(1));
  assert.ok(r.fits(0), 'a zero-length message still fits while a slot is free');
  assert.is(r.push(payload(1, 3)), false);
  assert.ok(r.push(new Uint8Array(0)), 'zero-length message into a byte-full ring');
  assert.is(r.length, 4);
  assert.is(r.usedBytes, 64);
  checkBoth(r, 0, payload(60, 0), 'm0');
  checkBoth(r, 1, payload(3, 1), 'm1');
  checkBoth(r, 2, payload(1, 2), 'm2');
  checkBoth(r, 3, new Uint8Array(0), 'm3');
  // Releasing the first message frees exactly its bytes.
  assert.is(r.release(1), 1);
  assert.is(r.usedBytes, 4);
  assert.ok(r.fits(60));
  assert.not.ok(r.fits(61));
});

test('single message: slab size - 1, slab size, slab size + 1 (HF_ERR_TOO_BIG)', () => {
  for (const len of [63, 64]) {
    const r = new OutRing({ slots: 4, bytes: 64 });
    assert.ok(r.fits(len));
    assert.ok(r.push(payload(len, len)), `len ${len}`);
    assert.is(r.usedBytes, len);
    checkBoth(r, 0, payload(len, len), `len ${len}`);
  }
  const r = new OutRing({ slots: 4, bytes: 64 });
  assert.not.ok(r.fits(65));
  const before = state(r);
  throwsCode(() => r.push(payload(65, 0)), ErrorCode.TOO_BIG, 'slab + 1 on an empty ring');
  throwsCode(() => r.push(payload(1000, 0)), ErrorCode.TOO_BIG, 'far over the slab');
  assert.equal(state(r), before, 'TOO_BIG changes nothing');
  // TOO_BIG wins over backpressure: a full ring still says the message can never fit.
  for (let i = 0; i < 4; i++) assert.ok(r.push(payload(1, i)));
  const full = state(r);
  throwsCode(() => r.push(payload(65, 0)), ErrorCode.TOO_BIG, 'slab + 1 on a full ring');
  assert.equal(state(r), full);
  // A message no larger than the slab but larger than the free space is backpressure, not an error.
  const r2 = new OutRing({ slots: 4, bytes: 64 });
  assert.ok(r2.push(payload(1, 0)));
  assert.is(r2.push(payload(64, 1)), false);
});

test('message exactly the slab size, starting mid-slab (wraps the slab end)', () => {
  for (const off of [1, 17, 63, 0xffffffff - 20]) {
    const r = new OutRing({ slots: 2, bytes: 64, off });
    const m = payload(64, off & 0xff);
    assert.ok(r.push(m), `off ${off}`);
    assert.is(r.headOff, (off + 64) >>> 0);
    assert.not.ok(r.fits(1));
    checkBoth(r, r.tail, m, `slab-sized message at off ${off}`);
    assert.is(r.release((r.tail + 1) >>> 0), 1);
    assert.is(r.usedBytes, 0);
  }
});

// ---- zero-length messages ----------------------------------------------------------------------

test('zero-length messages take a slot and no bytes', () => {
  const r = new OutRing({ slots: 4, bytes: 16, off: 5 });
  assert.ok(r.push(new Uint8Array(0)));
  assert.ok(r.push(payload(3, 1)));
  assert.ok(r.push(new Uint8Array(10), 10)); // off == src.length: len 0
  assert.ok(r.push(payload(4, 2), 2, 0)); // explicit len 0
  assert.is(r.length, 4);
  assert.is(r.usedBytes, 3);
  assert.equal([r.lenOf(0), r.lenOf(1), r.lenOf(2), r.lenOf(3)], [0, 3, 0, 0]);
  assert.equal([r.offOf(0), r.offOf(1), r.offOf(2), r.offOf(3)], [5, 5, 8, 8]);
  checkBoth(r, 0, new Uint8Array(0), 'empty m0');
  checkBoth(r, 1, payload(3, 1), 'm1');
  checkBoth(r, 2, new Uint8Array(0), 'empty m2');
  assert.not.ok(r.push(new Uint8Array(0)), 'no slot');
  // Release up to an empty message: tailOff is that message's offset.
  assert.is(r.release(2), 2);
  assert.is(r.tailOff, 8);
  assert.is(r.usedBytes, 0);
  assert.is(r.release(4), 2);
  assert.equal(state(r), { head: 4, tail: 4, headOff: 8, tailOff: 8, length: 0, usedBytes: 0, isEmpty: true });
});

// ---- copies --------------------------------------------------------------------------------

test("payloads are copied: later changes to the caller's buffer do not show", () => {
  const r = new OutRing({ slots: 4, bytes: 64 });
  const src = payload(20, 1);
  const keep = src.slice();
  assert.ok(r.push(src));
  src.fill(0xee);
  checkBoth(r, 0, keep, 'after the caller overwrote its buffer');
  // The same buffer reused for the next message.
  src.set(payload(20, 2));
  assert.ok(r.push(src));
  src.fill(0);
  checkBoth(r, 0, keep, 'm0 still intact');
  checkBoth(r, 1, payload(20, 2), 'm1');
  // And copyOut's destination is the caller's own: changing it does not reach the ring.
  const out = copied(r, 1);
  out.fill(1);
  checkBoth(r, 1, payload(20, 2), 'm1 after the caller changed a copy');
});

test('push(src, off, len) copies exactly that sub-range; copyOut honours dstOff', () => {
  const r = new OutRing({ slots: 4, bytes: 64 });
  const big = payload(40, 9);
  assert.ok(r.push(big, 5, 12));
  assert.ok(r.push(big, 30)); // default len: to the end
  assert.is(r.lenOf(0), 12);
  assert.is(r.lenOf(1), 10);
  checkBoth(r, 0, big.slice(5, 17), 'sub-range');
  checkBoth(r, 1, big.slice(30), 'tail range');
  const dst = new Uint8Array(20).fill(0xaa);
  assert.is(r.copyOut(0, dst, 4), 12);
  sameBytes(dst.subarray(4, 16), big.slice(5, 17), 'copyOut at dstOff');
  assert.ok(dst.subarray(0, 4).every((b) => b === 0xaa) && dst.subarray(16).every((b) => b === 0xaa), 'bytes outside the copy untouched');
});

test('payloads that wrap the slab end come back intact (copyOut and writePayload)', () => {
  const r = new OutRing({ slots: 8, bytes: 16, off: 10 });
  const a = payload(10, 1); // slab [10,16) + [0,4)
  assert.ok(r.push(a));
  checkBoth(r, 0, a, 'wrapping message');
  const b = payload(6, 2); // [4,10): does not wrap, ends where a starts
  assert.ok(r.push(b));
  assert.not.ok(r.fits(1));
  checkBoth(r, 0, a, 'a after b filled the slab');
  checkBoth(r, 1, b, 'b');
  assert.is(r.release(1), 1);
  const c = payload(10, 3); // [10,16) + [0,4) again
  assert.ok(r.push(c));
  checkBoth(r, 1, b, 'b untouched by c');
  checkBoth(r, 2, c, 'c wraps');
  // A message that ends exactly at the slab end does not wrap.
  const r2 = new OutRing({ slots: 4, bytes: 16, off: 4 });
  assert.ok(r2.push(payload(12, 4)));
  assert.ok(r2.push(payload(4, 5)));
  checkBoth(r2, 0, payload(12, 4), 'ends at slab end');
  checkBoth(r2, 1, payload(4, 5), 'starts at slab 0');
});

test('wrapping payloads over 512 bytes (native copy path) and CBOR headers of every size class', () => {
  const r = new OutRing({ slots: 8, bytes: 1 << 17, off: (1 << 17) - 700 });
  const lens = [0, 23, 24, 255, 256, 1500, 65535];
  lens.push((1 << 17) - lens.reduce((a, b) => a + b, 0)); // the last one fills the slab exactly
  const msgs = lens.map((n, i) => payload(n, i + 1));
  for (const m of msgs) assert.ok(r.push(m), `push ${m.length}`);
  assert.is(r.usedBytes, 1 << 17);
  assert.not.ok(r.fits(1));
  for (let i = 0; i < msgs.length; i++) checkBoth(r, i, msgs[i], `message of ${msgs[i].length} bytes`);
  // A 65536-byte message (5-byte header) wrapping the slab end.
  const r2 = new OutRing({ slots: 2, bytes: 1 << 17, off: (1 << 17) - 1000 });
  const big = payload(65536, 7);
  assert.ok(r2.push(big));
  checkBoth(r2, 0, big, '65536-byte wrapping message');
});

// ---- release -------------------------------------------------------------------------------

test('release is cumulative and returns how many left; tail offsets follow', () => {
  const r = new OutRing({ slots: 8, bytes: 256, seq: 100, off: 1000 });
  const lens = [5, 0, 7, 11, 3];
  for (let i = 0; i < lens.length; i++) assert.ok(r.push(payload(lens[i], i)));
  assert.equal(state(r), { head: 105, tail: 100, headOff: 1026, tailOff: 1000, length: 5, usedBytes: 26, isEmpty: false });
  assert.is(r.release(102), 2);
  assert.equal(state(r), { head: 105, tail: 102, headOff: 1026, tailOff: 1005, length: 3, usedBytes: 21, isEmpty: false });
  assert.not.ok(r.holds(101));
  assert.ok(r.holds(102));
  assert.ok(r.holds(104));
  assert.not.ok(r.holds(105));
  checkBoth(r, 102, payload(7, 2), 'first held after release');
  assert.is(r.release(103), 1);
  assert.is(r.tailOff, 1012);
  assert.is(r.release(105), 2, 'release up to head empties the ring');
  assert.equal(state(r), { head: 105, tail: 105, headOff: 1026, tailOff: 1026, length: 0, usedBytes: 0, isEmpty: true });
});

test('a stale ack (at or before tail) releases nothing', () => {
  const r = new OutRing({ slots: 8, bytes: 256, seq: 50, off: 0 });
  for (let i = 0; i < 4; i++) assert.ok(r.push(payload(4, i)));
  assert.is(r.release(52), 2);
  const before = state(r);
  for (const ack of [52, 51, 50, 0, 52 - 0x7fffffff, 52 - 0x80000000]) {
    assert.is(r.release(ack >>> 0), 0, `stale ack ${ack >>> 0}`);
    r.checkAck(ack >>> 0);
    assert.equal(state(r), before, `stale ack ${ack >>> 0} changed nothing`);
  }
  checkBoth(r, 52, payload(4, 2), 'held message intact');
});

test('an ack past head throws HF_ERR_ACK and changes nothing; checkAck agrees', () => {
  const r = new OutRing({ slots: 8, bytes: 256, seq: 7, off: 40 });
  for (let i = 0; i < 4; i++) assert.ok(r.push(payload(4, i)));
  assert.is(r.release(8), 1);
  const before = state(r);
  for (const ack of [12, 13, 100, 8 + 0x7fffffff]) {
    throwsCode(() => r.release(ack >>> 0), ErrorCode.ACK, `release(${ack >>> 0})`);
    throwsCode(() => r.checkAck(ack >>> 0), ErrorCode.ACK, `checkAck(${ack >>> 0})`);
    assert.equal(state(r), before, `ack ${ack >>> 0} changed nothing`);
  }
  for (let s = 8; s <= 10; s++) assert.ok(r.holds(s));
  assert.not.ok(r.holds(11));
  // The boundary: head itself is fine.
  r.checkAck(11);
  assert.is(r.release(11), 3);
  assert.ok(r.isEmpty);
  // On an empty ring, head+1 is past head.
  throwsCode(() => r.release(12), ErrorCode.ACK, 'empty ring, head+1');
  throwsCode(() => r.checkAck(12), ErrorCode.ACK, 'empty ring checkAck head+1');
  assert.is(r.release(11), 0);
  r.checkAck(11);
});

test('checkAck never throws where release would not, and throws wherever release does', () => {
  const r = new OutRing({ slots: 16, bytes: 256, seq: 0xfffffff8 });
  for (let i = 0; i < 10; i++) assert.ok(r.push(payload(2, i)));
  assert.is(r.release(0xfffffffb), 3);
  for (let d = -40; d <= 40; d++) {
    const ack = (r.tail + d) >>> 0;
    let checkThrew: string | null = null;
    try {
      r.checkAck(ack);
    } catch (e) {
      checkThrew = (e as { code: string }).code;
    }
    const probe = new OutRing({ slots: 16, bytes: 256, seq: 0xfffffff8 });
    for (let i = 0; i < 10; i++) probe.push(payload(2, i));
    probe.release(0xfffffffb);
    let releaseThrew: string | null = null;
    try {
      probe.release(ack);
    } catch (e) {
      releaseThrew = (e as { code: string }).code;
    }
    assert.is(checkThrew, releaseThrew, `ack tail${d >= 0 ? '+' : ''}${d}`);
    assert.is(checkThrew === null, d <= 7, `ack tail${d >= 0 ? '+' : ''}${d} is valid iff at most head`);
  }
});

// ---- per-message transmit state ------------------------------------------------------------

test('flags: setFlag / clearFlag / flagsOf per message', () => {
  const r = new OutRing({ slots: 4, bytes: 64 });
  for (let i = 0; i < 3; i++) assert.ok(r.push(payload(1, i)));
  assert.equal([r.flagsOf(0), r.flagsOf(1), r.flagsOf(2)], [0, 0, 0]);
  r.setFlag(1, SACKED);
  assert.equal([r.flagsOf(0), r.flagsOf(1), r.flagsOf(2)], [0, SACKED, 0]);
  r.setFlag(1, FAST_RETX);
  r.setFlag(1, SACKED); // idempotent
  assert.is(r.flagsOf(1), SACKED | FAST_RETX);
  r.clearFlag(1, SACKED);
  assert.is(r.flagsOf(1), FAST_RETX);
  r.clearFlag(1, SACKED); // clearing a clear bit
  assert.is(r.flagsOf(1), FAST_RETX);
  r.setFlag(2, FAST_RETX);
  r.clearFlag(1, FAST_RETX);
  assert.equal([r.flagsOf(0), r.flagsOf(1), r.flagsOf(2)], [0, 0, FAST_RETX]);
});

test('markSent / sentAt / sendCount; a reused slot starts fresh', () => {
  const r = new OutRing({ slots: 2, bytes: 64 });
  assert.ok(r.push(payload(1, 0)));
  assert.ok(r.push(payload(1, 1)));
  assert.is(r.sentAt(0), -1, 'never sent');
  assert.is(r.sendCount(0), 0);
  r.markSent(0, 1000);
  assert.is(r.sentAt(0), 1000);
  assert.is(r.sendCount(0), 1);
  r.markSent(0, 1250.5);
  assert.is(r.sentAt(0), 1250.5, 'fractional ms kept');
  assert.is(r.sendCount(0), 2);
  assert.is(r.sentAt(1), -1, 'the neighbour is untouched');
  assert.is(r.sendCount(1), 0);
  r.markSent(1, 0);
  assert.is(r.sentAt(1), 0, 'time 0 is a send, not "never"');
  r.setFlag(0, SACKED | FAST_RETX);
  assert.is(r.release(1), 1);
  assert.ok(r.push(payload(1, 2))); // seq 2 reuses slot 0
  assert.is(r.sentAt(2), -1, 'reused slot: unsent');
  assert.is(r.sendCount(2), 0, 'reused slot: no sends');
  assert.is(r.flagsOf(2), 0, 'reused slot: no flags');
  assert.is(r.sendCount(1), 1);
});

test('sendCount saturates at 0xffff', () => {
  const r = new OutRing({ slots: 1, bytes: 8 });
  assert.ok(r.push(payload(1, 0)));
  for (let i = 0; i < 0x10005; i++) r.markSent(0, i);
  assert.is(r.sendCount(0), 0xffff);
  assert.is(r.sentAt(0), 0x10004);
});

test('markAllUnsent forgets send times and FAST_RETX of every held message, keeps SACKED and counts', () => {
  const r = new OutRing({ slots: 8, bytes: 64, seq: 0xfffffffe });
  for (let i = 0; i < 5; i++) assert.ok(r.push(payload(1, i)));
  const seqs = [0xfffffffe, 0xffffffff, 0, 1, 2];
  for (const s of seqs) {
    r.markSent(s, 500 + s);
    r.markSent(s, 600);
    r.setFlag(s, FAST_RETX);
  }
  r.setFlag(0xffffffff, SACKED);
  r.setFlag(1, SACKED);
  r.markAllUnsent();
  for (const s of seqs) {
    assert.is(r.sentAt(s), -1, `sentAt(${s})`);
    assert.is(r.sendCount(s), 2, `sendCount(${s}) kept`);
    assert.is(r.flagsOf(s) & FAST_RETX, 0, `FAST_RETX cleared on ${s}`);
  }
  assert.is(r.flagsOf(0xffffffff), SACKED);
  assert.is(r.flagsOf(1), SACKED);
  assert.is(r.flagsOf(0), 0);
  // On an empty ring it is a no-op.
  assert.is(r.release(3), 5);
  r.markAllUnsent();
  assert.ok(r.isEmpty);
  // A full ring (head slot === tail slot) still visits every held message.
  const f = new OutRing({ slots: 4, bytes: 64, seq: 0xfffffffe });
  for (let i = 0; i < 4; i++) assert.ok(f.push(payload(1, i)));
  for (let i = 0; i < 4; i++) f.markSent((0xfffffffe + i) >>> 0, 9);
  f.markAllUnsent();
  for (let i = 0; i < 4; i++) assert.is(f.sentAt((0xfffffffe + i) >>> 0), -1, `full ring, message ${i}`);
});

// ---- u32 wrap-around -------------------------------------------------------------------------

test('sequence numbers and offsets wrap past 2^32', () => {
  const r = new OutRing({ slots: 8, bytes: 64, seq: 0xffffffff - 2, off: 0xffffffff - 10 });
  const seqs = [0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 2];
  const offs = [0xfffffff5, 0xfffffffa, 0xffffffff, 4, 9, 14];
  for (let i = 0; i < 6; i++) {
    assert.ok(r.push(payload(5, i)), `push ${i}`);
    assert.is(r.length, i + 1, `length after ${i + 1} pushes`);
    assert.is(r.usedBytes, 5 * (i + 1));
  }
  assert.is(r.head, 3);
  assert.is(r.tail, 0xfffffffd);
  assert.is(r.headOff, 19);
  assert.is(r.length, (r.head - r.tail) >>> 0);
  for (let i = 0; i < 6; i++) {
    assert.is(r.offOf(seqs[i]), offs[i], `offOf(${seqs[i]})`);
    assert.is(r.lenOf(seqs[i]), 5);
    assert.ok(r.holds(seqs[i]), `holds(${seqs[i]})`);
    checkBoth(r, seqs[i], payload(5, i), `message ${seqs[i]}`);
  }
  assert.not.ok(r.holds(0xfffffffc));
  assert.not.ok(r.holds(3));
  assert.is(r.release(0xfffffffe), 1, 'release below the wrap');
  assert.is(r.tailOff, 0xfffffffa);
  assert.is(r.release(1), 3, 'release across the wrap');
  assert.equal(state(r), { head: 3, tail: 1, headOff: 19, tailOff: 9, length: 2, usedBytes: 10, isEmpty: false });
  assert.is(r.release(0xffffffff), 0, 'an ack from before the wrap is stale');
  assert.is(r.release(0xfffffffd), 0);
  const before = state(r);
  throwsCode(() => r.release(4), ErrorCode.ACK, 'past head after the wrap');
  assert.equal(state(r), before);
  assert.is(r.release(3), 2);
  assert.equal(state(r), { head: 3, tail: 3, headOff: 19, tailOff: 19, length: 0, usedBytes: 0, isEmpty: true });
});

test('offsets wrap 2^32 while sequence numbers do not (and the reverse)', () => {
  const a = new OutRing({ slots: 4, bytes: 32, seq: 10, off: 0xfffffff0 });
  assert.ok(a.push(payload(12, 1)));
  assert.ok(a.push(payload(12, 2))); // 0xfffffffc .. 8: crosses 2^32 and the slab end
  assert.is(a.headOff, 8);
  assert.is(a.usedBytes, 24);
  assert.ok(a.fits(8));
  assert.not.ok(a.fits(9));
  checkBoth(a, 11, payload(12, 2), 'message across the offset wrap');
  assert.is(a.release(11), 1);
  assert.is(a.tailOff, 0xfffffffc);
  assert.is(a.usedBytes, 12);
  assert.is(a.release(12), 1);
  assert.is(a.tailOff, 8);

  const b = new OutRing({ slots: 4, bytes: 32, seq: 0xffffffff, off: 3 });
  assert.ok(b.push(payload(3, 1)));
  assert.ok(b.push(payload(3, 2)));
  assert.is(b.head, 1);
  assert.is(b.length, 2);
  assert.is(b.offOf(0), 6);
  assert.is(b.release(0), 1);
  assert.is(b.tail, 0);
  assert.is(b.tailOff, 6);
});

test('full ring across the wrap: capacity in slots and bytes still exact', () => {
  const r = new OutRing({ slots: 4, bytes: 16, seq: 0xfffffffe, off: 0xfffffff8 });
  for (let i = 0; i < 4; i++) assert.ok(r.push(payload(4, i)));
  assert.is(r.length, 4);
  assert.is(r.usedBytes, 16);
  assert.is(r.head, 2);
  assert.is(r.headOff, 8);
  assert.not.ok(r.fits(0));
  assert.not.ok(r.push(new Uint8Array(0)));
  for (let i = 0; i < 4; i++) checkBoth(r, (0xfffffffe + i) >>> 0, payload(4, i), `m${i}`);
  assert.is(r.release(0), 2);
  assert.ok(r.push(payload(8, 9)));
  assert.is(r.usedBytes, 16);
  checkBoth(r, 2, payload(8, 9), 'after refill');
  checkBoth(r, 0, payload(4, 2), 'older message still intact');
});

// ---- randomized model check ------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelMsg {
  seq: number;
  off: number;
  data: Uint8Array;
  sent: number;
  sends: number;
  flags: number;
}

interface OutStats {
  pushes: number;
  slotRefusals: number;
  byteRefusals: number;
  tooBig: number;
  emptyPushes: number;
  releases: number;
  staleAcks: number;
  badAcks: number;
  wrappedCopies: number;
  seqWraps: number;
  offWraps: number;
  unsentAll: number;
}

function randomRun(seed: number, ops: number, stats: OutStats): void {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const slots = 1 << int(5); // 1..16
  const bytes = 1 << (2 + int(6)); // 4..128
  const start = [0, 0xffffffff - int(40), int(0x100000000)][int(3)] >>> 0;
  const startOff = [0, 0xffffffff - int(300), int(0x100000000)][int(3)] >>> 0;
  const r = new OutRing({ slots, bytes, seq: start, off: startOff });
  const model: ModelMsg[] = [];
  let head = start;
  let headOff = startOff;
  let tail = start;
  let tailOff = startOff;
  let tag = 0;
  const ctx = (i: number, what: string) => `seed ${seed} op ${i} (slots ${slots}, bytes ${bytes}, seq ${start}, off ${startOff}): ${what}`;
  for (let i = 0; i < ops; i++) {
    const used = model.reduce((s, m) => s + m.data.length, 0);
    const op = int(10);
    if (op < 4) {
      const len = int(8) === 0 ? 0 : int(9) === 0 ? bytes + int(3) : 1 + int(Math.max(1, bytes >> int(3)));
      const data = payload(len, ++tag);
      const fitsModel = model.length < slots && used + len <= bytes;
      assert.is(r.fits(len), fitsModel, ctx(i, `fits(${len})`));
      if (len > bytes) stats.tooBig++;
      else if (model.length >= slots) stats.slotRefusals++;
      else if (!fitsModel) stats.byteRefusals++;
      else if (len === 0) stats.emptyPushes++;
      else stats.pushes++;
      if (fitsModel && head === 0xffffffff) stats.seqWraps++;
      if (fitsModel && headOff + len > 0xffffffff) stats.offWraps++;
      if (len > bytes) {
        throwsCode(() => r.push(data), ErrorCode.TOO_BIG, ctx(i, `push(${len})`));
      } else {
        assert.is(r.push(data), fitsModel, ctx(i, `push(${len})`));
        if (fitsModel) {
          model.push({ seq: head, off: headOff, data: data.slice(), sent: -1, sends: 0, flags: 0 });
          head = (head + 1) >>> 0;
          headOff = (headOff + len) >>> 0;
        }
      }
      data.fill(0x5a); // the ring must not see this
    } else if (op < 6) {
      // An ack somewhere around [tail - 3, head + 3].
      const d = int(model.length + 7) - 3;
      const ack = (tail + d) >>> 0;
      if (d > model.length) stats.badAcks++;
      else if (d <= 0) stats.staleAcks++;
      else stats.releases++;
      if (d > model.length) {
        throwsCode(() => r.checkAck(ack), ErrorCode.ACK, ctx(i, `checkAck(tail+${d})`));
        throwsCode(() => r.release(ack), ErrorCode.ACK, ctx(i, `release(tail+${d})`));
      } else {
        r.checkAck(ack);
        const n = Math.max(d, 0);
        assert.is(r.release(ack), n, ctx(i, `release(tail${d >= 0 ? '+' : ''}${d})`));
        model.splice(0, n);
        tail = (tail + n) >>> 0;
        tailOff = model.length > 0 ? model[0].off : headOff;
      }
    } else if (op < 8 && model.length > 0) {
      const m = model[int(model.length)];
      const w = int(3);
      if (w === 0) {
        const now = int(100000);
        r.markSent(m.seq, now);
        m.sent = now;
        m.sends = Math.min(0xffff, m.sends + 1);
      } else if (w === 1) {
        const bit = int(2) === 0 ? SACKED : FAST_RETX;
        if (int(2) === 0) {
          r.setFlag(m.seq, bit);
          m.flags |= bit;
        } else {
          r.clearFlag(m.seq, bit);
          m.flags &= ~bit;
        }
      } else if (int(5) === 0) {
        r.markAllUnsent();
        stats.unsentAll++;
        for (const x of model) {
          x.sent = -1;
          x.flags &= ~FAST_RETX;
        }
      }
    } else if (model.length > 0) {
      const m = model[int(model.length)];
      const dst = new Uint8Array(m.data.length);
      if ((m.off & (bytes - 1)) + m.data.length > bytes) stats.wrappedCopies++;
      assert.is(r.copyOut(m.seq, dst), m.data.length, ctx(i, `copyOut(${m.seq}) length`));
      assert.equal(dst, m.data, ctx(i, `copyOut(${m.seq}) bytes`));
      const w = new CborWriter(new Uint8Array(m.data.length + 5));
      r.writePayload(m.seq, w);
      const rd = new CborReader();
      rd.reset(w.buf, 0, w.pos);
      const n = rd.bytes('p', bytes);
      assert.ok(rd.done, ctx(i, 'writePayload wrote one item'));
      assert.equal(w.buf.slice(rd.pos - n, rd.pos), m.data, ctx(i, `writePayload(${m.seq}) bytes`));
    }
    // Invariants after every operation.
    assert.is(r.head, head, ctx(i, 'head'));
    assert.is(r.tail, tail, ctx(i, 'tail'));
    assert.is(r.headOff, headOff, ctx(i, 'headOff'));
    assert.is(r.tailOff, tailOff, ctx(i, 'tailOff'));
    assert.is(r.length, model.length, ctx(i, 'length'));
    assert.is(
      r.usedBytes,
      model.reduce((s, m) => s + m.data.length, 0),
      ctx(i, 'usedBytes'),
    );
    assert.is(r.isEmpty, model.length === 0, ctx(i, 'isEmpty'));
    for (const m of model) {
      if (!r.holds(m.seq)) assert.unreachable(ctx(i, `holds(${m.seq})`));
      if (r.offOf(m.seq) !== m.off || r.lenOf(m.seq) !== m.data.length) assert.unreachable(ctx(i, `offOf/lenOf(${m.seq})`));
      if (r.sentAt(m.seq) !== m.sent || r.sendCount(m.seq) !== m.sends || r.flagsOf(m.seq) !== m.flags) {
        assert.unreachable(ctx(i, `transmit state of ${m.seq}: ${r.sentAt(m.seq)}/${r.sendCount(m.seq)}/${r.flagsOf(m.seq)} vs ${m.sent}/${m.sends}/${m.flags}`));
      }
    }
    assert.not.ok(r.holds(head), ctx(i, 'holds(head)'));
    assert.not.ok(r.holds((tail - 1) >>> 0), ctx(i, 'holds(tail-1)'));
  }
}

test('randomized: matches an Array model over thousands of operations (seeded)', () => {
  const base = process.env.SEED !== undefined ? Number(process.env.SEED) : 0x0c7a11;
  const seeds = process.env.SEED !== undefined ? [base] : Array.from({ length: 40 }, (_, i) => base + i);
  const stats: OutStats = { pushes: 0, slotRefusals: 0, byteRefusals: 0, tooBig: 0, emptyPushes: 0, releases: 0, staleAcks: 0, badAcks: 0, wrappedCopies: 0, seqWraps: 0, offWraps: 0, unsentAll: 0 };
  for (const seed of seeds) randomRun(seed, 3000, stats);
  // The runs as a whole must reach every interesting case (guards against a generator that drifted).
  if (process.env.SEED === undefined) {
    for (const [k, v] of Object.entries(stats)) assert.ok(v > 0, `randomized runs never reached ${k}: ${JSON.stringify(stats)}`);
  }
  if (process.env.RING_STATS) console.log(stats);
});

test.run();
