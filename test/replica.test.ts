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
import type { EndpointData } from '../firmware/endpoint';
import { DeltaField, ReplicaCursor, SessionShadow, checkDelta } from '../firmware/replica';
import { ServerLink } from '../firmware/server-link';
import { type ServerData, decodeSnapshot } from '../firmware/snapshot';
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

/** Position in a delta `[mask, field...]` of the field `bit` (which the mask has). */
function at(d: unknown[], bit: number): number {
  let k = 1;
  for (let b = 1; b < bit; b <<= 1) if (((d[0] as number) & b) !== 0) k++;
  return k;
}

test('a delta whose fields did not change is the mask 0 alone', () => {
  const m = new Manual(OPTS, OPTS);
  m.open();
  const cursor = new ReplicaCursor();
  const server = m.server as ServerLink;
  carry(cursor, server, m.now, null);
  const r = cursor.next(server, m.now);
  assert.equal(r.kind === 'delta' ? r.delta : null, [0]);
  server.send(m.now, Buffer.from('a'));
  const r2 = cursor.next(server, m.now);
  const d = r2.kind === 'delta' ? r2.delta : [];
  assert.is(d[0], DeltaField.OUT_MSGS, 'only the new message (the tail, the link and the rest as they were)');
  assert.equal(d[1], [0, Uint8Array.of(97)]);
});

/** The shadow's session, and the primary's own snapshot at the same time, as comparable data. */
function sameSession(shadow: SessionShadow, link: ServerLink, now: number): string | null {
  const a = decodeSnapshot<ServerData>(shadow.toSnapshot(now), 'server');
  const b = decodeSnapshot<ServerData>(link.snapshot(now), 'server');
  // The shadow's out-ring messages count as unsent and its link as held (toSnapshot).
  b.ep.out = [b.ep.out[0], b.ep.out[1], b.ep.out[0], b.ep.out[3].map((x) => [-1, 0, 0, x[3]])];
  b.link.transport = a.link.transport;
  a.link.replay = a.link.replay.filter((r) => b.link.replay.some((x) => x[0] === r[0]));
  const show = (x: unknown): string => JSON.stringify(x, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
  for (const k of Object.keys(b.link) as (keyof ServerData)[]) if (show(a.link[k]) !== show(b.link[k])) return `link.${k}: shadow ${show(a.link[k])}, primary ${show(b.link[k])}`;
  for (const k of Object.keys(b.ep) as (keyof EndpointData)[]) if (show(a.ep[k]) !== show(b.ep[k])) return `ep.${k}: shadow ${show(a.ep[k])}, primary ${show(b.ep[k])}`;
  return null;
}

test('property: after every record the shadow is the session the primary has (300 random seeds)', () => {
  const seeds = one !== null ? [one] : Array.from({ length: 300 }, (_, i) => i + 1);
  const failures: string[] = [];
  for (const seed of seeds) {
    const rng = new Prng(seed);
    const m = new Manual(OPTS, OPTS);
    m.gatewayTakes = () => !rng.chance(0.3);
    const cursor = new ReplicaCursor();
    let shadow: SessionShadow | null = null;
    let up = 0;
    let why: string | null = null;
    try {
      m.client.start(m.now);
      m.deliverRequest();
      const server = m.server as ServerLink;
      shadow = carry(cursor, server, m.now, shadow);
      m.deliverAnswer();
      for (let s = 0; s < 60 && why === null; s++) {
        const k = rng.int(5);
        if (k === 0 && m.client.send(m.now, Buffer.from(`up${up}`))) up++;
        if (k === 1) server.send(m.now, Buffer.from(`down${s}`));
        if (k === 2 && m.requests.length > 0) m.deliverRequest();
        if (k === 3) m.advance(rng.range(5, 700));
        if (k === 4 && m.answers.length > 0) m.deliverAnswer();
        // Not every step is recorded: a delta then carries the changes of several.
        if (rng.chance(0.6)) {
          shadow = carry(cursor, server, m.now, shadow);
          why = sameSession(shadow, server, m.now);
        }
      }
    } catch (e) {
      why = `threw ${(e as Error).stack}`;
    }
    if (why !== null) failures.push(`seed ${seed}: ${why}\n    replay: SEED=${seed} node tools/test.js replica`);
  }
  for (const f of failures.slice(0, 5)) console.log(`  ${f}`);
  assert.is(failures.length, 0, `${failures.length} of ${seeds.length} seeds failed`);
});

test('a malformed delta, or one that does not follow, is refused with HF_ERR_PEER naming the field and changes nothing', () => {
  const m = new Manual(OPTS, OPTS);
  m.open();
  const cursor = new ReplicaCursor();
  const server = m.server as ServerLink;
  const shadow = carry(cursor, server, m.now, null);
  server.send(m.now, Buffer.from('a'));
  const r = cursor.next(server, m.now);
  if (r.kind !== 'delta') throw new Error('expected a delta');
  const wire = (): unknown[] => decodeValue(encodeValue(r.delta)) as unknown[];
  const refused = (v: unknown, field: RegExp): void => {
    let err: { code?: string; message?: string } | null = null;
    try {
      checkDelta(v);
    } catch (e) {
      err = e as { code?: string; message?: string };
    }
    assert.is(err?.code, 'HF_ERR_PEER', `${JSON.stringify(v)} was taken`);
    assert.match(err?.message ?? '', field);
  };
  const F = DeltaField;
  refused(null, /not an array/);
  refused([], /not an array/);
  refused({ l: {} }, /not an array/);
  refused([1 << 15], /mask 32768/);
  refused([-1], /mask -1/);
  refused([0.5], /mask 0.5/);
  refused([F.RN], /names 1 fields, but 0 follow/);
  refused([F.RN, [1, 2], 3], /names 1 fields, but 2 follow/);
  refused([F.LINK, [0, 0, -2, -1, false, false]], /link is not/);
  refused([F.LINK, [0, 0, -1, -1, 0, false]], /link is not/);
  refused([F.LINK, [0, 0, -1, -1, false]], /link is not/);
  refused([F.WELCOME, 'x'], /welcome/);
  refused([F.RN, [1]], /rn is not/);
  refused([F.RN, [1, -1]], /rn is not/);
  refused([F.REPLAY, []], /replay is not/);
  refused([F.REPLAY, [1]], /replay is not/);
  refused([F.REPLAY, [1, 'x']], /replay entry 0/);
  refused([F.OUT, [1, 2, -3]], /out is not/);
  refused([F.IN, [1]], /in is not/);
  refused([F.ACK_APP, 1], /ackApp/);
  refused([F.AGAIN, [1]], /again/);
  refused([F.PEER, [1, 2, 3]], /peer is not/);
  refused([F.LIMITS, [1, 2, 3, 4]], /limits/);
  refused([F.RING, [1]], /ring/);
  refused([F.RTT, [1, 2, 3, 4, Number.NaN]], /rtt/);
  refused([F.TIMES, [1, 2, 3]], /times/);
  refused([F.OUT_MSGS, [1]], /outMsgs is not/);
  refused([F.OUT_MSGS, [1, 'x']], /outMsgs payload 0/);
  refused([F.IN_MSGS, [1, 2]], /inMsgs is not/);
  refused([F.IN_MSGS, [1, 2, 'x']], /inMsgs entry 0/);
  // Fields in the order of their bits: swapped ones are refused.
  refused([F.RN | F.OUT, [1, 2, 3], [1, 2]], /rn is not/);

  const before = shadow.toSnapshot(0);
  const gap = wire();
  const o = gap[at(gap, F.OUT_MSGS)] as unknown[];
  o[0] = ((o[0] as number) + 5) >>> 0;
  assert.is(
    code(() => shadow.apply(checkDelta(gap))),
    'HF_ERR_PEER',
  );
  assert.equal(shadow.toSnapshot(0), before, 'unchanged by a gap');
  const behind = [F.OUT, [0xffffffff, 0, 0]];
  assert.is(
    code(() => shadow.apply(checkDelta(behind))),
    'HF_ERR_PEER',
  );
  assert.equal(shadow.toSnapshot(0), before, 'unchanged by a tail behind');
  shadow.apply(checkDelta(wire()));
  assert.not.equal(shadow.toSnapshot(0), before);
});

test.run();
