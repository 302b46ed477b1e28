/**
 * The device's journal: what a device that loses power needs to resume. Appended through
 * hal/Storage as records
 *
 *   [type u8][body length u32 BE][body][CRC-32 of type, length and body, u32 BE]
 *
 *   1 CHECKPOINT  body = the client link's snapshot (snapshot.ts); always the first record
 *   2 MESSAGE     body = a payload `send` accepted (its sequence number is the next in order)
 *   3 RELEASED    body = u32 tail: the gateway acknowledged every message before it
 *   4 DELIVERED   body = u32 read, u32 readOff: the application got every message before `read`
 *                 (with ackAfter 'app': confirmed every message before it; the rest come again)
 *
 * `send` returns true only after its MESSAGE record is on storage. A power cut in the middle of an
 * append leaves a torn last record, which fails its CRC and is ignored on load, with everything after
 * it. When the journal passes `compactBytes` a new checkpoint replaces it in one atomic write.
 *
 * While a journal is attached the device acknowledges only what its application consumed (see
 * Endpoint.ackConsumed), so nothing the gateway dropped can still be lost in the device's memory;
 * with ackAfter 'app', only what it confirmed.
 */
import { crc32 } from './crc32';
import { ErrorCode, hfError } from './errors';
import type { Storage } from '../hal/storage';

export const Rec = { CHECKPOINT: 1, MESSAGE: 2, RELEASED: 3, DELIVERED: 4 } as const;

export interface JournalOptions {
  /** Storage key (default "journal"). */
  key?: string;
  /** Rewrite as one checkpoint past this many bytes (default 1 MiB). */
  compactBytes?: number;
}

/** What the endpoint reports to its journal. */
export interface JournalSink {
  pushed(src: Uint8Array, off: number, len: number): void;
  released(tail: number): void;
  delivered(read: number, readOff: number): void;
}

export interface JournalContents {
  checkpoint: Uint8Array;
  /** Records after the checkpoint: [type, body]. */
  records: [number, Uint8Array][];
  /** Bytes ignored at the end (a torn record). */
  torn: number;
}

const HEAD = 5;
const TAIL = 4;

export class Journal implements JournalSink {
  readonly key: string;
  readonly compactBytes: number;
  private readonly storage: Storage;
  private scratch: Uint8Array;
  /** Bytes in the journal now. */
  size = 0;

  constructor(storage: Storage, maxMessage: number, opts: JournalOptions = {}) {
    this.storage = storage;
    this.key = opts.key ?? 'journal';
    this.compactBytes = opts.compactBytes ?? 1 << 20;
    this.scratch = new Uint8Array(HEAD + Math.max(8, maxMessage) + TAIL);
  }

  /** True once the journal has grown past its compaction size. */
  get wantsCheckpoint(): boolean {
    return this.size > this.compactBytes;
  }

  /** Replaces the journal with one checkpoint record (atomically). */
  checkpoint(snapshot: Uint8Array): void {
    const rec = new Uint8Array(HEAD + snapshot.length + TAIL);
    rec.set(snapshot, HEAD);
    seal(rec, Rec.CHECKPOINT, snapshot.length);
    this.storage.write(this.key, rec);
    this.size = rec.length;
  }

  pushed(src: Uint8Array, off: number, len: number): void {
    const b = this.scratch;
    for (let i = 0; i < len; i++) b[HEAD + i] = src[off + i];
    this.append(Rec.MESSAGE, len);
  }

  released(tail: number): void {
    putU32(this.scratch, HEAD, tail);
    this.append(Rec.RELEASED, 4);
  }

  delivered(read: number, readOff: number): void {
    putU32(this.scratch, HEAD, read);
    putU32(this.scratch, HEAD + 4, readOff);
    this.append(Rec.DELIVERED, 8);
  }

  private append(type: number, len: number): void {
    seal(this.scratch, type, len);
    this.storage.append(this.key, this.scratch, 0, HEAD + len + TAIL);
    this.size += HEAD + len + TAIL;
  }

  /** Reads the journal; null if there is none. Throws HF_ERR_STATE if it does not start with a checkpoint. */
  static load(storage: Storage, key = 'journal'): JournalContents | null {
    const b = storage.read(key);
    if (b === null || b.length === 0) return null;
    const records: [number, Uint8Array][] = [];
    let p = 0;
    while (p + HEAD + TAIL <= b.length) {
      const type = b[p];
      const len = getU32(b, p + 1);
      if (p + HEAD + len + TAIL > b.length) break;
      if (crc32(b, p, HEAD + len) !== getU32(b, p + HEAD + len)) break;
      records.push([type, b.subarray(p + HEAD, p + HEAD + len)]);
      p += HEAD + len + TAIL;
    }
    if (records.length === 0 || records[0][0] !== Rec.CHECKPOINT) {
      throw hfError(ErrorCode.STATE, `journal ${key} does not start with a checkpoint (${b.length} bytes)`);
    }
    return { checkpoint: records[0][1], records: records.slice(1), torn: b.length - p };
  }

  /** Continues an existing journal of `size` bytes (after load). */
  resumeAt(size: number): void {
    this.size = size;
  }
}

function seal(rec: Uint8Array, type: number, len: number): void {
  rec[0] = type;
  putU32(rec, 1, len);
  putU32(rec, HEAD + len, crc32(rec, 0, HEAD + len));
}

export function putU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = (v >>> 16) & 0xff;
  b[p + 2] = (v >>> 8) & 0xff;
  b[p + 3] = v & 0xff;
}

export function getU32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}
