/**
 * The far end of every row of bench:forward: one TCP server on 127.0.0.1 that each connection tells,
 * in its first byte, what to be:
 *
 *   'E'            echo: every byte comes back (the first-byte workload writes this one byte)
 *   'S' + len      sink: counts `len` bytes after the header, then answers one byte 'K'
 *   'R' + len      source: sends `len` bytes in 64 KiB writes
 *   'B' + len      both: sinks `len` and sources `len` at once; 'K' after the last sent byte once all
 *                  `len` have arrived
 *
 * `len` is 6 bytes, big-endian (header: 7 bytes). The bytes sent are one random 64 KiB block over
 * and over; nothing is checked but the count (the relays under test are byte streams).
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { nowMs } from '../flow';

export const CHUNK = 64 * 1024;
export const HEADER = 7;
export const ECHO = 0x45; // 'E'
export const SINK = 0x53; // 'S'
export const SOURCE = 0x52; // 'R'
export const BOTH = 0x42; // 'B'
export const DONE = 0x4b; // 'K'

/** The block every writer sends. Read-only by convention: shared by every socket. */
export const BLOCK = randomBytes(CHUNK);

/** The 7-byte header asking for `op` with `len` bytes. */
export function header(op: number, len: number): Buffer {
  const b = Buffer.alloc(HEADER);
  b[0] = op;
  b.writeUIntBE(len, 1, 6);
  return b;
}

/**
 * Writes `len` bytes of BLOCK to `s`, respecting back-pressure; `done` runs once the last write is
 * handed to the socket. Stops quietly if the socket is destroyed.
 */
export function pump(s: net.Socket, len: number, done: () => void): void {
  let left = len;
  const more = (): void => {
    while (left > 0 && !s.destroyed) {
      const n = Math.min(CHUNK, left);
      left -= n;
      if (!s.write(n === CHUNK ? BLOCK : BLOCK.subarray(0, n)) && left > 0) {
        s.once('drain', more);
        return;
      }
    }
    if (left === 0 && !s.destroyed) done();
  };
  more();
}

/** Per sink (and both-ways) connection, when it has all its bytes: the longest time between two arrivals, ms. */
type GapReport = (ms: number) => void;

/** One connection of the target: reads the header, then plays its part. */
function serve(s: net.Socket, gap: GapReport): void {
  s.setNoDelay(true);
  s.on('error', () => {});
  let head: Buffer = Buffer.alloc(0);
  let op = 0;
  let want = 0;
  let got = 0;
  let sent = false;
  let answered = false;
  let last = 0;
  let longest = 0;
  const answer = (): void => {
    if (answered || got < want || (op === BOTH && !sent)) return;
    answered = true;
    gap(longest);
    s.write(Buffer.from([DONE]));
  };
  const count = (n: number): void => {
    const now = nowMs();
    if (last > 0 && now - last > longest) longest = now - last;
    last = now;
    got += n;
    answer();
  };
  const onData = (d: Buffer): void => {
    if (op === ECHO) {
      s.write(d);
      return;
    }
    if (op !== 0) {
      count(d.length);
      return;
    }
    head = head.length === 0 ? d : Buffer.concat([head, d]);
    if (head[0] === ECHO) {
      op = ECHO;
      s.write(head);
      return;
    }
    if (head.length < HEADER) return;
    op = head[0];
    const len = head.readUIntBE(1, 6);
    const rest = head.length - HEADER;
    head = Buffer.alloc(0);
    if (op === SINK) {
      want = len;
      count(rest);
    } else if (op === SOURCE) {
      pump(s, len, () => {});
    } else if (op === BOTH) {
      want = len;
      got = rest;
      pump(s, len, () => {
        sent = true;
        answer();
      });
    } else s.destroy();
  };
  s.on('data', onData);
}

/** The target server, listening on 127.0.0.1 (a port the system picks). */
export class Target {
  /** The last sink connection that got all its bytes: the longest time between two of its arrivals, ms. */
  lastSinkGapMs: number | null = null;
  private readonly server = net.createServer((s) =>
    serve(s, (ms) => {
      this.lastSinkGapMs = ms;
    }),
  );
  private readonly socks = new Set<net.Socket>();
  port = 0;

  async listen(): Promise<number> {
    this.server.on('connection', (s) => {
      this.socks.add(s);
      s.on('close', () => this.socks.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Ends every connection (a row's leftovers) but keeps listening. */
  dropAll(): void {
    for (const s of this.socks) s.destroy();
  }

  close(): Promise<void> {
    this.dropAll();
    return new Promise((r) => this.server.close(() => r()));
  }
}
