/**
 * Session memory lent on demand (a gateway's many sessions, most of them idle).
 *
 * A ring needs its slab only while it holds a message: an out-ring until the peer acknowledged the
 * last one, an in-ring until the application consumed the last one. With a lender, a ring takes a
 * slab when a message arrives in an empty ring and gives it back when the ring is empty again, so
 * an idle session holds none; its bounds (slots, bytes, window) stay exactly what its options say.
 * Memory used only inside one synchronous call (the bundle being written, which every transport
 * copies before it returns) is one buffer all borrowers share.
 *
 * `SlabPool` keeps given-back blocks of each size for the next taker, at most `keep` of them; the
 * rest are let go (the garbage collector returns them), so a burst that woke every session does not
 * stay resident. A take with nothing kept allocates: that is growth, not the steady state.
 */
import { checkInt } from './check';
import { ErrorCode, hfError } from './errors';

/** Lends blocks of memory to rings and shares one scratch buffer per size. */
export interface SlabLender {
  /** A block of exactly `bytes` bytes, contents undefined, the caller's until `give`. */
  take(bytes: number): Uint8Array;
  /** Returns a block `take` gave; the caller keeps no view of it. */
  give(block: Uint8Array): void;
  /**
   * A buffer of `bytes` bytes shared by every borrower of this lender: valid only within the
   * synchronous call that wrote it (a bundle written and handed to its transport at once).
   */
  shared(bytes: number): Uint8Array;
}

export interface SlabPoolOptions {
  /** Given-back blocks kept per size for the next taker (default 64). */
  keep?: number;
  /** Makes a block of `bytes` bytes (default: a new zero-filled Uint8Array). */
  alloc?: (bytes: number) => Uint8Array;
}

export const SLAB_POOL_DEFAULTS = { keep: 64 } as const;

/** The empty slab of a ring that holds nothing (and so holds no memory). */
export const NO_SLAB: Uint8Array = new Uint8Array(0);

export class SlabPool implements SlabLender {
  private readonly keep: number;
  private readonly alloc: (bytes: number) => Uint8Array;
  private readonly free = new Map<number, Uint8Array[]>();
  private readonly scratch = new Map<number, Uint8Array>();
  /** Blocks out with their takers now. */
  lent = 0;
  /** Bytes out with their takers now. */
  lentBytes = 0;
  /** Most blocks out at once so far. */
  peakLent = 0;
  /** Blocks allocated (a take with none kept). */
  made = 0;
  /** Blocks let go on `give` because `keep` were kept already. */
  dropped = 0;

  constructor(o: SlabPoolOptions = {}) {
    this.keep = checkInt('keep', o.keep ?? SLAB_POOL_DEFAULTS.keep, 0, 1 << 20);
    this.alloc = o.alloc ?? ((n) => new Uint8Array(n));
  }

  take(bytes: number): Uint8Array {
    const kept = this.free.get(bytes);
    let b = kept !== undefined && kept.length > 0 ? (kept.pop() as Uint8Array) : null;
    if (b === null) {
      b = this.alloc(bytes);
      if (b.length !== bytes) throw hfError(ErrorCode.OPTION, `alloc gave ${b.length} bytes, ${bytes} asked`);
      this.made++;
    }
    this.lent++;
    this.lentBytes += bytes;
    if (this.lent > this.peakLent) this.peakLent = this.lent;
    return b;
  }

  give(block: Uint8Array): void {
    if (block.length === 0) return;
    this.lent--;
    this.lentBytes -= block.length;
    let kept = this.free.get(block.length);
    if (kept === undefined) {
      kept = [];
      this.free.set(block.length, kept);
    }
    if (kept.length < this.keep) kept.push(block);
    else this.dropped++;
  }

  shared(bytes: number): Uint8Array {
    let b = this.scratch.get(bytes);
    if (b === undefined) {
      b = this.alloc(bytes);
      this.scratch.set(bytes, b);
    }
    return b;
  }

  /** Blocks kept for the next taker, all sizes. */
  get kept(): number {
    let n = 0;
    for (const k of this.free.values()) n += k.length;
    return n;
  }
}
