/**
 * The runner's end of the management API, as a script would use it: JSON requests with an API token
 * (`Authorization: Bearer`) through `holdfast ctl`'s client (tools/cli/ctl-http.ts) over one
 * keep-alive agent (a refusal throws its ApiRefusal), and the live event stream (`GET /api/events`,
 * Server-Sent Events) read as it arrives. `finals(jobId, n)` resolves once `n` targets of the job
 * have reached a final state in the stream's `targets` batches (a change is sent only after it is
 * written to the store, so each is a recorded outcome).
 */
import * as http from 'node:http';
import { isFinal, type TargetState } from '../../targets/host/gateway/manage/jobs-store';
import { ConsoleClient, consoleUrl } from '../../tools/cli/ctl-http';

/** A `targets` event: one job's target changes, each target once. */
export interface TargetBatch {
  job: string;
  targets: { deviceId: string; state: TargetState; errorCode?: string }[];
}

interface Waiter {
  n: number;
  resolve: (at: number) => void;
}

export class ApiClient {
  private readonly base: URL;
  private readonly token: string;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly client: ConsoleClient;
  private events: http.ClientRequest | null = null;
  /** The gateway ended the event stream (it drops a client with more than its maxBufferBytes waiting). */
  streamClosed = false;
  /** Final targets seen per job, and who waits for how many. */
  private readonly finalCount = new Map<string, number>();
  private readonly failed = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter>();

  private readonly now: () => number;

  constructor(base: string, token: string, now: () => number) {
    this.base = new URL(base);
    this.token = token;
    this.client = new ConsoleClient({ url: consoleUrl(base, 'the console'), token, agent: this.agent });
    this.now = now;
  }

  /** One request's JSON answer (an API refusal throws its ApiRefusal). */
  request(method: string, p: string, body?: unknown, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return this.client.request(method, p, body, {}, timeoutMs) as Promise<Record<string, unknown>>;
  }

  /** Opens the event stream (again, after the gateway ended it); resolves once its hello arrived. */
  listen(): Promise<void> {
    this.events?.destroy();
    this.streamClosed = false;
    return new Promise((resolve, reject) => {
      const req = http.get({ host: this.base.hostname, port: this.base.port, path: '/api/events', headers: { authorization: `Bearer ${this.token}` } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET /api/events: ${res.statusCode}`));
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (d: string) => {
          buf += d;
          let i = buf.indexOf('\n\n');
          while (i >= 0) {
            this.onEvent(buf.slice(0, i));
            buf = buf.slice(i + 2);
            i = buf.indexOf('\n\n');
          }
        });
        res.once('data', () => resolve());
        res.on('close', () => {
          if (this.events === req) this.streamClosed = true;
        });
      });
      req.on('error', reject);
      this.events = req;
    });
  }

  private onEvent(block: string): void {
    let name = '';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) name = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (name !== 'targets') return;
    const b = JSON.parse(data) as TargetBatch;
    let n = this.finalCount.get(b.job) ?? 0;
    for (const e of b.targets) {
      if (!isFinal(e.state)) continue;
      n++;
      if (e.state !== 'succeeded') this.failed.set(b.job, (this.failed.get(b.job) ?? 0) + 1);
    }
    this.finalCount.set(b.job, n);
    const w = this.waiters.get(b.job);
    if (w !== undefined && n >= w.n) {
      this.waiters.delete(b.job);
      w.resolve(this.now());
    }
  }

  /**
   * Resolves with the time (this.now) the `n`-th final target of `jobId` arrived on the stream, or
   * null after `timeoutMs`.
   */
  finals(jobId: string, n: number, timeoutMs: number): Promise<number | null> {
    if ((this.finalCount.get(jobId) ?? 0) >= n) return Promise.resolve(this.now());
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters.delete(jobId);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(jobId, {
        n,
        resolve: (at) => {
          clearTimeout(t);
          resolve(at);
        },
      });
    });
  }

  /** Final targets of `jobId` seen so far, and how many of them did not succeed. */
  seen(jobId: string): { final: number; notSucceeded: number } {
    return { final: this.finalCount.get(jobId) ?? 0, notSucceeded: this.failed.get(jobId) ?? 0 };
  }

  /** Forgets a finished job's counts. */
  forget(jobId: string): void {
    this.finalCount.delete(jobId);
    this.failed.delete(jobId);
  }

  close(): void {
    this.events?.destroy();
    this.agent.destroy();
  }
}
