/**
 * One reader of the event stream: its response, and a backlog for when it reads slower than events
 * come. Events go straight to the socket while at most `maxBufferBytes` wait there; beyond that they
 * wait whole in the backlog, which the socket's 'drain' empties in order. In the backlog a job's
 * target batch absorbs later batches of the same job (each target once, its latest state: a slow
 * reader gets fewer, fuller batches, not every step), and an event given a key (a device's) replaces
 * the waiting one of the same key. A batch goes out as `event: targets` events of at most
 * `maxBatchTargets` targets each. Once the backlog holds more than `maxBacklogBytes`, the stream is
 * destroyed (the reader reconnects and reads the current state again): the last resort, counted by
 * the hub.
 */
import type { ServerResponse } from 'node:http';

export interface SseClientBounds {
  maxBufferBytes: number;
  maxBacklogBytes: number;
  maxBatchTargets: number;
}

/** A finished event, or a job's targets still to be framed (device id -> its change as JSON). */
type Entry = { kind: 'text'; text: string; key: string | null } | { kind: 'targets'; job: string; changes: Map<string, string> };

/** The events of a batch: `event: targets` with `{"job", "targets": [...]}`, at most `max` targets each. */
export function targetsEvents(job: string, changes: readonly string[], max: number): string[] {
  const out: string[] = [];
  const head = `event: targets\ndata: {"job":${JSON.stringify(job)},"targets":[`;
  for (let i = 0; i < changes.length; i += max) out.push(`${head}${changes.slice(i, i + max).join(',')}]}\n\n`);
  return out;
}

export class SseClient {
  readonly res: ServerResponse;
  /** Whether the credentials the stream was opened with still hold. */
  readonly valid: () => boolean;
  private readonly b: SseClientBounds;
  private readonly backlog: Entry[] = [];
  /** The backlog's target batch of each job, and its keyed events. */
  private readonly batches = new Map<string, Extract<Entry, { kind: 'targets' }>>();
  private readonly keyed = new Map<string, Extract<Entry, { kind: 'text' }>>();
  private readonly onDrop: (c: SseClient) => void;
  private backlogBytes = 0;
  /** Most bytes the backlog held at once. */
  peakBacklogBytes = 0;
  private gone = false;

  /** `onDrop` is called once when the backlog overflows and the stream is destroyed. */
  constructor(res: ServerResponse, valid: () => boolean, bounds: SseClientBounds, onDrop: (c: SseClient) => void) {
    this.res = res;
    this.valid = valid;
    this.b = bounds;
    this.onDrop = onDrop;
    res.on('drain', () => this.pump());
  }

  /** Whether events are waiting in the backlog (the reader is behind). */
  get behind(): boolean {
    return this.backlog.length > 0;
  }

  /** Sends a finished event (`key`: a later event of the same key replaces it while both wait). */
  send(text: string, key: string | null = null): void {
    if (this.gone) return;
    if (!this.behind && this.roomInSocket()) {
      this.res.write(text);
      return;
    }
    const waiting = key === null ? undefined : this.keyed.get(key);
    if (waiting !== undefined) {
      this.grow(text.length - waiting.text.length);
      waiting.text = text;
    } else {
      const e: Entry = { kind: 'text', text, key };
      this.backlog.push(e);
      if (key !== null) this.keyed.set(key, e);
      this.grow(text.length);
    }
  }

  /** Sends a job's target changes (device id -> the change as JSON; the caller keeps the map). */
  sendTargets(job: string, changes: ReadonlyMap<string, string>): void {
    if (this.gone || changes.size === 0) return;
    let e = this.batches.get(job);
    if (e === undefined) {
      e = { kind: 'targets', job, changes: new Map() };
      this.backlog.push(e);
      this.batches.set(job, e);
    }
    let n = 0;
    for (const [d, s] of changes) {
      const old = e.changes.get(d);
      n += old === undefined ? s.length + 1 : s.length - old.length;
      e.changes.set(d, s);
    }
    this.backlogBytes += n;
    // What fits in the socket goes now; only the rest counts against the backlog's bound.
    this.pump();
    this.grow(0);
  }

  /** Ends the stream (credentials gone, the hub closing). */
  end(): void {
    this.gone = true;
    this.res.end();
  }

  private roomInSocket(): boolean {
    return this.res.writableLength <= this.b.maxBufferBytes;
  }

  private grow(n: number): void {
    this.backlogBytes += n;
    if (this.backlogBytes > this.peakBacklogBytes) this.peakBacklogBytes = this.backlogBytes;
    if (this.backlogBytes <= this.b.maxBacklogBytes || this.gone) return;
    this.gone = true;
    this.backlog.length = 0;
    this.batches.clear();
    this.keyed.clear();
    this.backlogBytes = 0;
    this.res.destroy();
    this.onDrop(this);
  }

  /** Writes from the backlog, in order, while the socket has room. */
  private pump(): void {
    while (!this.gone && this.backlog.length > 0 && this.roomInSocket()) {
      const e = this.backlog[0];
      if (e.kind === 'text') {
        this.backlog.shift();
        if (e.key !== null) this.keyed.delete(e.key);
        this.backlogBytes -= e.text.length;
        this.res.write(e.text);
        continue;
      }
      const part: string[] = [];
      for (const [d, s] of e.changes) {
        if (part.length === this.b.maxBatchTargets) break;
        part.push(s);
        e.changes.delete(d);
        this.backlogBytes -= s.length + 1;
      }
      if (e.changes.size === 0) {
        this.backlog.shift();
        this.batches.delete(e.job);
      }
      this.res.write(targetsEvents(e.job, part, this.b.maxBatchTargets)[0]);
    }
  }
}
