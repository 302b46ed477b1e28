/** The host target as one `Platform` (hal/platform.ts): a Linux or other workstation running Node. */
import type { Platform } from '../../hal/platform';
import { hostClock } from './clock';
import { nodeCrypto } from './crypto';
import { hostEntropy } from './entropy';
import { hostGpio } from './gpio';
import { FileStorage } from './storage';
import { hostSystem } from './system';

export const platform: Platform = {
  name: 'host',
  clock: hostClock,
  entropy: hostEntropy,
  crypto: nodeCrypto,
  storage: (dir, opts) => new FileStorage(dir, opts),
  system: hostSystem,
  gpio: hostGpio,
};
