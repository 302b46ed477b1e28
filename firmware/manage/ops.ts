/**
 * The operations of a device's management resource: their names, typed arguments and results, and
 * the one validator that turns untrusted arguments (decoded CBOR from a command, or JSON from the
 * gateway's API) into typed ones. It checks types and bounds only; what the device's config allows
 * (programs, directories) is ./policy.ts, and doing it is the executor's (./executor.ts).
 *
 *   info         {disk?: path}                         -> readings (./info.ts)
 *   gpio.read    {chip: label, line}                   -> {value: 0|1}
 *   gpio.write   {chip: label, line, value: 0|1}       -> {}
 *   config.get   {}                                    -> {config}
 *   config.set   {config: object}                      -> {}           (replaces the whole config)
 *   exec         {argv: [program, ...args] | shell: text, timeoutMs?}
 *                                                      -> {exitCode, signal, stdout, stderr, truncated, durationMs}
 *   file.get     {path}                                -> {data}
 *   file.put     {path, data, mode?}                   -> {bytes}
 *   restart      {}                                    -> {delayMs}    (answered, then restarted)
 *   update       {bundle, sha256}                      -> {sha256, previous} (after a restart into it; or
 *                                                         HF_ERR_ROLLED_BACK: executor.ts, update-record.ts)
 *
 * Byte arguments (`data`, `bundle`) are a Uint8Array from CBOR or strict base64 text from JSON.
 * Refusals: an operation that is not one of these -> HF_ERR_UNKNOWN_OP; arguments that are not an
 * object, a key that is not the operation's, a missing or mistyped value, a number out of range ->
 * HF_ERR_BAD_ARGS; a value over its bound (below) -> HF_ERR_OVERSIZE. Each message names the operation
 * and the argument. The validator never mutates what it was given and keeps no reference to it.
 */
import { fromBase64 } from '../base64';
import { encodeValue } from '../cbor-value';
import { checkInt, checkMs } from '../check';
import { ErrorCode, hfError } from '../errors';
import type { InfoReport } from './info';

export const OPS = ['info', 'gpio.read', 'gpio.write', 'config.get', 'config.set', 'exec', 'file.get', 'file.put', 'restart', 'update'] as const;
export type OpName = (typeof OPS)[number];

/** Every bound of the management resource, each with its default. */
export interface ManageLimits {
  /** Largest file `file.get` returns or `file.put` writes, bytes (default 1048576). */
  maxFileBytes?: number;
  /** Most bytes kept of each of a program's stdout and stderr, bytes (default 65536). */
  maxExecOutputBytes?: number;
  /** A program's time limit when the command names none, ms (default 10000). */
  execTimeoutMs?: number;
  /** Longest time limit a command may ask for a program, ms (default 300000). */
  maxExecTimeoutMs?: number;
  /** Most argv entries of `exec`, the program included (default 64). */
  maxArgv?: number;
  /** Longest text argument (a path, an argv entry, a chip label, a shell command), characters (default 4096). */
  maxTextChars?: number;
  /** Largest config `config.set` takes, as CBOR, bytes (default 65536). */
  maxConfigBytes?: number;
  /** Largest bundle `update` takes, bytes (default 16777216). */
  maxUpdateBytes?: number;
}

export type ResolvedManageLimits = Required<ManageLimits>;

export const MANAGE_DEFAULTS: ResolvedManageLimits = {
  maxFileBytes: 1 << 20,
  maxExecOutputBytes: 65536,
  execTimeoutMs: 10000,
  maxExecTimeoutMs: 300000,
  maxArgv: 64,
  maxTextChars: 4096,
  maxConfigBytes: 65536,
  maxUpdateBytes: 1 << 24,
};

/** Checks every limit before anything uses one; never mutates `opts`. HF_ERR_OPTION names a bad one. */
export function resolveManageLimits(opts: ManageLimits = {}): ResolvedManageLimits {
  if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, `management limits must be an object, got ${String(opts)}`);
  const o = { ...MANAGE_DEFAULTS };
  for (const k of Object.keys(opts) as (keyof ManageLimits)[]) {
    if (!Object.hasOwn(MANAGE_DEFAULTS, k)) throw hfError(ErrorCode.OPTION, `unknown management limit ${k}`);
    if (opts[k] !== undefined) o[k] = opts[k] as number;
  }
  checkInt('maxFileBytes', o.maxFileBytes, 0, 1 << 30);
  checkInt('maxExecOutputBytes', o.maxExecOutputBytes, 0, 1 << 30);
  checkMs('maxExecTimeoutMs', o.maxExecTimeoutMs, 1);
  checkMs('execTimeoutMs', o.execTimeoutMs, 1, o.maxExecTimeoutMs);
  checkInt('maxArgv', o.maxArgv, 1, 4096);
  checkInt('maxTextChars', o.maxTextChars, 1, 1 << 20);
  checkInt('maxConfigBytes', o.maxConfigBytes, 1, 1 << 24);
  checkInt('maxUpdateBytes', o.maxUpdateBytes, 0, 1 << 30);
  return o;
}

/** `exec` runs a program by argv (never through a shell), or a shell command where the config allows one. */
export type ExecArgs = { argv: string[]; shell: null; timeoutMs: number } | { argv: null; shell: string; timeoutMs: number };

export interface OpArgs {
  /** `disk`: the filesystem to report (default "/"). */
  info: { disk: string };
  'gpio.read': { chip: string; line: number };
  'gpio.write': { chip: string; line: number; value: 0 | 1 };
  'config.get': Record<string, never>;
  'config.set': { config: Record<string, unknown> };
  exec: ExecArgs;
  /** `path`: absolute. */
  'file.get': { path: string };
  /** `mode`: permission bits of a new file (default 0o644). */
  'file.put': { path: string; data: Uint8Array; mode: number };
  restart: Record<string, never>;
  /** `sha256`: of `bundle`, 64 lowercase hex digits. */
  update: { bundle: Uint8Array; sha256: string };
}

export interface ExecResult {
  /** The program's exit status, or null when a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it ("SIGKILL"), or null. */
  signal: string | null;
  /** What it wrote, at most `maxExecOutputBytes` of each. */
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** True when either stream had more than was kept. */
  truncated: boolean;
  durationMs: number;
}

export interface OpResults {
  info: InfoReport;
  'gpio.read': { value: 0 | 1 };
  'gpio.write': Record<string, never>;
  'config.get': { config: Record<string, unknown> };
  'config.set': Record<string, never>;
  exec: ExecResult;
  'file.get': { data: Uint8Array };
  'file.put': { bytes: number };
  /** `delayMs`: the device restarts this long after answering. */
  restart: { delayMs: number };
  /** `sha256`: the bundle now running; `previous`: the one before it (null if unknown). */
  update: { sha256: string; previous: string | null };
}

/** A validated operation: its name and its typed arguments. */
export type Op = { [K in OpName]: { op: K; args: OpArgs[K] } }[OpName];

const OP_SET: ReadonlySet<string> = new Set(OPS);

export function isOpName(v: unknown): v is OpName {
  return typeof v === 'string' && OP_SET.has(v);
}

/** Turns untrusted `op` and `args` into an Op, or throws as the file comment says. */
export function validateOp(op: unknown, args: unknown, limits: ResolvedManageLimits = MANAGE_DEFAULTS): Op {
  if (!isOpName(op)) {
    const shown = typeof op === 'string' ? JSON.stringify(op.slice(0, 64)) : typeof op;
    throw hfError(ErrorCode.UNKNOWN_OP, `unknown operation ${shown} (operations: ${OPS.join(', ')})`);
  }
  const a = new Args(op, args, limits);
  switch (op) {
    case 'info': {
      a.only('disk');
      return { op, args: { disk: a.has('disk') ? a.path('disk') : '/' } };
    }
    case 'gpio.read':
      a.only('chip', 'line');
      return { op, args: { chip: a.text('chip'), line: a.int('line', 0, 65535) } };
    case 'gpio.write':
      a.only('chip', 'line', 'value');
      return { op, args: { chip: a.text('chip'), line: a.int('line', 0, 65535), value: a.int('value', 0, 1) as 0 | 1 } };
    case 'config.get':
    case 'restart':
      a.only();
      return { op, args: {} };
    case 'config.set': {
      a.only('config');
      const c = a.get('config');
      if (!isPlainObject(c)) throw a.bad('config', 'must be an object');
      let size: number;
      try {
        size = encodeValue(c).length;
      } catch (e) {
        throw hfError(ErrorCode.BAD_ARGS, `config.set: config cannot be encoded (${(e as Error).message})`, e);
      }
      if (size > limits.maxConfigBytes) throw hfError(ErrorCode.OVERSIZE, `config.set: config is ${size} bytes as CBOR, over maxConfigBytes ${limits.maxConfigBytes}`);
      return { op, args: { config: structuredCopy(c) as Record<string, unknown> } };
    }
    case 'exec': {
      a.only('argv', 'shell', 'timeoutMs');
      const timeoutMs = a.has('timeoutMs') ? a.int('timeoutMs', 1, limits.maxExecTimeoutMs) : limits.execTimeoutMs;
      if (a.has('argv') === a.has('shell')) throw hfError(ErrorCode.BAD_ARGS, 'exec: give exactly one of argv (a program and its arguments) and shell');
      if (a.has('shell')) return { op, args: { argv: null, shell: a.text('shell'), timeoutMs } };
      const argv = a.get('argv');
      if (!Array.isArray(argv) || argv.length === 0) throw a.bad('argv', 'must be a non-empty list of strings');
      if (argv.length > limits.maxArgv) throw hfError(ErrorCode.OVERSIZE, `exec: argv has ${argv.length} entries, over maxArgv ${limits.maxArgv}`);
      const out: string[] = [];
      argv.forEach((v, i) => {
        out.push(a.textValue(`argv[${i}]`, v, i > 0));
      });
      return { op, args: { argv: out, shell: null, timeoutMs } };
    }
    case 'file.get':
      a.only('path');
      return { op, args: { path: a.path('path') } };
    case 'file.put': {
      a.only('path', 'data', 'mode');
      const path = a.path('path');
      const data = a.bytes('data', limits.maxFileBytes, 'maxFileBytes');
      const mode = a.has('mode') ? a.int('mode', 0, 0o777) : 0o644;
      return { op, args: { path, data, mode } };
    }
    case 'update': {
      a.only('bundle', 'sha256');
      const bundle = a.bytes('bundle', limits.maxUpdateBytes, 'maxUpdateBytes');
      const sha256 = a.text('sha256');
      if (!/^[0-9a-f]{64}$/.test(sha256)) throw a.bad('sha256', 'must be 64 lowercase hex digits');
      return { op, args: { bundle, sha256 } };
    }
  }
}

/** The arguments of one operation, read with checks that name the operation and the argument. */
class Args {
  private readonly rec: Record<string, unknown>;

  constructor(
    private readonly op: OpName,
    args: unknown,
    private readonly limits: ResolvedManageLimits,
  ) {
    if (args === undefined || args === null) this.rec = {};
    else if (isPlainObject(args)) this.rec = args;
    else throw hfError(ErrorCode.BAD_ARGS, `${op}: arguments must be an object, got ${Array.isArray(args) ? 'a list' : typeof args}`);
  }

  /** Refuses any key but these. */
  only(...keys: string[]): void {
    for (const k of Object.keys(this.rec)) {
      if (!keys.includes(k))
        throw hfError(ErrorCode.BAD_ARGS, `${this.op}: unknown argument ${JSON.stringify(k.slice(0, 64))} (${keys.length === 0 ? 'it takes none' : `it takes ${keys.join(', ')}`})`);
    }
  }

  has(k: string): boolean {
    return Object.hasOwn(this.rec, k) && this.rec[k] !== undefined;
  }

  get(k: string): unknown {
    if (!this.has(k)) throw hfError(ErrorCode.BAD_ARGS, `${this.op}: argument ${k} is missing`);
    return this.rec[k];
  }

  bad(k: string, what: string): Error {
    return hfError(ErrorCode.BAD_ARGS, `${this.op}: ${k} ${what}`);
  }

  int(k: string, min: number, max: number): number {
    const v = this.get(k);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw this.bad(k, `must be an integer in ${min}..${max}, got ${typeof v === 'number' ? String(v) : typeof v}`);
    return v;
  }

  text(k: string): string {
    return this.textValue(k, this.get(k), false);
  }

  /** A string of 1..maxTextChars characters (0.. when `mayBeEmpty`) without NUL. */
  textValue(k: string, v: unknown, mayBeEmpty: boolean): string {
    if (typeof v !== 'string') throw this.bad(k, `must be a string, got ${typeof v}`);
    if (v.length > this.limits.maxTextChars) throw hfError(ErrorCode.OVERSIZE, `${this.op}: ${k} has ${v.length} characters, over maxTextChars ${this.limits.maxTextChars}`);
    if (v === '' && !mayBeEmpty) throw this.bad(k, 'must not be empty');
    if (v.includes('\0')) throw this.bad(k, 'must not contain NUL');
    return v;
  }

  /** An absolute path (checked against the config's directories later, ./policy.ts). */
  path(k: string): string {
    const p = this.text(k);
    if (!p.startsWith('/')) throw this.bad(k, `must be an absolute path, got ${JSON.stringify(p.slice(0, 64))}`);
    return p;
  }

  /** Bytes (a Uint8Array, or base64 text), at most `max`; a copy. */
  bytes(k: string, max: number, limit: string): Uint8Array {
    const v = this.get(k);
    let b: Uint8Array | null;
    if (v instanceof Uint8Array) {
      if (v.length > max) throw hfError(ErrorCode.OVERSIZE, `${this.op}: ${k} is ${v.length} bytes, over ${limit} ${max}`);
      b = new Uint8Array(v);
    } else if (typeof v === 'string') {
      // 4 characters of base64 per 3 bytes: refuse what is too long before decoding it.
      if (v.length > Math.ceil(max / 3) * 4) throw hfError(ErrorCode.OVERSIZE, `${this.op}: ${k} is about ${Math.floor((v.length * 3) / 4)} bytes, over ${limit} ${max}`);
      b = fromBase64(v);
      if (b === null) throw this.bad(k, 'must be bytes or base64 text (RFC 4648, padded)');
      if (b.length > max) throw hfError(ErrorCode.OVERSIZE, `${this.op}: ${k} is ${b.length} bytes, over ${limit} ${max}`);
    } else {
      throw this.bad(k, `must be bytes or base64 text, got ${typeof v}`);
    }
    return b;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** A deep copy of a value of the kinds CBOR and JSON give (objects, arrays, bytes, scalars). */
function structuredCopy(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(structuredCopy);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(o, k, { value: structuredCopy(x), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}
