/**
 * What the workloads do on either end of a connection: send n numbered messages as fast as the system
 * takes them (`pump`), count what arrives (`count`: unique, duplicated, out of order), echo pings
 * (server) and time round trips (client). Used by both processes (server.ts, client.ts).
 *
 * A message: [kind u8][seq u32 BE][filler to its size]. kind DATA is counted, kind PING is echoed by
 * the server. Every message is a fresh Buffer (a library may keep a reference until it is written).
 *
 * Times are `process.hrtime` in ms (CLOCK_MONOTONIC: the same clock in every process of the machine),
 * so a start taken in one process and an end taken in the other subtract.
 */
import { type Conn, Window } from './adapter';

export const DATA = 1;
export const PING = 2;
/** Smallest message: kind and sequence number. */
export const MIN_SIZE = 5;

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export function message(kind: number, seq: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(Math.max(MIN_SIZE, size));
  b[0] = kind;
  b.writeUInt32BE(seq >>> 0, 1);
  b.fill(0x61, MIN_SIZE);
  return b;
}

export interface PumpResult {
  /** When the first message was handed over (ms, hrtime). */
  t0: number;
  /** When the last one was taken. */
  t1: number;
  /** Messages the system took (fewer when the connection died or the time ran out). */
  taken: number;
  /** 'done' | 'closed' | 'timeout'. */
  end: string;
}

export interface CountResult {
  expected: number;
  unique: number;
  duplicated: number;
  /** New messages that arrived after one with a higher sequence number. */
  reordered: number;
  /** When the first / the last new message arrived (ms, hrtime; 0: none). */
  first: number;
  last: number;
  /** 'done' | 'closed' | 'timeout'. */
  end: string;
}

export interface RttResult {
  samples: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
  /** 'done' | 'closed' | 'timeout'. */
  end: string;
}

class Tally {
  readonly seen: Uint8Array;
  unique = 0;
  duplicated = 0;
  reordered = 0;
  maxSeq = -1;
  first = 0;
  last = 0;

  constructor(
    readonly expected: number,
    private readonly onAll: () => void,
  ) {
    this.seen = new Uint8Array(expected);
  }

  mark(seq: number): void {
    if (seq >= this.expected) return;
    if (this.seen[seq] !== 0) {
      this.duplicated++;
      return;
    }
    this.seen[seq] = 1;
    const t = nowMs();
    if (this.unique === 0) this.first = t;
    this.last = t;
    if (seq < this.maxSeq) this.reordered++;
    else this.maxSeq = seq;
    if (++this.unique === this.expected) this.onAll();
  }
}

/** How long `count` waits after its connection closed for good, for messages already on their way. */
const CLOSE_GRACE_MS = 300;
/** Echoes waiting for a drain, at most. */
const MAX_ECHO_QUEUE = 100_000;

/** One end of the primary connection of a run. */
export class Side {
  conn: Conn | null = null;
  private tally: Tally | null = null;
  /** The armed count (see arm / wait). */
  private counting: { result: Promise<CountResult>; finish: (end: string) => void } | null = null;
  private pingWaiter: ((m: Buffer) => void) | null = null;
  private readonly echoQueue: Buffer[] = [];

  constructor(private readonly echo: boolean) {}

  attach(conn: Conn): void {
    this.conn = conn;
    conn.onMessage((m) => {
      if (m.length < MIN_SIZE) return;
      if (m[0] === DATA) {
        // With no count armed (a late duplicate after a count ended), nothing is counted.
        this.tally?.mark(m.readUInt32BE(1));
      } else if (m[0] === PING) {
        if (this.echo) this.sendEcho(m);
        else if (this.pingWaiter !== null) this.pingWaiter(m);
      }
    });
  }

  private get live(): Conn {
    if (this.conn === null) throw new Error('no connection yet');
    return this.conn;
  }

  private sendEcho(m: Buffer): void {
    if (this.echoQueue.length > 0 || !this.live.send(m)) {
      if (this.echoQueue.length >= MAX_ECHO_QUEUE) return;
      this.echoQueue.push(m);
      if (this.echoQueue.length === 1) this.live.onceDrain(() => this.flushEchoes());
    }
  }

  private flushEchoes(): void {
    const c = this.live;
    while (this.echoQueue.length > 0 && !c.closed) {
      if (!c.send(this.echoQueue[0])) {
        c.onceDrain(() => this.flushEchoes());
        return;
      }
      this.echoQueue.shift();
    }
  }

  /**
   * Starts counting DATA messages 0..n-1 (before the sender starts). The count ends when all arrived,
   * when the connection is gone for good (plus a short grace), or at `wait`'s time limit.
   */
  arm(n: number): void {
    this.counting?.finish('replaced');
    let finish: (end: string) => void = () => {};
    const result = new Promise<CountResult>((resolve) => {
      finish = (end: string): void => {
        if (this.tally !== t) return;
        this.tally = null;
        resolve({ expected: n, unique: t.unique, duplicated: t.duplicated, reordered: t.reordered, first: t.first, last: t.last, end });
      };
    });
    const t = new Tally(n, () => finish('done'));
    this.tally = t;
    this.counting = { result, finish };
    this.live.onClose(() => setTimeout(() => finish('closed'), CLOSE_GRACE_MS));
    if (n === 0) finish('done');
  }

  /**
   * The armed count's result, waiting `timeoutMs` at most; with `quietMs`, also ending ('quiet') once
   * nothing new has arrived for that long (counted from this call at the earliest).
   */
  async wait(timeoutMs: number, quietMs = 0): Promise<CountResult> {
    const c = this.counting;
    const t = this.tally;
    if (c === null) throw new Error('no count armed');
    this.counting = null;
    const timer = setTimeout(() => c.finish('timeout'), timeoutMs);
    const from = nowMs();
    const quiet =
      quietMs > 0 && t !== null
        ? setInterval(() => {
            if (nowMs() - Math.max(from, t.last) >= quietMs) c.finish('quiet');
          }, 100)
        : null;
    try {
      return await c.result;
    } finally {
      clearTimeout(timer);
      if (quiet !== null) clearInterval(quiet);
    }
  }

  /**
   * Sends DATA messages 0..n-1 of `size` bytes as fast as the system takes them; with `burst`, at most
   * `burst` messages every `everyMs` (paced).
   */
  pump(n: number, size: number, timeoutMs: number, burst = 0, everyMs = 0): Promise<PumpResult> {
    const conn = this.live;
    return new Promise((resolve) => {
      let i = 0;
      let done = false;
      let next: Buffer | null = null;
      let pace: NodeJS.Timeout | null = null;
      let quota = burst > 0 ? burst : Infinity;
      const t0 = nowMs();
      const finish = (end: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (pace !== null) clearTimeout(pace);
        resolve({ t0, t1: nowMs(), taken: i, end });
      };
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      const step = (): void => {
        if (done) return;
        while (i < n) {
          if (conn.closed) return finish('closed');
          if (quota === 0) {
            pace = setTimeout(() => {
              pace = null;
              quota = burst;
              step();
            }, everyMs);
            return;
          }
          next ??= message(DATA, i, size);
          if (!conn.send(next)) {
            conn.onceDrain(step);
            return;
          }
          next = null;
          i++;
          quota--;
        }
        finish('done');
      };
      step();
    });
  }

  /** `warmup + n` round trips one at a time (a PING and its echo); the last n are timed. */
  async ping(n: number, warmup: number, size: number, timeoutMs: number): Promise<RttResult> {
    const conn = this.live;
    const deadline = nowMs() + timeoutMs;
    const rtts: number[] = [];
    let end = 'done';
    for (let i = 0; i < warmup + n; i++) {
      const left = deadline - nowMs();
      if (conn.closed) {
        end = 'closed';
        break;
      }
      const m = message(PING, i, size);
      const t0 = nowMs();
      const back = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(1, left));
        this.pingWaiter = (r) => {
          if (r.readUInt32BE(1) !== i) return;
          clearTimeout(timer);
          resolve(true);
        };
        const trySend = (): void => {
          if (conn.closed) return;
          if (!conn.send(m)) conn.onceDrain(trySend);
        };
        trySend();
      });
      this.pingWaiter = null;
      if (!back) {
        end = 'timeout';
        break;
      }
      if (i >= warmup) rtts.push(nowMs() - t0);
    }
    rtts.sort((a, b) => a - b);
    const pct = (p: number): number => (rtts.length === 0 ? NaN : rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))]);
    const mean = rtts.length === 0 ? NaN : rtts.reduce((a, b) => a + b, 0) / rtts.length;
    return { samples: rtts.length, p50: pct(50), p99: pct(99), mean, min: rtts[0] ?? NaN, max: rtts[rtts.length - 1] ?? NaN, end };
  }
}

/** The IPC operations both processes offer over their Side: flow-control window, arming, waiting, pumping. */
export function sideHandlers(side: Side) {
  return {
    window: (a: { bytes: number }) => {
      Window.high = a.bytes;
    },
    arm: (a: { n: number }) => side.arm(a.n),
    wait: (a: { timeoutMs: number; quietMs?: number }) => side.wait(a.timeoutMs, a.quietMs),
    pump: (a: { n: number; size: number; timeoutMs: number; burst?: number; everyMs?: number }) => side.pump(a.n, a.size, a.timeoutMs, a.burst, a.everyMs),
  };
}
