/** ServerLink transitions (Figure 7), driven by hand: hold, answer rules, replay, inactivity, refusals. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ctl, decodeControl } from '../firmware/control';
import { LinkState, Transport } from '../firmware/link-base';
import type { ServerLink } from '../firmware/server-link';
import { Manual } from './support/manual';
import { code as codeOf } from './support/errors';

test('the first request after the welcome is held, not answered', () => {
  const m = new Manual();
  m.open();
  assert.is(m.requests.length, 1, 'client keeps one request outstanding');
  m.deliverRequest();
  assert.is(m.answers.length, 0);
  assert.is((m.server as ServerLink).held, 1);
});

test('the next request makes the server answer the held one and hold the new one', () => {
  const m = new Manual();
  m.open();
  const first = m.deliverRequest();
  m.send('hello');
  const second = m.deliverRequest();
  assert.is(m.answers.length, 1);
  assert.is(m.answers[0].exchange, first, 'the older exchange is answered');
  assert.is((m.server as ServerLink).held, 1);
  assert.equal(m.gatewayGot, ['hello']);
  // The answer acknowledges the message carried by the new request.
  const v = m.parse(m.answers[0].body);
  assert.is(v.ack, 1);
  void second;
});

test('a full bundle is answered at once, without waiting for the next request', () => {
  const m = new Manual({}, { maxMessages: 4, coalesceMs: 1000 });
  m.open();
  const ex = m.deliverRequest();
  for (let i = 0; i < 3; i++) m.gatewaySend(`m${i}`);
  assert.is(m.answers.length, 0, 'three of four: the server waits (coalescing)');
  m.gatewaySend('m3');
  assert.is(m.answers.length, 1, 'four of four: answered');
  assert.is(m.answers[0].exchange, ex);
  assert.is(m.parse(m.answers[0].body).msgCount, 4);
});

test('messages are answered after the coalescing delay when no bundle fills', () => {
  const m = new Manual({}, { maxMessages: 8, coalesceMs: 30 });
  m.open();
  m.deliverRequest();
  m.gatewaySend('a');
  m.advance(29);
  assert.is(m.answers.length, 0);
  m.advance(2);
  assert.is(m.answers.length, 1);
});

test('a held request is answered before the wait limit', () => {
  const m = new Manual({}, { holdMs: 5000 });
  m.open();
  const ex = m.deliverRequest();
  m.advance(4999);
  assert.is(m.answers.length, 0);
  m.advance(1);
  assert.is(m.answers.length, 1);
  assert.is(m.answers[0].exchange, ex);
  assert.is(m.parse(m.answers[0].body).msgCount, 0);
  // The client answers the empty response with a new request, which is held in turn.
  m.deliverAnswer();
  assert.is(m.requests.length, 1);
  m.deliverRequest();
  assert.is((m.server as ServerLink).held, 1);
});

test('a repeated request number gets the same answer again', () => {
  const m = new Manual();
  m.open();
  m.deliverRequest();
  m.send('x');
  const req = m.requests[0];
  m.deliverRequest();
  m.gatewaySend('reply');
  assert.is(m.answers.length, 2);
  const answered = m.answers[1];
  // The response to `req` was lost; the client (or a proxy) sends the same request again.
  const again = m.redeliver(req.body);
  const replay = m.answers.find((a) => a.exchange === again);
  assert.ok(replay, 'answered at once');
  assert.equal([...(replay as { body: Uint8Array }).body], [...answered.body], 'byte for byte the same answer');
  assert.equal(m.gatewayGot, ['x'], 'the message is not delivered twice');
});

test('a duplicate of a held request takes its place; the older exchange is released', () => {
  const m = new Manual();
  m.open();
  const req = m.requests[0];
  const first = m.deliverRequest();
  const second = m.redeliver(req.body);
  assert.is(m.answers.length, 1);
  assert.is(m.answers[0].exchange, first);
  assert.is((m.server as ServerLink).held, 1);
  m.gatewaySend('late');
  assert.is(m.answers[1].exchange, second);
});

test('with maxHeld 2 the server holds two requests and answers the oldest at the third', () => {
  const m = new Manual({ maxOutstanding: 3 }, { maxHeld: 2 });
  m.open();
  const a = m.deliverRequest();
  m.send('1');
  m.deliverRequest();
  assert.is(m.answers.length, 0, 'two held');
  m.send('2');
  m.deliverRequest();
  assert.is(m.answers.length, 1);
  assert.is(m.answers[0].exchange, a);
});

test("a pair's primary (a delivery gate): the displaced answer waits for the messages the new request brought, at most ackDelayMs", () => {
  const m = new Manual({}, { ackDelayMs: 5 });
  m.open();
  const server = m.server as ServerLink;
  server.setAckAfter('app');
  server.ep.gate(server.ep.inr.next);
  const first = m.deliverRequest();
  m.send('a');
  m.deliverRequest();
  assert.is(m.answers.length, 0, 'held: the message waits at the gate');
  assert.is(server.held, 2);
  assert.equal(m.gatewayGot, []);
  // The standby holds it: the gate opens, the application takes it, then confirms it.
  server.openGate(m.now, server.ep.inr.next);
  assert.equal(m.gatewayGot, ['a']);
  assert.is(m.answers.length, 0, 'delivered, not confirmed yet: still waiting');
  server.confirm(m.now, 0);
  assert.is(m.answers.length, 1, 'answered once the application confirmed');
  assert.is(m.answers[0].exchange, first);
  const v = m.parse(m.answers[0].body);
  assert.is(v.ack, 1, 'it acknowledges the message');
  assert.is(server.held, 1);
  // Messages the gate keeps longer: the displaced answer goes at ackDelayMs after the newer request.
  m.deliverAnswer();
  while (m.requests.length > 0) m.deliverRequest();
  m.answers.length = 0;
  m.send('c');
  m.deliverRequest();
  assert.is(m.answers.length, 0);
  m.advance(4);
  assert.is(m.answers.length, 0, 'before ackDelayMs');
  m.advance(2);
  assert.is(m.answers.length, 1, 'at ackDelayMs');
});

test('direct: the first frame on a connection is answered at once, also when the session is on another connection whose close has not arrived', () => {
  const m = new Manual();
  m.open();
  m.deliverRequest();
  const server = m.server as ServerLink;
  /** The device moves onto a new connection; its first (empty) frame reaches the server on `conn`. */
  const connectOn = (conn: number): void => {
    m.requests.length = 0;
    m.client.setTransport(m.now, Transport.HELD);
    m.client.setTransport(m.now, Transport.DIRECT);
    const first = m.requests[0].body;
    assert.is(m.parse(first).msgCount, 0, 'an empty first frame');
    m.frames.length = 0;
    m.acceptor.onFrame(m.now, first, conn);
    m.advance(0);
  };
  connectOn(-1);
  assert.is(server.transport, Transport.DIRECT);
  assert.is(m.frames.length, 1, 'HTTP -> connection 1: a frame back at once');
  connectOn(-2);
  assert.is(server.directConn, -2);
  assert.is(m.frames.length, 1, 'connection 1 -> connection 2 with no close between: a frame back at once');
  // Later empty frames on the same connection owe nothing.
  m.requests.length = 0;
  m.frames.length = 0;
  m.advance(1);
  assert.is(m.frames.length, 0, 'nothing more owed');
});

test('silence past the idle limit ends the session and frees it; held requests get the error', () => {
  const m = new Manual({}, { idleMs: 10_000, holdMs: 60_000 });
  m.open();
  m.deliverRequest();
  m.dropAll();
  m.advance(9_999);
  assert.is(m.acceptor.size, 1);
  m.advance(1);
  assert.is(m.acceptor.size, 0, 'freed');
  assert.is((m.server as ServerLink).state, LinkState.FAILED);
  assert.is(m.gatewayClose !== undefined && m.gatewayClose !== 'clean' && m.gatewayClose.code, 'HF_ERR_TIMEOUT');
  assert.is(m.answers.length, 1, 'the held request is answered');
  const v = m.parse(m.answers[0].body);
  const items = Array.from({ length: v.ctlCount }, (_, k) => decodeControl(v.buf, v.ctlStarts[k], v.ctlEnds[k]));
  assert.ok(items.some((c) => c !== null && c.kind === Ctl.ERROR && c.code === 'HF_ERR_TIMEOUT'));
});

test('bad bundles are refused with a code and change nothing; the session keeps flowing', () => {
  const m = new Manual();
  m.open();
  m.deliverRequest();
  const server = m.server as ServerLink;
  const before = [server.ep.inr.next, server.ep.out.tail, server.held];
  m.send('good');
  const good = m.requests[0].body;
  assert.is(
    codeOf(() => m.redeliver(good.subarray(0, good.length - 3))),
    'HF_ERR_CBOR',
    'truncated',
  );
  assert.is(
    codeOf(() => m.redeliver(new Uint8Array([0xa1, 0x00, 0x02]))),
    'HF_ERR_BUNDLE',
    'wrong version',
  );
  const unknown = good.slice();
  const v = m.parse(unknown);
  unknown[v.sidOff] ^= 0xff;
  assert.is(
    codeOf(() => m.redeliver(unknown)),
    'HF_ERR_UNKNOWN_SESSION',
  );
  assert.equal([server.ep.inr.next, server.ep.out.tail, server.held], before);
  m.deliverRequest();
  assert.equal(m.gatewayGot, ['good']);
});

test('a message outside the window is refused (HF_ERR_WINDOW) and changes nothing', () => {
  const m = new Manual({ outSlots: 64, coalesceMs: 100, maxMessages: 8 }, { inSlots: 4 });
  m.open();
  m.deliverRequest();
  const server = m.server as ServerLink;
  // Make the client believe the window is larger than it is, so it oversends.
  m.client.ep.peerWndSeq = 64;
  for (let i = 0; i < 6; i++) m.send(`m${i}`);
  m.advance(100);
  const body = m.requests[m.requests.length - 1].body;
  const v = m.parse(body);
  assert.ok(v.msgCount >= 5);
  const next = server.ep.inr.next;
  assert.is(
    codeOf(() => m.redeliver(body)),
    'HF_ERR_WINDOW',
  );
  assert.is(server.ep.inr.next, next);
  assert.equal(m.gatewayGot, []);
});

test('hello: wrong proof, replayed hello, newer hello replaces the session', () => {
  const m = new Manual();
  m.client.start(m.now);
  const hello = m.requests[0].body;
  m.deliverRequest();
  const welcome = m.answers[0].body;
  const again = m.redeliver(hello);
  assert.equal([...m.answers.find((a) => a.exchange === again)!.body], [...welcome], 'the same hello gets the same welcome');
  assert.is(m.acceptor.size, 1);
  // An intruder's hello is refused.
  const intruder = new Manual();
  (intruder.client as unknown as { id: string }).id = 'intruder';
  intruder.client.start(intruder.now);
  assert.is(
    codeOf(() => intruder.redeliver(intruder.requests[0].body)),
    'HF_ERR_AUTH',
  );
  assert.is(intruder.acceptor.size, 0);
});

test.run();
