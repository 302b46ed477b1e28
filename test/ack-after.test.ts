/**
 * ackAfter 'app' at the ring and endpoint level: a message handed to the application keeps its slot
 * and bytes until it is confirmed, so the cumulative ack and the window advertised to the peer count
 * only confirmed messages; confirmations go in order, and a second confirmation or one of a message
 * never delivered is HF_ERR_CONFIRM, changing nothing. Positions are put right below 2^32 to show the
 * arithmetic wraps; a ring on a slab pool stays non-empty (keeps its slab) while a message waits.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ctl, type Hello, type Limits, decodeControl, encodeControl } from '../firmware/control';
import { Endpoint } from '../firmware/endpoint';
import { ErrorCode } from '../firmware/errors';
import { InRing, NEW } from '../firmware/in-ring';
import { checkAckAfter, resolveOptions } from '../firmware/options';
import { SlabPool } from '../firmware/slab-pool';
import { code } from './support/errors';

const W = 0xffffffff;

function fill(r: InRing, seq: number, off: number, n: number, len: number): void {
  for (let i = 0; i < n; i++) {
    const q = (seq + i) >>> 0;
    const o = (off + i * len) >>> 0;
    assert.is(r.check(q, o, len), NEW, `message ${q} is new`);
    r.store(q, o, new Uint8Array(len).fill(i + 1), 0, len);
  }
}

test('in-ring: handed-over messages keep their slots and bytes until confirmed (across 2^32)', () => {
  const seq = W - 2; // 4294967293: messages 4294967293 .. 1 wrap
  const off = W - 9;
  const r = new InRing({ slots: 8, bytes: 64, seq, off });
  fill(r, seq, off, 5, 4);
  assert.is(r.next, (seq + 5) >>> 0);
  assert.is(r.windowMsgs, 3);
  assert.is(r.windowBytes, 64 - 20);
  for (let i = 0; i < 3; i++) {
    assert.ok(r.peek());
    assert.is(r.viewBuf[r.viewOff], i + 1, `message ${i} in order`);
    r.handOver();
  }
  assert.is(r.read, (seq + 3) >>> 0);
  assert.is(r.held, seq, 'nothing confirmed yet');
  assert.is(r.unconfirmed, 3);
  assert.is(r.available, 2);
  assert.is(r.windowMsgs, 3, 'handing over frees nothing');
  assert.is(r.windowBytes, 44);
  assert.ok(r.isConfirmable(seq) && r.isConfirmable((seq + 2) >>> 0));
  assert.not.ok(r.isConfirmable((seq + 3) >>> 0), 'not handed over yet');
  assert.not.ok(r.isConfirmable((seq - 1) >>> 0), 'before the ring');
  // Confirm the first two (they straddle 2^32 - 1 -> 0 in both seq and offset).
  assert.is(r.confirm((seq + 2) >>> 0), 2);
  assert.is(r.held, (seq + 2) >>> 0);
  assert.is(r.heldOff, (off + 8) >>> 0);
  assert.is(r.windowMsgs, 5);
  assert.is(r.windowBytes, 52);
  assert.not.ok(r.isConfirmable((seq + 1) >>> 0), 'already confirmed');
  // The window counts from held: a message at held + slots - 1 fits, held + slots does not.
  assert.is(r.check((r.held + 7) >>> 0, (off + 48) >>> 0, 4), NEW);
  assert.is(
    code(() => r.check((r.held + 8) >>> 0, (off + 52) >>> 0, 4)),
    ErrorCode.WINDOW,
  );
  // release (received mode) still works on the rest: it hands over and confirms in one.
  r.confirm(r.read);
  r.release();
  r.release();
  assert.is(r.held, (seq + 5) >>> 0);
  assert.is(r.held, r.read);
  assert.ok(r.isEmpty);
});

test('in-ring on a pool: a ring whose messages all wait for confirmation keeps its slab', () => {
  const pool = new SlabPool();
  const r = new InRing({ slots: 4, bytes: 32, pool });
  fill(r, 0, 0, 2, 4);
  while (r.peek()) r.handOver();
  assert.is(r.available, 0);
  assert.not.ok(r.isEmpty, 'unconfirmed messages: not empty');
  assert.is(r.blocksHeld, 1, 'slab held, wrap scratch not');
  assert.is(pool.lent, 1);
  r.confirm(1);
  assert.is(r.blocksHeld, 1);
  r.confirm(2);
  assert.ok(r.isEmpty);
  assert.is(r.blocksHeld, 0);
  assert.is(pool.lent, 0);
  assert.is(
    code(() => r.restart(9, 9)),
    'no error',
    'an empty ring restarts',
  );
});

test('in-ring: restart refuses a ring that holds unconfirmed messages', () => {
  const r = new InRing({ slots: 4, bytes: 32 });
  fill(r, 0, 0, 1, 4);
  r.peek();
  r.handOver();
  assert.is(
    code(() => r.restart(5, 5)),
    ErrorCode.PROTOCOL,
  );
});

/** Two endpoints: `a` sends, `b` receives with ackAfter 'app'; returns a step that carries a's bundle to b and b's back. */
function pair(seq: number) {
  const oa = resolveOptions({ initialSeq: seq, initialOff: seq, inSlots: 8, inBytes: 256, outSlots: 8, outBytes: 256, maxMessage: 64, maxBundleBytes: 4096 });
  const ob = resolveOptions({ inSlots: 8, inBytes: 256, outSlots: 8, outBytes: 256, maxMessage: 64, maxBundleBytes: 4096 });
  const a = new Endpoint(oa, 0, 0);
  const b = new Endpoint(ob, seq, seq);
  b.ackApp = true;
  const got: number[] = [];
  const seqs: number[] = [];
  const deliver = (buf: Uint8Array, off: number, _len: number, q: number): boolean => {
    got.push(buf[off]);
    seqs.push(q);
    return true;
  };
  let now = 0;
  const aToB = (): void => {
    const n = a.writeBundle(null, 1, ++now, null, true);
    b.apply(b.parse(a.writer.buf, 0, n), ++now, deliver);
    b.deliver(deliver, now);
  };
  /** b's answer, applied at a; returns what it said: [ack, window end seq, window end offset]. */
  const bToA = (): [number, number, number] => {
    const n = b.writeBundle(null, 1, ++now, null, false);
    const v = a.parse(b.writer.buf, 0, n);
    const said: [number, number, number] = [v.ack, (v.ack + v.winMsgs) >>> 0, v.winBytes];
    a.apply(v, ++now);
    return said;
  };
  return { a, b, got, seqs, aToB, bToA, now: () => now };
}

for (const seq of [0, W - 3]) {
  test(`endpoint: ack and window count only confirmed messages (first seq ${seq})`, () => {
    const p = pair(seq);
    for (let i = 0; i < 6; i++) assert.ok(p.a.send(new Uint8Array([i, 0, 0, 0])));
    p.aToB();
    assert.equal(p.got, [0, 1, 2, 3, 4, 5], 'all delivered');
    assert.equal(
      p.seqs,
      [0, 1, 2, 3, 4, 5].map((i) => (seq + i) >>> 0),
      'each with its seq',
    );
    let [ack, end, bytes] = p.bToA();
    assert.is(ack, seq, 'nothing confirmed: ack stays at the first message');
    assert.is(end, (seq + 8) >>> 0, 'window: the whole ring from the oldest unconfirmed');
    assert.is(bytes, 256);
    assert.is(p.a.out.length, 6, 'the sender still holds every message');
    // Confirm messages 0..2 (done of message 2 confirms 0 and 1 too).
    assert.is(p.b.confirm((seq + 2) >>> 0, p.now()), 3);
    assert.ok(p.b.ackOwed, 'the confirmation is owed to the peer');
    [ack, end] = p.bToA();
    assert.is(ack, (seq + 3) >>> 0);
    assert.is(end, (seq + 11) >>> 0, 'window end moves with the confirmation');
    assert.is(p.a.out.length, 3, 'confirmed messages left the sender');
    assert.is(p.a.out.tail, (seq + 3) >>> 0);
    // Errors: twice, not delivered, after the last; nothing changes.
    const before = [p.b.inr.held, p.b.inr.read, p.b.inr.next];
    assert.is(
      code(() => p.b.confirm((seq + 1) >>> 0, p.now())),
      ErrorCode.CONFIRM,
      'already confirmed',
    );
    assert.is(
      code(() => p.b.confirm((seq + 6) >>> 0, p.now())),
      ErrorCode.CONFIRM,
      'never delivered',
    );
    assert.equal([p.b.inr.held, p.b.inr.read, p.b.inr.next], before, 'a refused confirmation changes nothing');
    // The sender may fill the window opened by the confirmations, not more.
    for (let i = 6; i < 11; i++) assert.ok(p.a.send(new Uint8Array([i, 0, 0, 0])));
    assert.not.ok(p.a.send(new Uint8Array([11, 0, 0, 0])), 'the sender is full: 8 unacknowledged');
    p.aToB();
    assert.is(p.b.inr.next, (seq + 11) >>> 0, 'five more fit: 3 + 8 in the ring');
    assert.is(p.a.out.length, 8);
    p.b.confirm((p.b.inr.read - 1) >>> 0, p.now());
    p.bToA();
    assert.ok(p.a.send(new Uint8Array([11, 0, 0, 0])));
    p.aToB();
    p.b.confirm((p.b.inr.read - 1) >>> 0, p.now());
    p.bToA();
    assert.equal(
      p.got,
      Array.from({ length: 12 }, (_, i) => i),
      'every message once, in order',
    );
    assert.is(p.a.out.length, 0);
    assert.ok(p.b.inr.isEmpty);
  });
}

test('endpoint: a snapshot keeps unconfirmed messages; restored, they are delivered again', () => {
  const p = pair(W - 1);
  for (let i = 0; i < 4; i++) p.a.send(new Uint8Array([i, 0, 0, 0]));
  p.aToB();
  p.b.confirm(W - 1, p.now());
  const data = p.b.toData(p.now());
  assert.is(data.ackApp, true);
  const c = new Endpoint(p.b.o, 0, 0);
  c.fromData(data, 0);
  assert.ok(c.ackApp);
  const again: number[] = [];
  c.deliver((buf, off, _len, q) => {
    again.push(buf[off], q);
    return true;
  }, 1);
  assert.equal(again, [1, W, 2, 0, 3, 1], 'the three unconfirmed, with their seqs');
  assert.equal(data.again, [W, 3], 'the unconfirmed are marked as possibly delivered before');
  assert.ok(c.isAgain(W) && c.isAgain(0) && c.isAgain(1));
  assert.not.ok(c.isAgain(W - 1) || c.isAgain(2), 'confirmed and later messages are not');
});

test("hello 'again': encoded only when non-zero, decoded as a u32", () => {
  const base = { kind: Ctl.HELLO, id: 'd', n: 1, nonce: new Uint8Array(8), proof: new Uint8Array(0), seq: W, off: 0, lim: [8, 4096, 64, 8, 4] as Limits };
  const plain = encodeControl(base);
  const h0 = decodeControl(plain, 0, plain.length) as Hello;
  assert.is(h0.again, undefined);
  assert.is(Buffer.from(encodeControl({ ...base, again: 0 })).toString('hex'), Buffer.from(plain).toString('hex'), 'again 0 is not written');
  const b = encodeControl({ ...base, again: 15 });
  assert.is((decodeControl(b, 0, b.length) as Hello).again, 15);
});

test('endpoint: confirm with ackAfter received is HF_ERR_CONFIRM', () => {
  const e = new Endpoint(resolveOptions({}), 0, 0);
  assert.is(
    code(() => e.confirm(0, 0)),
    ErrorCode.CONFIRM,
  );
});

test('checkAckAfter: received (default), app, standby; downstream is refused as not built yet', () => {
  assert.is(checkAckAfter(undefined), 'received');
  assert.is(checkAckAfter('app'), 'app');
  assert.is(checkAckAfter('standby'), 'standby');
  for (const v of ['downstream', 'bogus', 3]) {
    assert.is(
      code(() => checkAckAfter(v)),
      ErrorCode.OPTION,
      String(v),
    );
  }
  let msg = '';
  try {
    checkAckAfter('downstream');
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.ok(msg.includes('not built yet'), msg);
});

test.run();
