/**
 * Size and free space of the filesystem holding a path, from statfs(2) through `fs.statfsSync`
 * (Node 18.15 and later; Debian bookworm's Node is 18.19). Shared by the pi and host targets.
 */
import * as fs from 'node:fs';
import { ErrorCode, hfError } from '../../firmware/errors';

/** The part of `fs.statfsSync` used here (injectable so a test can take it away). */
export type StatfsFn = (path: string) => { bsize: number; blocks: number; bavail: number };

/** `fs.statfsSync` where this Node has it (added in 18.15), else null. */
export const nodeStatfs: StatfsFn | null = ((fs as Partial<typeof fs>).statfsSync as StatfsFn | undefined) ?? null;

/**
 * Bytes of the filesystem holding `path`: total size (blocks × block size) and free space available
 * to unprivileged users (bavail × block size, so it excludes the blocks reserved for root, as `df`
 * shows it). Throws HF_ERR_OPTION for a path that is not a non-empty string or does not exist,
 * HF_ERR_UNSUPPORTED when this Node has no statfs or the call fails otherwise.
 */
export function diskUsage(path: string, statfs: StatfsFn | null = nodeStatfs): { totalBytes: number; freeBytes: number } {
  if (typeof path !== 'string' || path === '' || path.includes('\0')) throw hfError(ErrorCode.OPTION, `disk: path must be a non-empty string, got ${JSON.stringify(path)}`);
  if (typeof statfs !== 'function') throw hfError(ErrorCode.UNSUPPORTED, `disk: this Node (${process.version}) has no fs.statfsSync (added in Node 18.15)`);
  let s: ReturnType<StatfsFn>;
  try {
    s = statfs(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw hfError(ErrorCode.OPTION, `disk: no such path ${JSON.stringify(path)} (${code})`, e);
    throw hfError(ErrorCode.UNSUPPORTED, `disk: statfs ${JSON.stringify(path)} failed (${code})`, e);
  }
  const totalBytes = s.blocks * s.bsize;
  const freeBytes = s.bavail * s.bsize;
  if (!Number.isSafeInteger(totalBytes) || !Number.isSafeInteger(freeBytes) || freeBytes > totalBytes || totalBytes < 0) {
    throw hfError(ErrorCode.UNSUPPORTED, `disk: statfs ${JSON.stringify(path)} gave blocks=${s.blocks} bavail=${s.bavail} bsize=${s.bsize}, not a size`);
  }
  return { totalBytes, freeBytes };
}
