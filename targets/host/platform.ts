/** The host target as one `Platform` (hal/platform.ts): a Linux or other workstation running Node. */
import type { Platform } from '../../hal/platform';
import { hostClock } from '../node/clock';
import { nodeCrypto } from '../node/crypto';
import { hostEntropy } from '../node/entropy';
import { hostGpio } from './gpio';
import { FileStorage } from '../node/storage';
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
