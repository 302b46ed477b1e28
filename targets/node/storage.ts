/**
 * `hal/Storage` in a directory: one file per key. Made for flash that loses power:
 *   - `write` replaces a value atomically: write `KEY.tmp`, fsync it, rename it over `KEY`, fsync the
 *     directory; after a power cut the old value or the new one is there, never a mix;
 *   - `append` writes at the end of `KEY` through a descriptor kept open; the journal's records carry
 *     a CRC, so a record torn by a power cut is recognised and ignored on load.
 * Every write reaches the operating system before the call returns, so killing the process (kill -9)
 * loses nothing. Surviving a power cut as well needs the data on the medium: `syncAppends` (default
 * false) fsyncs after every append, at the price of one flash write per message.
 * Failures throw HF_ERR_STORAGE naming the file and the system error.
 *
 * A directory removed under a running process (`rm -rf DIR`): `write` creates it again (a write is a
 * whole value, so nothing is mixed); `append` notices that its file was removed (checked at most every
 * `REMOVED_CHECK_MS` per key, so appends in that window reach the removed file only) and throws, so
 * that the caller writes a whole value again (the device: a full checkpoint of its session).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import type { Storage } from '../../hal/storage';

export interface FileStorageOptions {
  /** fsync after every append (default false: kill -9 safe, power-cut safe only up to the last sync). */
  syncAppends?: boolean;
  /** Called when `write` found the directory gone and made it again (for a warning). */
  onRecreated?: (dir: string) => void;
}

/** How often `append` checks that the file it appends to is still in the directory, ms. */
export const REMOVED_CHECK_MS = 200;

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class FileStorage implements Storage {
  readonly dir: string;
  private readonly syncAppends: boolean;
  private readonly onRecreated: ((dir: string) => void) | undefined;
  private readonly fds = new Map<string, number>();
  /** When each kept descriptor's file was last seen in the directory (Date.now()). */
  private readonly seen = new Map<string, number>();

  /** Creates `dir` (mode 0700) if it does not exist. */
  constructor(dir: string, opts: FileStorageOptions = {}) {
    this.dir = path.resolve(dir);
    this.syncAppends = opts.syncAppends ?? false;
    this.onRecreated = opts.onRecreated;
    this.makeDir();
  }

  private makeDir(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      const what = code === 'EEXIST' ? 'is not a directory' : 'cannot be created';
      throw hfError(ErrorCode.STORAGE, `directory ${this.dir} ${what}: ${code}`, e);
    }
  }

  private file(key: string): string {
    if (!KEY.test(key) || key.endsWith('.tmp')) throw hfError(ErrorCode.OPTION, `storage key must be 1..128 of [A-Za-z0-9._-], not ending .tmp, got ${JSON.stringify(key)}`);
    return path.join(this.dir, key);
  }

  private guard<T>(what: string, file: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (isHfError(e)) throw e;
      throw hfError(ErrorCode.STORAGE, `${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
  }

  read(key: string): Uint8Array | null {
    const f = this.file(key);
    try {
      return new Uint8Array(fs.readFileSync(f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw hfError(ErrorCode.STORAGE, `read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
  }

  write(key: string, data: Uint8Array): void {
    const f = this.file(key);
    this.closeFd(key); // an append descriptor would point at the replaced file
    const tmp = f + '.tmp';
    this.guard('write', tmp, () => {
      let fd: number;
      try {
        fd = fs.openSync(tmp, 'w', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        this.makeDir(); // the directory was removed: a whole value may go into a new one
        fd = fs.openSync(tmp, 'w', 0o600);
        this.onRecreated?.(this.dir);
      }
      try {
        let at = 0;
        while (at < data.length) at += fs.writeSync(fd, data, at, data.length - at);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
    this.guard('rename', f, () => fs.renameSync(tmp, f));
    this.syncDir();
  }

  append(key: string, data: Uint8Array, off: number, len: number): void {
    const f = this.file(key);
    let fd = this.fds.get(key);
    if (fd === undefined) {
      fd = this.guard('open', f, () => fs.openSync(f, 'a', 0o600));
      this.fds.set(key, fd);
      this.seen.set(key, Date.now());
    } else if (Date.now() - (this.seen.get(key) ?? 0) >= REMOVED_CHECK_MS) {
      // Appends through a kept descriptor to a removed file succeed and keep nothing.
      const d = fd;
      if (this.guard('check', f, () => fs.fstatSync(d)).nlink === 0) {
        this.closeFd(key);
        throw hfError(ErrorCode.STORAGE, `append to ${f}: the file was removed (ENOENT)`);
      }
      this.seen.set(key, Date.now());
    }
    const d = fd;
    this.guard('append to', f, () => {
      let at = 0;
      while (at < len) at += fs.writeSync(d, data, off + at, len - at);
      if (this.syncAppends) fs.fdatasyncSync(d);
    });
  }

  remove(key: string): void {
    const f = this.file(key);
    this.closeFd(key);
    try {
      fs.unlinkSync(f);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw hfError(ErrorCode.STORAGE, `remove ${f}: ${(e as NodeJS.ErrnoException).code}`, e);
    }
    this.syncDir();
  }

  /** Closes the descriptors kept for appends (the storage stays usable: they reopen on demand). */
  close(): void {
    for (const key of [...this.fds.keys()]) this.closeFd(key);
  }

  private closeFd(key: string): void {
    const fd = this.fds.get(key);
    if (fd === undefined) return;
    this.fds.delete(key);
    this.seen.delete(key);
    try {
      fs.closeSync(fd);
    } catch {
      // already closed: nothing to keep
    }
  }

  private syncDir(): void {
    // A rename or unlink is durable once the directory is synced. Some filesystems refuse to fsync a
    // directory (EINVAL/EISDIR): there the rename is as durable as they make it.
    let fd = -1;
    try {
      fd = fs.openSync(this.dir, 'r');
      fs.fsyncSync(fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw hfError(ErrorCode.STORAGE, `sync directory ${this.dir}: ${code}`, e);
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }
}
