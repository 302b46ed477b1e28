/**
 * `hal/Management` of a simulated board: in memory and deterministic, for tests. Its config is an
 * object, its files a map of path to bytes under directories that exist (`dirs`, `mkdir`), its
 * programs functions of their argv (`programs`: a name, as argv[0] or "/bin/sh" for a shell
 * command, to what it does). A program answers at once; one that says it takes longer than its time
 * limit is "killed" (timedOut, SIGKILL, the output it had). `restart` is counted and reported to
 * `onRestart`. `update`: without `launcher`, HF_ERR_UNSUPPORTED; with it, the bundle is kept as
 * `staged` (its sha256 is not checked here: the sim has no hash) and `confirmUpdate` ends a trial.
 * Nothing here resolves links (the sim has none): paths are checked as text, as policy.ts does.
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import { collectInfo } from '../../firmware/manage/info';
import { isUnder, normalizePath } from '../../firmware/manage/policy';
import type { Gpio } from '../../hal/gpio';
import type { Management, RunRequest, RunResult, UpdateStatus } from '../../hal/management';
import type { SystemInfo } from '../../hal/system';

/** What a simulated program does with its argv. */
export interface SimProgramRun {
  exitCode?: number;
  stdout?: string | Uint8Array;
  stderr?: string | Uint8Array;
  /** How long it would run, ms (default 1). */
  durationMs?: number;
}
export type SimProgram = (argv: string[]) => SimProgramRun;

export interface SimManagementOptions {
  system: SystemInfo;
  gpio: Gpio;
  /** The device's config at the start (default {}). */
  config?: Record<string, unknown>;
  /** Directories that exist (default none). */
  dirs?: string[];
  /** Files at the start, path to bytes (their directories are made). */
  files?: Record<string, Uint8Array>;
  programs?: Record<string, SimProgram>;
  validateConfig?: (config: Record<string, unknown>) => void;
  onRestart?: (delayMs: number) => void;
  /** What a launcher would say (the sim's stand-in for one; tests change it between "restarts"), or none. */
  launcher?: UpdateStatus;
}

export class SimManagement implements Management {
  /** Programs run so far, by argv (for tests: what ran, and how often). */
  readonly ran: string[][] = [];
  /** Restarts asked for, by delay. */
  readonly restarts: number[] = [];
  /** The bundles `update` staged, in order. */
  readonly staged: { bundle: Uint8Array; sha256: string }[] = [];
  /** How often `confirmUpdate` ended a trial. */
  confirms = 0;
  private readonly o: SimManagementOptions;
  private config: Record<string, unknown>;
  private readonly dirs = new Set<string>(['/']);
  private readonly files = new Map<string, { data: Uint8Array; mode: number }>();

  constructor(opts: SimManagementOptions) {
    this.o = opts;
    this.config = structuredClone(opts.config ?? {});
    for (const d of opts.dirs ?? []) this.mkdir(d);
    for (const [p, data] of Object.entries(opts.files ?? {})) {
      const n = normalizePath(p);
      this.mkdir(parent(n));
      this.files.set(n, { data: data.slice(), mode: 0o644 });
    }
  }

  /** Makes directory `d` and its parents. */
  mkdir(d: string): void {
    let n = normalizePath(d);
    while (!this.dirs.has(n)) {
      this.dirs.add(n);
      n = parent(n);
    }
  }

  /** The bytes and mode of a file, or null (for tests). */
  peek(p: string): { data: Uint8Array; mode: number } | null {
    const f = this.files.get(normalizePath(p));
    return f === undefined ? null : { data: f.data.slice(), mode: f.mode };
  }

  info(disk: string): Record<string, unknown> {
    return collectInfo(this.o.system, this.o.gpio, disk, { target: 'sim' });
  }

  gpioRead(chip: string, line: number): 0 | 1 {
    return this.o.gpio.read(chip, line);
  }

  gpioWrite(chip: string, line: number, value: 0 | 1): void {
    this.o.gpio.write(chip, line, value);
  }

  readConfig(): Record<string, unknown> {
    return structuredClone(this.config);
  }

  writeConfig(config: Record<string, unknown>): void {
    this.o.validateConfig?.(config);
    this.config = structuredClone(config);
  }

  run(req: RunRequest): Promise<RunResult> {
    const name = req.shell ? '/bin/sh' : req.argv[0];
    const prog = this.o.programs?.[name];
    if (prog === undefined) return Promise.reject(hfError(ErrorCode.NOT_FOUND, `program ${JSON.stringify(name)} does not exist`));
    const argv = req.shell ? ['/bin/sh', '-c', req.argv[0]] : [...req.argv];
    this.ran.push(argv);
    const r = prog(argv);
    const took = r.durationMs ?? 1;
    const timedOut = took > req.timeoutMs;
    const out = cap(bytes(r.stdout), req.maxOutputBytes);
    const err = cap(bytes(r.stderr), req.maxOutputBytes);
    return Promise.resolve({
      exitCode: timedOut ? null : (r.exitCode ?? 0),
      signal: timedOut ? 'SIGKILL' : null,
      timedOut,
      stdout: out.kept,
      stderr: err.kept,
      truncated: out.truncated || err.truncated,
      durationMs: Math.min(took, req.timeoutMs),
    });
  }

  readFile(p: string, allowedDirs: string[], maxBytes: number): Uint8Array {
    this.inside(p, allowedDirs);
    const f = this.files.get(p);
    if (f === undefined) throw hfError(ErrorCode.NOT_FOUND, `file ${p} does not exist`);
    if (f.data.length > maxBytes) throw hfError(ErrorCode.OVERSIZE, `${p} is ${f.data.length} bytes, over maxFileBytes ${maxBytes}`);
    return f.data.slice();
  }

  writeFile(p: string, data: Uint8Array, mode: number, allowedDirs: string[]): void {
    this.inside(p, allowedDirs);
    if (!this.dirs.has(parent(p))) throw hfError(ErrorCode.NOT_FOUND, `directory ${parent(p)} does not exist`);
    if (this.dirs.has(p)) throw hfError(ErrorCode.BAD_ARGS, `${p} exists and is not a regular file`);
    this.files.set(p, { data: data.slice(), mode });
  }

  restart(delayMs: number): void {
    this.restarts.push(delayMs);
    this.o.onRestart?.(delayMs);
  }

  updateStatus(): UpdateStatus | null {
    const l = this.o.launcher;
    return l === undefined ? null : { ...l };
  }

  update(bundle: Uint8Array, sha256: string): Promise<void> {
    if (this.o.launcher === undefined) return Promise.reject(hfError(ErrorCode.UNSUPPORTED, 'update needs a launcher (none in this simulated board)'));
    this.staged.push({ bundle: bundle.slice(), sha256 });
    return Promise.resolve();
  }

  confirmUpdate(): void {
    const l = this.o.launcher;
    if (l === undefined || !l.trial) return;
    l.trial = false;
    this.confirms++;
  }

  private inside(p: string, allowedDirs: string[]): void {
    if (!allowedDirs.some((d) => isUnder(normalizePath(p), normalizePath(d))))
      throw hfError(ErrorCode.NOT_ALLOWED, `${p} is outside the directories the device config allows (${allowedDirs.join(', ') || 'none'})`);
  }
}

function parent(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function bytes(v: string | Uint8Array | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  return typeof v === 'string' ? new TextEncoder().encode(v) : v.slice();
}

function cap(b: Uint8Array, max: number): { kept: Uint8Array; truncated: boolean } {
  return b.length > max ? { kept: b.slice(0, max), truncated: true } : { kept: b, truncated: false };
}
