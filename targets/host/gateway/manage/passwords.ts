/**
 * Operators' passwords, stored as scrypt hashes (Node's crypto.scrypt): a random salt per password,
 * and the parameters written beside the hash, so that raising them later leaves every stored hash
 * checkable (and `needsRehash` says which to redo at the next login). Comparison is constant-time
 * (timingSafeEqual).
 *
 *   scrypt$N=32768,r=8,p=1$<salt, base64>$<hash, base64>
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { checkInt, checkPow2 } from '../../../../firmware/check';

export interface PasswordOptions {
  /** scrypt's cost N, a power of two (default 32768); memory is 128 * N * r bytes (32 MiB at the defaults). */
  cost?: number;
  /** scrypt's block size r (default 8). */
  blockSize?: number;
  /** scrypt's parallelization p (default 1). */
  parallelization?: number;
  /** Length of the derived key, bytes (default 32). */
  keyBytes?: number;
  /** Length of the random salt, bytes (default 16). */
  saltBytes?: number;
}

export const PASSWORD_DEFAULTS: Required<PasswordOptions> = { cost: 32768, blockSize: 8, parallelization: 1, keyBytes: 32, saltBytes: 16 };

function resolve(opts: PasswordOptions): Required<PasswordOptions> {
  const o = { ...PASSWORD_DEFAULTS, ...opts };
  checkPow2('cost', o.cost, 2, 1 << 20);
  checkInt('blockSize', o.blockSize, 1, 64);
  checkInt('parallelization', o.parallelization, 1, 16);
  checkInt('keyBytes', o.keyBytes, 16, 128);
  checkInt('saltBytes', o.saltBytes, 8, 64);
  return o;
}

function derive(password: string, salt: Buffer, N: number, r: number, p: number, keyBytes: number): Promise<Buffer> {
  return new Promise((ok, fail) => {
    scrypt(password.normalize('NFC'), salt, keyBytes, { N, r, p, maxmem: 256 * N * r + (1 << 20) }, (e, key) => (e ? fail(e) : ok(key)));
  });
}

interface Parsed {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const FORMAT = /^scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function parse(stored: string): Parsed | null {
  const m = FORMAT.exec(stored);
  if (m === null) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds a stored hash may ask for (a garbled or planted one must not ask for gigabytes).
  if (!(N >= 2 && N <= 1 << 20 && (N & (N - 1)) === 0 && r >= 1 && r <= 64 && p >= 1 && p <= 16)) return null;
  return { N, r, p, salt: Buffer.from(m[4], 'base64'), hash: Buffer.from(m[5], 'base64') };
}

/** The stored form of `password`: a new salt, the parameters, the hash. */
export async function hashPassword(password: string, opts: PasswordOptions = {}): Promise<string> {
  const o = resolve(opts);
  const salt = randomBytes(o.saltBytes);
  const hash = await derive(password, salt, o.cost, o.blockSize, o.parallelization, o.keyBytes);
  return `scrypt$N=${o.cost},r=${o.blockSize},p=${o.parallelization}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether `password` is the one `stored` was made from (false for a stored form that is not ours). */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const s = parse(stored);
  if (s === null || s.hash.length < 16) return false;
  const got = await derive(password, s.salt, s.N, s.r, s.p, s.hash.length);
  return timingSafeEqual(got, s.hash);
}

/** Whether `stored` was made with weaker parameters than `opts` give (or is not ours): hash it again at the next login. */
export function needsRehash(stored: string, opts: PasswordOptions = {}): boolean {
  const o = resolve(opts);
  const s = parse(stored);
  return s === null || s.N < o.cost || s.r < o.blockSize || s.p < o.parallelization || s.hash.length < o.keyBytes || s.salt.length < o.saltBytes;
}
