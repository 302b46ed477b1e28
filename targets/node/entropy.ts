/** `hal/Entropy` from the operating system's CSPRNG. */
import { randomFillSync } from 'node:crypto';
import type { Entropy } from '../../hal/entropy';

export const hostEntropy: Entropy = {
  fill: (buf) => {
    randomFillSync(buf);
  },
};
