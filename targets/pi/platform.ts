/**
 * The pi target as one `Platform` (hal/platform.ts): a Linux board — Raspberry Pi, an ARM or x86
 * thin client — as the kernel describes it. Readings come from /proc and /sys (./system.ts), GPIO
 * from the GPIO character device through libgpiod 1.6's tools (./gpio.ts), storage is FileStorage
 * (write-then-rename and CRC'd appends, made for flash that loses power), and the clock, entropy and
 * crypto are the host target's (Node's monotonic clock, the kernel's CSPRNG, HMAC-SHA256).
 *
 * The device bundle maps `#platform` here; `piPlatform(options)` builds one over another root (a
 * fake /proc and /sys tree) or another tool directory, for tests.
 */
import type { Platform } from '../../hal/platform';
import { hostClock } from '../node/clock';
import { nodeCrypto } from '../node/crypto';
import { hostEntropy } from '../node/entropy';
import { FileStorage } from '../node/storage';
import { GpiodGpio } from './gpio';
import { type AddressSource, LinuxSystem } from './system';

export interface PiPlatformOptions {
  /** Directory that stands for '/' (default '/'): /proc, /sys and /dev are read under it. */
  root?: string;
  /** Where libgpiod's tools are (default '/usr/bin'). */
  toolDir?: string;
  /** Time limit for one run of a GPIO tool, ms (default 3000). */
  gpioTimeoutMs?: number;
  /** Source of interface addresses (default os.networkInterfaces). */
  addresses?: AddressSource;
}

export interface PiPlatform extends Platform {
  readonly name: 'pi';
  readonly system: LinuxSystem;
  readonly gpio: GpiodGpio;
}

/** A pi platform; options are checked here, before anything is read. Nothing is read until asked. */
export function piPlatform(opts: PiPlatformOptions = {}): PiPlatform {
  const system = new LinuxSystem({ root: opts.root, ...(opts.addresses ? { addresses: opts.addresses } : {}) });
  const gpio = new GpiodGpio({ root: opts.root, toolDir: opts.toolDir, timeoutMs: opts.gpioTimeoutMs });
  return {
    name: 'pi',
    clock: hostClock,
    entropy: hostEntropy,
    crypto: nodeCrypto,
    storage: (dir, o) => new FileStorage(dir, o),
    system,
    gpio,
  };
}

/** The board this process runs on. */
export const platform: Platform = piPlatform();
