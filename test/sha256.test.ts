/**
 * The Node base's SHA-256 and HMAC-SHA256 (targets/node/sha256.ts) against node:crypto: FIPS 180-4
 * and RFC 4231 vectors, every length around the block boundaries, random keys and data (seeded:
 * a failure prints its seed), keys longer than a block, the same key object reused, and no
 * allocation per call once a key is known.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, createHmac } from 'node:crypto';
import { hmacSha256, sha256 } from '../targets/node/sha256';
import { nodeCrypto } from '../targets/node/crypto';
import { Prng } from '../targets/sim/prng';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ours = (data: Uint8Array): string => {
  const out = new Uint8Array(32);
  sha256(data, 0, data.length, out, 0);
  return hex(out);
};
const oursMac = (key: Uint8Array, data: Uint8Array, off = 0, len = data.length - off): string => {
  const out = new Uint8Array(40);
  hmacSha256(key, data, off, len, out, 4);
  return hex(out.subarray(4, 36));
};

test('FIPS 180-4 examples and RFC 4231 test cases', () => {
  assert.is(ours(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.is(ours(new TextEncoder().encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  assert.is(ours(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  // RFC 4231 case 1 and case 6 (a key longer than a block).
  assert.is(oursMac(new Uint8Array(20).fill(0x0b), new TextEncoder().encode('Hi There')), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  assert.is(
    oursMac(new Uint8Array(131).fill(0xaa), new TextEncoder().encode('Test Using Larger Than Block-Size Key - Hash Key First')),
    '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  );
});

test('every length from 0 to 300 bytes, and random keys and data, agree with node:crypto', () => {
  const seed = Number(process.env.SHA_SEED ?? 20261124);
  const rng = new Prng(seed);
  const data = new Uint8Array(300);
  rng.fill(data);
  for (let n = 0; n <= 300; n++) {
    assert.is(ours(data.subarray(0, n)), createHash('sha256').update(data.subarray(0, n)).digest('hex'), `sha256 of ${n} bytes (seed ${seed})`);
  }
  for (let i = 0; i < 300; i++) {
    const key = new Uint8Array(rng.int(140));
    rng.fill(key);
    const off = rng.int(40);
    const len = rng.int(260);
    const want = createHmac('sha256', key)
      .update(data.subarray(off, off + len))
      .digest('hex');
    assert.is(oursMac(key, data, off, len), want, `hmac case ${i}: key ${key.length} bytes, data [${off}, +${len}) (seed ${seed}; SHA_SEED=${seed} replays)`);
    assert.is(oursMac(key, data, off, len), want, 'the same key object again (its pads are kept)');
  }
});

test('the host Crypto uses it, and a call allocates nothing once the key is known', () => {
  const key = new Uint8Array(32).fill(9);
  const data = new Uint8Array(120).fill(3);
  const out = new Uint8Array(32);
  nodeCrypto.hmac(key, data, 0, data.length, out, 0);
  assert.is(hex(out), createHmac('sha256', key).update(data).digest('hex'));
  for (let i = 0; i < 1000; i++) nodeCrypto.hmac(key, data, 0, data.length, out, 0);
  // The least growth of three rounds: garbage other tests left behind can be collected (or not)
  // in the middle of one round, which says nothing about this call.
  let grew = Infinity;
  for (let round = 0; round < 3; round++) {
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20000; i++) nodeCrypto.hmac(key, data, i % 8, 100, out, 0);
    grew = Math.min(grew, process.memoryUsage().heapUsed - before);
  }
  assert.ok(grew < 200_000, `heap grew ${grew} bytes over 20,000 calls`);
});

test.run();
