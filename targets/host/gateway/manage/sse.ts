/**
 * The live event stream (Server-Sent Events, `GET /api/events`): device, job and target changes as
 * they are written. Each client gets `event: NAME` / `data: JSON` pairs (the events: docs/ARCHITECTURE.md
 * "The event stream"), a comment every `heartbeatMs` (so proxies keep the connection), and
 * `retry: 2000` so a browser's EventSource comes back by itself.
 *
 * - Target changes are coalesced (sse-batch.ts): per job, every `batchMs` (0: once a turn), one
 *   `event: targets` `{"job", "targets": [...]}` of at most `maxBatchTargets` targets (more: several
 *   events), each target once with its latest state. `device` and `job` events go out one by one.
 *   Events of different kinds are not ordered among themselves (a job's targets may come after a
 *   later `job` or `device` event): each carries the whole state it is about.
 * - A client that reads slowly is waited for, within bounds (sse-client.ts): beyond `maxBufferBytes`
 *   in its socket, events wait whole in its backlog (a job's batches merged there, a device's events
 *   replaced by its latest); beyond `maxBacklogBytes` of backlog, its stream is ended (`dropped`
 *   counts them; it reconnects and reads the current state again).
 * - At most `maxClients` at once (HF_ERR_LIMIT beyond). Each stream carries a check of its
 *   credentials (the console session or the API token it was opened with), run at every heartbeat
 *   and at `recheck()` (a logout): a stream whose credentials ended is ended too.
 */
import type { ServerResponse } from 'node:http';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { type BatchTimer, NODE_TIMER, TargetBatcher, type TargetChange } from './sse-batch';
import { SseClient } from './sse-client';
import type { TargetEvent } from './service';

export interface SseOptions {
  /** Most event streams open at once (default 256). */
  maxClients?: number;
  /** Beyond this many bytes waiting in a client's socket, its events wait in its backlog, bytes (default 1048576). */
  maxBufferBytes?: number;
  /** A client whose backlog holds more than this is dropped, bytes (default 8388608). */
  maxBacklogBytes?: number;
  /** Target changes are gathered this long before they are sent, ms (default 0: until the end of the turn). */
  batchMs?: number;
  /** Most targets in one `targets` event; a bigger batch is split, targets (default 1000). */
  maxBatchTargets?: number;
  /** A comment line this often keeps idle connections open, ms (default 15000). */
  heartbeatMs?: number;
}

export const SSE_DEFAULTS: Required<SseOptions> = {
  maxClients: 256,
  maxBufferBytes: 1_048_576,
  maxBacklogBytes: 8_388_608,
  batchMs: 0,
  maxBatchTargets: 1000,
  heartbeatMs: 15_000,
};

/** The least maxBufferBytes: a socket over it must have said "wait" (Node's stream high-water mark), so its 'drain' comes. */
const MIN_BUFFER_BYTES = 16_384;

function resolve(opts: SseOptions): Required<SseOptions> {
  const o = { ...SSE_DEFAULTS };
  const min: Record<keyof SseOptions, number> = { maxClients: 1, maxBufferBytes: MIN_BUFFER_BYTES, maxBacklogBytes: 0, batchMs: 0, maxBatchTargets: 1, heartbeatMs: 10 };
  for (const k of Object.keys(SSE_DEFAULTS) as (keyof SseOptions)[]) {
    const v = opts[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min[k]) throw hfError(ErrorCode.OPTION, `event stream option ${k} must be a whole number >= ${min[k]}, got ${String(v)}`);
    o[k] = v;
  }
  return o;
}

export class SseHub {
  private readonly o: Required<SseOptions>;
  private readonly clients = new Map<ServerResponse, SseClient>();
  private readonly batcher: TargetBatcher;
  private readonly timer: NodeJS.Timeout;
  /** Clients dropped for not reading (their backlog over maxBacklogBytes). */
  dropped = 0;
  /** `targets` batches handed to the clients (one per job and flush, before splitting). */
  batches = 0;

  constructor(opts: SseOptions = {}, timer: BatchTimer = NODE_TIMER) {
    this.o = resolve(opts);
    this.batcher = new TargetBatcher(this.o.batchMs, (job, changes) => this.flushTargets(job, changes), timer);
    this.timer = setInterval(() => {
      this.recheck();
      for (const c of this.clients.values()) if (!c.behind) c.send(': keep-alive\n\n');
    }, this.o.heartbeatMs);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Starts the event stream on `res` (after the caller checked who may read it; `valid` says whether they still may). */
  add(res: ServerResponse, hello: Record<string, unknown>, valid: () => boolean = () => true): void {
    if (this.clients.size >= this.o.maxClients) throw hfError(ErrorCode.LIMIT, `${this.clients.size} event streams are open, the most maxClients allows`);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify(hello)}\n\n`);
    const c = new SseClient(res, valid, this.o, () => {
      this.dropped++;
      this.clients.delete(res);
    });
    this.clients.set(res, c);
    res.on('close', () => this.clients.delete(res));
  }

  /** Ends every stream whose credentials no longer hold (logged out, expired, revoked). */
  recheck(): void {
    for (const [res, c] of this.clients) {
      if (c.valid()) continue;
      this.clients.delete(res);
      c.end();
    }
  }

  /** Sends one event to every client; `key` (e.g. `device:ID`): a later event of the same key replaces it where both wait in a backlog. */
  send(event: string, data: unknown, key: string | null = null): void {
    if (this.clients.size === 0) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.clients.values()) c.send(text, key);
  }

  /** A target changed: it goes out in its job's next `targets` batch. */
  target(e: TargetEvent): void {
    if (this.clients.size === 0) return;
    this.batcher.add(e);
  }

  private flushTargets(job: string, changes: TargetChange[]): void {
    if (this.clients.size === 0) return;
    this.batches++;
    const json = new Map<string, string>();
    for (const t of changes) json.set(t.deviceId, JSON.stringify(t));
    for (const c of this.clients.values()) c.sendTargets(job, json);
  }

  close(): void {
    clearInterval(this.timer);
    this.batcher.close();
    for (const c of this.clients.values()) c.end();
    this.clients.clear();
  }
}
