/**
 * The sim target's permanent storage as `hal/Platform` hands it out: a MemoryStorage (./storage.ts,
 * unchanged) behind the same key rule as the board's FileStorage — 1..128 of [A-Za-z0-9._-],
 * starting with a letter or digit, not ending in .tmp; others are HF_ERR_OPTION — so a key that
 * would fail on the board fails in the simulation too, plus `close()`, which has nothing to release
 * (the storage stays usable, as FileStorage's does).
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Storage } from '../../hal/storage';
import { MemoryStorage } from './storage';

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class SimStorage implements Storage {
  /** The memory underneath (for tests: `broken`, `cutTail`, `written`). */
  readonly memory: MemoryStorage;

  constructor(memory: MemoryStorage = new MemoryStorage()) {
    this.memory = memory;
  }

  read(key: string): Uint8Array | null {
    return this.memory.read(checkKey(key));
  }

  write(key: string, data: Uint8Array): void {
    this.memory.write(checkKey(key), data);
  }

  append(key: string, data: Uint8Array, off: number, len: number): void {
    this.memory.append(checkKey(key), data, off, len);
  }

  remove(key: string): void {
    this.memory.remove(checkKey(key));
  }

  /** Nothing to release; close twice is fine and the storage stays usable. */
  close(): void {}
}

function checkKey(key: string): string {
  if (typeof key !== 'string' || !KEY.test(key) || key.endsWith('.tmp')) throw hfError(ErrorCode.OPTION, `storage key must be 1..128 of [A-Za-z0-9._-], not ending .tmp, got ${JSON.stringify(key)}`);
  return key;
}
