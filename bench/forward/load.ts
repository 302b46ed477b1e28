/**
 * The client side of bench:forward's workloads, each on one new connection to 127.0.0.1:`port` (the
 * row's entry: the target itself, or the relay's listening port), each bounded by `limitMs`: a run
 * that overruns destroys its socket and rejects with a RunTimeout saying how far it got.
 *
 * Times run from the client's connect (`net.connect` returning) to the last byte it needed; for 256
 * MiB the setup of the forwarded stream is a rounding error in that.
 */
import * as net from 'node:net';
import { nowMs } from '../flow';
import { BOTH, DONE, ECHO, header, pump, SINK, SOURCE } from './target';

export class RunTimeout extends Error {
  constructor(
    readonly what: string,
    readonly limitMs: number,
    readonly progress: string,
  ) {
    super(`${what}: timed out after ${(limitMs / 1000).toFixed(0)} s (${progress})`);
  }
}

export interface Run {
  /** Payload bytes moved (both directions added up for `both`). */
  bytes: number;
  ms: number;
  /** 10^6 bytes per second. */
  mbPerS: number;
  /** The longest time between two arrivals at the client, ms (null: the client received nothing but the answer). */
  clientGapMs: number | null;
}

const MB = 1e6;
const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * One connection: `start` runs once connected; `onData` gets every chunk and returns true when the
 * run is complete. Resolves with the time from connect() to completion.
 */
function oneConnection(
  port: number,
  limitMs: number,
  what: string,
  start: (s: net.Socket) => void,
  onData: (d: Buffer) => boolean,
  progress: (s: net.Socket) => string,
): Promise<{ ms: number; gapMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let over = false;
    let last = 0;
    let gapMs = 0;
    const finish = (e: Error | null): void => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      const ms = nowMs() - t0;
      s.destroy();
      if (e === null) resolve({ ms, gapMs });
      else reject(e);
    };
    const timer = setTimeout(() => finish(new RunTimeout(what, limitMs, progress(s))), limitMs);
    s.on('connect', () => start(s));
    s.on('data', (d: Buffer) => {
      const now = nowMs();
      if (last > 0 && now - last > gapMs) gapMs = now - last;
      last = now;
      if (onData(d)) finish(null);
    });
    s.on('error', (e) => finish(new Error(`${what}: ${e.message} (${progress(s)})`)));
    s.on('close', () => finish(new Error(`${what}: the connection closed early (${progress(s)})`)));
  });
}

const rate = (bytes: number, t: { ms: number; gapMs: number }, received: boolean): Run => ({
  bytes,
  ms: t.ms,
  mbPerS: t.ms > 0 ? bytes / MB / (t.ms / 1000) : 0,
  clientGapMs: received ? t.gapMs : null,
});

/** Client -> target: `len` bytes in 64 KiB writes; done when the sink answers that it has them all. */
export async function clientToTarget(port: number, len: number, limitMs: number): Promise<Run> {
  let sent = 0;
  const t = await oneConnection(
    port,
    limitMs,
    'client -> target',
    (s) => {
      s.write(header(SINK, len));
      pump(s, len, () => {
        sent = len;
      });
    },
    (d) => d.includes(DONE),
    (s) => `${sent === len ? 'all sent' : `${mib(s.bytesWritten)} written`}, no answer from the sink of ${mib(len)}`,
  );
  return rate(len, t, false);
}

/** Target -> client: asks for `len` bytes; done when they have all arrived. */
export async function targetToClient(port: number, len: number, limitMs: number): Promise<Run> {
  let got = 0;
  const t = await oneConnection(
    port,
    limitMs,
    'target -> client',
    (s) => s.write(header(SOURCE, len)),
    (d) => {
      got += d.length;
      return got >= len;
    },
    () => `${mib(got)} of ${mib(len)} arrived`,
  );
  return rate(len, t, true);
}

/** Both at once: `len` each way; done when the client has the target's `len` bytes and its answer. */
export async function bothWays(port: number, len: number, limitMs: number): Promise<Run> {
  let got = 0;
  let sent = false;
  const t = await oneConnection(
    port,
    limitMs,
    'both ways',
    (s) => {
      s.write(header(BOTH, len));
      pump(s, len, () => {
        sent = true;
      });
    },
    (d) => {
      got += d.length;
      return got >= len + 1 && d[d.length - 1] === DONE;
    },
    (s) => `${mib(Math.min(got, len))} of ${mib(len)} arrived, ${sent ? 'all sent' : `${mib(s.bytesWritten)} written`}`,
  );
  return rate(2 * len, t, true);
}

/** Time to first byte of a new connection: connect, write one byte, the target echoes it; ms. */
export async function firstByte(port: number, limitMs: number): Promise<number> {
  const t = await oneConnection(
    port,
    limitMs,
    'first byte',
    (s) => s.write(Buffer.from([ECHO])),
    () => true,
    () => 'no echo',
  );
  return t.ms;
}

/** `n` new connections one after another: each one's time to first byte, ms. */
export async function firstBytes(port: number, n: number, limitMs: number): Promise<number[]> {
  const deadline = nowMs() + limitMs;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await firstByte(port, Math.max(1, deadline - nowMs())));
  return out;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}
