/**
 * handoff.ts: a live session handed from one acceptor (gateway process) to another mid-stream, with
 * messages in flight both ways and loss on the way: nothing is lost and nothing repeats (but what an
 * application was handed and did not confirm, marked `again`); the releasing side never serves the
 * session again (HF_ERR_MOVED); bad bytes are HF_ERR_HANDOFF and change nothing. Random scenarios
 * print their seed on failure (SEED=n runs one).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Acceptor } from '../firmware/acceptor';
import { encodeValue } from '../firmware/cbor-value';
import { ErrorCode, isHfError } from '../firmware/errors';
import { HANDOFF_VERSION, adoptSession, decodeHandoff, encodeHandoff, releaseSession } from '../firmware/handoff';
import { ClientLink } from '../firmware/client-link';
import { LinkState } from '../firmware/link-base';
import type { ServerLink, ServerPort } from '../firmware/server-link';
import { nodeCrypto } from '../targets/node/crypto';
import { Prng } from '../targets/sim/prng';
import { code } from './support/errors';
import { Manual } from './support/manual';

const KEY = new Uint8Array(32).fill(9);
const OPTS = { maxMessages: 4, outSlots: 16, inSlots: 16 };

/** A second gateway process's table: it opens no session of its own. */
function otherTable(seed: number): Acceptor {
  const rng = new Prng(seed);
  return new Acceptor({
    options: OPTS,
    keyOf: (id) => (id === 'dev' ? KEY : null),
    crypto: nodeCrypto,
    random: (b) => rng.fill(b),
    open: () => {
      throw new Error('no new sessions in this test');
    },
  });
}

/** The port a restored session gets in the test: what it answers and delivers goes where Manual's do. */
function portOf(m: Manual, got: { seq: number; again: boolean }[] = []): (link: ServerLink) => ServerPort {
  return (link) => ({
    answer: (exchange, body, len) => m.answers.push({ exchange, body: body.slice(0, len) }),
    transmit: (body, len) => m.frames.push(body.slice(0, len)),
    deliver: (b, o, l, seq) => {
      m.gatewayGot.push(Buffer.from(b.subarray(o, o + l)).toString());
      got.push({ seq, again: link.ep.isAgain(seq) });
      return m.gatewayTakes();
    },
    onClose: (e) => {
      m.gatewayClose = e ?? 'clean';
    },
  });
}

function sidOf(link: ServerLink): string {
  return Buffer.from(link.sid).toString('hex');
}

/** Moves `m`'s session from its acceptor to `to`; returns the restored link (m now drives it). */
function move(m: Manual, to: Acceptor, bytes: Uint8Array): ServerLink {
  const restored = adoptSession(to, bytes, m.now, { crypto: nodeCrypto, open: portOf(m) });
  (m as unknown as { acceptor: Acceptor }).acceptor = to;
  m.server = restored;
  return restored;
}

function scenario(seed: number): string | null {
  const rng = new Prng(seed);
  const m = new Manual(OPTS, OPTS, { device: KEY, gateway: KEY });
  m.gatewayTakes = () => !rng.chance(0.2);
  let up = 0;
  const down: string[] = [];
  const carryAnswers = (): void => {
    while (m.answers.length > 0) {
      if (rng.chance(0.1)) m.answers.shift();
      else m.deliverAnswer();
    }
  };
  const step = (server: ServerLink): void => {
    const k = rng.int(5);
    if (k === 0 && m.client.send(m.now, Buffer.from(`up${up}`))) up++;
    if (k === 1 && server.send(m.now, Buffer.from(`down${down.length}`))) down.push(`down${down.length}`);
    if (k === 2 && m.requests.length > 0) {
      if (rng.chance(0.1)) m.requests.shift();
      else m.deliverRequest();
    }
    if (k === 3) m.advance(rng.range(5, 700));
    if (k === 3 && rng.chance(0.5)) server.resume(m.now);
    if (k === 4) for (let i = rng.int(4); i > 0; i--) if (m.client.send(m.now, Buffer.from(`up${up}`))) up++;
  };
  m.client.start(m.now);
  m.deliverRequest();
  m.deliverAnswer();
  for (let s = rng.range(5, 80); s > 0; s--) {
    step(m.server as ServerLink);
    carryAnswers();
  }
  // Quiesced: what arrives now is refused with HF_ERR_MOVED and changes nothing (the driver closes
  // its connection unanswered: the request is lost to the device).
  const a = m.acceptor;
  const link = m.server as ServerLink;
  const sid = sidOf(link);
  a.quiesce(sid);
  const next = link.ep.inr.next;
  for (const r of m.requests.splice(0)) {
    if (code(() => a.onRequest(m.now, 9999, r.body)) !== ErrorCode.MOVED) return 'a quiesced session took a request';
  }
  if (link.ep.inr.next !== next) return 'a refused request changed the session';
  // Its application may still send, replying to what it was handed.
  if (rng.chance(0.5) && link.send(m.now, Buffer.from(`down${down.length}`))) down.push(`down${down.length}`);
  if (rng.chance(0.5)) carryAnswers();
  else m.answers.length = 0;
  m.advance(rng.range(0, 300));
  const bytes = releaseSession(a, link, m.now);
  if (a.size !== 0 || a.session(sid) !== undefined) return 'the released session is still in the old table';
  if (m.gatewayClose === undefined || m.gatewayClose === 'clean' || m.gatewayClose.code !== ErrorCode.MOVED) return `old channel closed with ${String(m.gatewayClose)}`;
  m.gatewayClose = undefined;
  const b = otherTable(seed);
  m.now += rng.range(0, 500);
  const restored = move(m, b, bytes);
  for (let s = 0; s < 30; s++) {
    step(restored);
    carryAnswers();
    // A request that still reaches the old process is refused there, never served.
    if (rng.chance(0.05) && m.requests.length > 0 && code(() => a.onRequest(m.now, 9998, m.requests[0].body)) !== ErrorCode.MOVED) return 'the old table served a moved session';
  }
  m.gatewayTakes = () => true;
  for (let i = 0; i < 300 && !(m.client.ep.out.isEmpty && restored.ep.out.isEmpty && restored.ep.inr.read === restored.ep.inr.next && m.requests.length <= 1); i++) {
    restored.resume(m.now);
    m.settle();
    m.advance(500);
  }
  const wantUp = Array.from({ length: up }, (_, i) => `up${i}`);
  if (JSON.stringify(m.gatewayGot) !== JSON.stringify(wantUp)) return `gateway got ${m.gatewayGot.join(',')}; device sent ${up}`;
  if (JSON.stringify(m.deviceGot) !== JSON.stringify(down)) return `device got ${m.deviceGot.join(',')}; gateway sent ${down.join(',')}`;
  if (m.deviceClose !== undefined) return `device closed: ${String(m.deviceClose)}`;
  if (restored.state !== LinkState.OPEN) return `restored session in state ${restored.state}`;
  return null;
}

const one = process.env.SEED === undefined ? null : Number(process.env.SEED);

test(one !== null ? `handoff, seed ${one}` : 'handoff mid-stream, loss both ways: 300 random seeds lose and repeat nothing', () => {
  const seeds = one !== null ? [one] : Array.from({ length: 300 }, (_, i) => i + 1);
  const failures: string[] = [];
  for (const seed of seeds) {
    let why: string | null;
    try {
      why = scenario(seed);
    } catch (e) {
      why = `threw ${(e as Error).stack}`;
    }
    if (why !== null) failures.push(`seed ${seed}: ${why}\n    replay: SEED=${seed} node tools/test.js handoff`);
  }
  for (const f of failures.slice(0, 5)) console.log(`  ${f}`);
  assert.is(failures.length, 0, `${failures.length} of ${seeds.length} seeds failed`);
});

test("ackAfter 'app': what the old application was handed and did not confirm comes again on the new owner, marked; nothing else", () => {
  const m = new Manual(OPTS, OPTS, { device: KEY, gateway: KEY });
  m.open();
  const link = m.server as ServerLink;
  link.setAckAfter('app');
  // The application takes four, then stops: 'e' is received and not handed over.
  m.gatewayTakes = () => m.gatewayGot.length < 4;
  for (const t of ['a', 'b', 'c', 'd']) m.send(t);
  m.settle();
  assert.equal(m.gatewayGot, ['a', 'b', 'c', 'd']);
  link.confirm(m.now, link.ep.inr.held); // 'a' confirmed; b, c, d handed, not confirmed
  m.send('e');
  m.settle();
  assert.equal(m.gatewayGot, ['a', 'b', 'c', 'd']);
  m.acceptor.quiesce(sidOf(link));
  const bytes = releaseSession(m.acceptor, link, m.now);
  m.gatewayGot.length = 0;
  m.gatewayTakes = () => true;
  const got: { seq: number; again: boolean }[] = [];
  const restored = adoptSession(otherTable(1), bytes, m.now, { crypto: nodeCrypto, open: portOf(m, got) });
  m.server = restored;
  restored.confirm(m.now, (restored.ep.inr.read - 1) >>> 0);
  assert.equal(m.gatewayGot, ['b', 'c', 'd', 'e'], 'the unconfirmed ones again, then the rest');
  assert.equal(
    got.map((g) => g.again),
    [true, true, true, false],
    'marked again: only what the old application was handed',
  );
});

test('the releasing side: a quiesced session is refused with HF_ERR_MOVED, its timers stop there, and once released its id stays refused (not unknown)', () => {
  const m = new Manual(OPTS, OPTS, { device: KEY, gateway: KEY });
  m.open();
  m.send('x');
  const a = m.acceptor;
  const link = m.server as ServerLink;
  a.quiesce(sidOf(link));
  assert.ok(a.isQuiesced(link));
  assert.is(a.nextDeadline(), Infinity, 'no timer of a quiesced session runs here');
  const req = m.requests[m.requests.length - 1];
  assert.is(
    code(() => a.onRequest(m.now, 50, req.body)),
    ErrorCode.MOVED,
  );
  assert.is(link.state, LinkState.OPEN, 'still open while it is moved');
  assert.equal(m.gatewayGot, [], 'nothing taken');
  const answered = m.answers.length;
  const bytes = releaseSession(a, link, m.now);
  assert.is(m.answers.length, answered, 'nothing said to the device');
  assert.is(link.state, LinkState.FAILED);
  assert.is(link.failure?.code, ErrorCode.MOVED);
  assert.is(
    code(() => a.onRequest(m.now, 51, req.body)),
    ErrorCode.MOVED,
    'after the release too',
  );
  assert.is(
    code(() => releaseSession(a, link, m.now)),
    ErrorCode.UNKNOWN_SESSION,
    'a session released once cannot be released again',
  );
  // On the new owner the same request is served (once).
  const b = otherTable(2);
  move(m, b, bytes);
  b.onRequest(m.now, 52, req.body);
  assert.equal(m.gatewayGot, ['x']);
  // Handed back, the old table serves it again, and forgets it was moved.
  m.acceptor.quiesce(sidOf(m.server as ServerLink));
  const back = releaseSession(m.acceptor, m.server as ServerLink, m.now);
  move(m, a, back);
  assert.is(a.size, 1);
  m.send('y');
  m.settle();
  assert.equal(m.gatewayGot, ['x', 'y']);
});

test('the hello travels: a repeat of the hello on the new owner opens no second session', () => {
  const m = new Manual(OPTS, OPTS, { device: KEY, gateway: KEY });
  m.client.start(m.now);
  const hello = m.requests[0].body;
  m.deliverRequest();
  m.deliverAnswer();
  const link = m.server as ServerLink;
  m.acceptor.quiesce(sidOf(link));
  const bytes = releaseSession(m.acceptor, link, m.now);
  assert.is(decodeHandoff(bytes).hello.n, 1);
  const b = otherTable(3);
  const restored = move(m, b, bytes);
  let again: ServerLink | null = null;
  try {
    again = b.onRequest(m.now, 60, hello);
  } catch (e) {
    if (!isHfError(e) || e.code !== ErrorCode.AUTH) throw e;
  }
  assert.ok(again === null || again === restored, 'the same session (its welcome again) or a refusal, never a new one');
  assert.is(b.size, 1);
  assert.is(restored.state, LinkState.OPEN);
});

test('a device that opened a newer session on the new owner keeps it: the handed, older one is refused (HF_ERR_HANDOFF)', () => {
  const m = new Manual(OPTS, OPTS, { device: KEY, gateway: KEY });
  m.open();
  const link = m.server as ServerLink;
  m.acceptor.quiesce(sidOf(link));
  const bytes = releaseSession(m.acceptor, link, m.now);
  const rng = new Prng(8);
  const opened: ServerLink[] = [];
  const b = new Acceptor({
    options: OPTS,
    keyOf: (id) => (id === 'dev' ? KEY : null),
    crypto: nodeCrypto,
    random: (x) => rng.fill(x),
    open: (l) => {
      opened.push(l);
      return { answer: () => {}, transmit: () => {}, deliver: () => true };
    },
  });
  const hellos: Uint8Array[] = [];
  const fresh = new ClientLink(
    { id: 'dev', random: (x) => rng.fill(x), helloCounter: 5, options: OPTS, key: KEY, crypto: nodeCrypto },
    { transmit: (body, len) => hellos.push(body.slice(0, len)), deliver: () => true },
  );
  fresh.start(m.now);
  b.onRequest(m.now, 1, hellos[0]);
  assert.is(opened.length, 1);
  assert.is(
    code(() => adoptSession(b, bytes, m.now, { crypto: nodeCrypto, open: portOf(m) })),
    ErrorCode.HANDOFF,
  );
  assert.is(b.size, 1);
  assert.is(opened[0].state, LinkState.OPEN, 'the newer session stays');
});

test('bad bytes: HF_ERR_HANDOFF, and the table is unchanged', () => {
  const m = new Manual(OPTS, OPTS, { device: KEY, gateway: KEY });
  m.open();
  const link = m.server as ServerLink;
  m.acceptor.quiesce(sidOf(link));
  const bytes = releaseSession(m.acceptor, link, m.now);
  const b = otherTable(4);
  const h = decodeHandoff(bytes);
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['garbage', Buffer.from('ff00ff00ff', 'hex')],
    ['truncated', bytes.subarray(0, bytes.length - 5)],
    ['not a map', encodeValue([1, 2, 3])],
    ['another kind', encodeValue({ v: HANDOFF_VERSION, t: 'device', snap: h.snapshot, n: 1, nonce: h.hello.nonce })],
    ['another version', encodeValue({ v: HANDOFF_VERSION + 1, t: 'session', snap: h.snapshot, n: 1, nonce: h.hello.nonce })],
    ['no snapshot', encodeValue({ v: HANDOFF_VERSION, t: 'session', n: 1, nonce: h.hello.nonce })],
    ['a bad counter', encodeValue({ v: HANDOFF_VERSION, t: 'session', snap: h.snapshot, n: -1, nonce: h.hello.nonce })],
    ['a bad snapshot', encodeHandoff({ snapshot: Buffer.from('a0', 'hex'), hello: h.hello })],
  ];
  for (const [what, bad] of cases) {
    let opened = 0;
    const c = code(() =>
      adoptSession(b, bad, m.now, {
        crypto: nodeCrypto,
        open: (l) => {
          opened++;
          return portOf(m)(l);
        },
      }),
    );
    assert.is(c, ErrorCode.HANDOFF, what);
    assert.is(opened, 0, `${what}: no channel opened`);
    assert.is(b.size, 0, `${what}: nothing adopted`);
  }
  assert.is(
    code(() => adoptSession(b, bytes, m.now, { open: portOf(m) })),
    ErrorCode.HANDOFF,
    'an authenticated session without crypto',
  );
  assert.is(b.size, 0);
  adoptSession(b, bytes, m.now, { crypto: nodeCrypto, open: portOf(m) });
  assert.is(
    code(() => adoptSession(b, bytes, m.now, { crypto: nodeCrypto, open: portOf(m) })),
    ErrorCode.HANDOFF,
    'the same session twice: already served here',
  );
  assert.is(b.size, 1);
});

test('movedMemory: an id handed away is refused with HF_ERR_MOVED while it is remembered; 0 remembers none', () => {
  for (const [memory, want] of [
    [0, ErrorCode.UNKNOWN_SESSION],
    [1, ErrorCode.MOVED],
  ] as const) {
    const m = new Manual(OPTS, OPTS);
    const rng = new Prng(6);
    const a = new Acceptor({
      options: OPTS,
      random: (x) => rng.fill(x),
      movedMemory: memory,
      open: (l) => {
        m.server = l;
        return portOf(m)(l);
      },
    });
    (m as unknown as { acceptor: Acceptor }).acceptor = a;
    m.open();
    m.send('z');
    const req = m.requests[m.requests.length - 1];
    const link = m.server as ServerLink;
    a.quiesce(sidOf(link));
    releaseSession(a, link, m.now);
    assert.is(
      code(() => a.onRequest(m.now, 70, req.body)),
      want,
      `movedMemory ${memory}`,
    );
  }
  assert.is(
    code(() => new Acceptor({ random: () => {}, movedMemory: -1, open: () => ({ answer: () => {}, transmit: () => {}, deliver: () => true }) })),
    ErrorCode.OPTION,
  );
});

test.run();
