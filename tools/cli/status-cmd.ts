/**
 * `holdfast status`: what a running (or stopped) device wrote to its status file — the session, what
 * carries it, the last failure, the counters, memory — in plain words, or the JSON itself with --json.
 * The file is the device's `--status FILE`, or `DIR/status.json` of its `--state DIR`.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, hfError } from '../../firmware/errors';
import { type Flag, parseArgs, usage } from './args';

/** The status file a device with `--state DIR` keeps unless --status names another. */
export function statusFileIn(dir: string): string {
  return join(dir, 'status.json');
}

const FLAGS: Flag[] = [
  { name: 'status', meta: 'FILE', help: "the device's --status file" },
  { name: 'state', meta: 'DIR', help: "the device's --state directory (its status.json)" },
  { name: 'json', type: 'bool', help: 'print the status file as it is (JSON)' },
];

/** What a status file holds (device-cmd.ts writes it). */
export interface DeviceStatus {
  id: string;
  pid: number;
  state: string;
  session: string | null;
  transport: string;
  since: string;
  updated: string;
  uptimeS?: number;
  lastError?: { code: string; message: string; at: string } | null;
  counters?: Record<string, number>;
  memory?: { rss: number; heapUsed: number };
}

/** Reads and checks the status file: missing, unreadable or garbled is HF_ERR_STATE naming it. */
export function readStatus(file: string): { status: DeviceStatus; text: string; mtimeMs: number } {
  let text: string;
  let mtimeMs: number;
  try {
    text = readFileSync(file, 'utf8');
    mtimeMs = statSync(file).mtimeMs;
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    throw hfError(ErrorCode.STATE, c === 'ENOENT' ? `no status file ${file} (is the device running with --state or --status?)` : `status file ${file}: ${c ?? (e as Error).message}`, e);
  }
  let s: DeviceStatus;
  try {
    s = JSON.parse(text);
  } catch {
    throw hfError(ErrorCode.STATE, `status file ${file} is not JSON (cut short or garbled)`);
  }
  if (s === null || typeof s !== 'object' || typeof s.id !== 'string' || typeof s.state !== 'string' || typeof s.updated !== 'string') {
    throw hfError(ErrorCode.STATE, `status file ${file} is not a device's status (no id, state or updated)`);
  }
  return { status: s, text, mtimeMs };
}

/** "3 s", "4 min", "2 h", "5 d". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
}

/** The status in plain words, one fact a line; `now`: wall time, ms. */
export function describeStatus(s: DeviceStatus, file: string, mtimeMs: number, now: number): string {
  const c = s.counters ?? {};
  const n = (k: string): number => c[k] ?? 0;
  const when = (iso: string): string => `${ago(now - Date.parse(iso))} ago`;
  const e = s.lastError;
  const m = s.memory;
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
  return `device ${s.id} (pid ${s.pid}): ${s.state === 'open' ? `session open on ${s.transport}` : s.state}, since ${when(s.since)}
session: ${s.session ?? 'none'}
last error: ${e ? `${e.code}: ${e.message} (${when(e.at)})` : 'none'}
messages: ${n('messagesIn')} in, ${n('messagesOut')} out (${n('retransmits')} sent again, ${n('duplicatesIn')} duplicates dropped)
payload bytes: ${n('bytesIn')} in, ${n('bytesOut')} out; bundles: ${n('bundlesIn')} in, ${n('bundlesOut')} out
http requests: ${n('requestsSent')} sent, ${n('requestsFailed')} failed; new sessions after a failure: ${n('reconnects')}
${m ? `memory: ${mib(m.rss)} resident, ${mib(m.heapUsed)} heap; ` : ''}up ${ago((s.uptimeS ?? 0) * 1000)}
status file ${file}, written ${ago(now - mtimeMs)} ago
`;
}

export async function statusCommand(argv: string[]): Promise<number> {
  const { values: v, help } = parseArgs(argv, FLAGS);
  if (help) {
    process.stdout.write(usage('holdfast status [--status FILE | --state DIR] [--json]', "Prints a device's state and counters from its status file.", FLAGS));
    return 0;
  }
  if (v.status !== undefined && v.state !== undefined) throw hfError(ErrorCode.OPTION, '--status and --state name the same file: give one');
  const file = typeof v.status === 'string' ? v.status : typeof v.state === 'string' ? statusFileIn(v.state) : null;
  if (file === null) throw hfError(ErrorCode.OPTION, '--status FILE or --state DIR is required');
  const r = readStatus(file);
  process.stdout.write(v.json === true ? r.text : describeStatus(r.status, file, r.mtimeMs, Date.now()));
  return 0;
}
