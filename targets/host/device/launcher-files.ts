/**
 * The files a launcher (./launcher.ts) shares with the device program it runs, all in its directory
 * DIR (the launcher's --dir, told to the program as HOLDFAST_LAUNCHER_DIR):
 *
 *   DIR/bundles/SHA256.js   the bundles, named by the sha256 of their bytes: the current one, the one
 *                           before it, and one staged by `update`. Written whole (temporary file,
 *                           fsync, rename, fsync of the directory), never changed afterwards.
 *   DIR/state.json          the launcher's alone: which bundle is current, which came before, whether
 *                           the current one is on trial, how the last trial ended. Replaced atomically,
 *                           so a power cut anywhere leaves the old state or the new one: swapping
 *                           bundles is this one rename, not a rename per slot.
 *   DIR/request.json        the device's: {"sha256"} of a staged bundle to try when the program next
 *                           exits. The launcher removes it when it takes it.
 *   DIR/confirmed           the device's: the sha256 of the bundle on trial, written once that bundle
 *                           opened a session. The launcher removes it when it ends the trial.
 *
 * The launcher gives each program it starts HOLDFAST_LAUNCHER_DIR=DIR and HOLDFAST_BUNDLE_SHA256 (the
 * sha256 of the bundle that program is). A program without them runs without a launcher.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../../firmware/errors';
import type { UpdateStatus, UpdateTrial } from '../../../hal/management';
import { writeAtomic } from '../manage-files';
import { confirmBundle, type LauncherLink } from './launcher-child';

export { BUNDLE_SHA_ENV, confirmBundle, LAUNCHER_DIR_ENV, type LauncherLink, launcherFromEnv } from './launcher-child';

const SHA = /^[0-9a-f]{64}$/;

/** What the launcher keeps in DIR/state.json. */
export interface LauncherState {
  v: 1;
  /** "trial": `current` was just installed and must open a session within the confirm time. */
  phase: 'stable' | 'trial';
  /** The bundle started now. */
  current: string;
  /** The bundle before it (what a rollback puts back), or null. */
  previous: string | null;
  /** The sha256 of the --bundle file last taken in (so that the same file is not taken in again). */
  installed: string | null;
  /** How the latest trial ended (null before the first), with when (ISO 8601). */
  last: (UpdateTrial & { at: string }) | null;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function bundlePath(dir: string, sha: string): string {
  return path.join(dir, 'bundles', `${sha}.js`);
}

export const statePath = (dir: string): string => path.join(dir, 'state.json');
export const requestPath = (dir: string): string => path.join(dir, 'request.json');
export const confirmedPath = (dir: string): string => path.join(dir, 'confirmed');

/** DIR/state.json, or null when there is none. One that does not parse is HF_ERR_STATE. */
export function readState(dir: string): LauncherState | null {
  const f = statePath(dir);
  let text: string;
  try {
    text = fs.readFileSync(f, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw hfError(ErrorCode.STATE, `launcher state ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
  let v: Partial<LauncherState>;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw hfError(ErrorCode.STATE, `launcher state ${f} is not JSON (${(e as Error).message})`, e);
  }
  const sha = (x: unknown): boolean => typeof x === 'string' && SHA.test(x);
  const last = v?.last;
  const lastOk = last === null || (typeof last === 'object' && sha(last.sha256) && (last.result === 'confirmed' || last.result === 'rolled-back') && typeof last.reason === 'string');
  if (v?.v !== 1 || (v.phase !== 'stable' && v.phase !== 'trial') || !sha(v.current) || !(v.previous === null || sha(v.previous)) || !(v.installed === null || sha(v.installed)) || !lastOk)
    throw hfError(ErrorCode.STATE, `launcher state ${f} is not one this version writes`);
  return v as LauncherState;
}

export function writeState(dir: string, s: LauncherState): void {
  writeAtomic(statePath(dir), new TextEncoder().encode(JSON.stringify(s, null, 2) + '\n'), 0o644);
}

/** What `l`'s launcher says now (hal/Management's UpdateStatus); a state it cannot read is HF_ERR_OP_FAILED. */
export function updateStatusOf(l: LauncherLink): UpdateStatus {
  let s: LauncherState | null;
  try {
    s = readState(l.dir);
  } catch (e) {
    throw hfError(ErrorCode.OP_FAILED, (e as Error).message, e);
  }
  return { running: l.running, trial: s !== null && s.phase === 'trial' && s.current === l.running, last: s?.last ?? null };
}

/** confirmBundle, failing with HF_ERR_OP_FAILED (hal/Management's confirmUpdate). */
export function confirmUpdateOf(l: LauncherLink): void {
  try {
    confirmBundle(l);
  } catch (e) {
    throw hfError(ErrorCode.OP_FAILED, `cannot tell the launcher in ${l.dir} that a session is open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
}
