/**
 * Storage in memory that outlives a simulated crash: the simulation drops the device's objects and
 * keeps this. `cutTail` models a power cut in the middle of an append.
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Storage } from '../../hal/storage';

export class MemoryStorage implements Storage {
  private readonly blobs = new Map<string, Uint8Array>();
  /** Bytes written, for tests. */
  written = 0;
  /** When set, every call throws HF_ERR_STORAGE (a failed medium). */
  broken = false;

  read(key: string): Uint8Array | null {
    this.guard();
    const b = this.blobs.get(key);
    return b === undefined ? null : b.slice();
  }

  write(key: string, data: Uint8Array): void {
    this.guard();
    this.blobs.set(key, data.slice());
    this.written += data.length;
  }

  append(key: string, data: Uint8Array, off: number, len: number): void {
    this.guard();
    const old = this.blobs.get(key);
    const n = new Uint8Array((old?.length ?? 0) + len);
    if (old) n.set(old, 0);
    n.set(data.subarray(off, off + len), old?.length ?? 0);
    this.blobs.set(key, n);
    this.written += len;
  }

  remove(key: string): void {
    this.guard();
    this.blobs.delete(key);
  }

  /** Drops the last `n` bytes of `key` (a torn append). */
  cutTail(key: string, n: number): void {
    const b = this.blobs.get(key);
    if (b !== undefined) this.blobs.set(key, b.slice(0, Math.max(0, b.length - n)));
  }

  size(key: string): number {
    return this.blobs.get(key)?.length ?? 0;
  }

  private guard(): void {
    if (this.broken) throw hfError(ErrorCode.STORAGE, 'simulated storage failure');
  }
}
