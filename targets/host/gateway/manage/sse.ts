/**
 * The live event stream (Server-Sent Events, `GET /api/events`): device and job changes as they are
 * written. Each client gets `event: NAME` / `data: JSON` pairs, a comment every `heartbeatMs` (so
 * proxies keep the connection), and `retry: 2000` so a browser's EventSource comes back by itself.
 * A client that does not read is not waited for: once more than `maxBufferBytes` wait for it, its
 * stream is ended (it reconnects and reads the current state again). At most `maxClients` at once
 * (HF_ERR_LIMIT beyond). Each stream carries a check of its credentials (the console session or the
 * API token it was opened with), run at every heartbeat and at `recheck()` (a logout): a stream whose
 * credentials ended is ended too.
 */
import type { ServerResponse } from 'node:http';
import { ErrorCode, hfError } from '../../../../firmware/errors';

export interface SseOptions {
  /** Most event streams open at once (default 256). */
  maxClients?: number;
  /** A client with more than this many bytes waiting is dropped, bytes (default 1048576). */
  maxBufferBytes?: number;
  /** A comment line this often keeps idle connections open, ms (default 15000). */
  heartbeatMs?: number;
}

export const SSE_DEFAULTS: Required<SseOptions> = { maxClients: 256, maxBufferBytes: 1_048_576, heartbeatMs: 15_000 };

export class SseHub {
  private readonly o: Required<SseOptions>;
  /** Each stream, with the check of the credentials it was opened with. */
  private readonly clients = new Map<ServerResponse, () => boolean>();
  private readonly timer: NodeJS.Timeout;
  /** Clients dropped for not reading. */
  dropped = 0;

  constructor(opts: SseOptions = {}) {
    this.o = { ...SSE_DEFAULTS, ...opts };
    this.timer = setInterval(() => {
      this.recheck();
      this.write(': keep-alive\n\n');
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
    this.clients.set(res, valid);
    res.on('close', () => this.clients.delete(res));
  }

  /** Ends every stream whose credentials no longer hold (logged out, expired, revoked). */
  recheck(): void {
    for (const [res, valid] of this.clients) {
      if (valid()) continue;
      this.clients.delete(res);
      res.end();
    }
  }

  /** Sends one event to every client. */
  send(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private write(text: string): void {
    for (const res of this.clients.keys()) {
      if (res.writableLength > this.o.maxBufferBytes) {
        this.dropped++;
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const res of this.clients.keys()) res.end();
    this.clients.clear();
  }
}
