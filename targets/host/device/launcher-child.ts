/**
 * The device program's side of the launcher (./launcher.ts, files in ./launcher-files.ts), kept
 * small because the device bundle has a size budget: which launcher started this program, and
 * telling it that the bundle on trial opened a session (DIR/confirmed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LAUNCHER_DIR_ENV = 'HOLDFAST_LAUNCHER_DIR';
export const BUNDLE_SHA_ENV = 'HOLDFAST_BUNDLE_SHA256';

/** The launcher the running program was started by: its directory and the program's own bundle. */
export interface LauncherLink {
  dir: string;
  /** The sha256 of the bundle this program is. */
  running: string;
}

/** The launcher from `env` (HOLDFAST_LAUNCHER_DIR and HOLDFAST_BUNDLE_SHA256), or null without one. */
export function launcherFromEnv(env: Record<string, string | undefined>): LauncherLink | null {
  const dir = env[LAUNCHER_DIR_ENV];
  const running = env[BUNDLE_SHA_ENV];
  if (dir === undefined || dir === '' || running === undefined || !/^[0-9a-f]{64}$/.test(running)) return null;
  return { dir, running };
}

/** True when the launcher's state says the bundle `l.running` is on trial (false when it cannot be read). */
export function onTrial(l: LauncherLink): boolean {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(l.dir, 'state.json'), 'utf8'));
    return s?.phase === 'trial' && s.current === l.running;
  } catch {
    return false;
  }
}

/**
 * Tells `l`'s launcher that this program opened a session, if its bundle is on trial: writes
 * DIR/confirmed (temporary file, fsync, rename, fsync of the directory). Returns whether it was on
 * trial. Throws the system's error if the file cannot be written.
 */
export function confirmBundle(l: LauncherLink): boolean {
  if (!onTrial(l)) return false;
  const f = path.join(l.dir, 'confirmed');
  const tmp = `${f}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, `${l.running}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, f);
  const d = fs.openSync(l.dir, 'r');
  try {
    fs.fsyncSync(d);
  } finally {
    fs.closeSync(d);
  }
  return true;
}
