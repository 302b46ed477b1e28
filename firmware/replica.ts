/**
 * A session's state kept on a standby: the primary's side (ReplicaCursor: what the standby has of a
 * session, and the record that brings it up to date) and the standby's (SessionShadow: the session as
 * snapshot data, brought up to date by each record, turned back into a live link on takeover).
 *
 * The first record of a session is its whole snapshot (snapshot.ts); each later one a delta: an array
 * `[mask, field...]` whose mask says which fields follow, in the order of their bits (DeltaField),
 * each only when it changed since the last record (messages and replay answers: only new ones):
 *
 *   bit  field     value
 *   0    LINK      [state, transport, localEnd, peerEnd, endSignalled, closeSent] (ends: -1, not yet)
 *   1    WELCOME   the welcome's bytes, or null
 *   2    RN        [rnTop, rnSeen]: the newest request number taken and the bitmap below it
 *   3    REPLAY    [rn, answer, rn, answer, ...]: the replay cache's answers remembered since the last record
 *   4    OUT       [tail, tailOff, sendNext]: the out-ring's tail (what the device acknowledged)
 *   5    IN        [held, heldOff]: the in-ring's held position (what the application consumed)
 *   6    ACK_APP   whether the application confirms what it receives (boolean)
 *   7    AGAIN     [first seq, count] of messages marked as redelivered, or null
 *   8    PEER      [window end seq, window end offset, peer max message, messages per bundle]
 *   9    LIMITS    the peer's reader limits (five unsigned integers), or null
 *   10   RING      the peer's out-ring [slots, bytes], or null
 *   11   RTT       the round-trip estimator's five numbers
 *   12   TIMES     four ages in ms (loss detection, ack owed or -2, last heard, last sent)
 *   13   OUT_MSGS  [first seq, payload, payload, ...]: messages the application handed to `send`
 *   14   IN_MSGS   [seq, offset, payload, seq, offset, payload, ...]: messages from the device stored
 *
 * The out-ring's tail and the in-ring's held position say what the standby may forget: messages the
 * device acknowledged, and messages the application consumed (or confirmed, with ackAfter 'app').
 * A delta costs what changed, not what the session holds; integer keys, no field names.
 *
 * The standby takes a delta whole or not at all: a malformed one (checkDelta: HF_ERR_PEER naming the
 * field), or one that does not follow what it holds (a gap in the out-ring's sequence numbers), throws
 * HF_ERR_PEER and changes nothing.
 */
import type { Limits, Ring } from './control';
import type { EndpointData, InMsgData, OutMsgData } from './endpoint';
import { Transport } from './link-base';
import { ErrorCode, hfError } from './errors';
import type { ServerLink } from './server-link';
import { SNAPSHOT_VERSION, type ServerData, type Snapshot, decodeSnapshot, encodeSnapshot } from './snapshot';

/** The fields of a delta: bit k of its mask; present fields follow the mask in bit order. */
export const DeltaField = {
  LINK: 1 << 0,
  WELCOME: 1 << 1,
  RN: 1 << 2,
  REPLAY: 1 << 3,
  OUT: 1 << 4,
  IN: 1 << 5,
  ACK_APP: 1 << 6,
  AGAIN: 1 << 7,
  PEER: 1 << 8,
  LIMITS: 1 << 9,
  RING: 1 << 10,
  RTT: 1 << 11,
  TIMES: 1 << 12,
  OUT_MSGS: 1 << 13,
  IN_MSGS: 1 << 14,
} as const;

/** Every bit a mask may have. */
const ALL_FIELDS = (1 << 15) - 1;

/** The link's own fields in a delta: [state, transport, localEnd, peerEnd, endSignalled, closeSent]. */
export type DeltaLink = [number, number, number, number, boolean, boolean];

/** A delta as the standby takes it (checkDelta's result): the fields it carried; absent ones did not change. */
export interface SessionDelta {
  link?: DeltaLink;
  welcome?: Uint8Array | null;
  rn?: [number, number];
  replay?: [number, Uint8Array][];
  out?: [number, number, number];
  in?: [number, number];
  ackApp?: boolean;
  again?: [number, number] | null;
  peer?: [number, number, number, number];
  limits?: Limits | null;
  ring?: Ring | null;
  rtt?: number[];
  times?: [number, number, number, number];
  /** [first seq, payloads]. */
  outMsgs?: [number, Uint8Array[]];
  inMsgs?: InMsgData[];
}

/** One record for the standby: a session's whole snapshot, or a delta (`[mask, field...]`) to the last one. */
export type ReplicaRecord = { kind: 'snap'; bytes: Uint8Array } | { kind: 'delta'; delta: unknown[] };

const dist = (a: number, b: number): number => (a - b) >>> 0;
/** Whether sequence number a comes before b (serial arithmetic on 32 bits). */
const before = (a: number, b: number): boolean => a !== b && dist(b, a) < 0x80000000;

/** Whether two field values (numbers, booleans, null, or arrays of them) are the same. */
function same(a: readonly unknown[] | null | undefined, b: readonly unknown[] | null | undefined): boolean {
  if (a === b) return true;
  if (a == null || b == null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a standby holds of one session, seen from the primary. */
export class ReplicaCursor {
  /** Whether the standby has the session's snapshot. */
  private snapped = false;
  /** Out-ring messages before this were sent to the standby. */
  private outMark = 0;
  /** In-ring messages before this were sent (every one before the in-ring's `next` at the last record). */
  private inMark = 0;
  /** Replay answers up to this version were sent. */
  private replayMark = 0;
  // The fields as the standby has them (from the snapshot or the last delta that carried them).
  private link: DeltaLink | null = null;
  private welcome: Uint8Array | null = null;
  private rn: [number, number] | null = null;
  private out: [number, number, number] | null = null;
  private in: [number, number] | null = null;
  private ackApp: boolean | undefined = undefined;
  private again: [number, number] | null = null;
  private peer: readonly number[] | null = null;
  private limits: Limits | null = null;
  private ring: Ring | null = null;
  private rtt: number[] | null = null;
  private times: readonly number[] | null = null;

  /** Whether the next record is a whole snapshot. */
  get needsSnapshot(): boolean {
    return !this.snapped;
  }

  /** The next record: the whole snapshot the first time, then what changed since the last record. */
  next(link: ServerLink, now: number): ReplicaRecord {
    const ep = link.ep;
    const out = ep.out;
    const inr = ep.inr;
    if (!this.snapped) {
      const bytes = link.snapshot(now);
      this.delta(link, now, null);
      this.snapped = true;
      this.outMark = out.head;
      this.inMark = inr.next;
      return { kind: 'snap', bytes };
    }
    const d: unknown[] = [0];
    let mask = this.delta(link, now, d);
    const from = before(this.outMark, out.tail) ? out.tail : this.outMark;
    if (from !== out.head) {
      const o: unknown[] = [from];
      for (let q = from; q !== out.head; q = (q + 1) >>> 0) o.push(ep.outPayload(q));
      mask |= DeltaField.OUT_MSGS;
      d.push(o);
    }
    const fresh: unknown[] = [];
    for (let q = before(this.inMark, inr.held) ? inr.held : this.inMark; q !== inr.top && before(q, inr.top); q = (q + 1) >>> 0) {
      const m = ep.inMessage(q);
      if (m !== null) fresh.push(m[0], m[1], m[2]);
    }
    if (fresh.length > 0) {
      mask |= DeltaField.IN_MSGS;
      d.push(fresh);
    }
    d[0] = mask;
    this.outMark = out.head;
    this.inMark = inr.next;
    return { kind: 'delta', delta: d };
  }

  /**
   * Appends to `d` the fields (up to TIMES) that differ from what the standby has, and takes them as
   * what it has; returns their mask. With `d` null (the snapshot) only takes them.
   */
  private delta(link: ServerLink, now: number, d: unknown[] | null): number {
    const sd = link.serverData(this.replayMark);
    const e = link.ep.toData(now, false);
    this.replayMark = link.replayVersion;
    let mask = 0;
    const put = (bit: number, v: unknown): void => {
      mask |= bit;
      d?.push(v);
    };
    const l: DeltaLink = [sd.state, sd.transport, sd.localEnd, sd.peerEnd, sd.endSignalled, sd.closeSent];
    if (!same(l, this.link)) {
      this.link = l;
      put(DeltaField.LINK, l);
    }
    if (sd.welcome !== this.welcome) {
      this.welcome = sd.welcome;
      put(DeltaField.WELCOME, sd.welcome);
    }
    const rn: [number, number] = [sd.rnTop, sd.rnSeen];
    if (!same(rn, this.rn)) {
      this.rn = rn;
      put(DeltaField.RN, rn);
    }
    if (sd.replay.length > 0) {
      const r: unknown[] = [];
      for (const [n, body] of sd.replay) r.push(n, body);
      put(DeltaField.REPLAY, r);
    }
    const o: [number, number, number] = [e.out[0], e.out[1], e.out[2]];
    if (!same(o, this.out)) {
      this.out = o;
      put(DeltaField.OUT, o);
    }
    const i: [number, number] = [e.in[0], e.in[1]];
    if (!same(i, this.in)) {
      this.in = i;
      put(DeltaField.IN, i);
    }
    const ackApp = e.ackApp === true;
    if (ackApp !== this.ackApp) {
      this.ackApp = ackApp;
      put(DeltaField.ACK_APP, ackApp);
    }
    const again = e.again ?? null;
    if (!same(again, this.again)) {
      this.again = again;
      put(DeltaField.AGAIN, again);
    }
    if (!same(e.peer, this.peer)) {
      this.peer = e.peer;
      put(DeltaField.PEER, e.peer);
    }
    if (!same(e.peerLimits, this.limits)) {
      this.limits = e.peerLimits;
      put(DeltaField.LIMITS, e.peerLimits);
    }
    const ring = e.peerRing ?? null;
    if (!same(ring, this.ring)) {
      this.ring = ring;
      put(DeltaField.RING, ring);
    }
    if (!same(e.rtt, this.rtt)) {
      this.rtt = e.rtt;
      put(DeltaField.RTT, e.rtt);
    }
    if (!same(e.times, this.times)) {
      this.times = e.times;
      put(DeltaField.TIMES, e.times);
    }
    return mask;
  }
}

const isInt = (v: unknown, max = 0xffffffff): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
const isEnd = (v: unknown): boolean => v === -1 || isInt(v);
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isNumber = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);
const isInts = (v: unknown, n: number): v is number[] => Array.isArray(v) && v.length === n && v.every((x) => isInt(x));

function bad(what: string): never {
  throw hfError(ErrorCode.PEER, `malformed delta: ${what}`);
}

function bits(mask: number): number {
  let n = 0;
  for (let m = mask; m !== 0; m &= m - 1) n++;
  return n;
}

/**
 * Checks a received delta (`[mask, field...]`, see the file comment) and returns its fields; throws
 * HF_ERR_PEER naming the field that is wrong. What it returns is what `apply` relies on.
 */
export function checkDelta(v: unknown): SessionDelta {
  if (!Array.isArray(v) || v.length === 0) bad('not an array [mask, field...]');
  const mask = v[0];
  if (!isInt(mask, ALL_FIELDS)) bad(`mask ${String(mask)} is not an unsigned integer below 2^15`);
  if (v.length !== 1 + bits(mask)) bad(`mask ${mask} names ${bits(mask)} fields, but ${v.length - 1} follow`);
  const d: SessionDelta = {};
  let k = 1;
  const has = (bit: number): boolean => (mask & bit) !== 0;
  if (has(DeltaField.LINK)) {
    const x = v[k++];
    if (!Array.isArray(x) || x.length !== 6 || !isInt(x[0]) || !isInt(x[1]) || !isEnd(x[2]) || !isEnd(x[3]) || typeof x[4] !== 'boolean' || typeof x[5] !== 'boolean') {
      bad('link is not [state, transport, localEnd, peerEnd, endSignalled, closeSent]');
    }
    d.link = x as DeltaLink;
  }
  if (has(DeltaField.WELCOME)) {
    const x = v[k++];
    if (x !== null && !isBytes(x)) bad('welcome is neither bytes nor null');
    d.welcome = x;
  }
  if (has(DeltaField.RN)) {
    const x = v[k++];
    if (!isInts(x, 2)) bad('rn is not [rnTop, rnSeen]');
    d.rn = x as [number, number];
  }
  if (has(DeltaField.REPLAY)) {
    const x = v[k++];
    if (!Array.isArray(x) || x.length === 0 || x.length % 2 !== 0) bad('replay is not [rn, bytes, ...]');
    const r: [number, Uint8Array][] = [];
    for (let j = 0; j < x.length; j += 2) {
      if (!isInt(x[j]) || !isBytes(x[j + 1])) bad(`replay entry ${j / 2} is not rn, bytes`);
      r.push([x[j], x[j + 1]]);
    }
    d.replay = r;
  }
  if (has(DeltaField.OUT)) {
    const x = v[k++];
    if (!isInts(x, 3)) bad('out is not [tail, tailOff, sendNext]');
    d.out = x as [number, number, number];
  }
  if (has(DeltaField.IN)) {
    const x = v[k++];
    if (!isInts(x, 2)) bad('in is not [held, heldOff]');
    d.in = x as [number, number];
  }
  if (has(DeltaField.ACK_APP)) {
    const x = v[k++];
    if (typeof x !== 'boolean') bad('ackApp is not a boolean');
    d.ackApp = x;
  }
  if (has(DeltaField.AGAIN)) {
    const x = v[k++];
    if (x !== null && !isInts(x, 2)) bad('again is neither [from, count] nor null');
    d.again = x as [number, number] | null;
  }
  if (has(DeltaField.PEER)) {
    const x = v[k++];
    if (!isInts(x, 4)) bad('peer is not four unsigned integers');
    d.peer = x as [number, number, number, number];
  }
  if (has(DeltaField.LIMITS)) {
    const x = v[k++];
    if (x !== null && !isInts(x, 5)) bad('limits is neither five unsigned integers nor null');
    d.limits = x as Limits | null;
  }
  if (has(DeltaField.RING)) {
    const x = v[k++];
    if (x !== null && !isInts(x, 2)) bad('ring is neither [slots, bytes] nor null');
    d.ring = x as Ring | null;
  }
  if (has(DeltaField.RTT)) {
    const x = v[k++];
    if (!Array.isArray(x) || x.length !== 5 || !x.every(isNumber)) bad('rtt is not five numbers');
    d.rtt = x;
  }
  if (has(DeltaField.TIMES)) {
    const x = v[k++];
    if (!Array.isArray(x) || x.length !== 4 || !x.every(isNumber)) bad('times is not four numbers');
    d.times = x as [number, number, number, number];
  }
  if (has(DeltaField.OUT_MSGS)) {
    const x = v[k++];
    if (!Array.isArray(x) || x.length < 2 || !isInt(x[0])) bad('outMsgs is not [first seq, bytes...]');
    const payloads: Uint8Array[] = [];
    for (let j = 1; j < x.length; j++) {
      if (!isBytes(x[j])) bad(`outMsgs payload ${j - 1} is not bytes`);
      payloads.push(x[j]);
    }
    d.outMsgs = [x[0], payloads];
  }
  if (has(DeltaField.IN_MSGS)) {
    const x = v[k++];
    if (!Array.isArray(x) || x.length === 0 || x.length % 3 !== 0) bad('inMsgs is not [seq, offset, bytes, ...]');
    const msgs: InMsgData[] = [];
    for (let j = 0; j < x.length; j += 3) {
      if (!isInt(x[j]) || !isInt(x[j + 1]) || !isBytes(x[j + 2])) bad(`inMsgs entry ${j / 3} is not seq, offset, bytes`);
      msgs.push([x[j], x[j + 1], x[j + 2]]);
    }
    d.inMsgs = msgs;
  }
  return d;
}

/**
 * A session as a standby holds it: snapshot data, brought up to date by deltas, made into snapshot
 * bytes again on takeover (ServerLink.restore).
 */
export class SessionShadow {
  private readonly s: Snapshot<ServerData>;
  /** The out-ring's messages from `s.ep.out[0]` (the tail), in order. */
  private out: Uint8Array[];
  /** The in-ring's messages from the held position, by sequence number. */
  private readonly inMsgs = new Map<number, InMsgData>();
  /** Bytes of payload held (for the standby's accounting). */
  bytes = 0;

  /** From a session's snapshot bytes (the first record); throws HF_ERR_STATE if they are not one. */
  constructor(snapshot: Uint8Array) {
    const s = decodeSnapshot<ServerData>(snapshot, 'server');
    this.s = s;
    this.out = s.ep.out[3].map((m) => m[3]);
    for (const m of s.ep.in[2]) this.inMsgs.set(m[0], m);
    s.ep.out[3] = [];
    s.ep.in[2] = [];
    this.recount();
  }

  get deviceId(): string {
    return this.s.link.deviceId;
  }

  get sid(): Uint8Array {
    return this.s.link.sid;
  }

  private recount(): void {
    let n = 0;
    for (const p of this.out) n += p.length;
    for (const m of this.inMsgs.values()) n += m[2].length;
    this.bytes = n;
  }

  /** Takes a (checked: `checkDelta`) delta whole, or throws HF_ERR_PEER and changes nothing. */
  apply(d: SessionDelta): void {
    const s = this.s;
    const ep = s.ep;
    const tail = ep.out[0];
    const newTail = d.out !== undefined ? d.out[0] : tail;
    const end = (tail + this.out.length) >>> 0;
    if (before(newTail, tail)) bad(`out-ring tail ${newTail} is behind the held ${tail}`);
    // Messages up to the new tail were acknowledged; the delta's first message follows what is held
    // (or the new tail, when every held one and more were acknowledged).
    const drop = before(end, newTail) ? this.out.length : dist(newTail, tail);
    const keptEnd = before(end, newTail) ? newTail : end;
    if (d.outMsgs !== undefined && d.outMsgs[0] !== keptEnd) bad(`out-ring messages from ${d.outMsgs[0]}, but the standby holds up to ${keptEnd}`);
    // Commit: nothing below throws.
    let bytes = this.bytes;
    if (drop > 0) {
      for (let j = 0; j < drop; j++) bytes -= this.out[j].length;
      this.out.splice(0, drop);
    }
    if (d.outMsgs !== undefined) {
      for (const p of d.outMsgs[1]) {
        this.out.push(p);
        bytes += p.length;
      }
    }
    const held = d.in !== undefined ? d.in[0] : ep.in[0];
    if (d.in !== undefined) {
      for (const seq of this.inMsgs.keys()) {
        if (!before(seq, held)) continue;
        bytes -= (this.inMsgs.get(seq) as InMsgData)[2].length;
        this.inMsgs.delete(seq);
      }
    }
    if (d.inMsgs !== undefined) {
      for (const m of d.inMsgs) {
        if (before(m[0], held)) continue;
        const had = this.inMsgs.get(m[0]);
        if (had !== undefined) bytes -= had[2].length;
        this.inMsgs.set(m[0], m);
        bytes += m[2].length;
      }
    }
    this.bytes = bytes;
    const link = s.link;
    if (d.replay !== undefined) {
      const replay = link.replay;
      for (const [rn, body] of d.replay) {
        const k = replay.findIndex((r) => r[0] === rn);
        if (k >= 0) replay.splice(k, 1);
        replay.push([rn, body]);
      }
      while (replay.length > s.o.replayCache) replay.shift();
    }
    if (d.link !== undefined) [link.state, link.transport, link.localEnd, link.peerEnd, link.endSignalled, link.closeSent] = d.link;
    if (d.welcome !== undefined) link.welcome = d.welcome;
    if (d.rn !== undefined) [link.rnTop, link.rnSeen] = d.rn;
    if (d.out !== undefined) ep.out = [d.out[0], d.out[1], d.out[2], ep.out[3]];
    if (d.in !== undefined) ep.in = [d.in[0], d.in[1], ep.in[2]];
    if (d.ackApp !== undefined) ep.ackApp = d.ackApp;
    if (d.again !== undefined) ep.again = d.again ?? undefined;
    if (d.peer !== undefined) ep.peer = d.peer;
    if (d.limits !== undefined) ep.peerLimits = d.limits;
    if (d.ring !== undefined) ep.peerRing = d.ring;
    if (d.rtt !== undefined) ep.rtt = d.rtt;
    if (d.times !== undefined) ep.times = d.times;
  }

  /**
   * The session as snapshot bytes, for ServerLink.restore on takeover. Every out-ring message counts
   * as unsent (the device drops what it had already); the link leaves the direct transport (the new
   * primary's connections are the device's to make).
   */
  toSnapshot(now: number): Uint8Array {
    const s = this.s;
    const tail = s.ep.out[0];
    const out: OutMsgData[] = this.out.map((p) => [-1, 0, 0, p]);
    const inMsgs = [...this.inMsgs.values()].sort((a, b) => (before(a[0], b[0]) ? -1 : 1));
    const ep: EndpointData = { ...s.ep, out: [tail, s.ep.out[1], tail, out], in: [s.ep.in[0], s.ep.in[1], inMsgs] };
    return encodeSnapshot<ServerData>({ v: SNAPSHOT_VERSION, role: 'server', at: now, o: s.o, link: { ...s.link, transport: Transport.HELD }, ep });
  }
}
