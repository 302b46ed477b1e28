/**
 * What bench:peers prints and writes: the Markdown tables (also pasted into docs/BENCHMARKS.md by
 * --write-docs, between its markers), the goal ratios, the machine, and the last-line JSON.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TLS_SETTINGS } from './tls';

export interface ChaosResult {
  /** Messages the application offered, both directions together. */
  messages: number;
  /** Messages the system took (a system whose connection died stops taking them). */
  taken: number;
  /** Distinct messages that arrived. */
  delivered: number;
  /** Offered but never taken: the sender saw the connection die and had nowhere to send. */
  not_sent: number;
  /** Taken but never delivered within the drain time. */
  lost: number;
  duplicated: number;
  reordered: number;
  /** Connections the proxy killed. */
  kills: number;
  connections: number;
  requests: number;
  seconds: number;
  /** Each direction: taken, delivered, duplicated, reordered, and how sending / receiving ended. */
  c2s: Record<string, number | string>;
  s2c: Record<string, number | string>;
}

export interface SystemResult {
  name: string;
  settings: string;
  reconnects: boolean;
  /** TLS rows: the plain system this one is over TLS. */
  plain?: string;
  /** TLS rows: what the server negotiated ("TLSv1.3 TLS_AES_256_GCM_SHA384"), '?' if the probe failed. */
  negotiated?: string;
  /** Fraction of the configured counts this system ran with. */
  scale: number;
  c2s_msgs_per_s?: number | null;
  s2c_msgs_per_s?: number | null;
  rtt_p50_ms?: number;
  rtt_p99_ms?: number;
  rtt_mean_ms?: number;
  c2s_1k_msgs_per_s?: number | null;
  s2c_1k_msgs_per_s?: number | null;
  c2s_16k_msgs_per_s?: number | null;
  s2c_16k_msgs_per_s?: number | null;
  bytes_per_msg?: number;
  bytes_per_msg_c2s?: number;
  bytes_per_msg_s2c?: number;
  bytes_detail?: Record<string, number>;
  idle_sessions?: number;
  heap_per_session_kb?: number;
  rss_per_session_kb?: number;
  external_per_session_kb?: number;
  chaos?: ChaosResult;
  lost?: number;
  duplicated?: number;
  counts: Record<string, number>;
  /** Window (bytes in flight) kept per direction and message size ("c2s_64"), for windowed systems. */
  windows: Record<string, number | undefined>;
  /** Every run's msg/s per direction and size (null: it did not complete). */
  trials: Record<string, (number | null)[]>;
  seconds: Record<string, number>;
  notes: string[];
}

export interface Machine {
  nproc: number;
  cpu: string;
  node: string;
  os: string;
  date: string;
  /** Versions of the peer packages as installed. */
  peers: Record<string, string>;
}

const PEERS = ['ws', 'engine.io', 'engine.io-client', 'mqtt', 'aedes'];

export interface Goal {
  what: string;
  value: number | string | null;
  goal: string;
  met: boolean;
}

/** `root`: the checkout (its node_modules holds the peers). */
export function machine(root: string): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  let nproc = os.cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8', timeout: 5000 }).trim()) || nproc;
  } catch {
    // no nproc
  }
  const peers: Record<string, string> = {};
  for (const name of PEERS) {
    try {
      peers[name] = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      peers[name] = 'missing';
    }
  }
  return { nproc, cpu, node: process.version, os: `${os.type()} ${os.release()} ${os.arch()}`, date: new Date().toISOString().slice(0, 10), peers };
}

const by = (rs: SystemResult[], name: string): SystemResult | undefined => rs.find((r) => r.name === name);

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return typeof a === 'number' && typeof b === 'number' && b > 0 ? Number((a / b).toFixed(2)) : null;
}

/** The goal ratios, from this run's numbers. */
export function goals(rs: SystemResult[]): Goal[] {
  const hh = by(rs, 'holdfast-http');
  const ht = by(rs, 'holdfast-tcp');
  const ep = by(rs, 'eio-polling');
  const raw = by(rs, 'raw-tcp');
  const g: Goal[] = [];
  const atLeast = (what: string, v: number | null, min: number): void => void g.push({ what, value: v, goal: `>= ${min}`, met: v !== null && v >= min });
  const atMost = (what: string, v: number | null, max: number): void => void g.push({ what, value: v, goal: `<= ${max}`, met: v !== null && v <= max });
  atLeast('holdfast-http c2s msg/s / eio-polling c2s msg/s', ratio(hh?.c2s_msgs_per_s, ep?.c2s_msgs_per_s), 1.5);
  atMost('holdfast-http RTT p50 / eio-polling RTT p50', ratio(hh?.rtt_p50_ms, ep?.rtt_p50_ms), 0.25);
  atLeast('holdfast-tcp c2s msg/s / raw-tcp c2s msg/s', ratio(ht?.c2s_msgs_per_s, raw?.c2s_msgs_per_s), 0.8);
  atLeast('holdfast-tcp s2c msg/s / raw-tcp s2c msg/s', ratio(ht?.s2c_msgs_per_s, raw?.s2c_msgs_per_s), 0.8);
  atMost('holdfast-tcp RTT p50 / raw-tcp RTT p50', ratio(ht?.rtt_p50_ms, raw?.rtt_p50_ms), 1.5);
  for (const r of [hh, ht]) {
    if (r === undefined) continue;
    const c = r.chaos;
    g.push({
      what: `${r.name} lost / duplicated under 2% connection kills`,
      value: c === undefined ? null : `${c.lost} / ${c.duplicated} (${c.delivered}/${c.messages} delivered, ${c.kills} kills)`,
      goal: '0 / 0, all delivered',
      met: c !== undefined && c.lost === 0 && c.duplicated === 0 && c.delivered === c.messages,
    });
  }
  return g;
}

/** One TLS row against its plain row of the same run: TLS / plain per figure (null: one of them missing). */
export interface TlsCost {
  name: string;
  plain: string;
  /** Whether the plain row was in this run. */
  plain_measured: boolean;
  negotiated: string | null;
  /** Rates: below 1, TLS is slower. */
  c2s_64: number | null;
  s2c_64: number | null;
  c2s_1k: number | null;
  s2c_1k: number | null;
  c2s_16k: number | null;
  s2c_16k: number | null;
  /** Times, bytes and memory: above 1, TLS takes more. */
  rtt_p50: number | null;
  rtt_p99: number | null;
  bytes_per_msg: number | null;
  heap_per_session: number | null;
  rss_per_session: number | null;
}

/** The TLS rows of `rs`, each against its plain row (TLS / plain). */
export function tlsCost(rs: SystemResult[]): TlsCost[] {
  return rs
    .filter((r) => r.plain !== undefined)
    .map((t) => {
      const p = by(rs, t.plain!);
      return {
        name: t.name,
        plain: t.plain!,
        plain_measured: p !== undefined,
        negotiated: t.negotiated ?? null,
        c2s_64: ratio(t.c2s_msgs_per_s, p?.c2s_msgs_per_s),
        s2c_64: ratio(t.s2c_msgs_per_s, p?.s2c_msgs_per_s),
        c2s_1k: ratio(t.c2s_1k_msgs_per_s, p?.c2s_1k_msgs_per_s),
        s2c_1k: ratio(t.s2c_1k_msgs_per_s, p?.s2c_1k_msgs_per_s),
        c2s_16k: ratio(t.c2s_16k_msgs_per_s, p?.c2s_16k_msgs_per_s),
        s2c_16k: ratio(t.s2c_16k_msgs_per_s, p?.s2c_16k_msgs_per_s),
        rtt_p50: ratio(t.rtt_p50_ms, p?.rtt_p50_ms),
        rtt_p99: ratio(t.rtt_p99_ms, p?.rtt_p99_ms),
        bytes_per_msg: ratio(t.bytes_per_msg, p?.bytes_per_msg),
        heap_per_session: ratio(t.heap_per_session_kb, p?.heap_per_session_kb),
        rss_per_session: ratio(t.rss_per_session_kb, p?.rss_per_session_kb),
      };
    });
}

const fmt = (v: number | null | undefined, d = 0): string => (typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '—');
const pair = (a: number | null | undefined, b: number | null | undefined): string => `${fmt(a)} / ${fmt(b)}`;
const mbs = (msgs: number | null | undefined, size: number): string => (typeof msgs === 'number' ? ` (${((msgs * size) / 1048576).toFixed(0)} MB/s)` : '');

/** The Markdown block: tables, goals, notes, machine and counts. */
export function markdown(
  rs: SystemResult[],
  g: Goal[],
  m: Machine,
  c: { n: number; n1k: number; n16k: number; rtt: number; idle: number; chaosN: number; killRate: number; drainMs: number; quietMs: number },
  wall: number,
): string {
  const L: string[] = [];
  L.push(`Run of ${m.date} on ${m.nproc} cores (${m.cpu}), Node ${m.node}, ${m.os}; \`npm run bench:peers\` took ${wall} s.`);
  L.push(
    `Peers: ${Object.entries(m.peers)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
  );
  L.push(
    `Counts: ${c.n.toLocaleString('en-US')} x 64 B, ${c.n1k.toLocaleString('en-US')} x 1 KiB, ${c.n16k.toLocaleString('en-US')} x 16 KiB each way; ${c.rtt} round trips; ${c.idle} idle sessions; ${c.chaosN.toLocaleString('en-US')} x 64 B each way at once under ${c.killRate * 100}% kills (paced: 25 every 5 ms), then up to ${c.drainMs / 1000} s to drain (ending after ${c.quietMs / 1000} s without progress). Throughput: best of 3 runs.`,
  );
  const scaled = rs.filter((r) => r.scale !== 1);
  if (scaled.length > 0) L.push(`Scaled down (slow): ${scaled.map((r) => `${r.name} at ${r.scale * 100}% of every count`).join(', ')}.`);
  L.push('');
  L.push('| system | c2s msg/s | s2c msg/s | RTT p50 ms | RTT p99 ms | 1 KiB c2s / s2c msg/s | 16 KiB c2s / s2c msg/s |');
  L.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rs) {
    L.push(
      `| ${r.name} | ${fmt(r.c2s_msgs_per_s)} | ${fmt(r.s2c_msgs_per_s)} | ${fmt(r.rtt_p50_ms, 3)} | ${fmt(r.rtt_p99_ms, 3)} | ${pair(r.c2s_1k_msgs_per_s, r.s2c_1k_msgs_per_s)} | ${pair(r.c2s_16k_msgs_per_s, r.s2c_16k_msgs_per_s)}${mbs(r.c2s_16k_msgs_per_s, 16384)} |`,
    );
  }
  L.push('');
  L.push('| system | wire bytes/msg (c2s / s2c) | server heap / RSS per idle session KiB | under kills: delivered / offered | lost | not sent | duplicated | out of order | kills |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rs) {
    const ch = r.chaos;
    const wire = r.bytes_per_msg === undefined ? '—' : `${fmt(r.bytes_per_msg, 1)} (${fmt(r.bytes_per_msg_c2s, 1)} / ${fmt(r.bytes_per_msg_s2c, 1)})`;
    const mem = r.heap_per_session_kb === undefined ? '—' : `${fmt(r.heap_per_session_kb, 1)} / ${fmt(r.rss_per_session_kb, 1)}`;
    L.push(
      `| ${r.name} | ${wire} | ${mem} | ${ch ? `${fmt(ch.delivered)} / ${fmt(ch.messages)}` : '—'} | ${fmt(ch?.lost)} | ${fmt(ch?.not_sent)} | ${fmt(ch?.duplicated)} | ${fmt(ch?.reordered)} | ${fmt(ch?.kills)} |`,
    );
  }
  L.push('');
  L.push('Goals (this run):');
  L.push('');
  for (const x of g) L.push(`- ${x.what}: **${x.value ?? 'not measured'}** (goal ${x.goal}) — ${x.met ? 'met' : 'NOT met'}`);
  L.push('');
  L.push('How each system ran (windows: bytes in flight the sender kept, best of 64 KiB / 256 KiB / 1 MiB, c2s-s2c per message size):');
  L.push('');
  L.push('| system | settings | reconnects by itself | windows 64 B / 1 KiB / 16 KiB |');
  L.push('|---|---|---|---|');
  const kib = (w: number | undefined): string => (w === undefined ? '?' : `${w / 1024}K`);
  for (const r of rs) {
    const w = Object.keys(r.windows).length === 0 ? 'its own' : [64, 1024, 16384].map((sz) => `${kib(r.windows[`c2s_${sz}`])}-${kib(r.windows[`s2c_${sz}`])}`).join(' / ');
    L.push(`| ${r.name} | ${r.settings} | ${r.reconnects ? 'yes' : 'no'} | ${w} |`);
  }
  const costs = tlsCost(rs);
  if (costs.length > 0) L.push(...tlsSection(rs, costs));
  const noted = rs.filter((r) => r.notes.length > 0);
  if (noted.length > 0) {
    L.push('');
    L.push('Notes:');
    L.push('');
    for (const r of noted) L.push(`- ${r.name}: ${r.notes.join('; ')}`);
  }
  L.push('');
  return L.join('\n');
}

const times = (x: number | null): string => (x === null ? '' : ` (${x.toFixed(2)}×)`);

/** The TLS cost section: each TLS row's figures with TLS / plain beside them, then the same in one line. */
function tlsSection(rs: SystemResult[], costs: TlsCost[]): string[] {
  const L: string[] = [''];
  const neg = [...new Set(costs.map((x) => x.negotiated ?? '?'))];
  L.push(
    `TLS cost: each TLS row of this run beside its plain row, TLS / plain in brackets (rates: below 1× is slower; RTT, bytes and memory: above 1× is more). Every TLS row runs with the same settings: ${TLS_SETTINGS}; negotiated: ${neg.length === 1 ? `${neg[0]} on every row` : costs.map((x) => `${x.name} ${x.negotiated ?? '?'}`).join(', ')}.`,
  );
  L.push('');
  L.push('| TLS row (plain row) | c2s msg/s | s2c msg/s | RTT p50 ms | RTT p99 ms | 1 KiB c2s / s2c msg/s | 16 KiB c2s / s2c msg/s | wire bytes/msg | server RSS per idle session KiB |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of costs) {
    const t = by(rs, x.name)!;
    const plain = x.plain_measured ? x.plain : `${x.plain}: not in this run`;
    L.push(
      `| ${x.name} (${plain}) | ${fmt(t.c2s_msgs_per_s)}${times(x.c2s_64)} | ${fmt(t.s2c_msgs_per_s)}${times(x.s2c_64)} | ${fmt(t.rtt_p50_ms, 3)}${times(x.rtt_p50)} | ${fmt(t.rtt_p99_ms, 3)}${times(x.rtt_p99)} | ${fmt(t.c2s_1k_msgs_per_s)}${times(x.c2s_1k)} / ${fmt(t.s2c_1k_msgs_per_s)}${times(x.s2c_1k)} | ${fmt(t.c2s_16k_msgs_per_s)}${times(x.c2s_16k)} / ${fmt(t.s2c_16k_msgs_per_s)}${times(x.s2c_16k)} | ${fmt(t.bytes_per_msg, 1)}${times(x.bytes_per_msg)} | ${fmt(t.rss_per_session_kb, 1)}${times(x.rss_per_session)} |`,
    );
  }
  const x2 = (v: number | null): string => (v === null ? '—' : `${v.toFixed(2)}×`);
  const line = costs.filter((x) => x.plain_measured).map((x) => `${x.plain} 64 B c2s ${x2(x.c2s_64)} plain, s2c ${x2(x.s2c_64)}, 16 KiB c2s ${x2(x.c2s_16k)}, RTT p50 ${x2(x.rtt_p50)}`);
  L.push('');
  L.push(line.length > 0 ? `TLS cost: ${line.join('; ')}.` : 'TLS cost: no plain rows in this run to compare with (run them beside: --tls).');
  return L;
}

export const DOCS_BEGIN = '<!-- bench:peers:begin (written by npm run bench:peers -- --write-docs) -->';
export const DOCS_END = '<!-- bench:peers:end -->';

/** Replaces the text between the markers in `file` with `md`. */
export function writeDocs(file: string, md: string): void {
  const text = fs.readFileSync(file, 'utf8');
  const a = text.indexOf(DOCS_BEGIN);
  const b = text.indexOf(DOCS_END);
  if (a < 0 || b < a) throw new Error(`${file}: markers not found (${DOCS_BEGIN} ... ${DOCS_END})`);
  fs.writeFileSync(file, text.slice(0, a + DOCS_BEGIN.length) + '\n' + md + text.slice(b));
}

/** The last line: one JSON object. */
export function jsonLine(rs: SystemResult[]): string {
  return JSON.stringify({
    adapters: rs.map((r) => ({
      name: r.name,
      tls: r.plain === undefined ? null : { plain: r.plain, negotiated: r.negotiated ?? null },
      c2s_msgs_per_s: r.c2s_msgs_per_s ?? null,
      s2c_msgs_per_s: r.s2c_msgs_per_s ?? null,
      rtt_p50_ms: r.rtt_p50_ms ?? null,
      rtt_p99_ms: r.rtt_p99_ms ?? null,
      bytes_per_msg: r.bytes_per_msg ?? null,
      lost: r.lost ?? null,
      duplicated: r.duplicated ?? null,
      not_sent: r.chaos?.not_sent ?? null,
      delivered: r.chaos?.delivered ?? null,
      offered: r.chaos?.messages ?? null,
      kills: r.chaos?.kills ?? null,
      c2s_1k_msgs_per_s: r.c2s_1k_msgs_per_s ?? null,
      s2c_1k_msgs_per_s: r.s2c_1k_msgs_per_s ?? null,
      c2s_16k_msgs_per_s: r.c2s_16k_msgs_per_s ?? null,
      s2c_16k_msgs_per_s: r.s2c_16k_msgs_per_s ?? null,
      heap_per_session_kb: r.heap_per_session_kb ?? null,
      rss_per_session_kb: r.rss_per_session_kb ?? null,
      scale: r.scale,
    })),
    tls_cost: tlsCost(rs),
  });
}
