/**
 * Everything a target provides, in one object. Device code takes it from the module `#platform`,
 * which the build points at one target (targets/host, targets/pi or targets/sim): the target is
 * chosen when building, not at run time.
 */
import type { Clock } from './clock';
import type { Crypto } from './crypto';
import type { Entropy } from './entropy';
import type { Gpio } from './gpio';
import type { Storage } from './storage';
import type { SystemInfo } from './system';

export interface StorageOptions {
  /** fsync every append (power-cut safe for every record, one flash write per message). */
  syncAppends?: boolean;
  /** Called when a write found the directory gone (removed under the process) and made it again. */
  onRecreated?: (dir: string) => void;
}

export interface Platform {
  /** Which target this is. */
  readonly name: 'host' | 'pi' | 'sim';
  readonly clock: Clock;
  readonly entropy: Entropy;
  readonly crypto: Crypto;
  /** Permanent storage in directory `dir` (created if missing). */
  storage(dir: string, opts?: StorageOptions): Storage & { close(): void };
  readonly system: SystemInfo;
  readonly gpio: Gpio;
}
