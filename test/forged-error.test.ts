/**
 * Error items of an authenticated session (PROTOCOL 13.2): a forged, untagged error answering a
 * request of an open session is refused and the session goes on; a genuine error from the gateway is
 * tagged and ends the session with its code; a gateway that really lost the session ends it through
 * the silence rule, in bounded time, with the gateway's code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Acceptor } from '../firmware/acceptor';
import { errorBundle, refusalBundle } from '../firmware/error-bundle';
import { ErrorCode, type HfError, isHfError } from '../firmware/errors';
import { LinkState } from '../firmware/link-base';
import { nodeCrypto } from '../targets/node/crypto';
import { Prng } from '../targets/sim/prng';
import { Manual } from './support/manual';

const KEY = new Uint8Array(32).fill(7);

for (const code of [ErrorCode.CLOSED, ErrorCode.AUTH, ErrorCode.UNKNOWN_SESSION]) {
  test(`a forged untagged ${code} answering an outstanding request is refused; the session goes on, exactly once`, () => {
    const m = new Manual({}, {}, { device: KEY, gateway: KEY });
    m.open();
    m.send('one');
    m.advance(10);
    assert.ok(m.requests.length > 0, 'a request is outstanding');
    for (const r of m.requests) m.client.onBundle(m.now, errorBundle(r.rn, { code, message: 'forged' }));
    assert.is(m.client.state, LinkState.OPEN, 'still open');
    assert.ok(m.events.includes(`device reject ${code}`), m.events.join(', '));
    assert.ok(m.client.untaggedErrors > 0);
    // The real requests still arrive, and the retries after the back-off too.
    for (let i = 0; i < 20; i++) {
      m.settle();
      m.advance(500);
    }
    m.gatewaySend('two');
    for (let i = 0; i < 20; i++) {
      m.settle();
      m.advance(500);
    }
    assert.is(m.client.state, LinkState.OPEN, 'still open after the retries');
    assert.equal(m.gatewayGot, ['one'], 'delivered once');
    assert.equal(m.deviceGot, ['two'], 'delivered once');
    assert.is(m.deviceClose, undefined);
  });
}

test('a genuine error of the gateway is tagged and ends the device session with its code', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.open();
  m.settle();
  assert.ok((m.server?.held ?? 0) > 0, 'a request is held');
  m.server?.abort(m.now, ErrorCode.BUSY, 'going away');
  assert.ok(m.answers.length > 0);
  for (const a of m.answers) assert.ok(m.parse(a.body).tagOff > 0, 'the farewell is tagged');
  m.settle();
  assert.is(m.client.state, LinkState.FAILED);
  assert.is(m.client.failure?.code, ErrorCode.BUSY);
});

test('a refusal of an authentic bundle of the session is tagged and ends the device session with its code', () => {
  const m = new Manual({}, {}, { device: KEY, gateway: KEY });
  m.open();
  m.settle();
  // The session refuses an authentic, fresh bundle: its answer carries the session id and tag.
  const link = m.server;
  assert.ok(link !== null);
  m.send('x');
  const req = m.requests[m.requests.length - 1];
  // An authentic bundle that acknowledges a message the gateway never sent (as a buggy device would).
  const view = { ...m.parse(req.body), ack: 99 };
  let refusal: unknown = null;
  try {
    (link as unknown as { checkAuthentic(v: unknown): void }).checkAuthentic(view);
  } catch (e) {
    refusal = e;
  }
  assert.ok(isHfError(refusal), 'refused');
  const body = refusalBundle(req.rn, refusal as HfError);
  const v = m.parse(body);
  assert.ok(v.hasSid && v.tagOff > 0, 'tagged with the session');
  m.client.onBundle(m.now, body);
  assert.is(m.client.state, LinkState.FAILED);
  assert.is(m.client.failure?.code, ErrorCode.ACK);
});

test('the gateway really forgot the session: the device ends with HF_ERR_UNKNOWN_SESSION by the silence rule', () => {
  const dead = 5000;
  const m = new Manual({ failAfter: 3, deadAfterMs: dead }, {}, { device: KEY, gateway: KEY });
  m.open();
  m.settle();
  m.dropAll();
  const heard = m.client.ep.lastHeard;
  // A new acceptor, as after a gateway restart: the device's session id is unknown to it.
  const rng = new Prng(7);
  const fresh = new Acceptor({ keyOf: () => KEY, crypto: nodeCrypto, random: (b) => rng.fill(b), open: () => ({ answer: () => {}, transmit: () => {}, deliver: () => true }) });
  m.send('lost?');
  for (let i = 0; i < 2000 && !m.client.isFinished; i++) {
    for (const r of m.requests.splice(0)) {
      try {
        fresh.onRequest(m.now, i + 1, r.body);
      } catch (e) {
        if (!isHfError(e)) throw e;
        m.client.onBundle(m.now, refusalBundle(r.rn, e));
      }
    }
    m.advance(50);
  }
  assert.is(m.client.state, LinkState.FAILED);
  assert.is(m.client.failure?.code, ErrorCode.UNKNOWN_SESSION);
  assert.ok(m.now - heard >= dead, 'not before the silence limit');
  assert.ok(m.now - heard <= dead + 2000, `within the silence limit and one back-off (${m.now - heard} ms)`);
});

test.run();
