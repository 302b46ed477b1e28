/**
 * replica.ts: a standby's copy of a session, kept by a snapshot and a delta per answer, taken over
 * mid-stream. Every answer the device sees goes out only after its record reached the shadow (what
 * ackAfter 'standby' does), so whatever the primary had acknowledged or sent is on the standby.
 * Random scenarios; a failure prints its seed (SEED=n runs one).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Acceptor } from '../firmware/acceptor';
import { decodeValue, encodeValue } from '../firmware/cbor-value';
import { ReplicaCursor, SessionShadow, checkDelta } from '../firmware/replica';
import { ServerLink } from '../firmware/server-link';
import { Prng } from '../targets/sim/prng';
import { code } from './support/errors';
import { Manual } from './support/manual';

const OPTS = { maxMessages: 4, outSlots: 16, inSlots: 16 };

/** A record as the standby gets it: through CBOR, then checked. */
function carry(cursor: ReplicaCursor, link: ServerLink, now: number, shadow: SessionShadow | null): SessionShadow {
  const r = cursor.next(link, now);
  if (r.kind === 'snap') return new SessionShadow(r.bytes);
  if (shadow === null) throw new Error('delta before snapshot');
  shadow.apply(checkDelta(decodeValue(encodeValue(r.delta))));
  return shadow;
}

function scenario(seed: number): string | null {
  const rng = new Prng(seed);
  const m = new Manual(OPTS, OPTS);
  // The application sometimes stops taking messages for a while: they wait in the in-ring.
  m.gatewayTakes = () => !rng.chance(0.3);
  const cursor = new ReplicaCursor();
  let shadow: SessionShadow | null = null;
  let up = 0;
  const down: string[] = [];
  let gotAtSync = 0;
  let downAtSync = 0;
  const sync = (): void => {
    shadow = carry(cursor, m.server as ServerLink, m.now, shadow);
    gotAtSync = m.gatewayGot.length;
    downAtSync = down.length;
  };
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
  sync();
  m.deliverAnswer();
  const steps = rng.range(5, 80);
  for (let s = 0; s < steps; s++) {
    step(m.server as ServerLink);
    sync();
    carryAnswers();
  }
  // The primary dies, maybe between taking a request and its record: what its application got or
  // sent since the last record dies with it (nothing of it was answered).
  if (rng.chance(0.5)) step(m.server as ServerLink);
  m.gatewayGot.length = gotAtSync;
  down.length = downAtSync;
  m.answers.length = 0;
  if (rng.chance(0.5)) m.requests.length = 0;

  // The standby takes over: a new table, the session restored from the shadow.
  const later = m.now + rng.range(0, 2000);
  m.now = later;
  const restored = ServerLink.restore((shadow as unknown as SessionShadow).toSnapshot(m.now), m.now, {
    answer: (exchange, body, len) => m.answers.push({ exchange, body: body.slice(0, len) }),
    transmit: () => {},
    deliver: (b, o, l) => {
      m.gatewayGot.push(Buffer.from(b.subarray(o, o + l)).toString());
      return m.gatewayTakes();
    },
  });
  const acceptor = new Acceptor({
    options: OPTS,
    random: () => {},
    open: () => {
      throw new Error('no new sessions here');
    },
  });
  acceptor.adopt(restored, m.now);
  (m as unknown as { acceptor: Acceptor }).acceptor = acceptor;
  m.server = restored;
  for (let s = 0; s < 20; s++) {
    step(restored);
    carryAnswers();
  }
  m.gatewayTakes = () => true;
  for (let i = 0; i < 200 && !(m.client.ep.out.isEmpty && restored.ep.out.isEmpty && m.requests.length <= 1); i++) {
    restored.resume(m.now);
    m.settle();
    m.advance(500);
  }
  const wantUp = Array.from({ length: up }, (_, i) => `up${i}`);
  if (JSON.stringify(m.gatewayGot) !== JSON.stringify(wantUp)) return `gateway got ${m.gatewayGot.join(',')}; device sent ${up}`;
  if (JSON.stringify(m.deviceGot) !== JSON.stringify(down)) return `device got ${m.deviceGot.join(',')}; gateway sent ${down.join(',')}`;
  if (m.deviceClose !== undefined) return `device closed: ${String(m.deviceClose)}`;
  return null;
}

const one = process.env.SEED === undefined ? null : Number(process.env.SEED);

test(one !== null ? `takeover, seed ${one}` : 'takeover mid-stream: 300 random seeds lose and repeat nothing', () => {
  const seeds = one !== null ? [one] : Array.from({ length: 300 }, (_, i) => i + 1);
  const failures: string[] = [];
  for (const seed of seeds) {
    let why: string | null;
    try {
      why = scenario(seed);
    } catch (e) {
      why = `threw ${(e as Error).stack}`;
    }
    if (why !== null) failures.push(`seed ${seed}: ${why}\n    replay: SEED=${seed} node tools/test.js replica`);
  }
  for (const f of failures.slice(0, 5)) console.log(`  ${f}`);
  assert.is(failures.length, 0, `${failures.length} of ${seeds.length} seeds failed`);
});

test('a delta costs what changed, not what the session holds', () => {
  const m = new Manual(OPTS, OPTS);
  m.open();
  const cursor = new ReplicaCursor();
  const server = m.server as ServerLink;
  for (let i = 0; i < 8; i++) server.send(m.now, new Uint8Array(1000));
  carry(cursor, server, m.now, null); // the snapshot holds the 8 KB
  server.send(m.now, new Uint8Array(10));
  const r = cursor.next(server, m.now);
  assert.is(r.kind, 'delta');
  const bytes = encodeValue(r.kind === 'delta' ? r.delta : null).length;
  assert.ok(bytes < 600, `delta of one 10-byte message: ${bytes} bytes`);
});

test('a malformed delta, or one that does not follow, is refused with HF_ERR_PEER and changes nothing', () => {
  const m = new Manual(OPTS, OPTS);
  m.open();
  const cursor = new ReplicaCursor();
  const server = m.server as ServerLink;
  const shadow = carry(cursor, server, m.now, null);
  server.send(m.now, Buffer.from('a'));
  const r = cursor.next(server, m.now);
  if (r.kind !== 'delta') throw new Error('expected a delta');
  const good = decodeValue(encodeValue(r.delta)) as Record<string, unknown>;
  assert.is(
    code(() => checkDelta(null)),
    'HF_ERR_PEER',
  );
  assert.is(
    code(() => checkDelta({ ...good, o: [1, ['x']] })),
    'HF_ERR_PEER',
  );
  assert.is(
    code(() => checkDelta({ ...good, l: { ...(good.l as object), rnTop: -1 } })),
    'HF_ERR_PEER',
  );
  assert.is(
    code(() => checkDelta({ ...good, i: [[1, 2]] })),
    'HF_ERR_PEER',
  );
  const before = shadow.toSnapshot(0);
  const gap = checkDelta(decodeValue(encodeValue(r.delta)));
  gap.o = [(gap.o[0] + 5) >>> 0, gap.o[1]];
  assert.is(
    code(() => shadow.apply(gap)),
    'HF_ERR_PEER',
  );
  assert.equal(shadow.toSnapshot(0), before, 'unchanged');
  shadow.apply(checkDelta(good));
  assert.not.equal(shadow.toSnapshot(0), before);
});

test.run();
