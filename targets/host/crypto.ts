/** `hal/Crypto` over Node's own HMAC-SHA256 (host and pi targets; the sim target uses it too). */
import { createHmac } from 'node:crypto';
import type { Crypto } from '../../hal/crypto';

export const nodeCrypto: Crypto = {
  hmac(key, data, off, len, out, outOff) {
    const h = createHmac('sha256', key).update(data.subarray(off, off + len)).digest();
    out.set(h, outOff);
  },
};
