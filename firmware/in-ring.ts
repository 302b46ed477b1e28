/**
 * The in-ring: messages received from the peer and not yet consumed by the application.
 *
 * Same fixed layout as the out-ring. Every message carries its byte offset in the sender's stream, so a
 * message that arrives early (out of order) goes straight to its final place in the slab; the window
 * the receiver advertises (free slots after `next`, free bytes after `nextOff`) guarantees it fits and
 * never overwrites anything. Four positions, all free-running u32:
 *   held <= read <= next <= top: [held, read) handed to the application and not yet confirmed by it
 *   (only with ackAfter 'app': otherwise held === read, a message is freed as it is handed over);
 *   [read, next) received in order, not yet handed to the application;
 *   next: every message before it received; [next, top) may hold early arrivals.
 * Slots and bytes are freed from `held`: a message waiting for its confirmation keeps its place, so
 * the window (counted from `held`) bounds how many may wait, and a ring holding one is not empty.
 * No method allocates; a message that wraps the slab end is read through one scratch buffer. With a
 * `pool` (slab-pool.ts) the slab and the slot tables are held only while the ring holds a message or
 * a piece of one, and the scratch only from `peek` to `release`. A present flag is cleared as its
 * message is confirmed, so tables go back all clear.
 */
import { copyBytes, copyIntoRing, copyOutOfRing } from './bytes';
import { behind, checkInt, checkPow2, dist } from './check';
import { ErrorCode, hfError } from './errors';
import { RING_DEFAULTS, type RingOptions, memory } from './out-ring';
import { NO_SLAB, NO_TABLES, ownTables, type SlabLender, type SlotTables } from './slab-pool';

/** What `check` says about an incoming message. */
export const NEW = 0;
export const DUPLICATE = 1;

export class InRing {
  readonly slots: number;
  readonly bytes: number;
  private readonly mask: number;
  private readonly bmask: number;
  private slab: Uint8Array;
  /** The slot tables below are views of these (NO_TABLES while a pooled ring is empty). */
  private tables!: SlotTables;
  private offs!: Uint32Array;
  private lens!: Uint32Array;
  private present!: Uint8Array;
  private scratch: Uint8Array;
  private readonly scratchBytes: number;
  private readonly pool: SlabLender | null;

  /** Oldest message still held: handed to the application, not yet confirmed (=== read when none). */
  held: number;
  heldOff: number;
  /** Next message the application will be handed. */
  read: number;
  readOff: number;
  /** Next message expected in order: the cumulative acknowledgement. */
  next: number;
  nextOff: number;
  /** One past the highest sequence number stored. */
  top: number;
  /** Bytes of message `next` held so far when it arrives in pieces (0: none); its whole length. */
  partBytes = 0;
  private partLen = 0;

  /** Set by `peek`: the message is `viewBuf[viewOff, viewOff+viewLen)`, valid until `release`. */
  viewBuf: Uint8Array;
  viewOff = 0;
  viewLen = 0;

  constructor(opts: RingOptions = {}) {
    this.slots = checkPow2('slots', opts.slots ?? RING_DEFAULTS.slots, 1, 1 << 20);
    this.bytes = checkPow2('bytes', opts.bytes ?? RING_DEFAULTS.bytes, 1, 1 << 30);
    this.held = this.read = this.next = this.top = checkInt('seq', opts.seq ?? 0, 0, 0xffffffff);
    this.heldOff = this.readOff = this.nextOff = checkInt('off', opts.off ?? 0, 0, 0xffffffff);
    this.mask = this.slots - 1;
    this.bmask = this.bytes - 1;
    this.pool = opts.pool ?? null;
    this.slab = this.pool !== null ? NO_SLAB : memory('slab', opts.slab, this.bytes);
    this.useTables(this.pool !== null ? NO_TABLES : ownTables(this.slots, false));
    this.scratchBytes = Math.min(this.bytes, checkInt('maxMessage', opts.maxMessage ?? this.bytes, 0, this.bytes));
    this.scratch = this.pool !== null ? NO_SLAB : memory('scratch', opts.scratch, this.scratchBytes);
    this.viewBuf = this.slab;
  }

  /** Moves an empty ring to start at `seq`/`off` (the peer announced its first message). */
  restart(seq: number, off: number): void {
    if (this.held !== this.top) throw hfError(ErrorCode.PROTOCOL, `cannot restart a ring holding ${dist(this.top, this.held)} messages`);
    this.held = this.read = this.next = this.top = seq >>> 0;
    this.heldOff = this.readOff = this.nextOff = off >>> 0;
    this.partBytes = 0;
    this.giveBack();
  }

  /** Blocks of a pool's memory held now (slab, scratch: 0 to 2; 0 without a pool). */
  get blocksHeld(): number {
    return this.pool === null ? 0 : (this.slab !== NO_SLAB ? 1 : 0) + (this.scratch !== NO_SLAB ? 1 : 0);
  }

  /** Whether the ring holds nothing: no message unconfirmed, unconsumed or early, no piece. */
  get isEmpty(): boolean {
    return this.held === this.top && this.partBytes === 0;
  }

  /** Drops everything held (a finished session's ring); with a pool its memory goes back. */
  discard(): void {
    this.reset(this.next, this.nextOff);
    if (this.pool !== null && this.scratch !== NO_SLAB) {
      this.pool.give(this.scratch);
      this.scratch = NO_SLAB;
      this.viewBuf = NO_SLAB;
    }
  }

  /** With a pool: the slab of a ring that holds nothing (no message, no piece) goes back to it. */
  private giveBack(): void {
    if (this.pool === null || this.slab === NO_SLAB || this.held !== this.top || this.partBytes !== 0) return;
    this.pool.give(this.slab);
    this.slab = NO_SLAB;
    this.viewBuf = NO_SLAB;
    this.pool.giveTables(this.tables);
    this.useTables(NO_TABLES);
  }

  /** With a pool: the slab (and the slot tables, cleared) before bytes are stored into it. */
  private slabToWrite(): Uint8Array {
    if (this.slab === NO_SLAB) {
      const pool = this.pool as SlabLender;
      this.slab = pool.take(this.bytes);
      const t = pool.takeTables(this.slots, false);
      t.flags.fill(0);
      this.useTables(t);
    }
    return this.slab;
  }

  /** Points the slot-table fields at `t`. */
  private useTables(t: SlotTables): void {
    this.tables = t;
    this.offs = t.offs;
    this.lens = t.lens;
    this.present = t.flags;
  }

  /**
   * Whether `buf` is a view of this ring's own memory (its slab or its wrap scratch): a message
   * delivered from there is valid only until `release`.
   */
  owns(buf: Uint8Array): boolean {
    return (this.slab !== NO_SLAB && buf.buffer === this.slab.buffer) || (this.scratch !== NO_SLAB && buf.buffer === this.scratch.buffer);
  }

  /** Drops everything held and starts empty at `seq`/`off` (replaying a journal). */
  reset(seq: number, off: number): void {
    for (let q = this.held; q !== this.top; q = (q + 1) >>> 0) this.present[q & this.mask] = 0;
    this.top = this.held;
    this.restart(seq, off);
  }

  /** Messages received in order and not yet handed to the application. */
  get available(): number {
    return (this.next - this.read) >>> 0;
  }

  /** Messages handed to the application and not yet confirmed (0 unless ackAfter is 'app'). */
  get unconfirmed(): number {
    return (this.read - this.held) >>> 0;
  }

  /** Messages the peer may still send beyond `next`. */
  get windowMsgs(): number {
    return this.slots - ((this.next - this.held) >>> 0);
  }

  /** Bytes the peer may still send beyond `nextOff`. */
  get windowBytes(): number {
    return this.bytes - ((this.nextOff - this.heldOff) >>> 0);
  }

  /** True if early arrivals are held above `next`. */
  get hasGaps(): boolean {
    return this.top !== this.next;
  }

  /** Whether early-arrival slot `seq` (next < seq < top) is held. */
  has(seq: number): boolean {
    return dist(seq, this.next) < dist(this.top, this.next) && this.present[seq & this.mask] === 1;
  }

  /**
   * Classifies message (`seq`, `off`, `len`) without changing anything: DUPLICATE if already received,
   * NEW if it fits the window; throws HF_ERR_WINDOW if it lies outside the window or HF_ERR_PROTOCOL if
   * its byte offset contradicts a neighbour already held.
   */
  check(seq: number, off: number, len: number): number {
    if (behind(seq, this.next)) return DUPLICATE;
    const ahead = dist(seq, this.next);
    if (ahead >= this.windowMsgs) {
      throw hfError(ErrorCode.WINDOW, `message ${seq} is outside the receive window [${this.next}, ${(this.next + this.windowMsgs) >>> 0})`);
    }
    const s = seq & this.mask;
    if (ahead > 0 && this.present[s] === 1) return DUPLICATE;
    const rel = dist(off, this.heldOff);
    if (rel + len > this.bytes || dist(off, this.nextOff) > this.bytes) {
      throw hfError(ErrorCode.WINDOW, `message ${seq} bytes [${off}, +${len}) are outside the receive window of ${this.windowBytes} bytes at ${this.nextOff}`);
    }
    if (ahead === 0) {
      if (off !== this.nextOff) throw hfError(ErrorCode.PROTOCOL, `message ${seq} at offset ${off}, expected ${this.nextOff}`);
    } else {
      const p = (seq - 1) & this.mask;
      if (ahead > 1 && this.present[p] === 1 && (this.offs[p] + this.lens[p]) >>> 0 !== off) {
        throw hfError(ErrorCode.PROTOCOL, `message ${seq} at offset ${off} does not follow message ${(seq - 1) >>> 0}`);
      }
    }
    const n = (seq + 1) & this.mask;
    if (dist((seq + 1) >>> 0, this.next) < dist(this.top, this.next) && this.present[n] === 1 && (off + len) >>> 0 !== this.offs[n]) {
      throw hfError(ErrorCode.PROTOCOL, `message ${seq} ends at ${(off + len) >>> 0}, message ${(seq + 1) >>> 0} starts at ${this.offs[n]}`);
    }
    return NEW;
  }

  /**
   * Stores a message `check` said is NEW: copies `src[srcOff, srcOff+len)` to its place and moves
   * `next` over every message now in order. Returns how many messages became available.
   */
  store(seq: number, off: number, src: Uint8Array, srcOff: number, len: number): number {
    copyIntoRing(this.slabToWrite(), off, src, srcOff, len);
    if (seq === this.next) this.partBytes = 0;
    return this.commit(seq, off, len);
  }

  /**
   * Classifies a piece (bytes [at, ...) of message `seq`, `total` bytes long at offset `off`): NEW if
   * it is for `next` and starts where the bytes held end; DUPLICATE (ignore it: the sender goes on
   * from what `part` says) otherwise. Throws like `check` for a message outside the window, and
   * HF_ERR_PROTOCOL for a length that contradicts earlier pieces.
   */
  checkPiece(seq: number, off: number, total: number, at: number): number {
    if (seq !== this.next || this.check(seq, off, total) === DUPLICATE) return DUPLICATE;
    if (this.partBytes > 0 && total !== this.partLen) throw hfError(ErrorCode.PROTOCOL, `piece of message ${seq} says ${total} bytes, earlier pieces ${this.partLen}`);
    return at === this.partBytes ? NEW : DUPLICATE;
  }

  /**
   * Stores a piece `checkPiece` said is NEW, in place in the slab. The last one makes the message
   * whole (as `store`): returns how many messages became available (0 while pieces are missing).
   */
  storePiece(seq: number, off: number, total: number, src: Uint8Array, srcOff: number, len: number): number {
    copyIntoRing(this.slabToWrite(), (off + this.partBytes) >>> 0, src, srcOff, len);
    this.partBytes += len;
    this.partLen = total;
    if (this.partBytes < total) return 0;
    this.partBytes = 0;
    return this.commit(seq, off, total);
  }

  /** Records message `seq` (its bytes in place) and moves `next` over every message now in order. */
  private commit(seq: number, off: number, len: number): number {
    const s = seq & this.mask;
    this.offs[s] = off;
    this.lens[s] = len;
    this.present[s] = 1;
    if (dist((seq + 1) >>> 0, this.next) > dist(this.top, this.next)) this.top = (seq + 1) >>> 0;
    let moved = 0;
    while (this.next !== this.top && this.present[this.next & this.mask] === 1) {
      const q = this.next & this.mask;
      this.nextOff = (this.offs[q] + this.lens[q]) >>> 0;
      this.next = (this.next + 1) >>> 0;
      moved++;
    }
    return moved;
  }

  /**
   * True if a message arriving as `seq` would be consumed at once: it is the next in order and
   * nothing is waiting before or after it. The caller may then hand it to the application straight
   * from where it arrived and call `pass` instead of `store` + `release`.
   */
  isPassThrough(seq: number): boolean {
    return seq === this.next && this.held === this.next && this.top === this.next;
  }

  /** Records message (`seq`, `off`, `len`) as received and consumed without storing it. */
  pass(seq: number, off: number, len: number): void {
    this.partBytes = 0;
    this.next = this.top = this.read = this.held = (seq + 1) >>> 0;
    this.nextOff = this.readOff = this.heldOff = (off + len) >>> 0;
    this.giveBack();
  }

  /**
   * Makes the oldest unconsumed message visible as `viewBuf[viewOff, viewOff+viewLen)` and returns
   * true, or returns false if none is available. The view is valid until `release`.
   */
  peek(): boolean {
    if (this.read === this.next) return false;
    const s = this.read & this.mask;
    const len = this.lens[s];
    const p = this.offs[s] & this.bmask;
    if (p + len <= this.bytes) {
      this.viewBuf = this.slab;
      this.viewOff = p;
    } else {
      if (this.scratch === NO_SLAB) this.scratch = (this.pool as SlabLender).take(this.scratchBytes);
      copyOutOfRing(this.scratch, 0, this.slab, p, len);
      this.viewBuf = this.scratch;
      this.viewOff = 0;
    }
    this.viewLen = len;
    return true;
  }

  /** Copies the oldest unconsumed message into `dst` and releases it; returns its length or -1. */
  readInto(dst: Uint8Array, dstOff = 0): number {
    if (!this.peek()) return -1;
    const n = this.viewLen;
    if (dstOff + n > dst.length) throw hfError(ErrorCode.TOO_BIG, `message of ${n} bytes does not fit the ${dst.length - dstOff} bytes given`);
    copyBytes(dst, dstOff, this.viewBuf, this.viewOff, n);
    this.release();
    return n;
  }

  /** Consumes the oldest available message (frees its slot and bytes; the window grows). */
  release(): void {
    this.handOver();
    this.confirm(this.read);
  }

  /**
   * Marks the oldest available message handed to the application without freeing it: it keeps its
   * slot and bytes (the window does not grow) until `confirm`. The view from `peek` is valid until
   * the next `peek`.
   */
  handOver(): void {
    if (this.read === this.next) throw hfError(ErrorCode.PROTOCOL, 'release with no message available');
    const s = this.read & this.mask;
    this.readOff = (this.offs[s] + this.lens[s]) >>> 0;
    this.read = (this.read + 1) >>> 0;
    if (this.pool !== null && this.scratch !== NO_SLAB) {
      this.pool.give(this.scratch);
      this.scratch = NO_SLAB;
      this.viewBuf = this.slab; // no view of a block given back (it would keep its chunk alive)
    }
  }

  /**
   * Frees every message handed over before `end` (held <= end <= read, not checked here: see
   * `isConfirmable`); the window grows by their slots and bytes. Returns how many were freed.
   */
  confirm(end: number): number {
    let n = 0;
    for (let q = this.held; q !== end; q = (q + 1) >>> 0) {
      const s = q & this.mask;
      this.present[s] = 0;
      this.heldOff = (this.offs[s] + this.lens[s]) >>> 0;
      n++;
    }
    this.held = end >>> 0;
    this.giveBack();
    return n;
  }

  /** Whether message `seq` was handed over and not yet confirmed: held <= seq < read. */
  isConfirmable(seq: number): boolean {
    return dist(seq, this.held) < dist(this.read, this.held);
  }

  /**
   * Visits the runs of early arrivals above `next` as half-open ranges [start, end), lowest first,
   * at most `max` of them. Returns how many were visited.
   */
  forEachRange(max: number, visit: (start: number, end: number) => void): number {
    let n = 0;
    let q = this.next;
    while (q !== this.top && n < max) {
      while (q !== this.top && this.present[q & this.mask] === 0) q = (q + 1) >>> 0;
      if (q === this.top) break;
      const start = q;
      while (q !== this.top && this.present[q & this.mask] === 1) q = (q + 1) >>> 0;
      visit(start, q);
      n++;
    }
    return n;
  }

  /** Length and offset of a held message (early arrival, unconsumed or unconfirmed); for snapshots. */
  offOf(seq: number): number {
    return this.offs[seq & this.mask];
  }

  lenOf(seq: number): number {
    return this.lens[seq & this.mask];
  }

  /** Copies held message `seq` into `dst` (for snapshots). */
  copyOut(seq: number, dst: Uint8Array, dstOff = 0): number {
    const s = seq & this.mask;
    const len = this.lens[s];
    copyOutOfRing(dst, dstOff, this.slab, this.offs[s], len);
    return len;
  }

  /** Whether slot for `seq` is occupied (for snapshots, any seq in [held, top)). */
  isPresent(seq: number): boolean {
    return this.present[seq & this.mask] === 1 && dist(seq, this.held) < dist(this.top, this.held);
  }
}
