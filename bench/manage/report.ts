/**
 * What `npm run bench:manage` prints: the tables, the goals, and the last line of JSON.
 */

/** p-th percentile (0..100) of `xs` by nearest rank; null when empty. */
export function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export interface LatencyResult {
  transport: 'tcp' | 'http';
  /** Fleet sessions open meanwhile (0: only the two latency devices were). */
  fleetOnline: number;
  rounds: number;
  /** POST /api/jobs to the outcome's event on the stream, ms. */
  event: number[];
  /** POST /api/jobs to the GET /api/jobs/ID that shows it succeeded, ms. */
  confirmed: number[];
  failures: number;
}

export interface FanoutResult {
  /** Devices the job was for. */
  devices: number;
  op: string;
  /** POST to the first GET showing every target final, s; null when that did not come within the limit. */
  seconds: number | null;
  /** Targets final, and of them not succeeded, in the last GET. */
  final: number;
  notSucceeded: number;
  /** Final target states the event stream's `targets` events brought meanwhile. */
  events: number;
  /** The gateway had ended the event stream by then (a client too far behind is dropped). */
  streamDropped: boolean;
}

export interface ManageResult {
  latency: LatencyResult[];
  fanout: FanoutResult[];
  /** Fleet sessions asked for and opened, and how long opening them took, s. */
  open: { asked: number; opened: number; seconds: number; timedOut: boolean; concurrency: number };
  /** Gateway RSS, MiB: with only the latency devices, and with every session open (after a GC). */
  rssBaseMb: number | null;
  rssMb: number | null;
  rssPeakMb: number | null;
  /** Where that RSS lives (bench/manage/main.ts residentSplit); null where /proc/PID/smaps could not be read. */
  resident: { brkMb: number; anonMb: number; fileMb: number; otherMb: number } | null;
  sessions: number;
  devicesRssMb: number | null;
  /** The gateway's process.memoryUsage() after the GC, MiB: what of its RSS is JavaScript heap and what buffers. */
  /** Also the ring memory lent to sessions then (firmware/slab-pool.ts): blocks out, the most out at once, blocks allocated in all; and V8's heap spaces (v8.getHeapSpaceStatistics: size reserved, used). */
  gatewayMemory?: {
    heapTotalMb: number;
    heapUsedMb: number;
    externalMb: number;
    arrayBuffersMb: number;
    ringsLentMb: number;
    ringBlocksLent: number;
    ringBlocksPeak: number;
    ringBlocksMade: number;
    spaces?: { name: string; sizeMb: number; usedMb: number }[];
  };
}

const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
const r3 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
const cell = (x: number | null, unit = ''): string => (x === null ? '-' : `${x}${unit}`);

/** The headline latency: both transports together, of the rounds before the fleet connected. */
function allEvents(r: ManageResult): number[] {
  return r.latency.filter((l) => l.fleetOnline === 0).flatMap((l) => l.event);
}

/** The rounds run with the fleet online, both transports together. */
function loadedEvents(r: ManageResult): number[] {
  return r.latency.filter((l) => l.fleetOnline > 0).flatMap((l) => l.event);
}

export function table(r: ManageResult): string {
  const out: string[] = [];
  out.push('| click to result (info, one device) | rounds | p50 ms | p99 ms | max ms | confirmed by GET p50 / p99 ms | failed |');
  out.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const l of r.latency)
    out.push(
      `| ${l.transport}${l.fleetOnline > 0 ? `, ${l.fleetOnline} fleet sessions open` : ''} | ${l.event.length} | ${cell(r3(percentile(l.event, 50)))} | ${cell(r3(percentile(l.event, 99)))} | ${cell(r3(percentile(l.event, 100)))} | ${cell(r3(percentile(l.confirmed, 50)))} / ${cell(r3(percentile(l.confirmed, 99)))} | ${l.failures} |`,
    );
  out.push('');
  out.push('| fan-out | devices | all outcomes recorded s | final | not succeeded | final events on the stream |');
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const f of r.fanout) out.push(`| ${f.op} | ${f.devices} | ${cell(r3(f.seconds))} | ${f.final} | ${f.notSucceeded} | ${f.events}${f.streamDropped ? ' (stream dropped by the gateway)' : ''} |`);
  out.push('');
  const o = r.open;
  out.push(
    `Sessions: ${o.opened} of ${o.asked} fleet devices opened over direct TCP in ${o.seconds.toFixed(1)} s (${o.concurrency} opening at once${o.timedOut ? '; the open limit was reached' : ''}); ${r.sessions} gateway sessions in all.`,
  );
  const per = perSessionKib(r);
  out.push(
    `Gateway RSS: ${cell(r1(r.rssBaseMb))} MiB with the latency devices only, ${cell(r1(r.rssMb))} MiB with ${r.sessions} sessions (after a GC; peak ${cell(r1(r.rssPeakMb))} MiB)${per === null ? '' : `: ${per} KiB a session`}. Devices process: ${cell(r1(r.devicesRssMb))} MiB.`,
  );
  const rs = r.resident;
  if (rs !== null)
    out.push(
      `Where it lives (/proc/PID/smaps): ${r1(rs.brkMb)} MiB C heap of the main thread ([heap]), ${r1(rs.anonMb)} MiB other anonymous mappings (V8 heap pages, other threads' arenas, large blocks), ${r1(rs.fileMb)} MiB mapped files, ${r1(rs.otherMb)} MiB the rest.`,
    );
  const m = r.gatewayMemory;
  if (m !== undefined)
    out.push(
      `Gateway memory after the GC: ${r1(m.heapUsedMb)} MiB JavaScript heap used (of ${r1(m.heapTotalMb)} MiB reserved), ${r1(m.externalMb)} MiB external (of it ${r1(m.arrayBuffersMb)} MiB ArrayBuffers); ring memory lent to sessions: ${r1(m.ringsLentMb)} MiB in ${m.ringBlocksLent} blocks (at most ${m.ringBlocksPeak} at once so far, ${m.ringBlocksMade} allocated in all).`,
    );
  if (m?.spaces !== undefined)
    out.push(
      `V8 heap spaces, MiB used of reserved: ${m.spaces
        .filter((x) => x.sizeMb >= 0.5)
        .map((x) => `${x.name.replace(/_space$/, '')} ${r1(x.usedMb)} of ${r1(x.sizeMb)}`)
        .join(', ')}.`,
    );
  return out.join('\n');
}

function perSessionKib(r: ManageResult): number | null {
  if (r.rssMb === null || r.rssBaseMb === null || r.open.opened === 0) return null;
  return Math.round(((r.rssMb - r.rssBaseMb) * 1024 * 10) / r.open.opened) / 10;
}

export interface Goal {
  what: string;
  value: number | null;
  goal: string;
  met: boolean | null;
}

export function goals(r: ManageResult): Goal[] {
  const ev = allEvents(r);
  const p50 = percentile(ev, 50);
  const p99 = percentile(ev, 99);
  const fan = (n: number): FanoutResult | undefined => r.fanout.find((f) => f.devices === n);
  const g = (what: string, value: number | null, goal: string, ok: (v: number) => boolean): Goal => ({ what, value, goal, met: value === null ? null : ok(value) });
  return [
    g('info click to result p50, ms', r3(p50), '< 50', (v) => v < 50),
    g('info click to result p99, ms', r3(p99), '< 250', (v) => v < 250),
    g('one job to 1,000 devices, s', r3(fan(1000)?.seconds ?? null), '< 2', (v) => v < 2),
    g('one job to 10,000 devices, s', r3(fan(10000)?.seconds ?? null), '< 10', (v) => v < 10),
    g(`gateway RSS with ${r.sessions} sessions, MiB`, r1(r.rssMb), '<= 320', (v) => v <= 320),
  ];
}

export function goalLines(r: ManageResult): string {
  return goals(r)
    .map((x) => `- ${x.what}: **${cell(x.value)}** (goal ${x.goal}) — ${x.met === null ? 'not measured' : x.met ? 'met' : 'NOT met'}`)
    .join('\n');
}

/** The last line: the five figures of the issue, then the per-transport and per-size ones. */
export function jsonLine(r: ManageResult): string {
  const ev = allEvents(r);
  const lat = (t: string) => r.latency.find((l) => l.transport === t && l.fleetOnline === 0)?.event ?? [];
  const fan = (n: number): number | null => r3(r.fanout.find((f) => f.devices === n)?.seconds ?? null);
  const o: Record<string, unknown> = {
    info_p50_ms: r3(percentile(ev, 50)),
    info_p99_ms: r3(percentile(ev, 99)),
    fanout_1000_s: fan(1000),
    fanout_10000_s: fan(10000),
    gateway_rss_mb: r1(r.rssMb),
    info_p50_ms_fleet_online: r3(percentile(loadedEvents(r), 50)),
    info_p99_ms_fleet_online: r3(percentile(loadedEvents(r), 99)),
    info_p50_ms_tcp: r3(percentile(lat('tcp'), 50)),
    info_p99_ms_tcp: r3(percentile(lat('tcp'), 99)),
    info_p50_ms_http: r3(percentile(lat('http'), 50)),
    info_p99_ms_http: r3(percentile(lat('http'), 99)),
    fanout: r.fanout.map((f) => ({ devices: f.devices, op: f.op, s: r3(f.seconds), final: f.final })),
    sessions: r.sessions,
    open_s: r3(r.open.seconds),
    rss_per_session_kib: perSessionKib(r),
    gateway_heap_mb: r.gatewayMemory === undefined ? null : r1(r.gatewayMemory.heapUsedMb),
    gateway_array_buffers_mb: r.gatewayMemory === undefined ? null : r1(r.gatewayMemory.arrayBuffersMb),
    gateway_c_heap_mb: r.resident === null ? null : r1(r.resident.brkMb),
    gateway_anon_mb: r.resident === null ? null : r1(r.resident.anonMb),
  };
  return JSON.stringify(o);
}
