/**
 * The gateway's counters and their rendering in the Prometheus text exposition format (version
 * 0.0.4): `# HELP`, `# TYPE`, then `name{label="value"} number` lines. Counting is plain number
 * fields incremented in place (`GatewayCounters`); nothing is built until a scrape asks for the text.
 */
import type { EndpointStats } from '../../../firmware/endpoint';
import { ErrorCode, hfError } from '../../../firmware/errors';
import { PAIR_ROLE_NAMES, type PairStatus } from './pair/pair';

/** The Content-Type of the text `renderMetrics` writes. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One line of a metric family: its labels (none: absent or empty) and its value. */
export interface MetricSample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

/** A metric: its name (counters end in `_total`), one line of help, its type and its samples. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: readonly MetricSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value or help text with `\`, newline (and, in label values, `"`) escaped as the format asks. */
function escaped(s: string, quote: boolean): string {
  let out = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  if (quote) out = out.replace(/"/g, '\\"');
  return out;
}

/** A sample's value as the format writes it: integers plainly, `+Inf`, `-Inf`, `NaN`. */
function valueText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * The families as exposition text, in the order given. A name or label name the format does not
 * allow, a counter not named `..._total`, or a name given twice is HF_ERR_OPTION naming it.
 */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const f of families) {
    if (!NAME.test(f.name)) throw hfError(ErrorCode.OPTION, `metric name ${JSON.stringify(f.name)} is not [a-zA-Z_:][a-zA-Z0-9_:]*`);
    if (f.type === 'counter' && !f.name.endsWith('_total')) throw hfError(ErrorCode.OPTION, `counter ${f.name} must end in _total`);
    if (seen.has(f.name)) throw hfError(ErrorCode.OPTION, `metric ${f.name} given twice`);
    seen.add(f.name);
    out += `# HELP ${f.name} ${escaped(f.help, false)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      let labels = '';
      if (s.labels !== undefined) {
        for (const [k, v] of Object.entries(s.labels)) {
          if (!LABEL.test(k) || k.startsWith('__')) throw hfError(ErrorCode.OPTION, `label name ${JSON.stringify(k)} of ${f.name} is not [a-zA-Z_][a-zA-Z0-9_]* (or starts with __)`);
          labels += `${labels === '' ? '' : ','}${k}="${escaped(v, true)}"`;
        }
      }
      out += `${f.name}${labels === '' ? '' : `{${labels}}`} ${valueText(s.value)}\n`;
    }
  }
  return out;
}

/** The link counters summed over sessions (EndpointStats without the timer count). */
export type LinkTotals = Omit<EndpointStats, 'timeouts'>;

const LINK_KEYS = ['bundlesIn', 'bundlesOut', 'messagesIn', 'messagesOut', 'bytesIn', 'bytesOut', 'duplicatesIn', 'retransmits'] as const;

/** A LinkTotals of zeros. */
export function zeroTotals(): LinkTotals {
  return { bundlesIn: 0, bundlesOut: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, duplicatesIn: 0, retransmits: 0 };
}

/** Adds `s`'s link counters to `into` (in place). */
export function addTotals(into: LinkTotals, s: LinkTotals): void {
  for (const k of LINK_KEYS) into[k] += s[k];
}

/** What the gateway and its fronts count as things happen; read only by a scrape. */
export class GatewayCounters {
  sessionsOpened = 0;
  sessionsClosed = 0;
  sessionsFailed = 0;
  /** HTTP requests that reached the front, whatever became of them. */
  httpRequests = 0;
  /** Frames read on direct TCP connections. */
  tcpFrames = 0;
  /** Direct TCP connections accepted (before any limit refused them). */
  tcpConnections = 0;
  /** A cluster's: direct TCP connections handed to the node serving their session (cluster/pipes.ts). */
  tcpRelayed = 0;
  /** A worker's HTTP requests on a handed connection naming no session of the worker: closed unanswered, to be routed again. */
  misrouted = 0;
  /** A cluster node's HTTP requests answered by the node that serves their session (relayed over NATS). */
  relayed = 0;
  /** Refusals with HF_ERR_AUTH: unknown devices, wrong keys, replayed hellos, forged tags. */
  authFailures = 0;
  /** The link counters of the sessions that ended (the live ones are summed at each scrape). */
  readonly ended: LinkTotals = zeroTotals();
  /** Refused requests, frames and connections by error code (one entry per code: bounded). */
  readonly refusals = new Map<string, number>();

  /** One refusal with `code`. */
  refused(code: string): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
    if (code === ErrorCode.AUTH) this.authFailures++;
  }
}

/** What a scrape reads besides the counters: the state now. */
export interface GatewayGauges {
  sessionsHttp: number;
  sessionsTcp: number;
  /** The link counters of ended and live sessions together. */
  links: LinkTotals;
  heldRequests: number;
  tcpConnectionsOpen: number;
  preAuthConnections: number;
  pipedConnections: number;
  uptimeSeconds: number;
  residentBytes: number;
  heapUsedBytes: number;
  /** Ring memory lent to sessions now, bytes; free blocks ready for the next; bytes of the chunks they are cut from (firmware/slab-pool.ts). */
  ringBytesLent: number;
  ringBlocksKept: number;
  ringChunkBytes: number;
}

/** The gateway's metric families (holdfast_gateway_...). */
export function gatewayFamilies(c: GatewayCounters, g: GatewayGauges): MetricFamily[] {
  const p = 'holdfast_gateway_';
  const one = (name: string, type: 'counter' | 'gauge', help: string, value: number): MetricFamily => ({ name: p + name, help, type, samples: [{ value }] });
  const l = g.links;
  return [
    {
      name: `${p}sessions_open`,
      help: 'Sessions open now, by what carries them.',
      type: 'gauge',
      samples: [
        { labels: { transport: 'http' }, value: g.sessionsHttp },
        { labels: { transport: 'tcp' }, value: g.sessionsTcp },
      ],
    },
    one('sessions_opened_total', 'counter', 'Sessions opened (hellos accepted).', c.sessionsOpened),
    one('sessions_closed_total', 'counter', 'Sessions that ended cleanly.', c.sessionsClosed),
    one('sessions_failed_total', 'counter', 'Sessions that ended with an error (idle, replaced by a newer one, aborted, gateway shutting down).', c.sessionsFailed),
    one('bundles_in_total', 'counter', 'Bundles accepted from devices.', l.bundlesIn),
    one('bundles_out_total', 'counter', 'Bundles sent to devices.', l.bundlesOut),
    one('messages_in_total', 'counter', 'New messages received from devices (duplicates not counted).', l.messagesIn),
    one('messages_out_total', 'counter', 'Messages put in bundles to devices, retransmissions included.', l.messagesOut),
    one('payload_bytes_in_total', 'counter', 'Payload bytes of the new messages received from devices.', l.bytesIn),
    one('payload_bytes_out_total', 'counter', 'Payload bytes of the messages put in bundles to devices, retransmissions included.', l.bytesOut),
    one('retransmits_total', 'counter', 'Messages sent to devices again.', l.retransmits),
    one('duplicates_total', 'counter', 'Messages from devices received again and dropped.', l.duplicatesIn),
    one('http_requests_total', 'counter', 'HTTP requests received on the device listener.', c.httpRequests),
    one('tcp_frames_total', 'counter', 'Frames received on direct TCP connections.', c.tcpFrames),
    one('relayed_requests_total', 'counter', 'HTTP requests relayed to the cluster node serving their session, and answered.', c.relayed),
    one('tcp_connections_total', 'counter', 'Direct TCP connections accepted.', c.tcpConnections),
    one('relayed_tcp_connections_total', 'counter', 'Direct TCP connections handed to the cluster node serving their session.', c.tcpRelayed),
    {
      name: `${p}refusals_total`,
      help: 'Requests, frames and connections refused, by error code.',
      type: 'counter',
      samples: [...c.refusals].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([code, value]) => ({ labels: { code }, value })),
    },
    one('auth_failures_total', 'counter', 'Refusals with HF_ERR_AUTH: unknown device, wrong key, replayed hello or forged tag.', c.authFailures),
    one('http_requests_held', 'gauge', 'HTTP requests held open now.', g.heldRequests),
    one('tcp_connections_open', 'gauge', 'Direct TCP connections open now.', g.tcpConnectionsOpen),
    one('tcp_pre_auth_connections', 'gauge', 'Direct TCP connections open now that have not proved a key yet.', g.preAuthConnections),
    one('tcp_piped_connections', 'gauge', 'Direct TCP connections open now that another cluster node hands here through a pipe.', g.pipedConnections),
    one('uptime_seconds', 'gauge', 'Seconds since the gateway started.', g.uptimeSeconds),
    one('resident_memory_bytes', 'gauge', "The process's resident set size.", g.residentBytes),
    one('heap_used_bytes', 'gauge', "The process's JavaScript heap in use.", g.heapUsedBytes),
    one('ring_bytes_lent', 'gauge', 'Ring memory lent to sessions now: only rings holding messages hold memory.', g.ringBytesLent),
    one('ring_blocks_free', 'gauge', 'Ring memory blocks free in the chunks now, ready for the next session that needs one.', g.ringBlocksKept),
    one('ring_chunk_bytes', 'gauge', 'Ring memory allocated in chunks now, lent or free.', g.ringChunkBytes),
  ];
}

/** A pair node's metric families (holdfast_pair_...): one line per role, 1 for this node's. */
export function pairFamilies(s: PairStatus): MetricFamily[] {
  const p = 'holdfast_pair_';
  const one = (name: string, type: 'counter' | 'gauge', help: string, value: number): MetricFamily => ({ name: p + name, help, type, samples: [{ value }] });
  return [
    {
      name: `${p}role`,
      help: "This node's role in its pair: 1 for the current one, 0 for the others.",
      type: 'gauge',
      samples: PAIR_ROLE_NAMES.map((role) => ({ labels: { role }, value: role === s.role ? 1 : 0 })),
    },
    one('epoch', 'gauge', "The highest epoch this node knows: its own as primary, its primary's as standby.", s.epoch),
    one('peer_up', 'gauge', "1 while the peer is connected (a standby's primary, a primary's standby), else 0.", s.peer.up ? 1 : 0),
    one('takeovers_total', 'counter', 'Takeovers this node made (a standby that became primary).', s.takeovers),
    one('records_total', 'counter', 'Replication records sent as primary and taken as standby (snapshots, deltas, ends).', s.records),
    one('held_answers', 'gauge', 'Answers held now until a standby holds their record.', s.heldAnswers),
    one('lag_records', 'gauge', 'Records sent to the standby that it has not confirmed yet.', s.lagRecords),
    one('shadow_sessions', 'gauge', 'Sessions of the primary held as shadows on this standby.', s.shadowSessions),
  ];
}
