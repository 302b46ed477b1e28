/**
 * Files for `file.get`, `file.put` and `config.set` on a real filesystem (hal/management.ts).
 *
 * The firmware has normalized the path and checked it against the config's directories as text
 * (firmware/manage/policy.ts); here the filesystem has its say too: symbolic links are resolved
 * (realpath) for the file (read) or its directory (write) and for each allowed directory, and the
 * result must still lie inside one of them, so a link planted under an allowed directory cannot reach
 * out of it (HF_ERR_NOT_ALLOWED). A write never follows a link at the file itself.
 *
 * Writes are atomic (`writeAtomic`): a temporary file in the same directory, written, fsynced, given
 * its mode, renamed over the target, and the directory fsynced; a power cut leaves the old file or the
 * new one, and a failure leaves the old one and no temporary file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import { isUnder } from '../../firmware/manage/policy';

let tmpCounter = 0;

/** The whole file at `p`, which must resolve inside one of `allowedDirs` and hold at most `maxBytes`. */
export function readFileUnder(p: string, allowedDirs: string[], maxBytes: number): Uint8Array {
  const real = realpath(p, 'file');
  inside(p, real, allowedDirs);
  return guard('read', p, () => {
    const fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw hfError(ErrorCode.BAD_ARGS, `${p} is not a regular file`);
      if (st.size > maxBytes) throw hfError(ErrorCode.OVERSIZE, `${p} is ${st.size} bytes, over maxFileBytes ${maxBytes}`);
      const buf = new Uint8Array(maxBytes + 1);
      let n = 0;
      for (;;) {
        const r = fs.readSync(fd, buf, n, buf.length - n, null);
        if (r === 0) break;
        n += r;
        if (n > maxBytes) throw hfError(ErrorCode.OVERSIZE, `${p} grew past maxFileBytes ${maxBytes} while it was read`);
      }
      return buf.slice(0, n);
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Replaces the file at `p` (its directory must exist and resolve inside one of `allowedDirs`). */
export function writeFileUnder(p: string, data: Uint8Array, mode: number, allowedDirs: string[]): void {
  const dir = realpath(path.dirname(p), 'directory');
  const target = path.join(dir, path.basename(p));
  inside(p, target, allowedDirs);
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw hfError(ErrorCode.OP_FAILED, `${p}: ${(e as NodeJS.ErrnoException).code}`, e);
  }
  if (st?.isSymbolicLink()) throw hfError(ErrorCode.NOT_ALLOWED, `${p} is a symbolic link; file.put does not follow links`);
  if (st !== null && !st.isFile()) throw hfError(ErrorCode.BAD_ARGS, `${p} exists and is not a regular file`);
  writeAtomic(target, data, mode);
}

/** Writes `data` to `file` atomically with permission bits `mode` (see the file comment). */
export function writeAtomic(file: string, data: Uint8Array, mode: number): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
  guard('write', file, () => {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      try {
        let at = 0;
        while (at < data.length) at += fs.writeSync(fd, data, at, data.length - at);
        fs.fchmodSync(fd, mode);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    syncDir(dir);
  });
}

function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw e;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

function realpath(p: string, what: string): string {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw hfError(ErrorCode.NOT_FOUND, `${what} ${p} does not exist`, e);
    throw hfError(ErrorCode.OP_FAILED, `${what} ${p}: ${code ?? (e as Error).message}`, e);
  }
}

/** Refuses `real` (what `p` resolves to) unless it lies inside one of the allowed directories, resolved. */
function inside(p: string, real: string, allowedDirs: string[]): void {
  for (const d of allowedDirs) {
    let rd: string;
    try {
      rd = fs.realpathSync(d);
    } catch {
      continue; // an allowed directory that does not exist allows nothing
    }
    if (isUnder(real, rd)) return;
  }
  const shown = real === p ? p : `${p} (resolves to ${real})`;
  throw hfError(ErrorCode.NOT_ALLOWED, `${shown} is outside the directories the device config allows (${allowedDirs.join(', ') || 'none'})`);
}

function guard<T>(what: string, p: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isHfError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw hfError(ErrorCode.NOT_FOUND, `${what} ${p}: ENOENT`, e);
    if (code === 'ELOOP') throw hfError(ErrorCode.NOT_ALLOWED, `${what} ${p}: a symbolic link appeared in its place (ELOOP)`, e);
    throw hfError(ErrorCode.OP_FAILED, `${what} ${p}: ${code ?? (e as Error).message}`, e);
  }
}
