/**
 * Device authentication and per-bundle tags (firmware/auth.ts, and how the links use them): the hello
 * proves the device key, every bundle of the session carries a tag, and forged, altered, copied or
 * replayed bundles are refused with HF_ERR_AUTH without disturbing the real session.
 */
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { MAC_BYTES, Sealer, TAG_BYTES, checkHelloProof, helloProof, sessionKey } from '../firmware/auth';
import { fromHex, toHex } from '../firmware/bytes';
import { ClientLink } from '../firmware/client-link';
import { ServerLink } from '../firmware/server-link';
import { type ServerData, decodeSnapshot } from '../firmware/snapshot';
import { BundleReader } from '../firmware/wire';
import { nodeCrypto } from '../targets/node/crypto';
import { Manual } from './support/manual';
import { code } from './support/errors';

const KEY = new Uint8Array(32).fill(7);
const OTHER = new Uint8Array(32).fill(8);
const NONCE = fromHex('000102030405060708090a0b0c0d0e0f');

test('hello proof: fixed for the same inputs, different for any other key, id, counter or nonce', () => {
  const p = helloProof(nodeCrypto, KEY, 'dev-1', 7, NONCE);
  assert.is(p.length, MAC_BYTES);
  assert.is(toHex(helloProof(nodeCrypto, KEY, 'dev-1', 7, NONCE)), toHex(p));
  assert.ok(checkHelloProof(nodeCrypto, KEY, 'dev-1', 7, NONCE, p));
  assert.not.ok(checkHelloProof(nodeCrypto, OTHER, 'dev-1', 7, NONCE, p), 'other key');
  assert.not.ok(checkHelloProof(nodeCrypto, KEY, 'dev-2', 7, NONCE, p), 'other id');
  assert.not.ok(checkHelloProof(nodeCrypto, KEY, 'dev-1', 8, NONCE, p), 'other counter');
  assert.not.ok(checkHelloProof(nodeCrypto, KEY, 'dev-1', 7, fromHex('00'.repeat(16)), p), 'other nonce');
  assert.not.ok(checkHelloProof(nodeCrypto, KEY, 'dev-1', 7, NONCE, p.subarray(0, 31)), 'short proof');
  assert.not.ok(checkHelloProof(nodeCrypto, KEY, 'dev-1', 7, NONCE, new Uint8Array([...p, 0])), 'long proof');
  assert.not.ok(checkHelloProof(nodeCrypto, KEY, 'dev-1', 7, NONCE, new Uint8Array(0)), 'empty proof');
  // The id and the counter are separated: "dev-1" + n cannot be confused with "dev-" + another n.
  assert.is.not(toHex(helloProof(nodeCrypto, KEY, 'a', 0x62000000, NONCE)), toHex(helloProof(nodeCrypto, KEY, 'ab', 0, NONCE)));
  // RFC 4231 test case 2, through the host target's HMAC: the primitive is HMAC-SHA256.
  const out = new Uint8Array(32);
  const data = new TextEncoder().encode('what do ya want for nothing?');
  nodeCrypto.hmac(new TextEncoder().encode('Jefe'), data, 0, data.length, out, 0);
  assert.is(toHex(out), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});

test('the test vector of docs/PROTOCOL.md section 13', () => {
  const doc = readFileSync(join(__dirname, '..', 'docs', 'PROTOCOL.md'), 'utf8');
  const vec = (name: string): Uint8Array => {
    const m = new RegExp(`^vector: ${name}\\s+([0-9a-f]+)$`, 'm').exec(doc);
    if (m === null) throw new Error(`vector ${name} missing from PROTOCOL.md`);
    return fromHex(m[1]);
  };
  const key = vec('key');
  const sid = fromHex('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf');
  assert.is(toHex(helloProof(nodeCrypto, key, 'dev-1', 7, NONCE)), toHex(vec('proof')));
  const sk = sessionKey(nodeCrypto, key, sid, NONCE);
  assert.is(toHex(sk), toHex(vec('session key')));
  const tagged = vec('tagged data');
  const v = new BundleReader().read(tagged);
  assert.is(v.tagOff, tagged.length - 16);
  assert.is(toHex(v.buf, v.sidOff, 16), toHex(sid));
  assert.is(v.msgCount, 2);
  assert.ok(new Sealer(nodeCrypto, sk).verify(tagged, 0, v.tagOff), 'the tag verifies under the session key');
});

test('sealer: a tag covers every byte before it', () => {
  const s = new Sealer(nodeCrypto, sessionKey(nodeCrypto, KEY, new Uint8Array(16).fill(1), NONCE));
  const buf = new Uint8Array(64).map((_, i) => i);
  const tagOff = 40;
  s.sign(buf, 4, tagOff);
  assert.ok(s.verify(buf, 4, tagOff));
  for (let i = 4; i < tagOff + TAG_BYTES; i++) {
    buf[i] ^= 0x01;
    assert.not.ok(s.verify(buf, 4, tagOff), `byte ${i} flipped`);
    buf[i] ^= 0x01;
  }
  assert.ok(s.verify(buf, 4, tagOff), 'bytes before start and after the tag are not covered');
  const other = new Sealer(nodeCrypto, sessionKey(nodeCrypto, KEY, new Uint8Array(16).fill(2), NONCE));
  assert.not.ok(other.verify(buf, 4, tagOff), 'another session key');
  assert.is(
    code(() => new Sealer(nodeCrypto, new Uint8Array(16))),
    'HF_ERR_OPTION',
  );
});

test('an authenticated session: every bundle after the hello is tagged, messages flow both ways', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.open();
  assert.is(m.client.state, 2, 'open');
  assert.ok(m.client.ep.sealer !== null && m.server!.ep.sealer !== null);
  m.send('up');
  const reader = new BundleReader();
  for (const r of m.requests) assert.ok(reader.read(r.body).tagOff > 0, 'request tagged');
  m.settle();
  m.gatewaySend('down');
  m.advance(10);
  for (const a of m.answers) assert.ok(reader.read(a.body).tagOff > 0, 'answer tagged');
  m.settle();
  assert.equal(m.gatewayGot, ['up']);
  assert.equal(m.deviceGot, ['down']);
});

test('a wrong key or an unknown device: the hello is refused with HF_ERR_AUTH, no session', () => {
  const m = new Manual({}, {}, { device: OTHER, gateway: KEY });
  m.client.start(m.now);
  m.deliverRequest();
  const err = m.answers[0];
  const v = m.parse(err.body);
  assert.not.ok(v.hasSid, 'the refusal is an error bundle');
  assert.match(new TextDecoder().decode(err.body), /HF_ERR_AUTH/);
  assert.is(m.acceptor.size, 0);
  assert.is(m.server, null);
  // Unauthenticated devices are refused too when the gateway has keys.
  const n = new Manual({}, {}, { gateway: KEY });
  n.client.start(n.now);
  n.deliverRequest();
  assert.match(new TextDecoder().decode(n.answers[0].body), /HF_ERR_AUTH/);
  assert.is(n.acceptor.size, 0);
});

test('a forged bundle with the real session id is refused (HF_ERR_AUTH) and changes nothing', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.open();
  m.send('one');
  const real = m.requests[m.requests.length - 1];
  // Forge: the same bytes with the tag zeroed, with one payload byte changed, and with no tag at all.
  const reader = new BundleReader();
  const v = reader.read(real.body);
  const zeroed = real.body.slice();
  zeroed.fill(0, v.tagOff, v.tagOff + 16);
  const altered = real.body.slice();
  altered[v.starts[0]] ^= 0x20;
  const before = toHex(m.server!.snapshot(m.now));
  for (const [name, body] of [
    ['zeroed tag', zeroed],
    ['altered payload', altered],
  ] as const) {
    assert.is(
      code(() => m.redeliver(body)),
      'HF_ERR_AUTH',
      name,
    );
  }
  // An untagged bundle for the session (as an unauthenticated client would write it).
  const bare = new Manual();
  bare.open();
  bare.send('x');
  const untagged = bare.requests[bare.requests.length - 1].body.slice();
  const sidAt = reader.read(untagged).sidOff;
  untagged.set(m.server!.sid, sidAt);
  assert.is(
    code(() => m.redeliver(untagged)),
    'HF_ERR_AUTH',
    'untagged bundle with the real sid',
  );
  assert.is(toHex(m.server!.snapshot(m.now)), before, 'the session did not change');
  m.settle();
  assert.equal(m.gatewayGot, ['one'], 'the real bundle still counts');
});

test('a captured request sent again later gains nothing: a bare answer within the window, HF_ERR_AUTH past it', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.open();
  m.send('a');
  const captured = m.requests[m.requests.length - 1].body.slice();
  const reader = new BundleReader();
  const capturedRn = reader.read(captured).rn;
  m.settle();
  // Push the request past the replay cache (4 answers) with more traffic.
  for (let i = 0; i < 8; i++) {
    m.send(`m${i}`);
    m.settle();
    m.gatewaySend(`r${i}`);
    m.advance(10);
    m.settle();
  }
  const held = m.server!.held;
  assert.ok(held >= 1, 'a request is held');
  // Within the window it may be a driver's retry whose answer was lost: it is answered with the
  // acknowledgement state only. Nothing in it is applied and the held request stays held.
  const cachedBefore = decodeSnapshot<ServerData>(m.server!.snapshot(m.now), 'server').link.replay.map(([rn]) => rn);
  const ex = m.redeliver(captured);
  assert.is(m.server!.held, held, 'the held request is still held');
  const cachedAfter = decodeSnapshot<ServerData>(m.server!.snapshot(m.now), 'server').link.replay.map(([rn]) => rn);
  assert.equal(cachedAfter, cachedBefore, 'the bare answer pushes no real answer out of the replay cache');
  assert.is(m.answers.length, 1, 'answered at once');
  const bare = reader.read(m.answers[0].body);
  assert.is(m.answers[0].exchange, ex);
  assert.is([bare.rn, bare.msgCount, bare.ctlCount].join(' '), `${capturedRn} 0 0`, 'same rn, no messages, no items');
  m.dropAll();
  // Once 32 or more newer requests were taken, nothing can tell it from a replay: refused.
  for (let i = 0; i < 40; i++) {
    m.send(`n${i}`);
    m.settle();
  }
  assert.is(
    code(() => m.redeliver(captured)),
    'HF_ERR_AUTH',
    'past the window',
  );
  m.send('after');
  m.settle();
  const want = ['a', ...Array.from({ length: 8 }, (_, i) => `m${i}`), ...Array.from({ length: 40 }, (_, i) => `n${i}`), 'after'];
  assert.equal(m.gatewayGot, want, 'each message once, in order');
});

test('a repeated hello gets the same welcome until the device used it; afterwards it is a replay', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.client.start(m.now);
  const hello = m.requests[0].body.slice();
  m.deliverRequest();
  const welcome = m.answers[0].body.slice();
  const ex = m.redeliver(hello);
  assert.is(toHex(m.answers.find((a) => a.exchange === ex)!.body), toHex(welcome), 'a duplicate before first use gets the welcome again');
  m.answers.length = 0;
  m.answers.push({ exchange: 1, body: welcome });
  m.deliverAnswer();
  m.deliverRequest(); // the device's first request on the session
  assert.is(
    code(() => m.redeliver(hello)),
    'HF_ERR_AUTH',
    'replayed hello',
  );
  assert.is(m.acceptor.size, 1);
  m.send('still here');
  m.settle();
  assert.equal(m.gatewayGot, ['still here']);
});

test('the device refuses a welcome not tagged with its key (a gateway that does not know it)', () => {
  // A gateway that accepts anyone (no keys) answers an authenticating device: its welcome is untagged.
  const m = new Manual({}, {}, { device: KEY });
  m.client.start(m.now);
  m.deliverRequest();
  m.deliverAnswer();
  assert.is(m.client.state, 1, 'still in hello');
  assert.ok(m.events.includes('device reject HF_ERR_AUTH'), m.events.join(', '));
  assert.is(m.client.sid, null);
});

test('an authenticated server link snapshot restores with its session key and request window', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.open();
  m.send('x');
  m.settle();
  const snap = m.server!.snapshot(m.now);
  const port = { answer: () => {}, transmit: () => {}, deliver: () => true };
  assert.is(
    code(() => ServerLink.restore(snap, m.now, port)),
    'HF_ERR_STATE',
    'no crypto for an authenticated session',
  );
  const r = ServerLink.restore(snap, m.now, port, nodeCrypto);
  assert.is(toHex(r.ep.sealer!.key), toHex(m.server!.ep.sealer!.key));
  assert.is(toHex(r.snapshot(m.now)), toHex(snap));
});

test('key and crypto go together', () => {
  assert.is(
    code(() => new ClientLink({ id: 'x', random: () => {}, key: KEY }, { transmit: () => {}, deliver: () => true })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ClientLink({ id: 'x', random: () => {}, key: new Uint8Array(0), crypto: nodeCrypto }, { transmit: () => {}, deliver: () => true })),
    'HF_ERR_OPTION',
  );
});

test.run();
