/**
 * The launcher: a small program that is never updated itself, which runs the device bundle as its
 * child and puts the previous bundle back when a new one does not open a session in time. Its files
 * are ./launcher-files.ts's (DIR/bundles/SHA.js, DIR/state.json, DIR/request.json, DIR/confirmed).
 *
 *   start --> running --child exits, DIR/request.json names a good bundle--> trial
 *               ^  |                                                           |
 *               |  +--child exits, no request--> (restart, back-off when it keeps exiting)
 *               |                                                           |
 *               +--DIR/confirmed names the bundle on trial (commit) ---------+
 *               +--no confirmation within updateConfirmMs (child killed), ---+
 *                  or the child exits first: rollback to the previous bundle
 *
 * Swapping bundles is one atomic replacement of DIR/state.json (the bundles are files named by their
 * sha256 that never change), so a power cut at any point leaves the old state or the new one. A
 * launcher that starts and finds a trial in DIR/state.json (it stopped, or the board lost power,
 * during one) rolls it back: the new bundle did not prove itself. A --bundle file whose sha256 is not
 * the one last taken in from it (a new flash) becomes the current bundle, whatever state.json named:
 * the bundle that was current becomes `previous` (during a trial, the trial's `previous`: the bundle
 * on trial had not proved itself), and an update staged and not yet tried is dropped (the flash
 * replaced it). The same file again (a restart) changes nothing: a bundle that update installed since
 * stays current.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkMs } from '../../../firmware/check';
import { ErrorCode, hfError } from '../../../firmware/errors';
import type { Log } from '../../../hal/log';
import { BUNDLE_SHA_ENV, bundlePath, confirmedPath, LAUNCHER_DIR_ENV, type LauncherState, readState, requestPath, sha256Hex, writeState } from './launcher-files';
import { writeAtomic } from '../manage-files';

export interface LauncherOptions {
  /** The launcher's directory (bundles and state). Made if missing. */
  dir: string;
  /** The device program's arguments, after the bundle's path (e.g. ["device", "--config", FILE]). */
  args: string[];
  /** A device bundle to take in: the first time, and whenever its sha256 changed since (a new flash). */
  bundle?: string | null;
  /** How long a new bundle has to open a session before it is rolled back, ms (default 60000). */
  updateConfirmMs?: number;
  /** How often the confirmation is looked for during a trial, ms (default 250). */
  pollMs?: number;
  /** How long a child has to exit after SIGTERM before SIGKILL, ms (default 10000). */
  killGraceMs?: number;
  /** Longest wait before starting again a child that keeps exiting within 10 s, ms (default 30000). */
  restartBackoffMaxMs?: number;
  /** The Node.js that runs the bundle (default: the one running the launcher). */
  node?: string;
  /** The child's environment, before the launcher's two variables (default process.env). */
  env?: Record<string, string | undefined>;
  log: Log;
}

export const LAUNCHER_DEFAULTS = { updateConfirmMs: 60000, pollMs: 250, killGraceMs: 10000, restartBackoffMaxMs: 30000 };

/** A child that ran at least this long before exiting is not counted as a quick exit, ms. */
const STABLE_MS = 10000;

export type LauncherPhase = 'idle' | 'running' | 'trial' | 'waiting' | 'stopping' | 'stopped';

const short = (sha: string | null): string => (sha === null ? 'none' : sha.slice(0, 12));

export class Launcher {
  readonly dir: string;
  readonly updateConfirmMs: number;
  private readonly o: Required<Omit<LauncherOptions, 'bundle' | 'env'>> & { bundle: string | null; env: Record<string, string | undefined> };
  private st: LauncherPhase = 'idle';
  private state: LauncherState | null = null;
  private child: ChildProcess | null = null;
  private startedAt = 0;
  private quickExits = 0;
  /** Why the trial's child was killed (set when it is), for the rollback's reason. */
  private trialFailure: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private killTimer: NodeJS.Timeout | null = null;
  private onStopped: (() => void) | null = null;

  /** Checks every option; nothing is touched until `start`. */
  constructor(opts: LauncherOptions) {
    if (typeof opts?.dir !== 'string' || opts.dir === '') throw hfError(ErrorCode.OPTION, `dir must be a directory name, got ${JSON.stringify(opts?.dir)}`);
    if (!Array.isArray(opts.args) || !opts.args.every((a) => typeof a === 'string')) throw hfError(ErrorCode.OPTION, 'args must be a list of strings');
    this.dir = path.resolve(opts.dir);
    this.updateConfirmMs = checkMs('updateConfirmMs', opts.updateConfirmMs ?? LAUNCHER_DEFAULTS.updateConfirmMs, 1);
    this.o = {
      dir: this.dir,
      args: [...opts.args],
      bundle: opts.bundle ?? null,
      updateConfirmMs: this.updateConfirmMs,
      pollMs: checkMs('pollMs', opts.pollMs ?? LAUNCHER_DEFAULTS.pollMs, 1, 60000),
      killGraceMs: checkMs('killGraceMs', opts.killGraceMs ?? LAUNCHER_DEFAULTS.killGraceMs, 0),
      restartBackoffMaxMs: checkMs('restartBackoffMaxMs', opts.restartBackoffMaxMs ?? LAUNCHER_DEFAULTS.restartBackoffMaxMs, 0),
      node: opts.node ?? process.execPath,
      env: opts.env ?? process.env,
      log: opts.log,
    };
  }

  get phase(): LauncherPhase {
    return this.st;
  }

  /** The child's process id, or null between children. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Recovers DIR (a trial found there is rolled back), takes in --bundle, and starts the current
   * bundle (or tries a staged one). HF_ERR_OPTION when there is nothing to run, HF_ERR_STATE when
   * DIR/state.json is not one this version writes.
   */
  start(): void {
    if (this.st !== 'idle') throw hfError(ErrorCode.STATE, `the launcher was started already (${this.st})`);
    const found = readState(this.dir);
    if (found === null && this.o.bundle === null) throw hfError(ErrorCode.OPTION, `${this.dir} holds no device bundle yet: give --bundle FILE (holdfast-device.js) the first time`);
    fs.mkdirSync(path.join(this.dir, 'bundles'), { recursive: true, mode: 0o755 });
    let s = this.takeIn(found) as LauncherState;
    this.state = s;
    if (s.phase === 'trial') {
      if (this.confirmed()) this.commit();
      else this.rollback('the launcher stopped during the trial (a power cut, a crash or a stop) before the new bundle opened a session');
    }
    s = this.state;
    if (!fs.existsSync(bundlePath(this.dir, s.current))) {
      if (s.previous === null || !fs.existsSync(bundlePath(this.dir, s.previous)))
        throw hfError(ErrorCode.STATE, `${bundlePath(this.dir, s.current)} is missing and there is no previous bundle: give --bundle FILE`);
      this.o.log.warn('the current bundle is missing; running the previous one', { current: short(s.current), previous: short(s.previous) });
      this.save({ ...s, current: s.previous, previous: null });
    }
    this.removeStaleRequest();
    this.collect();
    if (!this.takeRequest()) this.spawnChild();
  }

  /** Stops the child (SIGTERM, then SIGKILL after killGraceMs) and the launcher. Twice is fine. */
  stop(): Promise<void> {
    if (this.st === 'stopped') return Promise.resolve();
    const was = this.st;
    this.st = 'stopping';
    this.clearTimers();
    const c = this.child;
    if (c === null || was === 'idle') {
      this.st = 'stopped';
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.onStopped = resolve;
      this.kill(c);
    });
  }

  /** --bundle: the first bundle, or a new flash (its sha256 differs from the one taken in last). */
  private takeIn(s: LauncherState | null): LauncherState | null {
    const file = this.o.bundle;
    if (file === null) return s;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw hfError(ErrorCode.OPTION, `--bundle ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
    if (bytes.length === 0) throw hfError(ErrorCode.OPTION, `--bundle ${file} is empty`);
    const sha = sha256Hex(bytes);
    if (s !== null && s.installed === sha) return s;
    const dest = bundlePath(this.dir, sha);
    if (!fs.existsSync(dest)) writeAtomic(dest, bytes, 0o644);
    // The bundle to fall back on: the one that ran before, unless it was on trial (not proved).
    const before = s === null ? null : s.phase === 'trial' ? s.previous : s.current;
    const next: LauncherState = {
      v: 1,
      phase: 'stable',
      current: sha,
      previous: before === sha ? (s?.phase === 'trial' ? null : (s?.previous ?? null)) : before,
      installed: sha,
      last: s?.last ?? null,
    };
    writeState(this.dir, next);
    if (this.readRequest() !== null) this.o.log.warn('an update staged before this flash is dropped: the flashed bundle runs', { file: requestPath(this.dir) });
    this.removeFile(requestPath(this.dir));
    this.removeFile(confirmedPath(this.dir));
    this.o.log.info('bundle taken in', { file, bundle: short(sha), previous: short(next.previous) });
    return next;
  }

  private spawnChild(): void {
    const s = this.state as LauncherState;
    const trial = s.phase === 'trial';
    const file = bundlePath(this.dir, s.current);
    const env = { ...this.o.env, [LAUNCHER_DIR_ENV]: this.dir, [BUNDLE_SHA_ENV]: s.current };
    const c = spawn(this.o.node, [file, ...this.o.args], { stdio: 'inherit', env });
    this.child = c;
    this.startedAt = Date.now();
    this.trialFailure = null;
    let ended = false;
    const end = (code: number | null, signal: string | null): void => {
      if (ended) return;
      ended = true;
      this.exited(c, code, signal);
    };
    c.once('error', (e) => {
      this.o.log.error('cannot start the device bundle', { node: this.o.node, reason: (e as NodeJS.ErrnoException).code ?? e.message });
      end(null, null);
    });
    c.once('exit', end);
    this.st = trial ? 'trial' : 'running';
    this.o.log.info(trial ? 'trying the new bundle' : 'started', { bundle: short(s.current), pid: c.pid ?? null, ...(trial ? { confirm_ms: this.updateConfirmMs } : {}) });
    if (!trial) return;
    this.timers.push(
      setInterval(() => {
        if (this.st === 'trial' && this.confirmed()) this.commit();
      }, this.o.pollMs),
      setTimeout(() => this.trialTimeout(c), this.updateConfirmMs),
    );
  }

  private trialTimeout(c: ChildProcess): void {
    if (this.st !== 'trial' || this.child !== c) return;
    if (this.confirmed()) return this.commit();
    this.trialFailure = `the new bundle did not open a session within ${this.updateConfirmMs} ms`;
    this.o.log.warn('no session from the new bundle in time: stopping it', { bundle: short((this.state as LauncherState).current), confirm_ms: this.updateConfirmMs });
    this.clearTimers();
    this.kill(c);
  }

  private exited(c: ChildProcess, code: number | null, signal: string | null): void {
    if (this.child !== c) return;
    this.child = null;
    if (this.killTimer !== null) clearTimeout(this.killTimer);
    this.killTimer = null;
    const how = signal !== null ? `signal ${signal}` : code === null ? 'could not start' : `exit code ${code}`;
    if (this.st === 'stopping') {
      this.st = 'stopped';
      this.onStopped?.();
      return;
    }
    this.clearTimers();
    const s = this.state as LauncherState;
    if (s.phase === 'trial') {
      // A confirmation written just before it ended still counts: that bundle did open a session.
      if (this.confirmed()) this.commit();
      else {
        this.rollback(this.trialFailure ?? `the new bundle ended (${how}) before it opened a session`);
        this.spawnChild();
        return;
      }
    }
    if (this.takeRequest()) return;
    const ranMs = Date.now() - this.startedAt;
    if (ranMs >= STABLE_MS) this.quickExits = 0;
    const wait = this.quickExits === 0 ? 0 : Math.min(this.o.restartBackoffMaxMs, 500 * 2 ** (this.quickExits - 1));
    this.quickExits++;
    this.o.log.info('the device ended; starting it again', { bundle: short(s.current), how, in_ms: wait });
    this.st = 'waiting';
    this.timers.push(
      setTimeout(() => {
        if (this.st === 'waiting') this.spawnChild();
      }, wait),
    );
  }

  /**
   * Takes DIR/request.json: a staged bundle whose bytes hash to its name goes on trial (the state
   * is written before the request is removed, so a power cut between them is a trial found on start,
   * rolled back, and a stale request). Returns whether a trial child was started.
   */
  private takeRequest(): boolean {
    const want = this.readRequest();
    if (want === null) return false;
    const s = this.state as LauncherState;
    let ok = false;
    try {
      ok = sha256Hex(fs.readFileSync(bundlePath(this.dir, want))) === want;
    } catch {
      ok = false;
    }
    if (!ok || want === s.current) {
      if (!ok) this.o.log.warn('the staged bundle is missing or does not match its sha256; not tried', { bundle: short(want) });
      this.removeFile(requestPath(this.dir));
      return false;
    }
    this.save({ ...s, phase: 'trial', current: want, previous: s.current });
    this.removeFile(requestPath(this.dir));
    this.removeFile(confirmedPath(this.dir));
    this.collect();
    this.spawnChild();
    return true;
  }

  /** The sha256 DIR/request.json names, or null (none, or not a request). */
  private readRequest(): string | null {
    let v: unknown;
    try {
      v = JSON.parse(fs.readFileSync(requestPath(this.dir), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      this.o.log.warn('an unreadable update request was removed', { file: requestPath(this.dir) });
      this.removeFile(requestPath(this.dir));
      return null;
    }
    const sha = (v as { sha256?: unknown } | null)?.sha256;
    if (typeof sha === 'string' && /^[0-9a-f]{64}$/.test(sha)) return sha;
    this.removeFile(requestPath(this.dir));
    return null;
  }

  /** A request for a bundle just rolled back is left from a power cut between its trial's two writes. */
  private removeStaleRequest(): void {
    const want = this.readRequest();
    const s = this.state as LauncherState;
    if (want !== null && s.last?.result === 'rolled-back' && s.last.sha256 === want) this.removeFile(requestPath(this.dir));
  }

  /** True when DIR/confirmed names the bundle on trial. */
  private confirmed(): boolean {
    try {
      return fs.readFileSync(confirmedPath(this.dir), 'utf8').trim() === (this.state as LauncherState).current;
    } catch {
      return false;
    }
  }

  private commit(): void {
    const s = this.state as LauncherState;
    this.save({ ...s, phase: 'stable', last: { sha256: s.current, result: 'confirmed', reason: '', at: new Date().toISOString() } });
    this.removeFile(confirmedPath(this.dir));
    this.clearTimers();
    if (this.st === 'trial') this.st = 'running';
    this.o.log.info('the new bundle opened a session: kept', { bundle: short(s.current), previous: short(s.previous) });
  }

  private rollback(reason: string): void {
    const s = this.state as LauncherState;
    const back = s.previous ?? s.current;
    this.save({ ...s, phase: 'stable', current: back, previous: null, last: { sha256: s.current, result: 'rolled-back', reason, at: new Date().toISOString() } });
    this.removeFile(confirmedPath(this.dir));
    this.o.log.warn('rolled back', { bundle: short(s.current), to: short(back), reason });
  }

  /**
   * Removes bundles that are neither current, previous nor requested (only while no child runs, so
   * none is being staged), and temporary files a power cut left.
   */
  private collect(): void {
    const s = this.state as LauncherState;
    const keep = new Set([`${s.current}.js`, `${s.previous}.js`, `${this.readRequest()}.js`]);
    const d = path.join(this.dir, 'bundles');
    for (const f of fs.readdirSync(d)) if (!keep.has(f)) fs.rmSync(path.join(d, f), { force: true });
  }

  private save(s: LauncherState): void {
    writeState(this.dir, s);
    this.state = s;
  }

  private kill(c: ChildProcess): void {
    c.kill('SIGTERM');
    if (this.killTimer !== null) clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => c.kill('SIGKILL'), this.o.killGraceMs);
  }

  private removeFile(f: string): void {
    fs.rmSync(f, { force: true });
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }
}
