/**
 * The device's `--state` storage with a way back when it fails under a running session (the
 * directory removed, a file replaced, the disk full): instead of throwing from inside the link — an
 * uncaught error in the middle of a stream — it reports once, and the device writes a full checkpoint
 * of the session from memory (`ClientLink.attachJournal`), which `FileStorage.write` puts into a
 * directory it creates again if it has to. Until that checkpoint, appends are skipped: the checkpoint
 * holds everything they would have recorded. A full write that still fails is fatal (`onFatal`): the
 * device cannot keep the durability `--state` promises.
 */
import { type HfError, isHfError } from '../../../firmware/errors';
import type { Storage } from '../../../hal/storage';

export interface StateStoreEvents {
  /** An append failed: write a full checkpoint soon (not from inside this call). */
  onLost(err: HfError): void;
  /** A whole write failed even in a directory made again: the session cannot stay durable. */
  onFatal(err: HfError): void;
}

export class StateStore implements Storage {
  /** True from a failed append until the next whole write. */
  lost = false;
  /** Until armed (the session is built), failures throw: connect() reports them to its caller. */
  armed = false;
  private dead = false;

  constructor(
    private readonly inner: Storage & { close(): void },
    private readonly on: StateStoreEvents,
  ) {}

  read(key: string): Uint8Array | null {
    return this.inner.read(key);
  }

  remove(key: string): void {
    this.inner.remove(key);
  }

  close(): void {
    this.inner.close();
  }

  append(key: string, data: Uint8Array, off: number, len: number): void {
    if (this.lost || this.dead) return;
    try {
      this.inner.append(key, data, off, len);
    } catch (e) {
      if (!isHfError(e) || !this.armed) throw e;
      this.lost = true;
      this.inner.close();
      this.on.onLost(e);
    }
  }

  write(key: string, data: Uint8Array): void {
    if (this.dead) return;
    try {
      this.inner.write(key, data);
      this.lost = false;
    } catch (e) {
      if (!isHfError(e) || !this.armed) throw e;
      this.dead = true;
      this.on.onFatal(e);
    }
  }
}
