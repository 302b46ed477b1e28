/**
 * The sim target as one `Platform` (hal/platform.ts): a simulated board on a virtual clock and a
 * seed. Its clock is a SimClock (time moves only when the test runs it), its entropy a seeded
 * stream (targets/sim/prng.ts: replayable, not secret), its crypto Node's HMAC-SHA256, its storage
 * in memory (one MemoryStorage per directory, kept for the platform's life, so opening a directory
 * again finds what was written there — as after a reboot), its system readings a function of the
 * virtual time (./system.ts) and its GPIO simulated chips (./gpio.ts).
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Platform, StorageOptions } from '../../hal/platform';
import { nodeCrypto } from '../node/crypto';
import { SimClock } from './clock';
import { SimGpio, type SimGpioOptions } from './gpio';
import { Prng } from './prng';
import { MemoryStorage } from './storage';
import { SimStorage } from './storage-dir';
import { SimSystem, type SimSystemOptions } from './system';

export interface SimPlatformOptions {
  /** Seed of the entropy stream and of the system's workload (default 1). */
  seed?: number;
  /** The virtual clock (default a new SimClock). */
  clock?: SimClock;
  /** System readings (the seed defaults to the platform's). */
  system?: SimSystemOptions;
  gpio?: SimGpioOptions;
}

export interface SimPlatform extends Platform {
  readonly name: 'sim';
  readonly clock: SimClock;
  readonly system: SimSystem;
  readonly gpio: SimGpio;
  /** The directory's storage (created empty on first use). */
  storage(dir: string, opts?: StorageOptions): SimStorage;
}

export function simPlatform(opts: SimPlatformOptions = {}): SimPlatform {
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw hfError(ErrorCode.OPTION, `sim seed must be an integer 0..2^32-1, got ${seed}`);
  const clock = opts.clock ?? new SimClock();
  const rng = new Prng(seed ^ 0x5a5a5a5a);
  const dirs = new Map<string, MemoryStorage>();
  const system = new SimSystem(clock, { seed, ...opts.system });
  const gpio = new SimGpio(opts.gpio);
  return {
    name: 'sim',
    clock,
    entropy: { fill: (buf) => rng.fill(buf) },
    crypto: nodeCrypto,
    storage(dir: string): SimStorage {
      if (typeof dir !== 'string' || dir === '') throw hfError(ErrorCode.OPTION, `storage directory must be a non-empty string, got ${JSON.stringify(dir)}`);
      let m = dirs.get(dir);
      if (m === undefined) {
        m = new MemoryStorage();
        dirs.set(dir, m);
      }
      return new SimStorage(m);
    },
    system,
    gpio,
  };
}

/** A simulated board with seed 1 (what `#platform` gives when a build maps it to the sim target). */
export const platform: Platform = simPlatform();
