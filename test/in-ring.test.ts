/**
 * InRing unit tests: NEW / DUPLICATE classification, the receive window in slots and bytes
 * (HF_ERR_WINDOW, nothing changed), offset consistency (HF_ERR_PROTOCOL), early arrivals and the
 * selective-ack ranges above `next`, in-order consumption through peek/release/readInto (including
 * messages that wrap the slab end), restart, and free-running u32 sequence numbers and offsets across
 * 2^32. Ends with a seeded randomized comparison against an Array model.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InRing, NEW, DUPLICATE } from '../firmware/in-ring';
import { RING_DEFAULTS } from '../firmware/out-ring';
import { ErrorCode, type ErrorCodeValue, isHfError } from '../firmware/errors';

// ---- helpers ---------------------------------------------------------------------------------

function payload(len: number, tag: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (tag * 29 + i * 11 + 3) & 0xff;
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

function state(r: InRing) {
  return {
    read: r.read,
    readOff: r.readOff,
    next: r.next,
    nextOff: r.nextOff,
    top: r.top,
    available: r.available,
    windowMsgs: r.windowMsgs,
    windowBytes: r.windowBytes,
    hasGaps: r.hasGaps,
  };
}

/** A sender's stream: message i has sequence number seq0+i, a fixed length and the offset after message i-1. */
class Stream {
  readonly seq0: number;
  readonly off0: number;
  readonly lens: number[];
  readonly offs: number[] = [];
  constructor(seq0: number, off0: number, lens: number[]) {
    this.seq0 = seq0;
    this.off0 = off0;
    this.lens = lens;
    let o = off0;
    for (const n of lens) {
      this.offs.push(o);
      o = (o + n) >>> 0;
    }
  }
  seq(i: number): number {
    return (this.seq0 + i) >>> 0;
  }
  data(i: number): Uint8Array {
    return payload(this.lens[i], i + 1);
  }
  /** check() then store() message i; asserts check says NEW; returns store's count. */
  deliver(r: InRing, i: number): number {
    assert.is(r.check(this.seq(i), this.offs[i], this.lens[i]), NEW, `message ${i} (seq ${this.seq(i)}) is NEW`);
    const src = new Uint8Array(this.lens[i] + 6).fill(0xcc);
    src.set(this.data(i), 3); // from the middle of a larger buffer
    return r.store(this.seq(i), this.offs[i], src, 3, this.lens[i]);
  }
  classify(r: InRing, i: number): number {
    return r.check(this.seq(i), this.offs[i], this.lens[i]);
  }
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.unreachable(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Peeks the oldest message, checks it, releases it. */
function consume(r: InRing, expected: Uint8Array, what: string): void {
  assert.ok(r.peek(), `${what}: peek`);
  assert.is(r.viewLen, expected.length, `${what}: viewLen`);
  sameBytes(r.viewBuf.slice(r.viewOff, r.viewOff + r.viewLen), expected, what);
  r.release();
}

function ranges(r: InRing, max = 1000): [number, number][] {
  const out: [number, number][] = [];
  const n = r.forEachRange(max, (s, e) => out.push([s, e]));
  assert.is(n, out.length, 'forEachRange returns the number visited');
  return out;
}

// ---- construction ----------------------------------------------------------------------------

test('defaults and option validation', () => {
  const r = new InRing();
  assert.is(r.slots, RING_DEFAULTS.slots);
  assert.is(r.bytes, RING_DEFAULTS.bytes);
  assert.equal(state(r), { read: 0, readOff: 0, next: 0, nextOff: 0, top: 0, available: 0, windowMsgs: RING_DEFAULTS.slots, windowBytes: RING_DEFAULTS.bytes, hasGaps: false });
  assert.not.ok(r.peek());
  throwsCode(() => new InRing({ slots: 6 }), ErrorCode.OPTION, 'slots 6');
  throwsCode(() => new InRing({ bytes: 0 }), ErrorCode.OPTION, 'bytes 0');
  throwsCode(() => new InRing({ bytes: 64, maxMessage: 65 }), ErrorCode.OPTION, 'maxMessage over the slab');
  throwsCode(() => new InRing({ seq: 2 ** 32 }), ErrorCode.OPTION, 'seq 2^32');
  throwsCode(() => new InRing({ off: -1 }), ErrorCode.OPTION, 'off -1');
  const w = new InRing({ slots: 2, bytes: 8, seq: 0xffffffff, off: 0xfffffffe, maxMessage: 8 });
  assert.equal(state(w), { read: 0xffffffff, readOff: 0xfffffffe, next: 0xffffffff, nextOff: 0xfffffffe, top: 0xffffffff, available: 0, windowMsgs: 2, windowBytes: 8, hasGaps: false });
});

// ---- classification --------------------------------------------------------------------------

test('check: NEW for the next message, DUPLICATE once received (held or already consumed)', () => {
  const st = new Stream(10, 100, [4, 5, 6]);
  const r = new InRing({ slots: 8, bytes: 64, seq: 10, off: 100 });
  assert.is(st.classify(r, 0), NEW);
  const before = state(r);
  st.classify(r, 0);
  assert.equal(state(r), before, 'check changes nothing');
  assert.is(st.deliver(r, 0), 1);
  assert.is(st.classify(r, 0), DUPLICATE, 'held, not consumed');
  assert.is(st.classify(r, 1), NEW);
  consume(r, st.data(0), 'm0');
  assert.is(st.classify(r, 0), DUPLICATE, 'consumed');
  assert.is(r.check(9, 0, 0), DUPLICATE, 'before the first message: already behind next');
  assert.is(r.check(10 - 0x7fffffff, 0, 0), DUPLICATE, 'far behind');
  // Duplicates are recognised by sequence number alone, whatever offset they claim.
  assert.is(r.check(10, 12345, 99999), DUPLICATE);
  // An early arrival already held is a DUPLICATE too.
  assert.is(st.deliver(r, 2), 0);
  assert.is(st.classify(r, 2), DUPLICATE, 'early arrival held');
  assert.is(r.check(12, 7777, 1), DUPLICATE, 'held early arrival, any offset');
  assert.is(st.classify(r, 1), NEW);
});

test('slot window: capacity-1, capacity, capacity+1 messages ahead of read', () => {
  const lens = [1, 1, 1, 1, 1, 1];
  const st = new Stream(0, 0, lens);
  const r = new InRing({ slots: 4, bytes: 1024 });
  // Empty ring: seqs next..next+3 are in the window, next+4 and beyond are not.
  assert.is(st.classify(r, 3), NEW, 'capacity-1 ahead');
  const before = state(r);
  throwsCode(() => st.classify(r, 4), ErrorCode.WINDOW, 'capacity ahead');
  throwsCode(() => st.classify(r, 5), ErrorCode.WINDOW, 'capacity+1 ahead');
  throwsCode(() => r.check(0x7fffffff, 0, 1), ErrorCode.WINDOW, 'far ahead');
  assert.equal(state(r), before, 'WINDOW changes nothing');
  // Fill to capacity-1, then capacity.
  for (let i = 0; i < 3; i++) assert.is(st.deliver(r, i), 1);
  assert.is(r.windowMsgs, 1);
  assert.is(st.classify(r, 3), NEW);
  throwsCode(() => st.classify(r, 4), ErrorCode.WINDOW, 'available 3, next+1');
  assert.is(st.deliver(r, 3), 1);
  assert.is(r.windowMsgs, 0);
  const full = state(r);
  throwsCode(() => st.classify(r, 4), ErrorCode.WINDOW, 'full: the next message');
  throwsCode(() => r.check(4, 4, 0), ErrorCode.WINDOW, 'full: an empty next message');
  assert.equal(state(r), full);
  // Consuming one opens exactly one slot.
  consume(r, st.data(0), 'm0');
  assert.is(r.windowMsgs, 1);
  assert.is(st.classify(r, 4), NEW);
  throwsCode(() => st.classify(r, 5), ErrorCode.WINDOW, 'one slot open, next+1');
});

test('byte window: capacity-1, capacity, capacity+1 bytes (in order and early)', () => {
  // Empty ring: one message of slab-1, slab, slab+1 bytes.
  const e = new InRing({ slots: 4, bytes: 64 });
  assert.is(e.check(0, 0, 63), NEW);
  assert.is(e.check(0, 0, 64), NEW);
  const before = state(e);
  throwsCode(() => e.check(0, 0, 65), ErrorCode.WINDOW, 'slab+1 bytes');
  throwsCode(() => e.check(1, 0, 65), ErrorCode.WINDOW, 'slab+1 bytes, early');
  assert.equal(state(e), before);

  const r = new InRing({ slots: 8, bytes: 64 });
  const st = new Stream(0, 0, [63, 1, 2, 0]);
  assert.is(st.deliver(r, 0), 1);
  assert.is(r.windowBytes, 1, 'capacity-1 bytes held');
  assert.is(r.check(1, 63, 1), NEW);
  assert.is(r.check(1, 63, 0), NEW);
  const held = state(r);
  throwsCode(() => r.check(1, 63, 2), ErrorCode.WINDOW, 'capacity+1 bytes');
  throwsCode(() => r.check(2, 64, 1), ErrorCode.WINDOW, 'early arrival past the byte window');
  assert.equal(state(r), held);
  assert.is(st.deliver(r, 1), 1);
  assert.is(r.windowBytes, 0, 'exactly capacity bytes held');
  throwsCode(() => r.check(2, 64, 1), ErrorCode.WINDOW, 'no bytes left');
  assert.is(r.check(2, 64, 0), NEW, 'an empty message needs no bytes');
  consume(r, st.data(0), 'm0');
  assert.is(r.windowBytes, 63);
  assert.is(st.classify(r, 2), NEW);
  assert.is(r.check(2, 64, 63), NEW);
  throwsCode(() => r.check(2, 64, 64), ErrorCode.WINDOW, 'one byte over after release');

  // Early arrivals: the window is measured from readOff, not from nextOff.
  const x = new InRing({ slots: 8, bytes: 64 });
  assert.is(x.check(1, 10, 54), NEW, 'early, ends exactly at the window end');
  throwsCode(() => x.check(1, 10, 55), ErrorCode.WINDOW, 'early, one byte over');
  throwsCode(() => x.check(3, 64, 1), ErrorCode.WINDOW, 'early, starts at the window end');
  assert.is(x.check(3, 64, 0), NEW, 'early and empty at the window end');
});

test('byte window: offsets behind the receive point are rejected', () => {
  const r = new InRing({ slots: 8, bytes: 64, seq: 0, off: 1000 });
  const st = new Stream(0, 1000, [10, 10, 10]);
  assert.is(st.deliver(r, 0), 1);
  const before = state(r);
  // Early arrival claiming bytes already held unconsumed ([1000, 1010)), or before readOff.
  throwsCode(() => r.check(2, 1005, 3), ErrorCode.WINDOW, 'early arrival inside unconsumed bytes');
  throwsCode(() => r.check(2, 999, 3), ErrorCode.WINDOW, 'early arrival before readOff');
  throwsCode(() => r.check(2, 0, 3), ErrorCode.WINDOW, 'early arrival far before');
  // The next expected message at an offset behind nextOff is refused too (outside the byte window).
  let code: string | null = null;
  try {
    r.check(1, 1009, 10);
  } catch (e) {
    code = (e as { code: string }).code;
  }
  assert.ok(code === ErrorCode.WINDOW || code === ErrorCode.PROTOCOL, `next message behind nextOff: got ${code}`);
  assert.equal(state(r), before);
});

test('wrong offset for the next expected message: HF_ERR_PROTOCOL, nothing changed', () => {
  const r = new InRing({ slots: 8, bytes: 64, seq: 5, off: 20 });
  const before = state(r);
  throwsCode(() => r.check(5, 21, 4), ErrorCode.PROTOCOL, 'one byte ahead');
  throwsCode(() => r.check(5, 30, 0), ErrorCode.PROTOCOL, 'empty message, wrong offset');
  assert.equal(state(r), before);
  const st = new Stream(5, 20, [4, 4, 4]);
  assert.is(st.deliver(r, 0), 1);
  throwsCode(() => r.check(6, 25, 4), ErrorCode.PROTOCOL, 'after one message');
  throwsCode(() => r.check(6, 20 + 4 + 40, 0), ErrorCode.PROTOCOL, 'far ahead in the window');
  assert.is(r.check(6, 24, 4), NEW);
});

test('offsets that contradict a held neighbour: HF_ERR_PROTOCOL, nothing changed', () => {
  // Stream 0..5 with 4 bytes each at 0, 4, 8, ...; hold 2 and 4 early.
  const st = new Stream(0, 0, [4, 4, 4, 4, 4, 4]);
  const r = new InRing({ slots: 8, bytes: 64 });
  st.deliver(r, 2);
  st.deliver(r, 4);
  const before = state(r);
  // Next expected (0): right offset, but a successor is not held, so any length is fine...
  assert.is(r.check(0, 0, 9), NEW);
  // Message 1 sits between next and held 2: its end must meet message 2's start.
  throwsCode(() => r.check(1, 4, 5), ErrorCode.PROTOCOL, '1 overlaps 2');
  throwsCode(() => r.check(1, 4, 3), ErrorCode.PROTOCOL, '1 leaves a hole before 2');
  assert.is(r.check(1, 4, 4), NEW);
  // Message 3: predecessor 2 ends at 12, successor 4 starts at 16.
  throwsCode(() => r.check(3, 13, 3), ErrorCode.PROTOCOL, '3 does not follow 2');
  throwsCode(() => r.check(3, 12, 5), ErrorCode.PROTOCOL, '3 runs into 4');
  assert.is(r.check(3, 12, 4), NEW);
  // Message 5 follows 4 (ends at 20).
  throwsCode(() => r.check(5, 21, 4), ErrorCode.PROTOCOL, '5 does not follow 4');
  assert.is(r.check(5, 20, 44), NEW);
  assert.equal(state(r), before, 'no check changed anything');
  // The next expected message whose end contradicts a held successor.
  const q = new InRing({ slots: 8, bytes: 64 });
  st.deliver(q, 1); // starts at 4
  throwsCode(() => q.check(0, 0, 3), ErrorCode.PROTOCOL, 'next message ends before its held successor');
  throwsCode(() => q.check(0, 0, 5), ErrorCode.PROTOCOL, 'next message ends after its held successor starts');
  assert.is(q.check(0, 0, 4), NEW);
  // Two ahead of next, with the predecessor held: it must start where the predecessor ends.
  throwsCode(() => q.check(2, 9, 4), ErrorCode.PROTOCOL, '2 does not follow held 1');
  throwsCode(() => q.check(2, 7, 4), ErrorCode.PROTOCOL, '2 overlaps held 1');
  assert.is(q.check(2, 8, 4), NEW);
});

// ---- out-of-order arrivals and ranges ----------------------------------------------------------

test('early arrivals are stored; next advances over them when the gap fills', () => {
  const st = new Stream(0, 0, [3, 5, 0, 7, 2, 4]);
  const r = new InRing({ slots: 8, bytes: 64 });
  assert.is(st.deliver(r, 2), 0, 'early: nothing becomes available');
  assert.is(st.deliver(r, 4), 0);
  assert.equal(state(r), { read: 0, readOff: 0, next: 0, nextOff: 0, top: 5, available: 0, windowMsgs: 8, windowBytes: 64, hasGaps: true });
  assert.ok(r.has(2));
  assert.ok(r.has(4));
  assert.not.ok(r.has(3));
  assert.not.ok(r.has(5));
  assert.not.ok(r.has(0));
  assert.ok(r.isPresent(2));
  assert.not.ok(r.isPresent(3));
  assert.not.ok(r.peek(), 'nothing in order yet');
  assert.is(r.readInto(new Uint8Array(64)), -1);
  throwsCode(() => r.release(), ErrorCode.PROTOCOL, 'release with nothing available');
  assert.equal(ranges(r), [
    [2, 3],
    [4, 5],
  ]);
  assert.is(st.deliver(r, 3), 0);
  assert.equal(ranges(r), [[2, 5]], 'runs merge');
  assert.is(st.deliver(r, 1), 0);
  assert.equal(ranges(r), [[1, 5]]);
  assert.is(st.deliver(r, 0), 5, 'the gap fills: 0..4 become available at once');
  assert.equal(state(r), { read: 0, readOff: 0, next: 5, nextOff: 17, top: 5, available: 5, windowMsgs: 3, windowBytes: 47, hasGaps: false });
  assert.equal(ranges(r), []);
  assert.not.ok(r.has(2), 'has() is only for early arrivals above next');
  assert.ok(r.isPresent(2), 'isPresent covers [read, top)');
  for (let i = 0; i < 5; i++) {
    assert.is(r.offOf(i), st.offs[i]);
    assert.is(r.lenOf(i), st.lens[i]);
  }
  for (let i = 0; i < 5; i++) consume(r, st.data(i), `m${i}`);
  assert.not.ok(r.isPresent(2));
  assert.is(st.deliver(r, 5), 1);
  consume(r, st.data(5), 'm5');
  assert.equal(state(r), { read: 6, readOff: 21, next: 6, nextOff: 21, top: 6, available: 0, windowMsgs: 8, windowBytes: 64, hasGaps: false });
});

test('partial fill: next stops at the first remaining gap', () => {
  const st = new Stream(0, 0, [1, 1, 1, 1, 1, 1, 1, 1]);
  const r = new InRing({ slots: 8, bytes: 64 });
  for (const i of [1, 2, 4, 5, 7]) st.deliver(r, i);
  assert.equal(ranges(r), [
    [1, 3],
    [4, 6],
    [7, 8],
  ]);
  assert.is(st.deliver(r, 0), 3);
  assert.is(r.next, 3);
  assert.is(r.nextOff, 3);
  assert.equal(ranges(r), [
    [4, 6],
    [7, 8],
  ]);
  assert.is(st.deliver(r, 6), 0, 'filling a later gap moves nothing');
  assert.equal(ranges(r), [[4, 8]]);
  assert.is(st.deliver(r, 3), 5);
  assert.is(r.next, 8);
  assert.is(r.windowMsgs, 0);
  assert.not.ok(r.hasGaps);
});

test('forEachRange: lowest first, at most max, returns the count', () => {
  const st = new Stream(0, 0, new Array(16).fill(2));
  const r = new InRing({ slots: 16, bytes: 64 });
  for (const i of [2, 3, 6, 9, 10, 11, 15]) st.deliver(r, i);
  assert.equal(ranges(r), [
    [2, 4],
    [6, 7],
    [9, 12],
    [15, 16],
  ]);
  assert.equal(ranges(r, 4), [
    [2, 4],
    [6, 7],
    [9, 12],
    [15, 16],
  ]);
  assert.equal(ranges(r, 3), [
    [2, 4],
    [6, 7],
    [9, 12],
  ]);
  assert.equal(ranges(r, 1), [[2, 4]]);
  assert.equal(ranges(r, 0), []);
  const empty = new InRing({ slots: 4, bytes: 16 });
  assert.equal(ranges(empty), []);
  // Early arrival at the far edge of the window (slot of next + slots - 1).
  const edge = new InRing({ slots: 4, bytes: 16 });
  assert.is(edge.check(3, 3, 1), NEW);
  edge.store(3, 3, payload(1, 0), 0, 1);
  assert.equal(ranges(edge), [[3, 4]]);
  assert.is(edge.top, 4);
});

// ---- consumption -------------------------------------------------------------------------------

test('peek / release / readInto consume in order', () => {
  const st = new Stream(0, 0, [3, 0, 9, 4]);
  const r = new InRing({ slots: 8, bytes: 64 });
  for (let i = 0; i < 4; i++) st.deliver(r, i);
  assert.ok(r.peek());
  assert.ok(r.peek(), 'peek twice shows the same message');
  assert.is(r.viewLen, 3);
  sameBytes(r.viewBuf.slice(r.viewOff, r.viewOff + 3), st.data(0), 'peek m0');
  r.release();
  assert.ok(r.peek());
  assert.is(r.viewLen, 0, 'empty message');
  const dst = new Uint8Array(20).fill(0xaa);
  assert.is(r.readInto(dst), 0, 'readInto an empty message');
  assert.is(r.read, 2);
  assert.is(r.readInto(dst, 5), 9);
  sameBytes(dst.slice(5, 14), st.data(2), 'readInto m2 at dstOff 5');
  assert.ok(dst.slice(0, 5).every((b) => b === 0xaa) && dst.slice(14).every((b) => b === 0xaa), 'bytes around untouched');
  // dst too small: HF_ERR_TOO_BIG and the message stays.
  const before = state(r);
  throwsCode(() => r.readInto(new Uint8Array(3)), ErrorCode.TOO_BIG, 'dst of 3 for 4 bytes');
  throwsCode(() => r.readInto(new Uint8Array(10), 7), ErrorCode.TOO_BIG, 'dstOff leaves 3');
  assert.equal(state(r), before, 'a failed readInto releases nothing');
  assert.is(r.readInto(new Uint8Array(10), 6), 4, 'exactly enough room');
  assert.is(r.readInto(dst), -1);
  assert.not.ok(r.peek());
  throwsCode(() => r.release(), ErrorCode.PROTOCOL, 'release on empty');
  assert.equal(state(r), { read: 4, readOff: 16, next: 4, nextOff: 16, top: 4, available: 0, windowMsgs: 8, windowBytes: 64, hasGaps: false });
});

test('payloads are copied in at store: the sender buffer may be reused', () => {
  const r = new InRing({ slots: 4, bytes: 64 });
  const src = payload(10, 1);
  const keep = src.slice();
  r.store(0, 0, src, 0, 10);
  src.fill(0);
  consume(r, keep, 'after the source was overwritten');
});

test('a message that wraps the slab end is returned intact via the scratch view', () => {
  const r = new InRing({ slots: 8, bytes: 16, seq: 0, off: 10 });
  const st = new Stream(0, 10, [10, 6, 16, 5, 0, 11]);
  st.deliver(r, 0); // slab [10,16) + [0,4)
  st.deliver(r, 1); // [4,10)
  assert.is(r.windowBytes, 0);
  assert.ok(r.peek());
  assert.is(r.viewOff, 0, 'a wrapped message is viewed from the start of the scratch buffer');
  assert.is(r.viewLen, 10);
  sameBytes(r.viewBuf.slice(0, 10), st.data(0), 'wrapped m0 via scratch');
  r.release();
  assert.ok(r.peek());
  assert.is(r.viewOff, 4, 'an unwrapped message is viewed in place');
  sameBytes(r.viewBuf.slice(4, 10), st.data(1), 'm1 in place');
  r.release();
  // A slab-sized message starting mid-slab (offset 26 -> slab 10).
  st.deliver(r, 2);
  assert.is(r.windowBytes, 0);
  consume(r, st.data(2), 'slab-sized wrapped message');
  // Two consecutive wrapped messages reuse the scratch buffer correctly: 5 bytes at slab 10 ([10,15)),
  // 0 bytes, then 11 bytes at slab 15 (wraps).
  st.deliver(r, 3);
  st.deliver(r, 4);
  st.deliver(r, 5);
  consume(r, st.data(3), 'm3');
  consume(r, st.data(4), 'm4 (empty)');
  const dst = new Uint8Array(11);
  assert.is(r.readInto(dst), 11);
  sameBytes(dst, st.data(5), 'wrapped m5 through readInto');
});

test('a message ending exactly at the slab end is viewed in place, not copied', () => {
  const r = new InRing({ slots: 4, bytes: 16, seq: 0, off: 6 });
  const st = new Stream(0, 6, [10, 16]);
  st.deliver(r, 0); // slab [6,16): does not wrap, so no copy into the scratch buffer
  assert.ok(r.peek());
  assert.is(r.viewOff, 6);
  assert.is(r.viewLen, 10);
  sameBytes(r.viewBuf.slice(6, 16), st.data(0), 'in place');
  r.release();
  st.deliver(r, 1); // offset 16: the whole slab from 0
  assert.ok(r.peek());
  assert.is(r.viewOff, 0);
  sameBytes(r.viewBuf.slice(0, 16), st.data(1), 'whole slab in place');
});

test('early arrivals that wrap the slab end land in place and read back intact', () => {
  const st = new Stream(0, 12, [5, 9, 2]); // m1 at 17 -> slab 1..10; m0 at 12 -> slab 12..16 + 0
  const r = new InRing({ slots: 4, bytes: 16, seq: 0, off: 12 });
  st.deliver(r, 2);
  st.deliver(r, 1);
  const tmp = new Uint8Array(9);
  assert.is(r.copyOut(1, tmp), 9);
  sameBytes(tmp, st.data(1), 'copyOut of an early arrival');
  assert.is(st.deliver(r, 0), 3);
  const c0 = new Uint8Array(5);
  r.copyOut(0, c0, 0);
  sameBytes(c0, st.data(0), 'copyOut of a wrapped held message');
  for (let i = 0; i < 3; i++) consume(r, st.data(i), `m${i}`);
});

test('maxMessage sizes the scratch buffer: a wrapped message of exactly maxMessage reads intact', () => {
  const r = new InRing({ slots: 4, bytes: 32, off: 28, maxMessage: 8 });
  const st = new Stream(0, 28, [8, 8]);
  st.deliver(r, 0); // slab [28,32) + [0,4)
  consume(r, st.data(0), 'wrapped message of maxMessage bytes');
  st.deliver(r, 1);
  consume(r, st.data(1), 'unwrapped');
});

test('windowMsgs / windowBytes shrink as messages arrive in order and grow as they are consumed', () => {
  const st = new Stream(0, 0, [10, 20, 5, 0, 29]);
  const r = new InRing({ slots: 4, bytes: 64 });
  const seen: [number, number][] = [[r.windowMsgs, r.windowBytes]];
  for (let i = 0; i < 4; i++) {
    st.deliver(r, i);
    seen.push([r.windowMsgs, r.windowBytes]);
  }
  assert.equal(seen, [
    [4, 64],
    [3, 54],
    [2, 34],
    [1, 29],
    [0, 29],
  ]);
  const grow: [number, number][] = [];
  for (let i = 0; i < 4; i++) {
    consume(r, st.data(i), `m${i}`);
    grow.push([r.windowMsgs, r.windowBytes]);
  }
  assert.equal(grow, [
    [1, 39],
    [2, 59],
    [3, 64],
    [4, 64],
  ]);
  // Early arrivals do not shrink the advertised window (it is counted from next / nextOff) ...
  const e = new InRing({ slots: 4, bytes: 64 });
  st.deliver(e, 2);
  assert.equal([e.windowMsgs, e.windowBytes], [4, 64]);
  // ... until the gap fills and next moves over them.
  st.deliver(e, 1);
  st.deliver(e, 0);
  assert.equal([e.windowMsgs, e.windowBytes], [1, 29]);
});

// ---- restart ---------------------------------------------------------------------------------

test('restart: works on an empty ring, throws HF_ERR_PROTOCOL on a non-empty one', () => {
  const r = new InRing({ slots: 4, bytes: 16 });
  r.restart(0xfffffffe, 0xfffffff0);
  assert.equal(state(r), { read: 0xfffffffe, readOff: 0xfffffff0, next: 0xfffffffe, nextOff: 0xfffffff0, top: 0xfffffffe, available: 0, windowMsgs: 4, windowBytes: 16, hasGaps: false });
  throwsCode(() => r.check(0xfffffffe, 0xfffffff1, 1), ErrorCode.PROTOCOL, 'wrong offset after restart');
  assert.is(r.check(0xfffffffe, 0xfffffff0, 6), NEW);
  const st = new Stream(0xfffffffe, 0xfffffff0, [6, 6, 4]);
  assert.is(st.deliver(r, 0), 1);
  // Holding an unconsumed message.
  let before = state(r);
  throwsCode(() => r.restart(5, 5), ErrorCode.PROTOCOL, 'restart with a message available');
  assert.equal(state(r), before);
  consume(r, st.data(0), 'm0');
  // Holding only an early arrival (read === next, but top is ahead).
  st.deliver(r, 2);
  before = state(r);
  throwsCode(() => r.restart(5, 5), ErrorCode.PROTOCOL, 'restart with an early arrival held');
  assert.equal(state(r), before);
  st.deliver(r, 1);
  consume(r, st.data(1), 'm1');
  consume(r, st.data(2), 'm2');
  // Empty again after consuming everything: restart works, and old slots do not leak into the new stream.
  r.restart(1, 3);
  assert.equal(state(r), { read: 1, readOff: 3, next: 1, nextOff: 3, top: 1, available: 0, windowMsgs: 4, windowBytes: 16, hasGaps: false });
  assert.equal(ranges(r), []);
  for (let s = 1; s < 5; s++) assert.not.ok(r.has(s), `has(${s}) after restart`);
  const st2 = new Stream(1, 3, [2, 2, 2, 2]);
  assert.is(st2.classify(r, 3), NEW, 'far slot after restart is free');
  assert.is(st2.deliver(r, 1), 0);
  assert.is(st2.deliver(r, 0), 2);
  consume(r, st2.data(0), 'new stream m0');
  consume(r, st2.data(1), 'new stream m1');
  // Restart to the same point is allowed and a no-op.
  r.restart(r.read, r.readOff);
  assert.is(r.read, 3);
});

// ---- u32 wrap-around -------------------------------------------------------------------------

test('across the 2^32 wrap of sequence numbers and offsets', () => {
  const seq0 = 0xffffffff - 2;
  const off0 = 0xffffffff - 10;
  const st = new Stream(seq0, off0, [5, 5, 5, 5, 5, 5, 5, 5]); // seqs fffffffd..4, offs fffffff5..
  const r = new InRing({ slots: 8, bytes: 64, seq: seq0, off: off0 });
  // Early arrivals straddling the wrap: seq 0xffffffff and 0 (offset 4), and seq 2.
  st.deliver(r, 2);
  st.deliver(r, 3);
  st.deliver(r, 5);
  assert.is(r.top, 3);
  assert.equal(
    ranges(r),
    [
      [0xffffffff, 1],
      [2, 3],
    ],
    'ranges across the wrap ([start, end) with end < start numerically)',
  );
  assert.ok(r.has(0xffffffff));
  assert.ok(r.has(0));
  assert.not.ok(r.has(1));
  assert.is(r.check(0xffffffff, 0, 0), DUPLICATE);
  // A wrong neighbour offset across the wrap.
  throwsCode(() => r.check(1, 9, 4), ErrorCode.PROTOCOL, 'm4 (seq 1) must end where seq 2 starts');
  throwsCode(() => r.check(0xfffffffe, 0xfffffffa, 4), ErrorCode.PROTOCOL, 'seq fffffffe must end at fffffffe+... (seq ffffffff start)');
  // Window across the wrap: read + slots = 5.
  throwsCode(() => r.check(5, 19, 1), ErrorCode.WINDOW, 'seq 5 is one past the window');
  assert.is(r.check(4, 24, 5), NEW);
  assert.is(st.deliver(r, 0), 1);
  assert.is(st.deliver(r, 1), 3, 'fills through the wrap');
  assert.equal(state(r), { read: seq0, readOff: off0, next: 1, nextOff: 9, top: 3, available: 4, windowMsgs: 4, windowBytes: 44, hasGaps: true });
  assert.is(r.available, (r.next - r.read) >>> 0);
  assert.is(r.check(0xfffffffe, 0, 0), DUPLICATE, 'behind next, from before the wrap');
  assert.is(st.deliver(r, 4), 2);
  assert.is(r.next, 3);
  assert.is(r.nextOff, 19);
  for (let i = 0; i < 6; i++) consume(r, st.data(i), `m${i} (seq ${st.seq(i)})`);
  assert.equal(state(r), { read: 3, readOff: 19, next: 3, nextOff: 19, top: 3, available: 0, windowMsgs: 8, windowBytes: 64, hasGaps: false });
  assert.is(r.check(0xfffffffd, 0xfffffff5, 5), DUPLICATE, 'long consumed, from before the wrap');
});

test('full ring across the wrap: slot and byte capacity boundaries still exact', () => {
  const st = new Stream(0xfffffffe, 0xfffffff8, [4, 4, 4, 4, 4]);
  const r = new InRing({ slots: 4, bytes: 16, seq: 0xfffffffe, off: 0xfffffff8 });
  for (let i = 0; i < 3; i++) st.deliver(r, i);
  assert.equal([r.windowMsgs, r.windowBytes], [1, 4]);
  assert.is(r.check(1, 4, 4), NEW, 'capacity-1 -> capacity');
  throwsCode(() => r.check(1, 4, 5), ErrorCode.WINDOW, 'one byte more');
  st.deliver(r, 3);
  assert.equal([r.windowMsgs, r.windowBytes, r.next, r.nextOff], [0, 0, 2, 8]);
  throwsCode(() => st.classify(r, 4), ErrorCode.WINDOW, 'capacity+1 message across the wrap');
  // The message at offset 0xfffffffc ends exactly at 2^32 (and at the slab end).
  for (let i = 0; i < 4; i++) consume(r, st.data(i), `m${i}`);
  st.deliver(r, 4);
  consume(r, st.data(4), 'm4');
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

/**
 * The sender's stream is generated lazily (index i -> seq0+i, offset, payload). The model keeps the
 * index of read and next, and a Set of early-arrival indices; the ring must agree after every step.
 */
interface InStats {
  stores: number;
  earlyStores: number;
  multiMoves: number;
  slotRejects: number;
  byteRejects: number;
  duplicates: number;
  windowFull: number;
  wrappedReads: number;
  seqWraps: number;
  restarts: number;
}

function randomRun(seed: number, ops: number, stats: InStats): void {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const slots = 1 << int(5); // 1..16
  const bytes = 1 << (2 + int(6)); // 4..128
  let seq0 = [0, 0xffffffff - int(40), int(0x100000000)][int(3)] >>> 0;
  let off0 = [0, 0xffffffff - int(300), int(0x100000000)][int(3)] >>> 0;
  const r = new InRing({ slots, bytes, seq: seq0, off: off0 });
  const ctx = (i: number, what: string) => `seed ${seed} op ${i} (slots ${slots}, bytes ${bytes}, seq0 ${seq0}, off0 ${off0}): ${what}`;

  let lens: number[] = [];
  let offs: number[] = []; // relative to off0 (may exceed 2^32 in principle; kept as numbers)
  let tags: number[] = [];
  let tagN = 0;
  const gen = (k: number) => {
    while (lens.length <= k) {
      const len = int(6) === 0 ? 0 : 1 + int(Math.max(1, bytes >> int(3)));
      offs.push(lens.length === 0 ? 0 : offs[lens.length - 1] + lens[lens.length - 1]);
      lens.push(len);
      tags.push(++tagN);
    }
  };
  let read = 0;
  let next = 0;
  let early = new Set<number>();
  const top = () => {
    let t = next;
    for (const e of early) if (e + 1 > t) t = e + 1;
    return t;
  };
  const sq = (k: number) => (seq0 + k) >>> 0;
  const of = (k: number) => (off0 + offs[k]) >>> 0;
  let stores = 0;
  let reads = 0;

  // Phases of 250 operations: filling (the application rarely reads, so the window closes), balanced,
  // and draining (so restarts on an empty ring happen).
  let pRead = 0.2;
  for (let i = 0; i < ops; i++) {
    if (i % 250 === 0) pRead = [0.03, 0.2, 0.45][int(3)];
    const x = rnd();
    const op = x < pRead ? 7 : [0, 0, 0, 0, 0, 0, 5, 8, 8, 9][int(10)];
    if (op < 5) {
      // Deliver a message around the window: some behind next (duplicates), most in [next, read+slots+2).
      const k = int(3) === 0 ? next + int(2) : Math.max(0, next - 3 + int(read + slots + 3 - next + 3));
      gen(k);
      let expected: number | string;
      if (k < next) expected = DUPLICATE;
      else if (k - read >= slots) expected = ErrorCode.WINDOW;
      else if (early.has(k)) expected = DUPLICATE;
      else if (offs[k] + lens[k] - offs[read] > bytes) expected = ErrorCode.WINDOW;
      else expected = NEW;
      if (expected === DUPLICATE) stats.duplicates++;
      else if (expected === NEW && k > next) stats.earlyStores++;
      else if (expected === ErrorCode.WINDOW && k - read >= slots) stats.slotRejects++;
      else if (expected === ErrorCode.WINDOW) stats.byteRejects++;
      const before = state(r);
      if (typeof expected === 'string') {
        throwsCode(() => r.check(sq(k), of(k), lens[k]), expected as ErrorCodeValue, ctx(i, `check(${k}: seq ${sq(k)}, off ${of(k)}, len ${lens[k]})`));
        assert.equal(state(r), before, ctx(i, 'a refused check changed nothing'));
      } else {
        assert.is(r.check(sq(k), of(k), lens[k]), expected, ctx(i, `check(${k}: seq ${sq(k)}, off ${of(k)}, len ${lens[k]})`));
        if (expected === NEW) {
          let moved = 0;
          if (k === next) {
            moved = 1;
            while (early.has(next + moved)) {
              early.delete(next + moved);
              moved++;
            }
            next += moved;
          } else {
            early.add(k);
          }
          const src = payload(lens[k], tags[k]);
          assert.is(r.store(sq(k), of(k), src, 0, lens[k]), moved, ctx(i, `store(${k}) moved`));
          src.fill(0x77);
          stores++;
          stats.stores++;
          if (moved > 1) stats.multiMoves++;
          if (sq(k) < seq0) stats.seqWraps++;
        }
      }
    } else if (op < 6) {
      // Next expected message at a wrong offset (inside the slot and byte windows): PROTOCOL.
      gen(next);
      if (next - read < slots && lens[next] + 1 <= bytes - (offs[next] - offs[read])) {
        const before = state(r);
        throwsCode(() => r.check(sq(next), (of(next) + 1) >>> 0, lens[next]), ErrorCode.PROTOCOL, ctx(i, `check(${next}) at offset +1`));
        assert.equal(state(r), before, ctx(i, 'PROTOCOL changed nothing'));
      }
    } else if (op < 8) {
      // Consume one message, by peek+release or readInto.
      if (read === next) {
        assert.not.ok(r.peek(), ctx(i, 'peek on nothing available'));
        assert.is(r.readInto(new Uint8Array(4)), -1, ctx(i, 'readInto on nothing available'));
        throwsCode(() => r.release(), ErrorCode.PROTOCOL, ctx(i, 'release on nothing available'));
      } else {
        const want = payload(lens[read], tags[read]);
        if ((of(read) & (bytes - 1)) + want.length > bytes) stats.wrappedReads++;
        if (int(2) === 0) {
          assert.ok(r.peek(), ctx(i, `peek ${read}`));
          assert.is(r.viewLen, want.length, ctx(i, `viewLen of ${read}`));
          assert.equal(r.viewBuf.slice(r.viewOff, r.viewOff + r.viewLen), want, ctx(i, `peek bytes of ${read}`));
          r.release();
        } else {
          const dst = new Uint8Array(want.length + 2);
          assert.is(r.readInto(dst, 1), want.length, ctx(i, `readInto ${read}`));
          assert.equal(dst.slice(1, 1 + want.length), want, ctx(i, `readInto bytes of ${read}`));
        }
        read++;
        reads++;
      }
    } else if (op < 9) {
      const max = int(4);
      const want: [number, number][] = [];
      const t = top();
      let q = next;
      while (q < t && want.length < max) {
        while (q < t && !early.has(q)) q++;
        if (q >= t) break;
        const s = q;
        while (q < t && early.has(q)) q++;
        want.push([sq(s), sq(q)]);
      }
      assert.equal(ranges(r, max), want, ctx(i, `forEachRange(${max})`));
      // Held early arrivals read back intact through copyOut.
      for (const e of early) {
        const dst = new Uint8Array(lens[e]);
        r.copyOut(sq(e), dst);
        assert.equal(dst, payload(lens[e], tags[e]), ctx(i, `copyOut of early ${e}`));
      }
    } else {
      // Restart: allowed only when nothing is held at all.
      const ns = [int(0x100000000), 0xffffffff - int(20)][int(2)] >>> 0;
      const no = [int(0x100000000), 0xffffffff - int(200)][int(2)] >>> 0;
      if (read === top()) {
        r.restart(ns, no);
        stats.restarts++;
        seq0 = ns;
        off0 = no;
        lens = [];
        offs = [];
        tags = [];
        read = next = 0;
        early = new Set();
      } else {
        const before = state(r);
        throwsCode(() => r.restart(ns, no), ErrorCode.PROTOCOL, ctx(i, 'restart while holding messages'));
        assert.equal(state(r), before, ctx(i, 'refused restart changed nothing'));
      }
    }
    // Invariants after every operation.
    gen(next);
    const t = top();
    assert.is(r.read, sq(read), ctx(i, 'read'));
    assert.is(r.next, sq(next), ctx(i, 'next'));
    assert.is(r.top, sq(t), ctx(i, 'top'));
    assert.is(r.readOff, of(read), ctx(i, 'readOff'));
    assert.is(r.nextOff, of(next), ctx(i, 'nextOff'));
    assert.is(r.available, next - read, ctx(i, 'available'));
    assert.is(r.windowMsgs, slots - (next - read), ctx(i, 'windowMsgs'));
    assert.is(r.windowBytes, bytes - (offs[next] - offs[read]), ctx(i, 'windowBytes'));
    assert.is(r.hasGaps, t !== next, ctx(i, 'hasGaps'));
    for (let k = next; k < t; k++) assert.is(r.has(sq(k)), early.has(k), ctx(i, `has(${k})`));
    if (next - read === slots || offs[next] - offs[read] === bytes) stats.windowFull++;
  }
  // The run must have done real work (guards against a model that refuses everything).
  assert.ok(stores > ops / 20 && reads > ops / 40, `seed ${seed}: only ${stores} stores and ${reads} reads`);
}

test('randomized: matches an Array model over thousands of operations (seeded)', () => {
  const base = process.env.SEED !== undefined ? Number(process.env.SEED) : 0x1a9e5;
  const seeds = process.env.SEED !== undefined ? [base] : Array.from({ length: 40 }, (_, i) => base + i);
  const stats: InStats = { stores: 0, earlyStores: 0, multiMoves: 0, slotRejects: 0, byteRejects: 0, duplicates: 0, windowFull: 0, wrappedReads: 0, seqWraps: 0, restarts: 0 };
  for (const seed of seeds) randomRun(seed, 3000, stats);
  // The runs as a whole must reach every interesting case (guards against a generator that drifted).
  if (process.env.SEED === undefined) {
    for (const [k, v] of Object.entries(stats)) assert.ok(v > 0, `randomized runs never reached ${k}: ${JSON.stringify(stats)}`);
  }
  if (process.env.RING_STATS) console.log(stats);
});

test('pieces: in order into place, the last makes the message whole; others are ignored', () => {
  const r = new InRing({ slots: 8, bytes: 64, seq: 10, off: 60 }); // the message wraps the slab end
  const msg = payload(20, 7);
  assert.is(r.checkPiece(11, 60, 20, 0), DUPLICATE, 'not for next: ignored');
  assert.is(r.checkPiece(10, 60, 20, 5), DUPLICATE, 'not the bytes that come next');
  assert.is(r.checkPiece(10, 60, 20, 0), NEW);
  assert.is(r.storePiece(10, 60, 20, msg, 0, 8), 0);
  assert.is(r.partBytes, 8);
  assert.is(r.available, 0, 'nothing to read yet');
  assert.is(r.checkPiece(10, 60, 20, 0), DUPLICATE, 'the first piece again');
  throwsCode(() => r.checkPiece(10, 60, 21, 8), ErrorCode.PROTOCOL, 'another length');
  throwsCode(() => r.checkPiece(10, 61, 20, 8), ErrorCode.PROTOCOL, 'another offset');
  throwsCode(() => r.checkPiece(10, 60, 65, 8), ErrorCode.WINDOW, 'longer than the window');
  assert.is(r.checkPiece(10, 60, 20, 8), NEW);
  assert.is(r.storePiece(10, 60, 20, msg, 8, 12), 1, 'whole');
  assert.is(r.partBytes, 0);
  assert.is(r.next, 11);
  const got = new Uint8Array(20);
  assert.is(r.readInto(got), 20);
  assert.equal(Array.from(got), Array.from(msg));
  // A whole message for next replaces what pieces brought of it.
  assert.is(r.storePiece(11, 80, 6, payload(6, 1), 0, 3), 0);
  assert.is(r.check(11, 80, 6), NEW);
  r.store(11, 80, payload(6, 1), 0, 6);
  assert.is(r.partBytes, 0);
  assert.is(r.next, 12);
});

test.run();
