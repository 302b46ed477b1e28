/**
 * The out-ring: messages the application sent and the peer has not yet acknowledged.
 *
 * Fixed capacity in both messages (`slots`, a power of two) and payload bytes (`bytes`, a power of two,
 * one slab allocated at construction). Sequence numbers and byte offsets are free-running u32 values:
 * slot = seq & (slots-1), slab position = off & (bytes-1); lengths are `(head - tail) >>> 0`. A message
 * is copied in by `push` (false when full; nothing is dropped or grown) and leaves only through
 * `release` (the peer's cumulative acknowledgement). Per-message transmit state (last send time,
 * selectively acknowledged, transmit count) lives here too. No method allocates. With a `pool`, the
 * slab and the slot tables are taken when a message arrives in the empty ring and given back when the
 * ring is empty again (slab-pool.ts): an idle ring holds no memory but its counters.
 */
import { copyIntoRing, copyOutOfRing } from './bytes';
import { behind, checkInt, checkPow2, dist } from './check';
import type { CborWriter } from './cbor';
import { ErrorCode, hfError } from './errors';
import { NO_SLAB, NO_TABLES, ownTables, type SlabLender, type SlotTables } from './slab-pool';

export interface RingOptions {
  /** Message slots, a power of two (default 1024). */
  slots?: number;
  /** Payload slab size in bytes, a power of two (default 262144). */
  bytes?: number;
  /** First sequence number (default 0); tests start near 2^32 to prove wrap-around. */
  seq?: number;
  /** First byte offset (default 0). */
  off?: number;
  /** Largest message in bytes (default: the slab size); sizes the in-ring's wrap scratch buffer. */
  maxMessage?: number;
  /** Memory for the payload slab (`bytes` long) instead of a new allocation: an endpoint's arena. */
  slab?: Uint8Array;
  /** In-ring only: memory for the wrap scratch buffer (`maxMessage` long). */
  scratch?: Uint8Array;
  /** Lends the slab (and the in-ring's scratch) only while the ring holds messages; excludes `slab`/`scratch`. */
  pool?: SlabLender;
}

/** The caller's memory if given (checked for size), else a new array. */
export function memory(name: string, given: Uint8Array | undefined, size: number): Uint8Array {
  if (given === undefined) return new Uint8Array(size);
  if (given.length !== size) throw hfError(ErrorCode.OPTION, `${name} must be ${size} bytes, got ${given.length}`);
  return given;
}

/**
 * A ring's size when none is given: the one source of the link's default ring sizes too
 * (`LINK_DEFAULTS.outSlots`/`inSlots` and `outBytes`/`inBytes` in options.ts are these).
 */
export const RING_DEFAULTS = { slots: 1024, bytes: 262144 } as const;

/** Flag bits per slot. */
export const SACKED = 1;
export const FAST_RETX = 2;

export class OutRing {
  readonly slots: number;
  readonly bytes: number;
  private readonly mask: number;
  private slab: Uint8Array;
  private readonly pool: SlabLender | null;
  /** The slot tables below are views of these (NO_TABLES while a pooled ring is empty). */
  private tables!: SlotTables;
  private offs!: Uint32Array;
  private lens!: Uint32Array;
  /** Last transmit time per slot (ms); -1 = never sent. */
  private sent!: Float64Array;
  /** Times sent per slot. */
  private sends!: Uint16Array;
  private flags!: Uint8Array;

  /** Next sequence number to assign. */
  head: number;
  /** Oldest unacknowledged sequence number. */
  tail: number;
  /** Byte offset the next message will take. */
  headOff: number;
  /** Byte offset of the oldest unacknowledged message. */
  tailOff: number;

  constructor(opts: RingOptions = {}) {
    this.slots = checkPow2('slots', opts.slots ?? RING_DEFAULTS.slots, 1, 1 << 20);
    this.bytes = checkPow2('bytes', opts.bytes ?? RING_DEFAULTS.bytes, 1, 1 << 30);
    this.head = this.tail = checkInt('seq', opts.seq ?? 0, 0, 0xffffffff);
    this.headOff = this.tailOff = checkInt('off', opts.off ?? 0, 0, 0xffffffff);
    this.mask = this.slots - 1;
    this.pool = opts.pool ?? null;
    this.slab = this.pool !== null ? NO_SLAB : memory('slab', opts.slab, this.bytes);
    this.useTables(this.pool !== null ? NO_TABLES : ownTables(this.slots, true));
  }

  /** Points the slot-table fields at `t`. */
  private useTables(t: SlotTables): void {
    this.tables = t;
    this.offs = t.offs;
    this.lens = t.lens;
    this.sent = t.sent;
    this.sends = t.sends;
    this.flags = t.flags;
  }

  /** Messages held (sent or not, all unacknowledged). */
  get length(): number {
    return (this.head - this.tail) >>> 0;
  }

  /** Payload bytes held. */
  get usedBytes(): number {
    return (this.headOff - this.tailOff) >>> 0;
  }

  get isEmpty(): boolean {
    return this.head === this.tail;
  }

  /** True if a message of `len` bytes fits now. */
  fits(len: number): boolean {
    return this.length < this.slots && this.usedBytes + len <= this.bytes;
  }

  /**
   * Copies `src[off, off+len)` in as the next message. Returns false, changing nothing, when the ring
   * has no free slot or not enough free bytes. A message longer than the slab can never fit: that is
   * HF_ERR_TOO_BIG, not backpressure.
   */
  push(src: Uint8Array, off = 0, len = src.length - off): boolean {
    if (len > this.bytes) throw hfError(ErrorCode.TOO_BIG, `message of ${len} bytes is larger than the ${this.bytes}-byte ring`);
    if (!this.fits(len)) return false;
    if (this.slab === NO_SLAB) {
      const pool = this.pool as SlabLender;
      this.slab = pool.take(this.bytes);
      this.useTables(pool.takeTables(this.slots, true));
    }
    const s = this.head & this.mask;
    const o = this.headOff;
    this.offs[s] = o;
    this.lens[s] = len;
    this.sent[s] = -1;
    this.sends[s] = 0;
    this.flags[s] = 0;
    copyIntoRing(this.slab, o, src, off, len);
    this.head = (this.head + 1) >>> 0;
    this.headOff = (o + len) >>> 0;
    return true;
  }

  /** True if `seq` is held (tail <= seq < head). */
  holds(seq: number): boolean {
    return dist(seq, this.tail) < this.length;
  }

  offOf(seq: number): number {
    return this.offs[seq & this.mask];
  }

  lenOf(seq: number): number {
    return this.lens[seq & this.mask];
  }

  sentAt(seq: number): number {
    return this.sent[seq & this.mask];
  }

  sendCount(seq: number): number {
    return this.sends[seq & this.mask];
  }

  flagsOf(seq: number): number {
    return this.flags[seq & this.mask];
  }

  setFlag(seq: number, bit: number): void {
    this.flags[seq & this.mask] |= bit;
  }

  clearFlag(seq: number, bit: number): void {
    this.flags[seq & this.mask] &= ~bit;
  }

  /** Records a transmission of `seq` at `now`. */
  markSent(seq: number, now: number): void {
    const s = seq & this.mask;
    this.sent[s] = now;
    if (this.sends[s] < 0xffff) this.sends[s]++;
  }

  /** Empties the ring and starts it at `seq`/`off` (restoring a snapshot). */
  reset(seq: number, off: number): void {
    this.head = this.tail = seq >>> 0;
    this.headOff = this.tailOff = off >>> 0;
    this.giveBack();
  }

  /** Blocks of a pool's memory held now (0 or 1; 0 without a pool). */
  get blocksHeld(): number {
    return this.pool !== null && this.slab !== NO_SLAB ? 1 : 0;
  }

  /** Drops every held message (a finished session's ring); with a pool its slab goes back. */
  discard(): void {
    this.tail = this.head;
    this.tailOff = this.headOff;
    this.giveBack();
  }

  /** With a pool: an empty ring's slab and tables go back to it. */
  private giveBack(): void {
    if (this.pool === null || this.slab === NO_SLAB || this.head !== this.tail) return;
    this.pool.give(this.slab);
    this.slab = NO_SLAB;
    this.pool.giveTables(this.tables);
    this.useTables(NO_TABLES);
  }

  /** Sets a held message's transmit state (restoring a snapshot). */
  setSendState(seq: number, sentAt: number, sends: number, flags: number): void {
    const s = seq & this.mask;
    this.sent[s] = sentAt;
    this.sends[s] = sends;
    this.flags[s] = flags;
  }

  /** Forgets transmit times so every held message counts as unsent (after a transport change). */
  markAllUnsent(): void {
    for (let q = this.tail; q !== this.head; q = (q + 1) >>> 0) {
      this.sent[q & this.mask] = -1;
      this.flags[q & this.mask] &= ~FAST_RETX;
    }
  }

  /** Writes message `seq`'s payload as one CBOR byte string. */
  writePayload(seq: number, w: CborWriter): void {
    const s = seq & this.mask;
    const len = this.lens[s];
    w.bytesHeader(len);
    w.copyFromRing(this.slab, this.offs[s], len);
  }

  /** Writes bytes [at, at + len) of message `seq`'s payload to `w` as one CBOR byte string. */
  writePiece(seq: number, at: number, len: number, w: CborWriter): void {
    w.bytesHeader(len);
    w.copyFromRing(this.slab, (this.offs[seq & this.mask] + at) >>> 0, len);
  }

  /** Copies message `seq`'s payload into `dst` at `dstOff`; returns its length. */
  copyOut(seq: number, dst: Uint8Array, dstOff = 0): number {
    const s = seq & this.mask;
    const len = this.lens[s];
    copyOutOfRing(dst, dstOff, this.slab, this.offs[s], len);
    return len;
  }

  /**
   * Releases every message before `ack` (a cumulative acknowledgement: the peer has all of them).
   * Returns how many left. An `ack` before `tail` is stale and releases nothing; one past `head`
   * acknowledges messages never sent: HF_ERR_ACK, nothing changed.
   */
  release(ack: number): number {
    const n = dist(ack, this.tail);
    if (n === 0 || behind(ack, this.tail)) return 0;
    if (n > this.length) throw hfError(ErrorCode.ACK, `ack ${ack} is past the last sent message ${(this.head - 1) >>> 0}`);
    this.tail = ack >>> 0;
    this.tailOff = ack === this.head ? this.headOff : this.offs[ack & this.mask];
    if (this.tail === this.head) this.giveBack();
    return n;
  }

  /** Checks that `release(ack)` would not throw (for validate-before-apply). */
  checkAck(ack: number): void {
    const n = dist(ack, this.tail);
    if (n > this.length && !behind(ack, this.tail)) {
      throw hfError(ErrorCode.ACK, `ack ${ack} is past the last sent message ${(this.head - 1) >>> 0}`);
    }
  }
}
