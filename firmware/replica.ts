/**
 * A session's state kept on a standby: the primary's side (ReplicaCursor: what the standby has of a
 * session, and the record that brings it up to date) and the standby's (SessionShadow: the session as
 * snapshot data, brought up to date by each record, turned back into a live link on takeover).
 *
 * The first record of a session is its whole snapshot (snapshot.ts); each later one a delta:
 *
 *   l  the link's own fields (state, half-closes, request numbers, welcome) and the replay cache's
 *      answers remembered since the last record
 *   e  the endpoint's fields (windows, limits, round-trip state, redelivery marks), message lists empty
 *   o  [first seq, payloads]: messages the application handed to `send` since the last record
 *   i  [seq, offset, payload]...: messages from the device stored since the last record
 *
 * The out-ring's tail and the in-ring's held position (in `e`) say what the standby may forget:
 * messages the device acknowledged, and messages the application consumed (or confirmed, with
 * ackAfter 'app'). A delta costs what changed, not what the session holds.
 *
 * The standby takes a delta whole or not at one: a malformed one, or one that does not follow what it
 * holds (a gap in the out-ring's sequence numbers), throws HF_ERR_PEER and changes nothing.
 */
import type { EndpointData, InMsgData, OutMsgData } from './endpoint';
import { Transport } from './link-base';
import { ErrorCode, hfError } from './errors';
import type { ServerLink } from './server-link';
import { SNAPSHOT_VERSION, type ServerData, type Snapshot, decodeSnapshot, encodeSnapshot } from './snapshot';

/** Link fields a delta carries (ServerData without what never changes after the snapshot). */
export type DeltaLink = Omit<ServerData, 'sid' | 'deviceId' | 'skey'>;

export interface SessionDelta {
  l: DeltaLink;
  e: EndpointData;
  o: [number, Uint8Array[]];
  i: InMsgData[];
}

/** One record for the standby: a session's whole snapshot, or a delta to the last one. */
export type ReplicaRecord = { kind: 'snap'; bytes: Uint8Array } | { kind: 'delta'; delta: SessionDelta };

const dist = (a: number, b: number): number => (a - b) >>> 0;
/** Whether sequence number a comes before b (serial arithmetic on 32 bits). */
const before = (a: number, b: number): boolean => a !== b && dist(b, a) < 0x80000000;

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

  /** Whether the next record is a whole snapshot. */
  get needsSnapshot(): boolean {
    return !this.snapped;
  }

  /** The next record: the whole snapshot the first time, then what changed since the last record. */
  next(link: ServerLink, now: number): ReplicaRecord {
    const ep = link.ep;
    const out = ep.out;
    const inr = ep.inr;
    const mark = (): void => {
      this.snapped = true;
      this.outMark = out.head;
      this.inMark = inr.next;
      this.replayMark = link.replayVersion;
    };
    if (!this.snapped) {
      const bytes = link.snapshot(now);
      mark();
      return { kind: 'snap', bytes };
    }
    const from = before(this.outMark, out.tail) ? out.tail : this.outMark;
    const payloads: Uint8Array[] = [];
    for (let q = from; q !== out.head; q = (q + 1) >>> 0) payloads.push(ep.outPayload(q));
    const fresh: InMsgData[] = [];
    for (let q = before(this.inMark, inr.held) ? inr.held : this.inMark; q !== inr.top && before(q, inr.top); q = (q + 1) >>> 0) {
      const m = ep.inMessage(q);
      if (m !== null) fresh.push(m);
    }
    const { sid: _s, deviceId: _d, skey: _k, ...l } = link.serverData(this.replayMark);
    const delta: SessionDelta = { l, e: ep.toData(now, false), o: [from, payloads], i: fresh };
    mark();
    return { kind: 'delta', delta };
  }
}

const isInt = (v: unknown, max = 0xffffffff): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

function bad(what: string): never {
  throw hfError(ErrorCode.PEER, `malformed delta: ${what}`);
}

/** Checks a received delta's shape (what `apply` relies on); throws HF_ERR_PEER naming the field. */
export function checkDelta(v: unknown): SessionDelta {
  if (!isObject(v)) bad('not a map');
  const { l, e, o, i } = v;
  if (!isObject(l)) bad('l is not a map');
  for (const k of ['state', 'transport', 'rnTop', 'rnSeen'] as const) if (!isInt(l[k])) bad(`l.${k} is not an unsigned integer`);
  // -1: not ended yet.
  for (const k of ['localEnd', 'peerEnd'] as const) if (l[k] !== -1 && !isInt(l[k])) bad(`l.${k} is neither -1 nor a sequence number`);
  for (const k of ['endSignalled', 'closeSent'] as const) if (typeof l[k] !== 'boolean') bad(`l.${k} is not a boolean`);
  if (l.welcome !== null && !isBytes(l.welcome)) bad('l.welcome is neither bytes nor null');
  if (!Array.isArray(l.replay) || !l.replay.every((r) => Array.isArray(r) && r.length === 2 && isInt(r[0]) && isBytes(r[1]))) bad('l.replay is not a list of [rn, bytes]');
  if (!isObject(e)) bad('e is not a map');
  if (!Array.isArray(e.out) || e.out.length !== 4 || !isInt(e.out[0]) || !isInt(e.out[1]) || !isInt(e.out[2])) bad('e.out is not [tail, tailOff, sendNext, []]');
  if (!Array.isArray(e.in) || e.in.length !== 3 || !isInt(e.in[0]) || !isInt(e.in[1])) bad('e.in is not [held, heldOff, []]');
  if (!Array.isArray(e.peer) || e.peer.length !== 4 || !e.peer.every((x) => isInt(x))) bad('e.peer is not four unsigned integers');
  if (!Array.isArray(e.rtt) || !Array.isArray(e.times) || e.times.length !== 4 || !e.times.every((x) => typeof x === 'number')) bad('e.rtt or e.times');
  if (e.again !== undefined && (!Array.isArray(e.again) || e.again.length !== 2 || !isInt(e.again[0]) || !isInt(e.again[1]))) bad('e.again is not [from, count]');
  if (!Array.isArray(o) || o.length !== 2 || !isInt(o[0]) || !Array.isArray(o[1]) || !o[1].every(isBytes)) bad('o is not [first seq, [bytes...]]');
  if (!Array.isArray(i) || !i.every((m) => Array.isArray(m) && m.length === 3 && isInt(m[0]) && isInt(m[1]) && isBytes(m[2]))) bad('i is not a list of [seq, offset, bytes]');
  return v as unknown as SessionDelta;
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
    const ep = this.s.ep;
    const tail = ep.out[0];
    const newTail = d.e.out[0];
    const end = (tail + this.out.length) >>> 0;
    if (before(newTail, tail)) bad(`out-ring tail ${newTail} is behind the held ${tail}`);
    // Messages up to the new tail were acknowledged; the delta's first message follows what is held
    // (or the new tail, when every held one and more were acknowledged).
    const drop = before(end, newTail) ? this.out.length : dist(newTail, tail);
    const keptEnd = before(end, newTail) ? newTail : end;
    if (d.o[0] !== keptEnd) bad(`out-ring messages from ${d.o[0]}, but the standby holds up to ${keptEnd}`);
    const held = d.e.in[0];
    // Commit: nothing below throws.
    this.out = this.out.slice(drop);
    for (const p of d.o[1]) this.out.push(p);
    for (const seq of this.inMsgs.keys()) if (before(seq, held)) this.inMsgs.delete(seq);
    for (const m of d.i) if (!before(m[0], held)) this.inMsgs.set(m[0], m);
    const replay = this.s.link.replay;
    for (const [rn, body] of d.l.replay) {
      const k = replay.findIndex((r) => r[0] === rn);
      if (k >= 0) replay.splice(k, 1);
      replay.push([rn, body]);
    }
    while (replay.length > this.s.o.replayCache) replay.shift();
    const { replay: _r, ...fields } = d.l;
    Object.assign(this.s.link, fields);
    const outMsgs = ep.out[3];
    const inMsgs = ep.in[2];
    Object.assign(ep, d.e);
    ep.out = [d.e.out[0], d.e.out[1], d.e.out[2], outMsgs];
    ep.in = [d.e.in[0], d.e.in[1], inMsgs];
    this.recount();
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
