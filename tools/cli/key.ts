/**
 * The device's secret key, for the commands that run or install a device (`device`, `flash`): --key,
 * else the first line of --key-file, else HOLDFAST_KEY in the environment. `--key` shows in `ps` and
 * /proc/PID/cmdline to every user of the machine; the file and the environment do not.
 *
 * Files holding secrets (the key file, the gateway's devices file, its TLS private key) are refused
 * with HF_ERR_OPTION when group or others may read or write them (POSIX mode & 0o077), unless
 * `--insecure-key-file` is given: then the command warns at start instead.
 */
import { readFileSync, statSync } from 'node:fs';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import type { Flag, Values } from './args';

/** The flag that accepts secret files others can read, for each command that reads one. */
export const INSECURE_KEY_FILE_FLAG: Flag = {
  name: 'insecure-key-file',
  type: 'bool',
  help: 'take key files others may read (warns)',
};

export interface DeviceKey {
  key: string;
  /** Where it came from, for messages: "--key", "--key-file FILE" or "HOLDFAST_KEY" (or another command's flag, see keyFromFile). */
  from: string;
  /** Set when --insecure-key-file let a key file through that others can read: the warning to give at start. */
  warning?: string;
}

/**
 * Checks that the secret file `--flag FILE` is private to its owner (mode & 0o077 is 0). Refused
 * (HF_ERR_OPTION, naming the mode, the group/other bits set and `chmod 600 FILE`) unless `insecure`;
 * then it returns the warning to give, else null. A file that cannot be stat'ed passes: reading it
 * then fails with its own HF_ERR_OPTION. No check where modes mean nothing (Windows, `platform` 'win32').
 */
export function checkSecretFile(flag: string, file: string, insecure: boolean, platform: string = process.platform): string | null {
  if (platform === 'win32') return null;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return null; // the read that follows says why (HF_ERR_OPTION with the system's code)
  }
  const loose = mode & 0o077;
  if (loose === 0) return null;
  const oct = (n: number): string => (n | 0o1000).toString(8).replace('1', '0');
  const what = `--${flag} ${file}: mode ${oct(mode & 0o777)}, group or others may read it (bits ${oct(loose)}); fix: chmod 600 ${file}`;
  if (!insecure) throw hfError(ErrorCode.OPTION, `${what} (or give --insecure-key-file)`);
  return `${what} (taken: --insecure-key-file)`;
}

/**
 * Finds the key. HF_ERR_OPTION when none is given, the one given is empty, or the key file cannot be
 * read or is readable by group or others (see `checkSecretFile`; `v['insecure-key-file']` lets it
 * through with `warning` set).
 */
export function deviceKey(v: Values, env: NodeJS.ProcessEnv = process.env, platform: string = process.platform): DeviceKey {
  if (typeof v.key === 'string') {
    if (v.key.length === 0) throw hfError(ErrorCode.OPTION, '--key: the key is empty');
    return { key: v.key, from: '--key' };
  }
  const file = v['key-file'];
  if (typeof file === 'string') return keyFromFile('key-file', file, v['insecure-key-file'] === true, platform);
  const key = env.HOLDFAST_KEY;
  if (key !== undefined && key.length > 0) return { key, from: 'HOLDFAST_KEY' };
  throw hfError(ErrorCode.OPTION, '--key, --key-file or HOLDFAST_KEY is required');
}

/**
 * The key in the first line of the secret file `--flag FILE` (trimmed). HF_ERR_OPTION, naming the
 * flag and the file, when it is not a file, cannot be read, is readable by group or others (see
 * `checkSecretFile`; `insecure` lets it through with `warning` set) or its first line is empty.
 */
export function keyFromFile(flag: string, file: string, insecure: boolean, platform: string = process.platform): DeviceKey {
  const from = `--${flag} ${file}`;
  let text: string;
  let warning: string | null;
  try {
    if (!statSync(file).isFile()) throw hfError(ErrorCode.OPTION, `${from}: not a file`);
    warning = checkSecretFile(flag, file, insecure, platform);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (isHfError(e)) throw e;
    throw hfError(ErrorCode.OPTION, `${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
  const key = text.split(/\r?\n/)[0].trim();
  if (key.length === 0) throw hfError(ErrorCode.OPTION, `${from}: the first line is empty`);
  return warning === null ? { key, from } : { key, from, warning };
}
