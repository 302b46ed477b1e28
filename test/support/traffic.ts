/**
 * Random two-way traffic over a SimPair for property tests: every message carries its index and a
 * pattern derived from it, so the receiver checks order, exactly-once and content as it goes.
 */
import type { Faults } from '../../targets/sim/net';
import { SimPair } from '../../targets/sim/pair';
import { SlabPool } from '../../firmware/slab-pool';
import { Prng } from '../../targets/sim/prng';
import type { LinkOptions } from '../../firmware/options';
import { LinkState } from '../../firmware/link-base';

export const HEADER = 8;

export function makeMessage(index: number, len: number): Uint8Array {
  const b = new Uint8Array(Math.max(HEADER, len));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, index);
  dv.setUint32(4, b.length);
  for (let i = HEADER; i < b.length; i++) b[i] = (index * 31 + i) & 0xff;
  return b;
}

/** Checks one delivered message against the index expected next; returns an error text or null. */
export function checkMessage(buf: Uint8Array, off: number, len: number, expected: number): string | null {
  if (len < HEADER) return `message of ${len} bytes, shorter than its header`;
  const dv = new DataView(buf.buffer, buf.byteOffset + off, len);
  const index = dv.getUint32(0);
  if (index !== expected) return `got message ${index}, expected ${expected} (${index < expected ? 'duplicate' : 'gap or reorder'})`;
  if (dv.getUint32(4) !== len) return `message ${index} has length ${len}, written ${dv.getUint32(4)}`;
  for (let i = HEADER; i < len; i++) if (buf[off + i] !== ((index * 31 + i) & 0xff)) return `message ${index} corrupt at byte ${i}`;
  return null;
}

export interface Scenario {
  seed: number;
  client: LinkOptions;
  server: LinkOptions;
  requests: Faults;
  responses: Faults;
  direct: boolean;
  /** Messages each way. */
  up: number;
  down: number;
  maxLen: number;
  /** Virtual ms over which sends are spread. */
  span: number;
  /** [start, length] outages. */
  outages: [number, number][];
  /** Times to flip the transport (direct <-> HTTP). */
  flips: number[];
  /** Device journals its session; [at, down ms] power cuts (only when durable). */
  durable: boolean;
  crashes: [number, number][];
  /** Probability a delivery pauses the receiver, and for how long. */
  pause: number;
  pauseMs: number;
  /** ackAfter 'app' on both ends: each application confirms every message within `confirmMs`. */
  ackApp: boolean;
  confirmMs: number;
}

function pow2(rng: Prng, lo: number, hi: number): number {
  return 1 << rng.range(lo, hi);
}

/** Draws a random scenario from a seed (fault rates up to 30% drop and 10% duplication; in half of them some losses are reported as cuts). */
export function drawScenario(seed: number): Scenario {
  const rng = new Prng(seed * 2654435761);
  const slotsOut = pow2(rng, 2, 7);
  const slotsIn = pow2(rng, 2, 7);
  const bytesOut = pow2(rng, 9, 16);
  const bytesIn = pow2(rng, 9, 16);
  const maxLen = Math.max(HEADER, Math.min(bytesOut, bytesIn, rng.chance(0.5) ? 64 : 2048) >> rng.range(0, 2));
  const common = (): LinkOptions => ({
    maxMessages: [1, 2, 4, 16, 64][rng.int(5)],
    maxMessage: maxLen,
    coalesceMs: rng.chance(0.5) ? 0 : rng.range(1, 20),
    ackDelayMs: rng.range(0, 20),
    maxSackRanges: rng.range(0, 8),
  });
  const client: LinkOptions = {
    ...common(),
    outSlots: slotsOut,
    outBytes: bytesOut,
    inSlots: slotsIn,
    inBytes: bytesIn,
    maxOutstanding: rng.range(2, 4),
    failAfter: rng.range(3, 8),
    deadAfterMs: rng.range(5, 60) * 1000,
  };
  const server: LinkOptions = { ...common(), outSlots: slotsIn, outBytes: bytesIn, inSlots: slotsOut, inBytes: bytesOut, holdMs: rng.range(1, 20) * 1000, maxHeld: 1, idleMs: 90_000 };
  if (rng.chance(0.3)) {
    // Sequence numbers and offsets start just below 2^32 and wrap mid-run.
    client.initialSeq = 0xffffffff - rng.int(40);
    client.initialOff = 0xffffffff - rng.int(5000);
    server.initialSeq = 0xffffffff - rng.int(40);
    server.initialOff = 0xffffffff - rng.int(5000);
  }
  const faults = (): Faults => {
    const delayMin = rng.range(0, 20);
    // Half the scenarios report some losses as cut connections (the device learns at once).
    const reset = rng.next() < 0.5 ? rng.next() : 0;
    return { drop: rng.next() * 0.3, dup: rng.next() * 0.1, delayMin, delayMax: delayMin + rng.range(0, 200), reset };
  };
  const span = rng.range(1, 30) * 1000;
  const outages: [number, number][] = [];
  const nOut = rng.chance(0.3) ? rng.range(1, 3) : 0;
  for (let i = 0; i < nOut; i++) outages.push([rng.int(span), rng.chance(0.8) ? rng.range(100, 10_000) : rng.range(10_000, 120_000)]);
  const flips: number[] = [];
  const direct = rng.chance(0.3);
  if (rng.chance(0.3)) for (let i = rng.range(1, 4); i > 0; i--) flips.push(rng.int(span));
  flips.sort((a, b) => a - b);
  const durable = rng.chance(0.4);
  const crashes: [number, number][] = [];
  if (durable && rng.chance(0.6)) for (let i = rng.range(1, 3); i > 0; i--) crashes.push([rng.int(span), rng.chance(0.9) ? rng.range(1, 5000) : rng.range(5000, 60_000)]);
  if (rng.chance(0.3)) {
    // Small bundles (near the least the options allow) that cuts shrink to 256 bytes: the larger
    // messages then go in pieces (PROTOCOL 5.1) each way.
    client.maxBundleBytes = 74 + 10 * (client.maxSackRanges ?? 8) + 512 + maxLen + 16 + rng.int(2048);
    client.minBundleBytes = 256;
  }
  return {
    seed,
    durable,
    crashes,
    client,
    server,
    requests: faults(),
    responses: faults(),
    direct,
    up: rng.range(0, 150),
    down: rng.range(0, 150),
    maxLen,
    span,
    outages,
    flips,
    pause: rng.chance(0.3) ? rng.next() * 0.2 : 0,
    pauseMs: rng.range(1, 500),
    ackApp: rng.chance(0.3),
    confirmMs: rng.chance(0.2) ? 0 : rng.range(1, 400),
  };
}

function prefix(side: string, e: string | null): string | null {
  return e === null ? null : `${side}: ${e}`;
}

export interface Outcome {
  error: string | null;
  deliveredUp: number;
  deliveredDown: number;
  acceptedUp: number;
  acceptedDown: number;
  failed: boolean;
  events: number;
}

/** Runs one scenario to the end and checks every property; `error` says what broke. */
export function runScenario(sc: Scenario): Outcome {
  const rng = new Prng(sc.seed ^ 0x9e3779b9);
  let error: string | null = null;
  let deliveredUp = 0;
  let deliveredDown = 0;
  let pair: SimPair;
  let failedAt = -1;
  let lastHeardAtFail = -1;
  const note = (e: string | null): void => {
    if (e !== null && error === null) error = `t=${pair.now}: ${e}`;
  };
  const pauseThen = (resume: () => void): boolean => {
    if (sc.pause > 0 && rng.chance(sc.pause)) {
      pair.clock.schedule(rng.range(1, sc.pauseMs), resume);
      return false;
    }
    return true;
  };
  // Every other seed, the gateway's rings borrow their memory from a pool, as the host gateway's do.
  const pool = sc.seed % 2 === 0 ? new SlabPool({ chunkBytes: 65536, keepChunks: sc.seed % 4 === 0 ? 0 : 1 }) : null;
  // ackAfter 'app': each application confirms every message after a random delay, in order (a
  // confirmation a later one already covered is skipped). What a crashed device's application
  // confirmed is what it keeps: the unconfirmed rest must come again, so its count goes back there.
  let confirmedDown = 0;
  let upAt = 0;
  let downAt = 0;
  const confirmUp = (seq: number): void => {
    const l = pair.server;
    if (l === null) return;
    upAt = Math.max(upAt, pair.now + rng.int(sc.confirmMs + 1));
    pair.clock.at(upAt, () => {
      if (l.isFinished || !l.ep.inr.isConfirmable(seq)) return;
      l.confirm(pair.now, seq);
      pair.arm();
    });
  };
  const confirmDown = (seq: number, count: number): void => {
    const l = pair.client;
    downAt = Math.max(downAt, pair.now + rng.int(sc.confirmMs + 1));
    pair.clock.at(downAt, () => {
      if (l !== pair.client || pair.crashed || l.isFinished || !l.ep.inr.isConfirmable(seq)) return;
      l.confirm(pair.now, seq);
      if (count > confirmedDown) confirmedDown = count;
      pair.arm();
    });
  };
  pair = new SimPair({
    ...(pool === null ? {} : { memory: pool }),
    seed: sc.seed,
    client: sc.client,
    server: sc.server,
    requests: sc.requests,
    responses: sc.responses,
    direct: sc.direct,
    durable: sc.durable,
    ...(sc.ackApp ? { ackAfter: 'app' as const } : {}),
    onGatewayMessage: (b, o, l, seq) => {
      note(prefix('gateway', checkMessage(b, o, l, deliveredUp)));
      deliveredUp++;
      if (sc.ackApp) confirmUp(seq);
      return pauseThen(() => {
        if (pair.server) pair.server.resume(pair.now);
        pair.arm();
      });
    },
    onDeviceMessage: (b, o, l, seq) => {
      note(prefix('device', checkMessage(b, o, l, downBase() + deliveredDown)));
      deliveredDown++;
      if (sc.ackApp) confirmDown(seq, deliveredDown);
      return pauseThen(() => {
        if (pair.crashed) return; // the application restarts with the device
        pair.client.resume(pair.now);
        pair.arm();
      });
    },
    onDeviceDrain: () => pumpUp(),
    onDeviceClose: () => {
      failedAt = pair.now;
      lastHeardAtFail = pair.client.ep.lastHeard;
    },
    onGatewayDrain: () => pumpDown(),
  });
  // Senders: each side sends its messages at random times; a full ring waits for the drain event.
  let acceptedUp = 0;
  let acceptedDown = 0;
  let dueUp = 0;
  let dueDown = 0;
  const lens: number[] = [];
  const lenOf = (i: number): number => {
    while (lens.length <= i) lens.push(rng.range(HEADER, sc.maxLen));
    return lens[i];
  };
  const pumpUp = (): void => {
    while (acceptedUp < dueUp && !pair.crashed && !pair.client.isFinished && pair.client.localEnd < 0) {
      if (!pair.client.send(pair.now, makeMessage(acceptedUp, lenOf(acceptedUp)))) break;
      acceptedUp++;
    }
    pair.arm();
  };
  const lensDown: number[] = [];
  const lenDown = (i: number): number => {
    while (lensDown.length <= i) lensDown.push(rng.range(HEADER, sc.maxLen));
    return lensDown[i];
  };
  const pumpDown = (): void => {
    const s = pair.server;
    while (s !== null && acceptedDown < dueDown && !s.isFinished && s.localEnd < 0) {
      if (!s.send(pair.now, makeMessage(acceptedDown, lenDown(acceptedDown)))) break;
      if (!firstDown.has(s)) firstDown.set(s, acceptedDown);
      acceptedBy.set(s, (acceptedBy.get(s) ?? 0) + 1);
      acceptedDown++;
    }
    pair.arm();
  };
  // Messages the gateway queued on a session the device never had (its welcome was lost and a newer
  // hello replaced it) end with that session, which reports its failure to the gateway's
  // application; the device's stream is the one of the session it has.
  const firstDown = new Map<unknown, number>();
  const acceptedBy = new Map<unknown, number>();
  const deviceSession = (): unknown => {
    const sid = pair.client.sid;
    for (const l of pair.servers) if (sid !== null && Buffer.from(l.sid).equals(Buffer.from(sid))) return l;
    return null;
  };
  const downBase = (): number => firstDown.get(deviceSession()) ?? 0;
  const downExpected = (): number => acceptedBy.get(deviceSession()) ?? 0;
  const t0 = pair.now;
  for (let i = 0; i < sc.up; i++)
    pair.clock.at(t0 + rng.int(sc.span), () => {
      dueUp++;
      pumpUp();
    });
  for (let i = 0; i < sc.down; i++)
    pair.clock.at(t0 + rng.int(sc.span), () => {
      dueDown++;
      pumpDown();
    });
  for (const [at, len] of sc.outages) pair.clock.at(t0 + at, () => pair.net.cut(len));
  for (const [at, down] of sc.crashes) {
    pair.clock.at(t0 + at, () => {
      if (pair.crashed || pair.client.isFinished) return;
      pair.crash();
      if (sc.ackApp) deliveredDown = confirmedDown;
      pair.clock.schedule(down, () => {
        pair.restart();
        pumpUp();
      });
    });
  }
  let direct = sc.direct;
  for (const at of sc.flips)
    pair.clock.at(t0 + at, () => {
      direct = !direct;
      pair.useDirect(direct);
    });
  // Ring bounds, checked every 50 virtual ms.
  const bounds = (): void => {
    const c = pair.client.ep;
    const s = pair.server?.ep;
    for (const ep of s ? [c, s] : [c]) {
      if (ep.out.length > ep.out.slots || ep.out.usedBytes > ep.out.bytes) note(`out-ring over its bounds: ${ep.out.length}/${ep.out.slots} msgs ${ep.out.usedBytes}/${ep.out.bytes} bytes`);
      if (ep.inr.available > ep.inr.slots || ep.inr.windowBytes < 0) note(`in-ring over its bounds: ${ep.inr.available}/${ep.inr.slots}`);
      if ((ep.inr.next - ep.inr.held) >>> 0 > ep.inr.slots) note(`in-ring holds ${ep.inr.unconfirmed} unconfirmed and ${ep.inr.available} unconsumed in ${ep.inr.slots} slots`);
    }
    if (pool !== null) {
      // Lent memory: exactly one slab per gateway ring that holds something, none for an empty one.
      let held = 0;
      let nonEmpty = 0;
      for (const l of pair.servers) {
        held += l.ep.out.blocksHeld + l.ep.inr.blocksHeld;
        nonEmpty += (l.ep.out.isEmpty ? 0 : 1) + (l.ep.inr.isEmpty ? 0 : 1);
      }
      if (held !== pool.lent || held !== nonEmpty) note(`lent ring memory: pool says ${pool.lent} blocks out, the rings hold ${held}, ${nonEmpty} rings hold messages`);
    }
    // The gateway's application starts sending once its session exists.
    if (acceptedDown < dueDown) pumpDown();
    if (!pair.client.isFinished || (pair.server && !pair.server.isFinished)) pair.clock.schedule(50, bounds);
  };
  pair.clock.schedule(50, bounds);
  pair.start();
  // The traffic phase.
  const lastOutage = [...sc.outages, ...sc.crashes].reduce((m, [a, l]) => Math.max(m, a + l), 0);
  pair.run(Math.max(sc.span, lastOutage) + 1000, () => error !== null);
  // Heal the network and let everything drain.
  pair.net.requests = { drop: 0, dup: 0, delayMin: 1, delayMax: 5 };
  pair.net.responses = { drop: 0, dup: 0, delayMin: 1, delayMax: 5 };
  pair.net.downUntil = 0;
  const done = (): boolean =>
    error !== null ||
    pair.client.isFinished ||
    (acceptedUp === sc.up && acceptedDown === sc.down && deliveredUp === sc.up && deliveredDown === downExpected() && pair.client.ep.out.isEmpty && (pair.server?.ep.out.isEmpty ?? false));
  pair.run(600_000, done);
  const failed = pair.client.state === LinkState.FAILED;
  if (error === null) {
    if (failed) {
      const e = pair.deviceError;
      const g = pair.gatewayClosed;
      if (e?.code === 'HF_ERR_UNKNOWN_SESSION') {
        // The gateway gave up first (its idle limit passed in an outage); the device learns it.
        if (g === undefined || g === 'clean' || g.code !== 'HF_ERR_TIMEOUT') note(`device told the session is gone, but the gateway's ended with ${g === undefined || g === 'clean' ? g : g.code}`);
      } else if (e?.code !== 'HF_ERR_TIMEOUT') {
        note(`device failed with ${e?.code}: ${e?.message}`);
      } else if (failedAt - lastHeardAtFail + 1e-6 < (sc.client.deadAfterMs ?? 60000)) {
        note(`device failed after only ${failedAt - lastHeardAtFail} ms of silence`);
      }
      // The gateway must free the session after its idle limit.
      pair.run((sc.server.idleMs ?? 90000) + 60_000, () => pair.acceptor.size === 0);
      if (pair.acceptor.size !== 0) note(`gateway still holds ${pair.acceptor.size} session(s) after the idle limit`);
    } else if (pair.client.isFinished) {
      note(`device link ended: state ${pair.client.state} ${pair.deviceError?.code ?? ''}`);
    } else {
      if (deliveredUp !== sc.up || deliveredDown !== downExpected() || (pair.server === deviceSession() && acceptedDown !== sc.down)) {
        note(
          `not everything arrived: up ${deliveredUp}/${sc.up} (accepted ${acceptedUp}), down ${deliveredDown}/${downExpected()} from ${downBase()} of ${sc.down} (accepted ${acceptedDown}); client ${pair.client.state} server ${pair.server?.state}`,
        );
      } else if (sc.ackApp && (!pair.client.ep.out.isEmpty || (pair.server === deviceSession() && !pair.server?.ep.out.isEmpty))) {
        // Every confirmation reached its sender: nothing is left unacknowledged.
        note(`ackAfter app: still unacknowledged at the end: device ${pair.client.ep.out.length}, gateway ${pair.server?.ep.out.length}`);
      }
    }
  }
  return { error, deliveredUp, deliveredDown, acceptedUp, acceptedDown, failed, events: pair.clock.steps };
}
