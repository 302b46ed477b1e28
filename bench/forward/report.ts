/**
 * bench:forward's output: the table (row x workload in MB/s, each with its ratio to the ssh row of
 * the same run), the TLS rows against their plain rows, the notes, and the last line of JSON.
 */

/** A workload of a row: a figure, or why there is none. */
export interface Cell {
  /** MB/s (10^6 bytes/s) for the goodput workloads, ms for first_byte; null when not measured. */
  value: number | null;
  /** 'ok', 'timeout', 'failed', 'skipped' or 'not run'. */
  status: string;
  /** Every measured run (MB/s), or every first-byte sample (ms). */
  samples: number[];
  /** Goodput runs: each run's longest time between two arrivals at the receiving end(s), ms (a stall shows here). */
  longest_gap_ms?: number[];
  note?: string;
}

export const WORKLOADS = ['c2s', 's2c', 'both', 'first_byte'] as const;
export type Workload = (typeof WORKLOADS)[number];

export const WORKLOAD_TITLES: Record<Workload, string> = {
  c2s: 'client -> target MB/s',
  s2c: 'target -> client MB/s',
  both: 'both at once MB/s (sum)',
  first_byte: 'first byte ms (median)',
};

export interface RowResult {
  name: string;
  about: string;
  /** 'ok', 'skipped' (with the reason in note), 'failed' (setup) or 'timeout' (some workload). */
  status: string;
  note?: string;
  info: Record<string, string>;
  cells: Record<Workload, Cell>;
  setup_ms: number | null;
  seconds: number;
}

const PLAIN: Record<string, string> = { 'holdfast-tcp-tls': 'holdfast-tcp', 'holdfast-http-tls': 'holdfast-http' };

const by = (rs: RowResult[], name: string): RowResult | undefined => rs.find((r) => r.name === name);

/** a / b to two places, or null. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return typeof a === 'number' && typeof b === 'number' && b > 0 ? Number((a / b).toFixed(2)) : null;
}

function fmt(v: number | null, w: Workload): string {
  if (v === null) return '—';
  return w === 'first_byte' ? v.toFixed(3) : v.toFixed(0);
}

function cellText(r: RowResult, w: Workload, ssh: RowResult | undefined): string {
  const c = r.cells[w];
  if (c.value === null) return c.status === 'ok' ? '—' : c.status;
  const x = r.name === 'ssh' ? null : ratio(c.value, ssh?.cells[w].value);
  return `${fmt(c.value, w)}${x === null ? '' : ` (${x.toFixed(2)}×)`}`;
}

/** The Markdown table and the lines under it. */
export function table(rs: RowResult[], heading: string): string {
  const ssh = by(rs, 'ssh');
  const L: string[] = [heading, ''];
  L.push(`| row | ${WORKLOADS.map((w) => WORKLOAD_TITLES[w]).join(' | ')} |`);
  L.push(`|---|${WORKLOADS.map(() => '---:').join('|')}|`);
  for (const r of rs) {
    const cells = r.status === 'skipped' || r.status === 'failed' ? WORKLOADS.map(() => r.status) : WORKLOADS.map((w) => cellText(r, w, ssh));
    L.push(`| ${r.name} | ${cells.join(' | ')} |`);
  }
  L.push('');
  L.push(ssh?.cells.c2s.value ? '(×: this row / the ssh row of this run; for first byte below 1× is faster.)' : '(No ssh row in this run: no ratios.)');
  const tls = rs.filter((r) => PLAIN[r.name] !== undefined && by(rs, PLAIN[r.name]) !== undefined);
  if (tls.length > 0) {
    const parts = tls.map((t) => {
      const p = by(rs, PLAIN[t.name])!;
      const xs = WORKLOADS.map((w) => `${w} ${ratio(t.cells[w].value, p.cells[w].value)?.toFixed(2) ?? '—'}×`);
      return `${t.name} / ${p.name}: ${xs.join(', ')}`;
    });
    L.push(`TLS cost (TLS row / plain row): ${parts.join('; ')}.`);
  }
  const based = rs.filter((r) => by(rs, `${r.name}@base`) !== undefined);
  if (based.length > 0) {
    const parts = based.map((r) => {
      const b = by(rs, `${r.name}@base`)!;
      return `${r.name}: ${WORKLOADS.map((w) => `${w} ${ratio(r.cells[w].value, b.cells[w].value)?.toFixed(2) ?? '—'}×`).join(', ')}`;
    });
    L.push(`Against the baseline (this checkout / NAME@base): ${parts.join('; ')}.`);
  }
  L.push('');
  for (const r of rs) {
    const info = Object.entries(r.info).map(([k, v]) => `${k} ${v}`);
    const gaps = WORKLOADS.filter((w) => (r.cells[w].longest_gap_ms ?? []).length > 0).map((w) => `${w} ${Math.max(...r.cells[w].longest_gap_ms!).toFixed(0)} ms`);
    if (gaps.length > 0) info.push(`longest pause in arrivals ${gaps.join(', ')}`);
    const notes = [r.note, ...WORKLOADS.map((w) => r.cells[w].note)].filter((x) => x !== undefined);
    L.push(`- ${r.name}: ${r.about}${info.length > 0 ? `; ${info.join(', ')}` : ''}${r.setup_ms !== null ? `; ready in ${r.setup_ms} ms` : ''}${notes.length > 0 ? `. ${notes.join('; ')}` : ''}`);
  }
  return L.join('\n') + '\n';
}

const c2s = (rs: RowResult[], name: string): number | null => by(rs, name)?.cells.c2s.value ?? null;

/** The last line: the client -> target figures and holdfast-tcp's first byte. */
export function jsonLine(rs: RowResult[]): string {
  return JSON.stringify({
    raw_mb_per_s: c2s(rs, 'raw'),
    ssh_mb_per_s: c2s(rs, 'ssh'),
    socat_mb_per_s: c2s(rs, 'socat'),
    holdfast_tcp_mb_per_s: c2s(rs, 'holdfast-tcp'),
    holdfast_http_mb_per_s: c2s(rs, 'holdfast-http'),
    first_byte_ms: by(rs, 'holdfast-tcp')?.cells.first_byte.value ?? null,
  });
}
