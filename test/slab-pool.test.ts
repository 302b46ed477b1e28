/**
 * SlabPool and the rings that borrow from it: a block per ring only while the ring holds messages
 * (out-ring: until acknowledged; in-ring: until consumed, early arrivals and pieces included), the
 * in-ring's wrap scratch only from peek to release, blocks kept up to `keep` and let go beyond, one
 * shared buffer per size, slot tables lent with the slabs (views made once per chunk, given back
 * clear), and an Endpoint on a lender owning exactly its lent bytes. The link's
 * property test (link.property) runs every other seed with the gateway on a pool and checks the
 * lent count against the rings at every step.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Endpoint } from '../firmware/endpoint';
import { InRing } from '../firmware/in-ring';
import { resolveOptions } from '../firmware/options';
import { OutRing } from '../firmware/out-ring';
import { NO_TABLES, SLAB_POOL_DEFAULTS, SlabPool, slotTables, tableBytes } from '../firmware/slab-pool';

function payload(len: number, tag: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (tag * 31 + i * 7 + 1) & 0xff;
  return b;
}

test('blocks cut from chunks; a chunk all back is let go beyond keepChunks; large blocks alone', () => {
  const made: number[] = [];
  const pool = new SlabPool({
    chunkBytes: 65536,
    keepChunks: 1,
    alloc: (n) => {
      made.push(n);
      return new Uint8Array(n);
    },
  });
  const a = [];
  for (let i = 0; i < 5; i++) a.push(pool.take(16384));
  assert.equal(made, [65536, 65536], 'four blocks of 16 KiB a chunk: two chunks for five');
  assert.is(a[0].buffer, a[3].buffer);
  assert.is.not(a[0].buffer, a[4].buffer);
  assert.is(a[1].byteOffset, 16384);
  assert.is(pool.lent, 5);
  assert.is(pool.lentBytes, 5 * 16384);
  assert.is(pool.peakLent, 5);
  a[0].fill(7);
  assert.is(a[1][0], 0, 'blocks do not overlap');
  // The second chunk's only block back: that chunk is all free, and the only idle one: kept.
  pool.give(a[4]);
  assert.is(pool.chunkedBytes, 2 * 65536);
  assert.is(pool.kept, 4);
  // The first chunk all back too: two idle chunks, one more than keepChunks: let go.
  for (let i = 0; i < 4; i++) pool.give(a[i]);
  assert.is(pool.released, 1);
  assert.is(pool.chunkedBytes, 65536);
  assert.is(pool.lent, 0);
  assert.is(pool.lentBytes, 0);
  // Takes come from what is kept: no allocation.
  const again = [pool.take(16384), pool.take(16384)];
  assert.is(made.length, 2);
  assert.is(again[0].buffer, again[1].buffer);
  // Another size: chunks of its own. Larger than half a chunk: a block of its own each time.
  pool.take(8192);
  assert.is(made.length, 3);
  const big = pool.take(40000);
  assert.is(made.at(-1), 40000);
  assert.is(big.length, 40000);
  pool.give(big);
  assert.is(pool.lent, 3);
  assert.is(pool.shared(256), pool.shared(256), 'one shared buffer per size');
  assert.is(pool.shared(256).length, 256);
  assert.is(new SlabPool().take(8).length, 8);
  assert.equal(SLAB_POOL_DEFAULTS, { chunkBytes: 33554432, keepChunks: 1 });
  assert.throws(() => new SlabPool({ keepChunks: -1 }), /keepChunks/);
  assert.throws(() => new SlabPool({ chunkBytes: 1024 }), /chunkBytes/);
  assert.throws(() => new SlabPool({ alloc: () => new Uint8Array(3) }).take(8), /alloc gave 3 bytes/);
});

test('keepChunks 0: every chunk is let go as its last block comes back', () => {
  const pool = new SlabPool({ chunkBytes: 65536, keepChunks: 0 });
  const b = pool.take(32768);
  pool.give(b);
  assert.is(pool.chunkedBytes, 0);
  assert.is(pool.released, 1);
});

test('slot tables: views of one block each, aligned, cut from chunks per kind and slot count, the same views lent again', () => {
  assert.is(tableBytes(32, true), 608);
  assert.is(tableBytes(32, false), 288);
  assert.is(tableBytes(1, true), 24, 'rounded up to 8');
  const mem = new Uint8Array(64);
  const t = slotTables(mem, 8, 2, true);
  assert.is(t.sent.byteOffset, 8);
  assert.is(t.flags.byteOffset + t.flags.length <= 8 + tableBytes(2, true), true, 'inside its block');
  t.sent.fill(-1);
  t.offs.fill(0xffffffff);
  t.lens.fill(0xffffffff);
  t.sends.fill(0xffff);
  t.flags.fill(0xff);
  assert.is(mem[7], 0, 'nothing written before the block');
  assert.is(mem[8 + 38], 0, 'nothing written after it');
  try {
    new SlabPool({ alloc: (n) => new Uint8Array(n + 4).subarray(4) }).takeTables(32, true);
    assert.unreachable('misaligned memory');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'HF_ERR_OPTION', 'a pool refuses memory its tables cannot lie in');
  }
  const made: number[] = [];
  const pool = new SlabPool({
    chunkBytes: 65536,
    alloc: (n) => {
      made.push(n);
      return new Uint8Array(n);
    },
  });
  const a = pool.takeTables(32, true);
  const b = pool.takeTables(32, true);
  const c = pool.takeTables(32, false);
  assert.is(made.length, 2, 'one chunk for out-ring tables, one for in-ring tables');
  assert.is(a.offs.buffer, b.offs.buffer);
  assert.is.not(a.offs.buffer, c.offs.buffer);
  assert.is(c.sent.length, 0);
  assert.is(c.flags.length, 32);
  assert.is(pool.tablesLent, 3);
  assert.is(pool.lent, 0, 'tables are not counted as slabs');
  pool.giveTables(b);
  assert.is(pool.takeTables(32, true), b, 'the same views lent again: no allocation');
  pool.giveTables(a);
  pool.giveTables(b);
  pool.giveTables(c);
  pool.giveTables(NO_TABLES);
  assert.is(pool.tablesLent, 0);
  // Tables larger than half a chunk: a block of their own.
  const big = pool.takeTables(4096, true);
  assert.is(big.sent.length, 4096);
  assert.is(made.length, 3);
  pool.giveTables(big);
  assert.is(pool.tablesLent, 0);
});

test('out-ring: a slab while unacknowledged messages are held, none when empty', () => {
  const pool = new SlabPool();
  // Offsets just below 2^32: the slab taken again after a wrap starts anywhere.
  const r = new OutRing({ slots: 4, bytes: 64, seq: 0xfffffffe, off: 0xffffffe0, pool });
  assert.is(pool.lent, 0, 'a new ring holds nothing');
  assert.is(r.blocksHeld, 0);
  assert.ok(r.push(payload(40, 1)));
  assert.ok(r.push(payload(20, 2)));
  assert.is(pool.lent, 1);
  assert.is(r.release(0xffffffff), 1);
  assert.is(pool.lent, 1, 'one message still held');
  const out = new Uint8Array(20);
  r.copyOut(0xffffffff, out);
  assert.equal(out, payload(20, 2));
  assert.is(r.release(0), 1);
  assert.is(pool.lent, 0, 'acknowledged to the end: the slab went back');
  // A message that wraps the slab end, in a slab taken again.
  assert.ok(r.push(payload(50, 3)));
  assert.is(pool.lent, 1);
  const w = new Uint8Array(50);
  r.copyOut(0, w);
  assert.equal(w, payload(50, 3));
  assert.is(pool.made, 2, 'one chunk of slabs and one of slot tables so far');
  r.discard();
  assert.is(pool.lent, 0);
  assert.is(pool.tablesLent, 0, 'the tables went back with the slab');
  assert.ok(r.isEmpty);
  // A full ring is still backpressure, not growth.
  for (let i = 0; i < 4; i++) assert.ok(r.push(payload(16, i)));
  assert.not.ok(r.push(payload(1, 9)));
  assert.is(pool.lent, 1);
});

test('in-ring: held while messages wait to be consumed, early arrivals and pieces included', () => {
  const pool = new SlabPool();
  const r = new InRing({ slots: 8, bytes: 64, maxMessage: 48, seq: 10, off: 40, pool });
  assert.is(pool.lent, 0);
  // An early arrival (11 before 10) holds the slab though nothing is available yet.
  r.check(11, 60, 8);
  r.store(11, 60, payload(8, 11), 0, 8);
  assert.is(r.available, 0);
  assert.is(pool.lent, 1);
  r.store(10, 40, payload(20, 10), 0, 20);
  assert.is(r.available, 2);
  assert.ok(r.peek());
  assert.equal(r.viewBuf.subarray(r.viewOff, r.viewOff + r.viewLen), payload(20, 10));
  assert.ok(r.owns(r.viewBuf));
  r.release();
  assert.is(pool.lent, 1, 'message 11 still waits');
  assert.ok(r.peek());
  r.release();
  assert.is(pool.lent, 0, 'consumed to the end: the slab went back');
  assert.is(pool.tablesLent, 0, 'and the tables');
  assert.ok(r.isEmpty);
  assert.not.ok(r.owns(new Uint8Array(4)));
  // A message that wraps the slab end (13: offset 108 is slab position 44, 30 bytes): read through the
  // scratch, which is lent from peek to release only.
  r.store(12, 68, payload(40, 12), 0, 40);
  assert.ok(r.peek());
  r.release();
  r.store(13, 108, payload(30, 13), 0, 30);
  assert.ok(r.peek());
  assert.equal(r.viewBuf.subarray(r.viewOff, r.viewOff + r.viewLen), payload(30, 13));
  assert.is(pool.lent, 2, 'slab and scratch');
  assert.ok(r.owns(r.viewBuf), 'the scratch is the ring’s memory too');
  r.release();
  assert.is(pool.lent, 0);
  // Pieces: the slab is held from the first piece on.
  assert.is(r.checkPiece(14, 138, 30, 0), 0);
  r.storePiece(14, 138, 30, payload(30, 14), 0, 10);
  assert.is(r.available, 0);
  assert.is(pool.lent, 1, 'a piece holds the slab');
  r.storePiece(14, 138, 30, payload(30, 14), 10, 20);
  assert.is(r.available, 1);
  assert.is(r.readInto(new Uint8Array(30)), 30);
  assert.is(pool.lent, 0);
  // A message passed straight through never takes memory.
  assert.ok(r.isPassThrough(15));
  r.pass(15, 168, 5);
  assert.is(pool.lent, 0);
  r.store(16, 173, payload(3, 16), 0, 3);
  r.discard();
  assert.is(pool.lent, 0, 'discard gives everything back');
});

test('endpoint on a lender: no arena, shared bundle buffer, lent memory only while held', () => {
  const pool = new SlabPool();
  const o = resolveOptions({ outSlots: 8, outBytes: 1024, inSlots: 8, inBytes: 1024, maxMessage: 512, maxBundleBytes: 2048 });
  const a = new Endpoint(o, 0, 0, pool);
  const b = new Endpoint(o, 0, 0, pool);
  assert.is(a.arena, null);
  assert.is(a.writer.buf, b.writer.buf, 'one bundle buffer for all');
  assert.is(a.writer, b.writer, 'one bundle writer for all of the same options');
  a.setPeerLimits([3, o.maxBundleBytes, o.maxMessage, o.maxSackRanges, o.maxControls]);
  assert.is(a.caps.messages, 3, "each endpoint keeps its peer's caps");
  assert.is(b.caps.messages, o.maxMessages);
  assert.is(a.reader, b.reader, 'one bundle reader for all of the same options');
  assert.is(pool.lent, 0, 'idle sessions hold no ring memory');
  assert.ok(a.send(payload(100, 1)));
  assert.is(pool.lent, 1);
  assert.is(pool.lentBytes, 1024);
  assert.not.ok(a.ownsBytes(payload(4, 0)));
  a.discard();
  assert.is(pool.lent, 0);
  const arena = new Endpoint(o, 0, 0);
  assert.ok(arena.arena instanceof ArrayBuffer);
  assert.ok(arena.ownsBytes(arena.writer.buf));
});

test.run();
