/** ClientLink transitions (Figure 6), driven by hand: outstanding requests, timeouts, failure, close. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientLink } from '../firmware/client-link';
import { errorBundle } from '../firmware/error-bundle';
import { ErrorCode } from '../firmware/errors';
import { LinkState, Transport } from '../firmware/link-base';
import type { ServerLink } from '../firmware/server-link';
import { nodeCrypto } from '../targets/node/crypto';
import { Prng } from '../targets/sim/prng';
import { code } from './support/errors';
import { Manual } from './support/manual';

test('hello, welcome, then one request kept outstanding', () => {
  const m = new Manual();
  m.client.start(m.now);
  assert.is(m.client.state, LinkState.HELLO);
  assert.is(m.requests.length, 1);
  assert.is(m.parse(m.requests[0].body).hasSid, false);
  m.deliverRequest();
  m.deliverAnswer();
  assert.is(m.client.state, LinkState.OPEN);
  assert.equal(m.events, ['device open']);
  assert.is(m.client.outstanding, 1, 'a request goes out at once so the server can answer');
});

test('a lost hello is sent again after the timeout, as a new hello', () => {
  const m = new Manual({ initialRto: 500 });
  m.client.start(m.now);
  m.dropAll();
  m.advance(499);
  assert.is(m.requests.length, 0);
  m.advance(1);
  assert.is(m.requests.length, 1, 'resent');
  m.deliverRequest();
  m.deliverAnswer();
  assert.is(m.client.state, LinkState.OPEN);
  assert.is(m.client.helloCounter, 2, 'the second attempt used the next counter');
});

test('a message goes out in a second request while one is held; never more than maxOutstanding', () => {
  const m = new Manual({ maxOutstanding: 2 });
  m.open();
  m.send('a');
  assert.is(m.client.outstanding, 2);
  m.send('b');
  assert.is(m.client.outstanding, 2, 'capped');
  assert.is(m.requests.length, 2);
  assert.is(m.parse(m.requests[1].body).msgCount, 1);
});

test('a response with nothing outstanding makes the client send another request at once', () => {
  const m = new Manual();
  m.open();
  m.deliverRequest(); // held
  m.gatewaySend('news');
  assert.is(m.answers.length, 1);
  m.deliverAnswer();
  assert.equal(m.deviceGot, ['news']);
  assert.is(m.client.outstanding, 1, 'a new request replaces the answered one');
  assert.is(m.parse(m.requests[0].body).ack, 1, 'and it acknowledges the news');
});

test('a full bundle goes at once; a partial one waits for the coalescing delay', () => {
  const m = new Manual({ maxMessages: 3, coalesceMs: 40, maxOutstanding: 3 });
  m.open();
  m.send('1');
  m.send('2');
  assert.is(m.requests.length, 1, 'only the held request so far');
  m.send('3');
  assert.is(m.requests.length, 2, 'full: sent');
  assert.is(m.parse(m.requests[1].body).msgCount, 3);
  m.send('4');
  m.advance(39);
  assert.is(m.requests.length, 2);
  m.advance(1);
  assert.is(m.requests.length, 3);
});

test('an unanswered message is resent after the retransmission timeout, same sequence number', () => {
  const m = new Manual({ initialRto: 300, minRto: 100 });
  m.open();
  m.deliverRequest();
  m.send('lost');
  const first = m.parse(m.requests[0].body);
  const seq = first.seqs[0];
  m.dropAll();
  const rto = m.client.ep.rtt.rto;
  m.advance(rto - 1);
  assert.is(m.requests.length, 0);
  m.advance(1);
  assert.is(m.requests.length, 1, 'resent');
  const again = m.parse(m.requests[0].body);
  assert.is(again.msgCount, 1);
  assert.is(again.seqs[0], seq);
  assert.ok(m.client.ep.rtt.rto >= rto * 2 - 1e-9, 'timeout backed off');
  m.settle();
  assert.equal(m.gatewayGot, ['lost']);
});

test('a request whose connection was cut goes again at once, its messages with it; the RTO is left alone', () => {
  const m = new Manual({ initialRto: 300, minRto: 100 });
  m.open();
  m.deliverRequest(); // held
  m.send('cut');
  const lost = m.requests.shift()!;
  const lostSeq = m.parse(lost.body).seqs[0];
  assert.is(m.parse(lost.body).msgCount, 1);
  const rto = m.client.ep.rtt.rto;
  m.client.onRequestFailed(m.now, lost.rn, true);
  assert.is(m.requests.length, 1, 'a new request at once, no timeout waited');
  const again = m.parse(m.requests[0].body);
  assert.is(again.msgCount, 1, 'carrying the lost message');
  assert.is(again.seqs[0], lostSeq);
  assert.ok(m.requests[0].rn !== lost.rn, 'under a new request number');
  assert.is(m.client.ep.rtt.rto, rto, 'the retransmission timer did not back off');
  m.settle();
  assert.equal(m.gatewayGot, ['cut']);
});

test('cuts in a row with the gateway silent: the first retryAtOnce go at once, then a doubling back-off with jitter, capped', () => {
  const m = new Manual({ retryAtOnce: 2, retryBackoffMs: 100, retryBackoffMaxMs: 400, maxOutstanding: 2 });
  m.open();
  m.requests.length = 0;
  // The gateway last answered longer than retryBackoffMaxMs ago (while it answers now and then,
  // every cut goes again at once).
  m.advance(500);
  m.client.onRequestFailed(m.now, m.client.rn, true); // the held request's connection died
  const waits: number[] = [];
  for (let k = 0; k < 6; k++) {
    const t0 = m.now;
    for (let i = 0; i < 1000 && m.requests.length === 0; i++) m.advance(1);
    assert.is(m.requests.length, 1, `cut ${k + 1}: a request follows`);
    waits.push(m.now - t0);
    m.client.onRequestFailed(m.now, m.requests.shift()!.rn, true);
  }
  assert.is(waits[0], 0, `at once: ${waits}`);
  assert.is(waits[1], 0, `at once: ${waits}`);
  // Cut 3 waits 50..100 ms, cut 4 100..200, then 200..400 (the cap).
  assert.ok(waits[2] >= 50 && waits[2] <= 101, `${waits}`);
  assert.ok(waits[3] >= 100 && waits[3] <= 201, `${waits}`);
  assert.ok(waits[4] >= 200 && waits[4] <= 401 && waits[5] <= 401, `${waits}`);
  assert.is(m.client.cuts, 7);
  // An answer ends the run of cuts.
  for (let i = 0; i < 1000 && m.requests.length === 0; i++) m.advance(1);
  m.deliverRequest();
  m.advance(25_000);
  m.settle();
  assert.is(m.client.cuts, 0);
  assert.is(m.client.state, LinkState.OPEN);
});

test('requests halve while connections die before the answer, down to minBundleBytes, and grow back with answers', () => {
  const m = new Manual({ minBundleBytes: 2048, maxOutstanding: 2, coalesceMs: 5, retryAtOnce: 100 });
  m.open();
  const max = m.client.pathBytes;
  m.deliverRequest(); // held
  for (let i = 0; i < 40; i++) m.send('x'.repeat(1000));
  m.advance(5);
  const full = m.parse(m.requests[0].body);
  assert.ok(full.msgCount > 16, `uncut, one request takes ${full.msgCount} messages`);
  const sizes: number[] = [];
  for (let k = 0; k < 9; k++) {
    const r = m.requests.shift()!;
    sizes.push(r.body.length);
    m.client.onRequestFailed(m.now, r.rn, true);
    for (let i = 0; i < 1000 && m.requests.length === 0; i++) m.advance(1);
  }
  assert.is(m.client.pathBytes, 2048, 'floor');
  assert.ok(sizes[sizes.length - 1] <= 2048, `request sizes ${sizes}`);
  // (Each cut request is named in the next requests' room field: a few bytes more.)
  for (let k = 1; k < sizes.length; k++) assert.ok(sizes[k] <= Math.max(2048, sizes[k - 1]) + 32, `never growing while cut: ${sizes}`);
  for (let i = 0; i < 100 && m.gatewayGot.length < 40; i++) {
    m.settle();
    m.advance(5);
  }
  assert.is(m.gatewayGot.length, 40, 'everything arrives, once');
  assert.ok(m.client.pathBytes > 2048, 'answers grew it back');
  for (let i = 0; i < 12; i++) {
    m.advance(25_000);
    m.settle();
  }
  assert.is(m.client.pathBytes, max);
});

test('pieces: a message larger than the request budget goes in pieces each way and arrives whole, once', () => {
  const m = new Manual({ maxOutstanding: 2 });
  m.open();
  m.client.pathBytes = 2048;
  m.client.onRequestFailed(m.now, m.requests.shift()!.rn, true); // budget 1024 (each answer doubles it again)
  assert.is(m.parse(m.requests[0].body).roomBytes, 1024, 'the next request asks for answers of 1024 bytes');
  m.deliverRequest(); // held
  m.gatewaySend('d'.repeat(9000));
  const big = 'u'.repeat(10_000);
  m.send(big);
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < 400 && (m.gatewayGot.length === 0 || m.deviceGot.length === 0); i++) {
    for (let k = 0; k < 100 && (m.requests.length > 0 || m.answers.length > 0); k++) {
      while (m.requests.length > 0) {
        if (m.parse(m.requests[0].body).pieceLen > 0) up.push(m.requests[0].body.length);
        m.deliverRequest();
      }
      while (m.answers.length > 0) {
        if (m.parse(m.answers[0].body).pieceLen > 0) down.push(m.answers[0].body.length);
        m.deliverAnswer();
      }
    }
    m.advance(5);
  }
  assert.equal(m.gatewayGot, [big], 'up: whole and once');
  assert.equal(m.deviceGot, ['d'.repeat(9000)], 'down: whole and once');
  assert.ok(up.length > 0 && down.length > 0, `pieces up ${up}, down ${down}`);
  assert.ok(up[0] <= 1024 && down[0] <= 1024 + 64, `the first pieces fit the budget (up ${up}, down ${down}: answers keep to the room the request asked)`);
  for (let i = 0; i < 4; i++) {
    m.advance(25_000); // held requests answered at the hold limit
    m.settle();
  }
  assert.is(m.client.pathBytes, m.client.o.maxBundleBytes, 'and the answers grew the budget back');
});

test('pieces: a cut rewinds to what the receiver said it holds; nothing is delivered twice', () => {
  const m = new Manual({ maxOutstanding: 3, retryAtOnce: 1000 });
  m.open();
  m.deliverRequest(); // held
  m.client.pathBytes = 1024;
  const big = 'p'.repeat(6000);
  m.send(big);
  // Every third request's connection dies on the way.
  let n = 0;
  for (let i = 0; i < 500 && m.gatewayGot.length === 0; i++) {
    while (m.requests.length > 0) {
      const r = m.requests.shift()!;
      if (++n % 3 === 0) m.client.onRequestFailed(m.now, r.rn, true);
      else {
        m.requests.unshift(r);
        m.deliverRequest();
      }
    }
    while (m.answers.length > 0) m.deliverAnswer();
    m.advance(5);
    m.client.pathBytes = 1024;
  }
  assert.equal(m.gatewayGot, [big]);
});

test('a lost answer is named in the next request: the gateway sends its messages again at once, no timeout', () => {
  const m = new Manual({ maxOutstanding: 2 }, { initialRto: 3000, minRto: 3000 });
  m.open();
  const held = m.requests[0].rn;
  m.deliverRequest();
  m.gatewaySend('news');
  assert.is(m.answers.length, 1, 'the held request is answered with the news');
  m.answers.length = 0; // ... and that answer's connection dies
  m.client.onRequestFailed(m.now, held, true);
  assert.is(m.requests.length, 1, 'a new request at once');
  const v = m.parse(m.requests[0].body);
  assert.is(v.lostCount, 1);
  assert.is(v.lost[0], held, 'naming the lost one');
  m.deliverRequest();
  m.advance(10); // well before the gateway's 3 s retransmission timeout
  m.settle();
  assert.equal(m.deviceGot, ['news']);
});

test('a failure that is not a cut (an answer that is not a bundle) backs off by the RTO as before', () => {
  const m = new Manual({ initialRto: 300, minRto: 100 });
  m.open();
  const rto = m.client.ep.rtt.rto;
  const rn = m.requests.shift()!.rn;
  m.client.onRequestFailed(m.now, rn, false);
  assert.is(m.requests.length, 0, 'no request at once');
  assert.ok(m.client.ep.rtt.rto >= rto * 2 - 1e-9, 'backed off');
  assert.is(m.client.pathBytes, m.client.o.maxBundleBytes, 'size untouched');
});

test("newGateway: the back-off the old gateway's failures earned is forgotten, the next request goes at once", () => {
  const m = new Manual({ initialRto: 300, minRto: 100 });
  m.open();
  const rto = m.client.ep.rtt.rto;
  // The gateway refuses (no connection at all): the RTO doubles, nothing goes out until it passed.
  for (const r of m.requests.splice(0)) m.client.onRequestFailed(m.now, r.rn, false);
  assert.ok(m.client.ep.rtt.rto >= rto * 2 - 1e-9, 'backed off');
  m.client.send(m.now, new TextEncoder().encode('hi'));
  assert.is(m.requests.length, 0, 'waiting out the back-off');
  m.client.newGateway(m.now);
  assert.ok(m.requests.length >= 1, 'a request at once, to the new gateway');
  assert.is(m.client.ep.rtt.rto, rto, 'the estimate again, without the back-off');
});

test('failure after N unanswered requests, and only after the silence limit', () => {
  const m = new Manual({ failAfter: 3, deadAfterMs: 30_000, initialRto: 200 }, { holdMs: 2000 });
  m.open();
  m.dropAll();
  m.send('x');
  m.dropAll();
  for (let t = 0; t < 29_000; t += 100) {
    m.advance(100);
    m.dropAll();
  }
  assert.ok(m.client.unanswered >= 3, `unanswered ${m.client.unanswered}`);
  assert.is(m.client.state, LinkState.OPEN, 'not before the silence limit');
  for (let t = 0; t < 60_000 && m.client.state === LinkState.OPEN; t += 100) {
    m.advance(100);
    m.dropAll();
  }
  assert.is(m.client.state, LinkState.FAILED);
  assert.is(m.deviceClose !== undefined && m.deviceClose !== 'clean' && m.deviceClose.code, 'HF_ERR_TIMEOUT');
  assert.ok(m.now - m.client.ep.lastHeard >= 30_000);
});

test('a response resets the unanswered count', () => {
  const m = new Manual({ failAfter: 2, deadAfterMs: 1, initialRto: 200 }, { holdMs: 1000 });
  m.open();
  m.deliverRequest();
  m.advance(1000); // the held request is answered at the hold limit
  m.deliverAnswer();
  assert.is(m.client.unanswered, 0);
  assert.is(m.client.state, LinkState.OPEN);
});

test('send returns false when the out-ring is full; drain follows the acknowledgement', () => {
  const m = new Manual({ outSlots: 2 });
  m.open();
  assert.ok(m.send('1'));
  assert.ok(m.send('2'));
  assert.is(m.send('3'), false);
  m.settle();
  assert.ok(m.events.includes('device drain'));
  assert.ok(m.send('3'));
});

test('drain waits until the refused message fits in the bytes left, not just in a free slot', () => {
  const m = new Manual({ outSlots: 8, outBytes: 64 });
  m.open();
  assert.ok(m.send('a'.repeat(40)));
  assert.is(m.send('b'.repeat(40)), false, '40 + 40 bytes do not fit in 64');
  // A free slot is not enough: uncork-style re-runs of the link must not claim room that is not there.
  m.client.cork();
  m.client.uncork(m.now);
  assert.not.ok(m.events.includes('device drain'), 'no drain while 40 bytes do not fit');
  m.settle();
  assert.ok(m.events.includes('device drain'), 'drain once the first message was acknowledged');
  assert.ok(m.send('b'.repeat(40)));
});

test('close: both directions end, everything delivered, both sides closed and the session freed', () => {
  const m = new Manual();
  m.open();
  m.send('last words');
  m.client.close(m.now);
  assert.is(m.client.state, LinkState.CLOSING);
  assert.is(
    code(() => m.send('more')),
    'HF_ERR_CLOSED',
  );
  m.settle();
  assert.ok(m.events.includes('gateway end'), 'the gateway saw the end of the device stream');
  const server = m.server as ServerLink;
  server.send(m.now, Buffer.from('bye'));
  server.close(m.now);
  m.settle();
  m.advance(10);
  m.settle();
  assert.equal(m.gatewayGot, ['last words']);
  assert.equal(m.deviceGot, ['bye']);
  assert.is(m.client.state, LinkState.CLOSED);
  assert.is(server.state, LinkState.CLOSED);
  assert.is(m.acceptor.size, 0);
  assert.is(m.deviceClose, 'clean');
  assert.is(m.gatewayClose, 'clean');
});

test('the server closing first: the device gets end, then closes too', () => {
  const m = new Manual();
  m.open();
  m.deliverRequest();
  const server = m.server as ServerLink;
  server.send(m.now, Buffer.from('shutting down'));
  server.close(m.now);
  m.settle();
  assert.ok(m.events.includes('device end'));
  m.client.close(m.now);
  m.settle();
  m.advance(10);
  m.settle();
  assert.is(m.client.state, LinkState.CLOSED);
  assert.is(m.acceptor.size, 0);
});

test('the first frame on a new direct connection carries no messages (it must fit preAuthFrameBytes); they follow at once', () => {
  const m = new Manual();
  m.open();
  for (let i = 0; i < 8; i++) m.send(`message ${i} `.padEnd(1000, 'x'));
  m.requests.length = 0;
  m.client.setTransport(m.now, Transport.DIRECT);
  assert.ok(m.requests.length >= 2, `${m.requests.length} frames`);
  const first = m.parse(m.requests[0].body);
  assert.is(first.hasSid, true, 'a bundle of the session');
  assert.is(first.msgCount, 0, 'no messages in the first frame');
  assert.ok(m.requests[0].body.length < 512, `the first frame is ${m.requests[0].body.length} bytes`);
  assert.is(m.parse(m.requests[1].body).msgCount, 8, 'the unacknowledged messages go again at once, in the second');
  // Later frames on the same connection carry messages as usual.
  m.requests.length = 0;
  m.send('later');
  m.advance(50);
  assert.is(m.parse(m.requests[0].body).msgCount, 1);
});

/**
 * A resumed session whose every request is answered at once with an untagged error (a gateway that
 * restarted and forgot it): each refused answer backs off like a failed request, so the requests per
 * second stay bounded by the back-off, however fast the answers come.
 */
test('a resumed session answered only by untagged errors backs off: requests stay bounded', () => {
  const KEY = new Uint8Array(32).fill(7);
  const m = new Manual({ initialRto: 200, minRto: 100, maxRto: 2000, failAfter: 1000, deadAfterMs: 600_000 }, {}, { device: KEY, gateway: KEY });
  m.open();
  m.send('queued');
  m.settle();
  m.send('unacknowledged');
  const snap = m.client.snapshot(m.now);
  const sent: number[] = [];
  const rng = new Prng(3);
  const c = ClientLink.restore(snap, m.now, { id: 'dev', random: (b) => rng.fill(b), key: KEY, crypto: nodeCrypto }, { transmit: (_b, _l, rn) => sent.push(rn), deliver: () => true });
  c.resumeSession(m.now);
  let answered = 0;
  const start = m.now;
  // Ten simulated seconds; every request gets its refusal at once (bounded: a hot loop stops here).
  for (let t = 0; t < 10_000 && answered < 5000; t += 10) {
    for (let k = 0; k < 100 && sent.length > answered; k++) c.onBundle(m.now, errorBundle(sent[answered++], { code: ErrorCode.UNKNOWN_SESSION, message: 'no session' }));
    m.now += 10;
    if (c.nextDeadline() <= m.now) c.onTimer(m.now);
  }
  const seconds = (m.now - start) / 1000;
  assert.is(c.state, LinkState.OPEN, 'an untagged error does not end the session by itself');
  assert.ok(c.untaggedErrors > 0);
  // Two requests at most per backed-off RTO (which starts at 200 ms and doubles): a few dozen at most.
  assert.ok(sent.length <= 40, `${sent.length} requests in ${seconds} s`);
});

test.run();
