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
 * `SlabPool` cuts blocks out of large chunks (`chunkBytes`, default 32 MiB: big enough that the C
 * allocator maps each chunk on its own and unmaps it when freed; at most 1024 blocks a chunk), one
 * list of chunks per block size.
 * A take uses the oldest chunk with a free block, so that newer chunks drain first; a chunk whose
 * blocks are all back is let go (the garbage collector frees it, and its memory leaves the process)
 * unless it is the last `keepChunks` of its size. A burst that woke every session (a job to the
 * whole fleet) therefore does not stay resident after it, as blocks freed one by one into the C
 * heap would. Blocks larger than half a chunk are allocated one by one. A take with no free block
 * allocates a chunk: that is growth, not the steady state. No method allocates otherwise.
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
  /** Bytes of one chunk blocks are cut from (default 33554432; 65536 .. 2^30). */
  chunkBytes?: number;
  /** Chunks of each block size kept when all their blocks are back (default 1). */
  keepChunks?: number;
  /** Makes a chunk (or a large block) of `bytes` bytes (default: a new zero-filled Uint8Array). */
  alloc?: (bytes: number) => Uint8Array;
}

export const SLAB_POOL_DEFAULTS = { chunkBytes: 33554432, keepChunks: 1 } as const;

/** The empty slab of a ring that holds nothing (and so holds no memory). */
export const NO_SLAB: Uint8Array = new Uint8Array(0);

/** Most blocks one chunk is cut into (a chunk of small blocks is smaller than chunkBytes). */
const MAX_BLOCKS = 1024;

/** One chunk cut into blocks of one size, with a stack of the free ones. */
interface Chunk {
  readonly mem: Uint8Array;
  readonly blocks: Uint8Array[];
  readonly free: Int32Array;
  freeCount: number;
}

export class SlabPool implements SlabLender {
  private readonly chunkBytes: number;
  private readonly keepChunks: number;
  private readonly alloc: (bytes: number) => Uint8Array;
  /** Chunks by block size, oldest first. */
  private readonly chunks = new Map<number, Chunk[]>();
  /** The chunk each block is cut from, by its memory. */
  private readonly owner = new Map<ArrayBufferLike, Chunk>();
  private readonly scratch = new Map<number, Uint8Array>();
  /** Blocks out with their takers now. */
  lent = 0;
  /** Bytes out with their takers now. */
  lentBytes = 0;
  /** Most blocks out at once so far. */
  peakLent = 0;
  /** Chunks (and large blocks) allocated so far. */
  made = 0;
  /** Chunks let go so far (all their blocks back, beyond keepChunks). */
  released = 0;

  constructor(o: SlabPoolOptions = {}) {
    this.chunkBytes = checkInt('chunkBytes', o.chunkBytes ?? SLAB_POOL_DEFAULTS.chunkBytes, 65536, 1 << 30);
    this.keepChunks = checkInt('keepChunks', o.keepChunks ?? SLAB_POOL_DEFAULTS.keepChunks, 0, 1 << 20);
    this.alloc = o.alloc ?? ((n) => new Uint8Array(n));
  }

  take(bytes: number): Uint8Array {
    let b: Uint8Array;
    if (bytes > this.chunkBytes >>> 1) {
      b = this.make(bytes);
    } else {
      let list = this.chunks.get(bytes);
      if (list === undefined) {
        list = [];
        this.chunks.set(bytes, list);
      }
      let c: Chunk | null = null;
      for (let i = 0; i < list.length && c === null; i++) if (list[i].freeCount > 0) c = list[i];
      if (c === null) {
        c = this.newChunk(bytes);
        list.push(c);
      }
      b = c.blocks[c.free[--c.freeCount]];
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
    const c = this.owner.get(block.buffer);
    if (c === undefined) return; // a large block: the garbage collector has it
    const i = (block.byteOffset - c.mem.byteOffset) / block.length;
    c.free[c.freeCount++] = i;
    if (c.freeCount < c.blocks.length) return;
    const list = this.chunks.get(block.length) as Chunk[];
    let idle = 0;
    for (const x of list) if (x.freeCount === x.blocks.length) idle++;
    if (idle <= this.keepChunks) return;
    list.splice(list.indexOf(c), 1);
    this.owner.delete(c.mem.buffer);
    this.released++;
  }

  shared(bytes: number): Uint8Array {
    let b = this.scratch.get(bytes);
    if (b === undefined) {
      b = this.make(bytes);
      this.scratch.set(bytes, b);
    }
    return b;
  }

  /** Bytes allocated in chunks now (lent or free). */
  get chunkedBytes(): number {
    let n = 0;
    for (const list of this.chunks.values()) for (const c of list) n += c.mem.length;
    return n;
  }

  /** Free blocks in chunks now, all sizes. */
  get kept(): number {
    let n = 0;
    for (const list of this.chunks.values()) for (const c of list) n += c.freeCount;
    return n;
  }

  private newChunk(bytes: number): Chunk {
    const count = Math.min(MAX_BLOCKS, Math.floor(this.chunkBytes / bytes));
    const mem = this.make(count * bytes);
    const blocks: Uint8Array[] = [];
    const free = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      blocks.push(mem.subarray(i * bytes, (i + 1) * bytes));
      free[i] = count - 1 - i; // block 0 is taken first
    }
    const c: Chunk = { mem, blocks, free, freeCount: count };
    this.owner.set(mem.buffer, c);
    return c;
  }

  private make(bytes: number): Uint8Array {
    const b = this.alloc(bytes);
    if (b.length !== bytes) throw hfError(ErrorCode.OPTION, `alloc gave ${b.length} bytes, ${bytes} asked`);
    this.made++;
    return b;
  }
}
