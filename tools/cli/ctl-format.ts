/**
 * What `holdfast ctl` prints for people: tables of devices, jobs and audit entries, and one line per
 * job target (device, state, then the result in a few words or the error code and message).
 */
import type { AuditEntry } from '../../targets/host/gateway/manage/audit';
import type { Job, Target } from '../../targets/host/gateway/manage/jobs-store';
import type { DeviceView } from '../../targets/host/gateway/manage/service';

/** Rows as columns, each as wide as its widest cell plus two spaces; the last column unpadded. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)) + 2);
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('')
      .trimEnd();
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

/** How long ago `ms` (since the epoch) was, in a few characters: "4 s ago", "3 min ago", "never". */
export function ago(ms: number | null, now: number = Date.now()): string {
  if (ms === null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toISOString().slice(0, 10);
}

/** The CPU temperature a device last reported ("47.3 °C"), or "-". */
export function temperature(d: DeviceView): string {
  const t = d.info?.cpu_temperature_c;
  return typeof t === 'number' ? `${t.toFixed(1)} °C` : '-';
}

export function devicesTable(devices: readonly DeviceView[], now: number = Date.now()): string {
  const rows = devices.map((d) => [
    d.id,
    d.online ? (d.managed ? 'yes' : 'yes (unmanaged)') : 'no',
    d.transport ?? '-',
    ago(d.lastSeen, now),
    Object.entries(d.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-',
    temperature(d),
  ]);
  return table(['ID', 'ONLINE', 'TRANSPORT', 'LAST SEEN', 'LABELS', 'TEMP'], rows);
}

/** "succeeded 3, failed 1" from a job's counts. */
export function stateCounts(job: Job): string {
  return (
    Object.entries(job.states)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ') || '-'
  );
}

export function jobsTable(jobs: readonly Job[]): string {
  const rows = jobs.map((j) => [j.id, j.op, j.selector, j.createdBy, new Date(j.createdAt).toISOString(), `${stateCounts(j)}${j.cancelledAt === null ? '' : ' (cancelled)'}`]);
  return table(['ID', 'OP', 'SELECTOR', 'BY', 'MADE', 'STATES'], rows);
}

/** The base64 text `s` decoded as UTF-8 (an exec's output). */
function fromBase64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

/** What a result says, in a few words, for the operations whose results have a shape; else compact JSON, cut at 120 characters. */
export function resultSummary(op: string, r: unknown): string {
  if (r === null || r === undefined) return '';
  if (typeof r !== 'object') return JSON.stringify(r);
  const o = r as Record<string, unknown>;
  if (op === 'info') {
    const bits: string[] = [];
    if (typeof o.model === 'string') bits.push(o.model);
    if (typeof o.cpu_temperature_c === 'number') bits.push(`${o.cpu_temperature_c.toFixed(1)} °C`);
    if (typeof o.uptime_s === 'number') bits.push(`up ${Math.round(o.uptime_s / 60)} min`);
    if (Array.isArray(o.load) && o.load.every((x) => typeof x === 'number')) bits.push(`load ${(o.load as number[]).map((x) => x.toFixed(2)).join(' ')}`);
    return bits.join(', ');
  }
  if (op === 'exec') {
    const out =
      typeof o.stdout === 'string'
        ? fromBase64(o.stdout)
            .trim()
            .replace(/\s*\n\s*/g, ' | ')
        : '';
    return `exit ${o.exitCode === null ? o.signal : o.exitCode}${out === '' ? '' : `: ${out.slice(0, 120)}`}${o.truncated === true ? ' (truncated)' : ''}`;
  }
  if (op === 'gpio.read') return `value ${String(o.value)}`;
  if (op === 'file.put') return `${String(o.bytes)} bytes written`;
  if (op === 'file.get' && typeof o.data === 'string') return `${Buffer.from(o.data, 'base64').length} bytes`;
  if (op === 'restart') return `restarting in ${String(o.delayMs)} ms`;
  const text = JSON.stringify(r);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** One target as a line: device (padded to `idWidth`), state, then the error or the result's summary. */
export function targetLine(op: string, t: Target, idWidth: number): string {
  const what = t.errorCode !== null && t.errorCode !== undefined ? `${t.errorCode} ${(t.errorMessage ?? '').replace(/\s*\n\s*/g, ' ')}` : resultSummary(op, t.result);
  return `${t.deviceId.padEnd(idWidth)}  ${t.state.padEnd(9)}  ${what}`.trimEnd();
}

export function auditTable(entries: readonly AuditEntry[]): string {
  const rows = entries.map((e) => {
    const detail = Object.keys(e.detail ?? {}).length === 0 ? '' : JSON.stringify(e.detail);
    return [String(e.seq), e.at, e.actor, e.action, e.target, detail.length > 100 ? `${detail.slice(0, 97)}...` : detail];
  });
  return table(['SEQ', 'AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAIL'], rows);
}
