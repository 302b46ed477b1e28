/**
 * What a board can do for its management resource (firmware/manage/): the work behind each
 * operation, without the policy (what the device's config allows is checked before these are called,
 * firmware/manage/policy.ts) and without the at-most-once record (firmware/manage/executor.ts).
 * Failures throw a `HalError` (./errors): HF_ERR_NOT_FOUND, HF_ERR_NOT_ALLOWED, HF_ERR_OVERSIZE,
 * HF_ERR_BAD_ARGS, HF_ERR_OP_FAILED, HF_ERR_UNSUPPORTED, each naming the path, program or line.
 * Paths are absolute and already normalized; the bytes returned belong to the caller.
 */
/** A program to run: by argv, never through a shell unless `shell` (then argv is `[command]`). */
export interface RunRequest {
  argv: string[];
  /** Run `argv[0]` as a command line of /bin/sh (only when the device's config allows a shell). */
  shell: boolean;
  /** Kill the program (SIGKILL) once it has run this long, ms. */
  timeoutMs: number;
  /** Keep at most this many bytes of each of stdout and stderr; the rest is read and dropped. */
  maxOutputBytes: number;
}

export interface RunResult {
  /** Exit status, or null when a signal ended the program. */
  exitCode: number | null;
  signal: string | null;
  /** True when the program was killed for running past `timeoutMs`. */
  timedOut: boolean;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** True when either stream had more than `maxOutputBytes`. */
  truncated: boolean;
  durationMs: number;
}

export interface Management {
  /**
   * What the board says about itself (firmware/manage/info.ts's readings: model, temperature, memory,
   * load, uptime, the filesystem of `disk`, interfaces, GPIO chips; a reading it cannot give as
   * `{error, message}`), plus what the target adds (its name, the runtime, the architecture).
   */
  info(disk: string): Record<string, unknown>;
  /** Line `line` of the GPIO chip labelled `chip`, read as an input. */
  gpioRead(chip: string, line: number): 0 | 1;
  gpioWrite(chip: string, line: number, value: 0 | 1): void;
  /** The device's own config, as stored. */
  readConfig(): Record<string, unknown>;
  /**
   * Replaces the device's config atomically (the old one or the new one is there after a power cut).
   * A config the device refuses is HF_ERR_BAD_ARGS, and nothing is written. Applying it to the running
   * device is the device runtime's part.
   */
  writeConfig(config: Record<string, unknown>): void;
  /** Runs a program; resolves when it exited or was killed (a program that cannot start: HF_ERR_NOT_FOUND / HF_ERR_OP_FAILED). */
  run(req: RunRequest): Promise<RunResult>;
  /**
   * The whole file at `path`, which must resolve (symbolic links followed) inside one of `allowedDirs`
   * (HF_ERR_NOT_ALLOWED) and be at most `maxBytes` (HF_ERR_OVERSIZE).
   */
  readFile(path: string, allowedDirs: string[], maxBytes: number): Uint8Array;
  /**
   * Replaces the file at `path` atomically (write a temporary file beside it, sync, rename, sync the
   * directory). Its directory must exist and resolve inside one of `allowedDirs`, and `path` must not
   * be a symbolic link (HF_ERR_NOT_ALLOWED).
   */
  writeFile(path: string, data: Uint8Array, mode: number, allowedDirs: string[]): void;
  /** Restarts the device program `delayMs` from now (so that the answer can leave first); returns at once. */
  restart(delayMs: number): void;
  /**
   * What the launcher that runs this device program says about its bundles (see
   * targets/host/device/launcher.ts), or null when the program runs without one (then `update` is
   * HF_ERR_UNSUPPORTED). A launcher state that cannot be read is HF_ERR_OP_FAILED.
   */
  updateStatus(): UpdateStatus | null;
  /**
   * Stages a new device bundle for the launcher: checks that `bundle` hashes to `sha256`
   * (HF_ERR_BAD_ARGS, and nothing is written), writes it atomically beside the bundles the launcher
   * keeps and asks the launcher to try it when this program next exits. Restarting is the caller's
   * (`restart`). Without a launcher: HF_ERR_UNSUPPORTED, naming how to run under one.
   */
  update(bundle: Uint8Array, sha256: string): Promise<void>;
  /**
   * This program opened a session with the gateway: tells the launcher the bundle it runs is good.
   * While that bundle is on trial this ends the trial (no rollback from then on); otherwise, and
   * without a launcher, it does nothing. Failing to tell (HF_ERR_OP_FAILED) leaves the trial running.
   */
  confirmUpdate(): void;
}

/** What a launcher says about the bundles of a device (`Management.updateStatus`). */
export interface UpdateStatus {
  /** The sha256 of the bundle this program is (64 lowercase hex digits). */
  running: string;
  /** True while `running` is a new bundle on trial: it must open a session, or it is rolled back. */
  trial: boolean;
  /** How the launcher's latest trial ended, or null if it has had none. */
  last: UpdateTrial | null;
}

export interface UpdateTrial {
  /** The bundle that was tried. */
  sha256: string;
  result: 'confirmed' | 'rolled-back';
  /** Why it was rolled back, for people ("" when confirmed). */
  reason: string;
}
