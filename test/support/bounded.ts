/**
 * For tests of what runs on a channel (streams, mux, forwarding): a time limit per test with cleanup
 * that runs however the test ends, byte helpers, and a loopback channel pair with muxes on it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Channel } from '../../targets/host/app/channel';
import { loopbackPair } from '../../targets/host/app/loopback';
import { Mux, type MuxOptions } from '../../targets/host/app/mux';
import type { LinkOptions } from '../../firmware/options';

export type Defer = (fn: () => unknown) => void;

/**
 * A test body with a time limit: fails after `ms`; whatever it registered with `defer` runs after it
 * in every case (last registered first), so the process has nothing left open.
 */
export function within(ms: number, body: (defer: Defer) => Promise<void>): () => Promise<void> {
  return async () => {
    const cleanups: (() => unknown)[] = [];
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`test took longer than ${ms} ms`)), ms);
    });
    try {
      await Promise.race([body((fn) => cleanups.push(fn)), limit]);
    } finally {
      clearTimeout(timer);
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch {
          // cleanup is best effort
        }
      }
    }
  };
}

/**
 * Streams the test owns: errors after the test's own checks are expected (the cleanup destroys the
 * channels under them), so they are swallowed; `defer` destroys the streams.
 */
export function own<T extends NodeJS.EventEmitter & { destroy(): unknown }>(defer: Defer, ...streams: T[]): T[] {
  for (const s of streams) {
    s.on('error', () => {});
    defer(() => s.destroy());
  }
  return streams;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export function random(n: number): Buffer {
  return randomBytes(n);
}

/** Everything a readable gives until its end (rejects on 'error'). */
export function collect(r: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on('data', (c: Buffer) => parts.push(c));
    r.once('end', () => resolve(Buffer.concat(parts)));
    r.once('error', reject);
  });
}

/** The error a stream emits, or rejects if it ends or closes without one. */
export function errorOf(s: NodeJS.EventEmitter): Promise<Error & { code?: string }> {
  return new Promise((resolve, reject) => {
    s.once('error', resolve);
    s.once('close', () => setImmediate(() => reject(new Error('closed without an error'))));
  });
}

export function nextEvent<T = unknown>(e: NodeJS.EventEmitter, name: string): Promise<T> {
  return new Promise((resolve) => e.once(name, (v: T) => resolve(v)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once `cond()` holds, checking every few ms (the caller's `within` bounds it). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(5);
}

export interface Pair {
  device: Channel;
  gateway: Channel;
}

/** A connected loopback channel pair; `defer` destroys both and stops the timers. */
export async function channels(defer: Defer, opts: { client?: LinkOptions; server?: LinkOptions } = {}): Promise<Pair> {
  const p = loopbackPair(opts);
  // The gateway has its session before the device has the welcome: wait for both ends.
  const opened = new Promise((r) => p.device.once('open', r));
  const gateway = await p.gateway;
  await opened;
  defer(async () => {
    p.device.destroy();
    gateway.destroy();
    await sleep(1);
    p.stop();
  });
  return { device: p.device, gateway };
}

export interface MuxPair extends Pair {
  dev: Mux;
  gw: Mux;
}

/** Muxes on both ends of a loopback pair; `defer` closes them first. */
export async function muxes(defer: Defer, opts: { client?: LinkOptions; server?: LinkOptions; mux?: Omit<MuxOptions, 'role'> } = {}): Promise<MuxPair> {
  const pair = await channels(defer, opts);
  const dev = new Mux(pair.device, { role: 'device', ...opts.mux });
  const gw = new Mux(pair.gateway, { role: 'gateway', ...opts.mux });
  defer(() => {
    dev.destroy();
    gw.destroy();
  });
  return { ...pair, dev, gw };
}
