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
import { ClientLink } from '../firmware/client-link';
import { Journal } from '../firmware/journal';
import { LinkState } from '../firmware/link-base';
import { MemoryStorage } from '../targets/sim/storage';
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

test('a session the gateway lost: its successor carries the unacknowledged messages into a new session, each once', () => {
  const m = new Manual({ failAfter: 3, deadAfterMs: 2000 }, {}, { device: KEY, gateway: KEY });
  const st = new MemoryStorage();
  m.client.attachJournal(new Journal(st, m.client.o.maxMessage), m.now);
  m.open();
  m.send('acked');
  for (let i = 0; i < 3; i++) {
    m.settle();
    m.advance(50);
  }
  assert.equal(m.gatewayGot, ['acked']);
  assert.is(m.client.ep.out.length, 0, 'acknowledged');
  m.dropAll();
  const oldSid = Buffer.from(m.client.sid as Uint8Array).toString('hex');
  // The gateway restarts: a new acceptor that knows no session.
  const rng = new Prng(11);
  const got: string[] = [];
  const answers: Uint8Array[] = [];
  const fresh = new Acceptor({
    keyOf: () => KEY,
    crypto: nodeCrypto,
    random: (b) => rng.fill(b),
    open: () => ({
      answer: (_ex, body, len) => answers.push(body.slice(0, len)),
      transmit: () => {},
      deliver: (b, o, l) => {
        got.push(Buffer.from(b.subarray(o, o + l)).toString());
        return true;
      },
    }),
  });
  let ex = 0;
  const carry = (link: ClientLink, sent: { rn: number; body: Uint8Array }[]): void => {
    for (const r of sent.splice(0)) {
      try {
        fresh.onRequest(m.now, ++ex, r.body);
      } catch (e) {
        if (!isHfError(e)) throw e;
        answers.push(refusalBundle(r.rn, e));
      }
    }
    for (const a of answers.splice(0)) link.onBundle(m.now, a);
  };
  m.send('one');
  m.send('two');
  for (let i = 0; i < 2000 && !m.client.isFinished; i++) {
    carry(m.client, m.requests);
    m.advance(50);
  }
  assert.is(m.client.failure?.code, ErrorCode.UNKNOWN_SESSION);
  assert.ok(m.client.sessionLost, 'lost for good');
  const config = { id: 'dev', random: (b: Uint8Array) => rng.fill(b), key: KEY, crypto: nodeCrypto };
  const next = m.client.successor(m.now, config, { transmit: () => {}, deliver: () => false });
  assert.is(next.carried, 2);
  assert.is(next.state, LinkState.IDLE);
  next.attachJournal(new Journal(st, next.o.maxMessage), m.now);
  // The next process reads the journal: no session, two messages, a new hello.
  const sent: { rn: number; body: Uint8Array }[] = [];
  let opened = 0;
  const c = ClientLink.fromJournal(st, m.now, config, { transmit: (b, l, rn) => sent.push({ rn, body: b.slice(0, l) }), deliver: () => true, onOpen: () => opened++ });
  assert.ok(c !== null);
  assert.is(c.sid, null);
  assert.is(c.ep.out.length, 2);
  c.start(m.now);
  for (let i = 0; i < 200 && got.length < 2; i++) {
    carry(c, sent);
    m.now += 10;
    if (c.nextDeadline() <= m.now) c.onTimer(m.now);
    if (fresh.nextDeadline() <= m.now) fresh.onTimer(m.now);
  }
  assert.is(opened, 1);
  assert.is(c.state, LinkState.OPEN);
  assert.ok(Buffer.from(c.sid as Uint8Array).toString('hex') !== oldSid, 'a new session');
  assert.equal(got, ['one', 'two'], 'carried, in order, once');
});

test('a session that failed by silence alone (HF_ERR_TIMEOUT) is not lost: it is resumed', () => {
  const m = new Manual({ failAfter: 2, deadAfterMs: 1000 }, {}, { device: KEY, gateway: KEY });
  m.open();
  for (let i = 0; i < 2000 && !m.client.isFinished; i++) {
    m.dropAll();
    m.advance(100);
  }
  assert.is(m.client.failure?.code, ErrorCode.TIMEOUT);
  assert.not.ok(m.client.sessionLost);
});

test.run();
