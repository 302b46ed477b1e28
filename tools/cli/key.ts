/**
 * The device's secret key, for the commands that run or install a device (`device`, `flash`): --key,
 * else the first line of --key-file, else HOLDFAST_KEY in the environment.
 */
import { readFileSync, statSync } from 'node:fs';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import type { Values } from './args';

export interface DeviceKey {
  key: string;
  /** Where it came from, for messages: "--key", "--key-file FILE" or "HOLDFAST_KEY". */
  from: string;
}

/** Finds the key. HF_ERR_OPTION when none is given, the one given is empty, or the key file cannot be read. */
export function deviceKey(v: Values, env: NodeJS.ProcessEnv = process.env): DeviceKey {
  if (typeof v.key === 'string') {
    if (v.key.length === 0) throw hfError(ErrorCode.OPTION, '--key: the key is empty');
    return { key: v.key, from: '--key' };
  }
  const file = v['key-file'];
  if (typeof file === 'string') {
    const from = `--key-file ${file}`;
    let text: string;
    try {
      if (!statSync(file).isFile()) throw hfError(ErrorCode.OPTION, `${from}: not a file`);
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (isHfError(e)) throw e;
      throw hfError(ErrorCode.OPTION, `${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
    const key = text.split(/\r?\n/)[0].trim();
    if (key.length === 0) throw hfError(ErrorCode.OPTION, `${from}: the first line is empty`);
    return { key, from };
  }
  const key = env.HOLDFAST_KEY;
  if (key !== undefined && key.length > 0) return { key, from: 'HOLDFAST_KEY' };
  throw hfError(ErrorCode.OPTION, '--key, --key-file or HOLDFAST_KEY is required');
}
