/**
 * What the workers' main process reads of a new connection before it hands it on: the first HTTP
 * request (head and body) or the first direct TCP frame, far enough to find the bundle that names
 * its session, and no further. An explicit state machine fed socket chunks; it keeps every byte it
 * was given (they go to the worker with the socket) and never reads past what it must.
 *
 * Anything it cannot make sense of (a chunked body, a body or frame over the bounds, a head without
 * its end) is DONE without a bundle: the connection still goes to a worker, whose front answers it
 * as it answers any bad request (the main process refuses nothing of the protocol's own).
 */

/** The two fronts a connection can be for. */
export type FrontKind = 'http' | 'tcp';

/** Where a reader is. */
export const FirstBytesState = {
  /** HTTP: reading the request head (up to "\r\n\r\n"); TCP: reading the 4-byte length. */
  HEAD: 0,
  /** Reading the body (HTTP Content-Length bytes) or the frame. */
  BODY: 1,
  /** Done: `bundle` is the first bundle, or null when there is none to route by. */
  DONE: 2,
} as const;
export type FirstBytesStateValue = (typeof FirstBytesState)[keyof typeof FirstBytesState];

export interface FirstBytesLimits {
  /** Largest HTTP request head read, bytes (headers included); a longer one is handed on unread. */
  maxHeadBytes: number;
  /** Largest HTTP body or TCP frame read to route by, bytes; a larger one is handed on unread. */
  maxBodyBytes: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

export class FirstBytes {
  state: FirstBytesStateValue = FirstBytesState.HEAD;
  /** The first bundle once DONE (a view into `read`), or null. */
  bundle: Uint8Array | null = null;
  private readonly kind: FrontKind;
  private readonly limits: FirstBytesLimits;
  private chunks: Buffer[] = [];
  private size = 0;
  /** Where the body starts, and its length (set on leaving HEAD). */
  private bodyAt = 0;
  private bodyLen = 0;

  constructor(kind: FrontKind, limits: FirstBytesLimits) {
    this.kind = kind;
    this.limits = limits;
  }

  /** Every byte pushed so far, in order (what the worker must read first). */
  get read(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Takes one chunk; returns the state after it. Chunks after DONE are kept too. */
  push(chunk: Buffer): FirstBytesStateValue {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.state === FirstBytesState.HEAD) this.head();
    if (this.state === FirstBytesState.BODY && this.size >= this.bodyAt + this.bodyLen) {
      this.bundle = this.read.subarray(this.bodyAt, this.bodyAt + this.bodyLen);
      this.state = FirstBytesState.DONE;
    }
    return this.state;
  }

  private done(): void {
    this.state = FirstBytesState.DONE;
  }

  private head(): void {
    const buf = this.read;
    if (this.kind === 'tcp') {
      if (buf.length < 4) return;
      const len = buf.readUInt32BE(0);
      if (len === 0 || len > this.limits.maxBodyBytes) return this.done();
      this.bodyAt = 4;
      this.bodyLen = len;
      this.state = FirstBytesState.BODY;
      return;
    }
    const end = buf.indexOf(CRLF2);
    if (end < 0) {
      if (buf.length > this.limits.maxHeadBytes) this.done();
      return;
    }
    if (end > this.limits.maxHeadBytes) return this.done();
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    let len = -1;
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].indexOf(':');
      if (c < 0) continue;
      const name = lines[i].slice(0, c).trim().toLowerCase();
      const value = lines[i].slice(c + 1).trim();
      if (name === 'content-length') len = /^\d+$/.test(value) ? Number(value) : -1;
      else if (name === 'transfer-encoding') return this.done();
    }
    if (len <= 0 || len > this.limits.maxBodyBytes) return this.done();
    this.bodyAt = end + 4;
    this.bodyLen = len;
    this.state = FirstBytesState.BODY;
  }
}
