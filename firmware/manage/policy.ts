/**
 * What the device's own config allows its management resource, and the pure checks against it. The
 * config's `manage` section (absent: nothing is allowed):
 *
 *   "manage": {
 *     "exec": ["/usr/bin/uptime", ["/bin/systemctl", "restart", "app"]],
 *     "shell": false,
 *     "files": ["/var/lib/app", "/etc/app"]
 *   }
 *
 * - `exec`: programs that `exec` may run. A string allows that program (argv[0] exactly as written:
 *   give absolute paths) with any arguments; a list allows exactly that argv and no other. Programs
 *   run by argv, never through a shell.
 * - `shell`: true lets `exec {shell: "..."}` run a command through /bin/sh (default false: refused).
 * - `files`: absolute directories under which `file.get` and `file.put` may read and write. A path is
 *   normalized first (`.`, `..`, repeated `/`), so `..` cannot climb out; the host target also
 *   resolves symbolic links and checks again (targets/host/manage-files.ts).
 * Refusals are HF_ERR_NOT_ALLOWED naming what was refused and what the config allows; a `manage`
 * section of the wrong shape is HF_ERR_BAD_ARGS (config.set refuses it; exec and files fail closed).
 */
import { ErrorCode, hfError } from '../errors';
import type { ExecArgs } from './ops';
import { isPlainObject } from './ops';

export interface ManagePolicy {
  /** Allowed programs (a string: any arguments) and exact argvs (a list). */
  exec: (string | string[])[];
  shell: boolean;
  /** Allowed directories, absolute and normalized. */
  files: string[];
}

export const NOTHING_ALLOWED: ManagePolicy = { exec: [], shell: false, files: [] };

/** The policy of a device config (its `manage` section). HF_ERR_BAD_ARGS names what is malformed. */
export function policyFromConfig(config: Record<string, unknown>): ManagePolicy {
  const m = config.manage;
  if (m === undefined) return NOTHING_ALLOWED;
  const bad = (what: string) => hfError(ErrorCode.BAD_ARGS, `device config manage${what}`);
  if (!isPlainObject(m)) throw bad(' must be an object');
  for (const k of Object.keys(m)) if (k !== 'exec' && k !== 'shell' && k !== 'files') throw bad(`: unknown key ${JSON.stringify(k)} (keys: exec, shell, files)`);
  const exec: (string | string[])[] = [];
  if (m.exec !== undefined) {
    if (!Array.isArray(m.exec)) throw bad('.exec must be a list');
    m.exec.forEach((e, i) => {
      if (typeof e === 'string' && e !== '' && !e.includes('\0')) exec.push(e);
      else if (Array.isArray(e) && e.length > 0 && e.every((x, j) => typeof x === 'string' && !x.includes('\0') && (j > 0 || x !== ''))) exec.push([...(e as string[])]);
      else throw bad(`.exec[${i}] must be a program (a string) or an argv (a non-empty list of strings)`);
    });
  }
  if (m.shell !== undefined && typeof m.shell !== 'boolean') throw bad('.shell must be true or false');
  const files: string[] = [];
  if (m.files !== undefined) {
    if (!Array.isArray(m.files)) throw bad('.files must be a list');
    m.files.forEach((d, i) => {
      if (typeof d !== 'string' || !d.startsWith('/') || d.includes('\0')) throw bad(`.files[${i}] must be an absolute directory`);
      files.push(normalizePath(d));
    });
  }
  return { exec, shell: m.shell === true, files };
}

/** Refuses an exec the policy does not allow (HF_ERR_NOT_ALLOWED). */
export function checkExec(policy: ManagePolicy, args: ExecArgs): void {
  if (args.shell !== null) {
    if (!policy.shell) throw hfError(ErrorCode.NOT_ALLOWED, 'exec: a shell command is not allowed by the device config (manage.shell is not true); give argv');
    return;
  }
  const argv = args.argv;
  for (const rule of policy.exec) {
    if (typeof rule === 'string' ? rule === argv[0] : rule.length === argv.length && rule.every((x, i) => x === argv[i])) return;
  }
  const exact = policy.exec.some((r) => Array.isArray(r) && r[0] === argv[0]);
  throw hfError(
    ErrorCode.NOT_ALLOWED,
    `exec: ${JSON.stringify(argv[0])}${exact ? ' with these arguments' : ''} is not on the device config's allow-list (manage.exec: ${policy.exec.length === 0 ? 'empty' : policy.exec.map((r) => JSON.stringify(r)).join(', ')})`,
  );
}

/**
 * `p` (absolute) normalized: repeated and trailing `/` removed, `.` dropped, `..` taking away the
 * segment before it (at the root it stays at the root, as the kernel does).
 */
export function normalizePath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

/** True when normalized `p` is strictly inside normalized directory `dir`. */
export function isUnder(p: string, dir: string): boolean {
  return dir === '/' ? p !== '/' : p.startsWith(dir + '/');
}

/** The normalized path if it lies under an allowed directory; HF_ERR_NOT_ALLOWED otherwise. */
export function checkPath(policy: ManagePolicy, op: string, p: string): string {
  const n = normalizePath(p);
  if (policy.files.some((d) => isUnder(n, d))) return n;
  const shown = n === p ? JSON.stringify(p) : `${JSON.stringify(p)} (${n})`;
  throw hfError(ErrorCode.NOT_ALLOWED, `${op}: ${shown} is not under a directory the device config allows (manage.files: ${policy.files.length === 0 ? 'none' : policy.files.join(', ')})`);
}
