/** What the commands share: link and log flags, files named by flags, and running until a signal. */
import { readFileSync } from 'node:fs';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import { ACK_AFTER_PLANNED, type AckAfter, type LinkOptions, checkAckAfter } from '../../firmware/options';
import type { Flag, Values } from './args';

export const LOG_FLAGS: Flag[] = [
  { name: 'log', meta: 'text|json', help: 'log lines for people (default) or one JSON object per line' },
  { name: 'log-level', meta: 'LEVEL', help: 'debug, info (default), warn or error' },
];

export const LINK_FLAGS: Flag[] = [
  { name: 'hold-ms', type: 'number', help: 'longest the gateway holds an HTTP request (default 20000, under common proxy idle cuts)' },
  { name: 'idle-ms', type: 'number', help: 'silence after which a session ends (default 90000)' },
];

/** The --ack-after values each side takes: 'standby' is only a gateway's (the primary of a pair); a device has no standby. */
const ACK_AFTER_VALUES = { gateway: ['received', 'app', 'standby'], device: ['received', 'app'] } as const;

/** "'received', 'app' or 'standby'": the values `side` takes, for messages. */
function listed(side: 'gateway' | 'device'): string {
  const q = ACK_AFTER_VALUES[side].map((a) => `'${a}'`);
  return `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/** --ack-after: when `side` (the command's) acknowledges its peer's messages. */
export function ackAfterFlag(side: 'gateway' | 'device'): Flag {
  const peer = side === 'gateway' ? 'device' : 'gateway';
  const standby = side === 'gateway' ? "; standby: once the pair's standby holds them too (needs --peer-listen or --standby-of)" : '';
  return {
    name: 'ack-after',
    meta: ACK_AFTER_VALUES[side].join('|'),
    help: `acknowledge the ${peer}'s messages once received (default) or once the application handled them (app: one never handled is sent again, in a later session too)${standby}`,
  };
}

/** The --ack-after value (HF_ERR_OPTION for another, listing what `side` takes; 'downstream' is not built yet). */
export function ackAfterOf(v: Values, side: 'gateway' | 'device'): AckAfter {
  const a = v['ack-after'];
  if (a === 'standby' && side === 'device') throw hfError(ErrorCode.OPTION, "--ack-after 'standby' is a gateway's (the primary of a pair): a device acknowledges 'received' or 'app'");
  if (a === undefined || (ACK_AFTER_VALUES[side] as readonly unknown[]).includes(a)) return checkAckAfter(a, '--ack-after');
  if (typeof a === 'string' && ACK_AFTER_PLANNED.has(a)) throw hfError(ErrorCode.OPTION, `--ack-after '${a}' is not built yet: use ${listed(side)}`);
  throw hfError(ErrorCode.OPTION, `--ack-after must be ${listed(side)}, got ${JSON.stringify(a)}`);
}

/** Link options from the link flags (only those given). */
export function linkOptions(v: Values): LinkOptions {
  const o: LinkOptions = {};
  if (v['hold-ms'] !== undefined) o.holdMs = v['hold-ms'] as number;
  if (v['idle-ms'] !== undefined) o.idleMs = v['idle-ms'] as number;
  return o;
}

/**
 * Resolves after the first SIGINT or SIGTERM, once `stop` finished. A second signal while stopping
 * exits at once (status 130).
 */
export function onSignals(stop: (signal: string) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const on = (sig: NodeJS.Signals): void => {
      if (stopping) process.exit(130);
      stopping = true;
      stop(sig).then(resolve, (e) => {
        process.stderr.write(`holdfast: while stopping: ${isHfError(e) ? `${e.code}: ` : ''}${(e as Error).message}\n`);
        resolve();
      });
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** The bytes of the file flag `--flag` names; unreadable: HF_ERR_OPTION naming the flag, the file and the system's code. */
export function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw hfError(ErrorCode.OPTION, `--${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
}

/** The JSON object in the file `--flag` names; HF_ERR_OPTION if unreadable, not JSON, or not an object (`shape`: what it must be). */
export function readFlagJson(flag: string, file: string, shape: string): Record<string, unknown> {
  const text = readFlagFile(flag, file).toString('utf8');
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch (e) {
    throw hfError(ErrorCode.OPTION, `--${flag} ${file}: not JSON (${(e as Error).message})`, e);
  }
  if (d === null || typeof d !== 'object' || Array.isArray(d)) throw hfError(ErrorCode.OPTION, `--${flag} ${file}: must be ${shape}`);
  return d as Record<string, unknown>;
}

/** Repeatable KEY=VALUE flags (`--label site=berlin`) as a map; HF_ERR_OPTION naming the flag for a bad one. */
export function labelsOf(v: Values, flag: string): Record<string, string> | undefined {
  const list = v[flag] as string[] | undefined;
  if (list === undefined || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq < 1) throw hfError(ErrorCode.OPTION, `--${flag} must be KEY=VALUE, got ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
