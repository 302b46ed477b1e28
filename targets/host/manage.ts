/**
 * `hal/Management` on a workstation or server, and on a Linux board (targets/pi uses this one with
 * its own SystemInfo and Gpio): info and GPIO through the platform's HAL, the device's config as a
 * JSON file (`configPath`) replaced atomically, programs by ./run-program.ts, files by
 * ./manage-files.ts. `restart` leaves the restarting to the process's supervisor (the systemd unit
 * `holdfast flash` installs has Restart=always): after `delayMs` it calls `onRestart`, by default
 * sending this process SIGTERM. `update` needs the program to run under the launcher
 * (targets/host/device/launcher.ts; `launcher`, from HOLDFAST_LAUNCHER_DIR): it checks the bundle's
 * sha256, writes it into the launcher's directory atomically and asks the launcher to try it at the
 * next start (./device/launcher-files.ts); the executor then restarts the program.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../firmware/errors';
import { collectInfo } from '../../firmware/manage/info';
import { isPlainObject } from '../../firmware/manage/ops';
import type { Gpio } from '../../hal/gpio';
import type { Management, RunRequest, RunResult, UpdateStatus } from '../../hal/management';
import type { SystemInfo } from '../../hal/system';
import { bundlePath, confirmUpdateOf, type LauncherLink, requestPath, sha256Hex, updateStatusOf } from './device/launcher-files';
import { readFileUnder, writeAtomic, writeFileUnder } from './manage-files';
import { runProgram } from './run-program';

export interface HostManagementOptions {
  /** The device's config file (JSON). */
  configPath: string;
  /** The board's readings and GPIO (the platform's). */
  system: SystemInfo;
  gpio: Gpio;
  /** The target's name, reported by `info`. */
  target: string;
  /** Refuses a config the device cannot run with (throw HF_ERR_BAD_ARGS); called before it is written. */
  validateConfig?: (config: Record<string, unknown>) => void;
  /** Told each config once it is written (to apply what the running device can). */
  onConfigWritten?: (config: Record<string, unknown>) => void;
  /** What restarting is (default: SIGTERM to this process, for its supervisor to start it again). */
  onRestart?: () => void;
  /**
   * The launcher this program runs under (launcherFromEnv(process.env) in the device), or null
   * (default): then `update` is HF_ERR_UNSUPPORTED.
   */
  launcher?: LauncherLink | null;
}

/** What `update` says when the program runs without the launcher. */
export const NO_LAUNCHER =
  'update needs the device to run under the launcher, which keeps the bundles and rolls a bad one back: node holdfast-launcher.js --dir DIR --bundle holdfast-device.js -- device --config FILE (see docs/PROTOCOL.md 14.7)';

export class HostManagement implements Management {
  private readonly o: HostManagementOptions;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(opts: HostManagementOptions) {
    if (typeof opts?.configPath !== 'string' || opts.configPath === '') throw hfError(ErrorCode.OPTION, `configPath must be a file name, got ${JSON.stringify(opts?.configPath)}`);
    this.o = { ...opts };
  }

  info(disk: string): Record<string, unknown> {
    return collectInfo(this.o.system, this.o.gpio, disk, { target: this.o.target, node: process.version, arch: process.arch });
  }

  gpioRead(chip: string, line: number): 0 | 1 {
    return this.o.gpio.read(chip, line);
  }

  gpioWrite(chip: string, line: number, value: 0 | 1): void {
    this.o.gpio.write(chip, line, value);
  }

  readConfig(): Record<string, unknown> {
    const f = this.o.configPath;
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw hfError(ErrorCode.NOT_FOUND, `device config ${f} does not exist`, e);
      throw hfError(ErrorCode.OP_FAILED, `device config ${f}: ${code ?? (e as Error).message}`, e);
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw hfError(ErrorCode.OP_FAILED, `device config ${f} is not JSON (${(e as Error).message})`, e);
    }
    if (!isPlainObject(v)) throw hfError(ErrorCode.OP_FAILED, `device config ${f} is not a JSON object`);
    return v;
  }

  writeConfig(config: Record<string, unknown>): void {
    this.o.validateConfig?.(config);
    let text: string;
    try {
      text = JSON.stringify(config, null, 2) + '\n';
    } catch (e) {
      throw hfError(ErrorCode.BAD_ARGS, `config cannot be written as JSON (${(e as Error).message})`, e);
    }
    let mode = 0o600;
    try {
      mode = fs.statSync(this.o.configPath).mode & 0o777;
    } catch {
      // a new config file: readable by its owner only (it may hold keys)
    }
    writeAtomic(this.o.configPath, new TextEncoder().encode(text), mode);
    this.o.onConfigWritten?.(structuredClone(config));
  }

  run(req: RunRequest): Promise<RunResult> {
    return runProgram(req);
  }

  readFile(p: string, allowedDirs: string[], maxBytes: number): Uint8Array {
    return readFileUnder(p, allowedDirs, maxBytes);
  }

  writeFile(p: string, data: Uint8Array, mode: number, allowedDirs: string[]): void {
    writeFileUnder(p, data, mode, allowedDirs);
  }

  restart(delayMs: number): void {
    if (this.restartTimer !== null) return;
    const go = this.o.onRestart ?? (() => process.kill(process.pid, 'SIGTERM'));
    this.restartTimer = setTimeout(go, delayMs);
  }

  updateStatus(): UpdateStatus | null {
    const l = this.o.launcher ?? null;
    return l === null ? null : updateStatusOf(l);
  }

  async update(bundle: Uint8Array, sha256: string): Promise<void> {
    const l = this.o.launcher ?? null;
    if (l === null) throw hfError(ErrorCode.UNSUPPORTED, NO_LAUNCHER);
    const got = sha256Hex(bundle);
    if (got !== sha256) throw hfError(ErrorCode.BAD_ARGS, `update: the bundle's sha256 is ${got}, not ${sha256} as the command says; nothing was written`);
    if (bundle.length === 0) throw hfError(ErrorCode.BAD_ARGS, 'update: the bundle is empty; nothing was written');
    const file = bundlePath(l.dir, sha256);
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    } catch (e) {
      throw hfError(ErrorCode.OP_FAILED, `update: cannot make ${path.dirname(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
    writeAtomic(file, bundle, 0o644);
    writeAtomic(requestPath(l.dir), new TextEncoder().encode(JSON.stringify({ sha256 }) + '\n'), 0o644);
  }

  confirmUpdate(): void {
    const l = this.o.launcher ?? null;
    if (l !== null) confirmUpdateOf(l);
  }
}
