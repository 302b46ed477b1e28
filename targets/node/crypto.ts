/**
 * `hal/Crypto` on Node (host and pi targets; the sim target uses it too): HMAC-SHA256 from
 * sha256.ts, which keeps each key's pads and allocates nothing per call (node:crypto's createHmac
 * costs about 3 us per bundle tag here, this about 1.2 us).
 */
import type { Crypto } from '../../hal/crypto';
import { hmacSha256 } from './sha256';

export const nodeCrypto: Crypto = {
  hmac: hmacSha256,
};
