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
 *
 * A ring's per-slot tables (offsets, lengths, and an out-ring's transmit state) are lent the same
 * way (`takeTables`), cut from chunks of their own with their typed views made once per chunk: an
 * idle ring holds no table either, only its counters.
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
  /** What `make()` returned the first time it was asked for `key`: objects every borrower of this lender shares (the bundle codec). */
  memo<T>(key: object, make: () => T): T;
  /** A ring's slot tables for `slots` slots (with transmit state when `send`), contents undefined, the caller's until `giveTables`. */
  takeTables(slots: number, send: boolean): SlotTables;
  /** Returns tables `takeTables` gave; the caller keeps no view of them. */
  giveTables(t: SlotTables): void;
}

/**
 * A ring's per-slot tables, views of one block: an out-ring's (`send`) are the offset, length, last
 * transmit time, transmit count and flags of each slot; an in-ring's the offset, length and a
 * present flag (`flags`), with `sent` and `sends` empty.
 */
export interface SlotTables {
  readonly offs: Uint32Array;
  readonly lens: Uint32Array;
  readonly sent: Float64Array;
  readonly sends: Uint16Array;
  readonly flags: Uint8Array;
}

/** Bytes of one ring's tables (a multiple of 8, so that blocks of them stay aligned for the Float64Array). */
export function tableBytes(slots: number, send: boolean): number {
  return ((send ? slots * 19 : slots * 9) + 7) & ~7;
}

/**
 * The tables of `slots` slots as views of `mem[at, at + tableBytes)`: transmit times, offsets,
 * lengths, transmit counts, flags (an in-ring's without the first and the fourth); `mem.byteOffset +
 * at` must be a multiple of 8 (the Float64Array refuses it otherwise; a pool checks its chunks).
 */
export function slotTables(mem: Uint8Array, at: number, slots: number, send: boolean): SlotTables {
  const b = mem.buffer;
  const o = mem.byteOffset + at;
  const k = send ? slots : 0;
  return {
    sent: new Float64Array(b, o, k),
    offs: new Uint32Array(b, o + 8 * k, slots),
    lens: new Uint32Array(b, o + 8 * k + 4 * slots, slots),
    sends: new Uint16Array(b, o + 8 * k + 8 * slots, k),
    flags: new Uint8Array(b, o + 10 * k + 8 * slots, slots),
  };
}

/** Tables of their own memory (a ring without a lender). */
export function ownTables(slots: number, send: boolean): SlotTables {
  return slotTables(new Uint8Array(tableBytes(slots, send)), 0, slots, send);
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

/** The tables of a ring that holds nothing (and so holds no memory). */
export const NO_TABLES: SlotTables = slotTables(NO_SLAB, 0, 0, false);

/** Most blocks one chunk is cut into (a chunk of small blocks is smaller than chunkBytes). */
const MAX_BLOCKS = 1024;

/** One chunk cut into blocks of one size, with a stack of the free ones. */
interface Chunk {
  readonly mem: Uint8Array;
  /** Bytes of one block. */
  readonly size: number;
  readonly blocks: Uint8Array[];
  /** A chunk of slot tables: each block's views, made with the chunk. */
  readonly tables: SlotTables[] | null;
  readonly free: Int32Array;
  freeCount: number;
}

export class SlabPool implements SlabLender {
  private readonly chunkBytes: number;
  private readonly keepChunks: number;
  private readonly alloc: (bytes: number) => Uint8Array;
  /** Chunks by block size, oldest first. */
  private readonly chunks = new Map<number, Chunk[]>();
  /** Chunks of slot tables by slot count: in-rings' [0] and out-rings' [1]. */
  private readonly tableChunks = [new Map<number, Chunk[]>(), new Map<number, Chunk[]>()];
  /** The chunk each block is cut from, by its memory. */
  private readonly owner = new Map<ArrayBufferLike, Chunk>();
  private readonly scratch = new Map<number, Uint8Array>();
  private readonly memos = new WeakMap<object, unknown>();
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
  /** Slot tables out with their rings now (not counted in `lent`). */
  tablesLent = 0;

  constructor(o: SlabPoolOptions = {}) {
    this.chunkBytes = checkInt('chunkBytes', o.chunkBytes ?? SLAB_POOL_DEFAULTS.chunkBytes, 65536, 1 << 30);
    this.keepChunks = checkInt('keepChunks', o.keepChunks ?? SLAB_POOL_DEFAULTS.keepChunks, 0, 1 << 20);
    this.alloc = o.alloc ?? ((n) => new Uint8Array(n));
  }

  take(bytes: number): Uint8Array {
    const b = bytes > this.chunkBytes >>> 1 ? this.make(bytes) : this.takeFrom(this.chunks, bytes, bytes, 0, false);
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
    if (c !== undefined) this.giveTo(this.chunks, block.length, c, block.byteOffset); // else a large block: the garbage collector has it
  }

  takeTables(slots: number, send: boolean): SlotTables {
    const bytes = tableBytes(slots, send);
    this.tablesLent++;
    if (bytes > this.chunkBytes >>> 1) return slotTables(this.make(bytes), 0, slots, send);
    const list = this.tableChunks[send ? 1 : 0];
    const c = this.chunkWithRoom(list, slots, () => this.newChunk(bytes, slots, send));
    return (c.tables as SlotTables[])[c.free[--c.freeCount]];
  }

  giveTables(t: SlotTables): void {
    if (t === NO_TABLES) return;
    this.tablesLent--;
    const c = this.owner.get(t.offs.buffer);
    if (c !== undefined) this.giveTo(this.tableChunks[t.sends.length > 0 ? 1 : 0], t.offs.length, c, t.offs.byteOffset);
  }

  /** A block of `bytes` from the chunks of `list` under `key`. */
  private takeFrom(lists: Map<number, Chunk[]>, key: number, bytes: number, slots: number, send: boolean): Uint8Array {
    const c = this.chunkWithRoom(lists, key, () => this.newChunk(bytes, slots, send));
    return c.blocks[c.free[--c.freeCount]];
  }

  /** The oldest chunk under `key` with a free block, a new one when none has. */
  private chunkWithRoom(lists: Map<number, Chunk[]>, key: number, make: () => Chunk): Chunk {
    let list = lists.get(key);
    if (list === undefined) {
      list = [];
      lists.set(key, list);
    }
    for (let i = 0; i < list.length; i++) if (list[i].freeCount > 0) return list[i];
    const c = make();
    list.push(c);
    return c;
  }

  /** The block of chunk `c` that holds byte `at` is free again; an idle chunk beyond keepChunks is let go. */
  private giveTo(lists: Map<number, Chunk[]>, key: number, c: Chunk, at: number): void {
    c.free[c.freeCount++] = Math.floor((at - c.mem.byteOffset) / c.size);
    if (c.freeCount < c.blocks.length) return;
    const list = lists.get(key) as Chunk[];
    let idle = 0;
    for (const x of list) if (x.freeCount === x.blocks.length) idle++;
    if (idle <= this.keepChunks) return;
    list.splice(list.indexOf(c), 1);
    this.owner.delete(c.mem.buffer);
    this.released++;
  }

  memo<T>(key: object, make: () => T): T {
    if (!this.memos.has(key)) this.memos.set(key, make());
    return this.memos.get(key) as T;
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

  /** A chunk of blocks of `bytes`; of slot tables for `slots` slots when `slots` > 0. */
  private newChunk(bytes: number, slots: number, send: boolean): Chunk {
    const count = Math.min(MAX_BLOCKS, Math.floor(this.chunkBytes / bytes));
    const mem = this.make(count * bytes);
    const blocks: Uint8Array[] = [];
    const tables: SlotTables[] | null = slots > 0 ? [] : null;
    const free = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      blocks.push(mem.subarray(i * bytes, (i + 1) * bytes));
      tables?.push(slotTables(mem, i * bytes, slots, send));
      free[i] = count - 1 - i; // block 0 is taken first
    }
    const c: Chunk = { mem, size: bytes, blocks, tables, free, freeCount: count };
    this.owner.set(mem.buffer, c);
    return c;
  }

  private make(bytes: number): Uint8Array {
    const b = this.alloc(bytes);
    if (b.length !== bytes) throw hfError(ErrorCode.OPTION, `alloc gave ${b.length} bytes, ${bytes} asked`);
    if (b.byteOffset % 8 !== 0) throw hfError(ErrorCode.OPTION, `alloc gave memory at byte ${b.byteOffset} of its buffer, not a multiple of 8 (slot tables hold Float64Arrays)`);
    this.made++;
    return b;
  }
}
