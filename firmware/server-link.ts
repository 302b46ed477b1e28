/**
 * ServerLink: the gateway side of one session (Figure 7 of the protocol document, plus the direct
 * transport).
 *
 * Over HTTP (Transport.HELD) the server holds each request instead of answering it, and answers the
 * oldest held request
 *   - when the next request arrives (more than `maxHeld` held),
 *   - when a full bundle of messages is ready,
 *   - when messages wait and the coalescing delay passed, or an acknowledgement is owed,
 *   - before `holdMs` passes (under the idle cut of common proxies),
 * so that one request is nearly always held and the server can always answer. A repeated request
 * number gets the same answer again (a lost response is replayed, not lost) from a cache of the last
 * `replayCache` answers. Silence past `idleMs` ends the session (HF_ERR_TIMEOUT).
 *
 * States: OPEN -> CLOSING -> CLOSED, or FAILED. A finished link answers what it still holds and is
 * dropped by the acceptor.
 */
import { type Control, Ctl, type GatewayAddress, type Hello, encodeControl, limitsOf } from './control';
import { type ArenaAlloc, Endpoint } from './endpoint';
import type { SlabLender } from './slab-pool';
import { ErrorCode, hfError, isHfError } from './errors';
import { LinkBase, type LinkPort, LinkState, Transport, type TransportValue } from './link-base';
import type { ResolvedOptions } from './options';
import { type BundleView, RN_WINDOW } from './wire';
import { SNAPSHOT_VERSION, type ServerData, decodeSnapshot, encodeSnapshot } from './snapshot';
import { Sealer } from './auth';
import type { Crypto } from '../hal/crypto';
import { before } from './check';
import { SessionRefusal, sessionErrorBundle } from './error-bundle';

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** Where a request number stands against the numbers already taken. */
const RnAge = { FRESH: 0, TAKEN: 1 } as const;
type RnAgeValue = (typeof RnAge)[keyof typeof RnAge];

export interface ServerPort extends LinkPort {
  /** Answer HTTP exchange `exchange` with `body[0, len)` (valid only during the call). */
  answer(exchange: number, body: Uint8Array, len: number): void;
  /**
   * Send a frame on the direct transport, on connection `conn` (the `exchange` number the driver gave
   * with the session's latest accepted frame). `body` is valid only during the call.
   */
  transmit(body: Uint8Array, len: number, conn: number): void;
}

export class ServerLink extends LinkBase {
  declare protected port: ServerPort;
  readonly sid: Uint8Array;
  readonly deviceId: string;
  // Held requests, oldest first.
  private readonly heldEx: number[] = [];
  private readonly heldRn: number[] = [];
  private readonly heldAt: number[] = [];
  /** The answer size each held request asked for (its room field; 0: any). */
  private readonly heldRoom: number[] = [];
  // Replay cache: the last answers, by request number.
  private readonly replayRn: number[] = [];
  private readonly replayBody: Uint8Array[] = [];
  /** When each remembered answer was written (-1: restored; its messages carry this send time). */
  private readonly replayAt: number[] = [];
  /** The replay cache's version at each answer's remembering (what a standby was sent: replica.ts). */
  private readonly replayVer: number[] = [];
  /** How many answers were remembered so far. */
  private replayCount = 0;
  /**
   * The welcome bytes, replayed for a repeated hello until the device shows it has the welcome (its
   * first bundle on the session); after that a repeat of the hello is a replay and is refused.
   */
  welcome: Uint8Array | null = null;
  /** Newest request number taken, and a bitmap of the RN_WINDOW before it (bit k: rnTop-1-k). */
  private rnTop = 0;
  private rnSeen = 0;

  constructor(o: ResolvedOptions, sid: Uint8Array, deviceId: string, peerSeq: number, peerOff: number, port: ServerPort, memory?: ArenaAlloc | SlabLender) {
    super(o, new Endpoint(o, peerSeq, peerOff, memory), port, LinkState.OPEN);
    this.sid = sid;
    this.deviceId = deviceId;
  }

  get held(): number {
    return this.heldEx.length;
  }

  /** Answers a hello exchange with the welcome (and any messages already queued). */
  answerHello(now: number, exchange: number, rn: number, winMsgs: number, winBytes: number, hello: Hello): void {
    const ep = this.ep;
    ep.setPeerStart(hello.seq, hello.off, winMsgs, winBytes);
    ep.markAgain(hello.seq, hello.again ?? 0);
    ep.setPeerLimits(hello.lim);
    ep.peerRing = hello.ring ?? null;
    ep.lastHeard = now;
    const item = encodeControl({
      kind: Ctl.WELCOME,
      seq: ep.out.tail,
      off: ep.out.tailOff,
      hold: Math.round(this.o.holdMs),
      idle: Math.round(this.o.idleMs),
      held: this.o.maxHeld,
      lim: limitsOf(this.o),
      ring: [this.o.outSlots, this.o.outBytes],
      gw: this.welcomeGateways,
    });
    const len = ep.writeBundle(this.sid, rn, now, [item], true);
    this.afterWrite(now);
    this.welcome = ep.writer.buf.slice(0, len);
    this.remember(rn, this.welcome, now);
    this.rnTop = rn >>> 0;
    this.rnSeen = 0;
    this.port.answer(exchange, ep.writer.buf, len);
  }

  /** The whole session as CBOR bytes (see snapshot.ts). Held exchanges stay with the transport. */
  snapshot(now: number): Uint8Array {
    return encodeSnapshot<ServerData>({ v: SNAPSHOT_VERSION, role: 'server', at: now, o: this.o, link: this.serverData(0), ep: this.ep.toData(now) });
  }

  /**
   * The link's own state as data (the endpoint's aside), with the replay cache's answers remembered
   * after version `replaySince` (0: all). replica.ts sends this with every delta.
   */
  serverData(replaySince: number): ServerData {
    const replay: [number, Uint8Array][] = [];
    for (let i = 0; i < this.replayRn.length; i++) if (this.replayVer[i] > replaySince) replay.push([this.replayRn[i], this.replayBody[i]]);
    // Written out rather than spread from linkData(): this runs for every record a standby gets.
    return {
      state: this.state,
      transport: this.transport,
      localEnd: this.localEnd,
      peerEnd: this.peerEnd,
      endSignalled: this.endSignalled,
      closeSent: this.closeSent,
      sid: this.sid,
      deviceId: this.deviceId,
      welcome: this.welcome,
      replay,
      skey: this.ep.sealer?.key ?? null,
      rnTop: this.rnTop,
      rnSeen: this.rnSeen,
    };
  }

  /** The replay cache's version: how many answers were remembered so far. */
  get replayVersion(): number {
    return this.replayCount;
  }

  /**
   * Rebuilds a server link from `snapshot()` bytes (on a standby or another cluster node). `crypto`
   * is required for an authenticated session; `memory` is where its rings' memory comes from (as for
   * a new session; absent: an arena of its own).
   */
  static restore(bytes: Uint8Array, now: number, port: ServerPort, crypto?: Crypto, memory?: ArenaAlloc | SlabLender): ServerLink {
    const s = decodeSnapshot<ServerData>(bytes, 'server');
    const l = new ServerLink(s.o, new Uint8Array(s.link.sid), s.link.deviceId, 0, 0, port, memory);
    l.ep.fromData(s.ep, now);
    l.restoreLinkData(s.link);
    if (s.link.skey != null) {
      if (crypto === undefined) throw hfError(ErrorCode.STATE, 'snapshot of an authenticated session, but no crypto given');
      l.ep.sealer = new Sealer(crypto, new Uint8Array(s.link.skey));
    }
    l.rnTop = (s.link.rnTop ?? 0) >>> 0;
    l.rnSeen = (s.link.rnSeen ?? 0) >>> 0;
    l.welcome = s.link.welcome === null ? null : new Uint8Array(s.link.welcome);
    for (const [rn, body] of s.link.replay) {
      l.replayRn.push(rn);
      l.replayBody.push(new Uint8Array(body));
      l.replayAt.push(-1);
      l.replayVer.push(++l.replayCount);
    }
    return l;
  }

  /** The HTTP exchanges held now, oldest first (valid until the link next runs). */
  get heldExchanges(): readonly number[] {
    return this.heldEx;
  }

  /**
   * Hands the session to another gateway process: returns its snapshot (`snapshot(now)`), then ends
   * it here without a word to the device. Held requests are forgotten unanswered (the driver closes
   * them; the device sends again, to the new owner, whose replay cache and request numbers make that
   * idempotent) and the link is FAILED with HF_ERR_MOVED, which the port's onClose hears. Throws
   * HF_ERR_UNKNOWN_SESSION, changing nothing, for a session that has ended.
   */
  handOff(now: number): Uint8Array {
    if (this.isFinished) throw hfError(ErrorCode.UNKNOWN_SESSION, 'session has ended');
    const bytes = this.snapshot(now);
    this.heldEx.length = 0;
    this.heldRn.length = 0;
    this.heldAt.length = 0;
    this.heldRoom.length = 0;
    this.fail(hfError(ErrorCode.MOVED, 'session handed to another gateway process'));
    return bytes;
  }

  /** Answers a repeated hello with the same welcome; false if the session is over. */
  replayWelcome(now: number, exchange: number): boolean {
    if (this.isFinished || this.welcome === null) return false;
    this.ep.lastHeard = now;
    this.port.answer(exchange, this.welcome, this.welcome.length);
    return true;
  }

  /**
   * An HTTP request for this session arrived as exchange `exchange` with `body`. Throws a
   * coded error (changing nothing) if the body does not fit this session's state; the caller answers
   * the exchange with that error. Otherwise the exchange is answered now or held.
   */
  onRequest(now: number, exchange: number, body: Uint8Array): void {
    if (this.isFinished) throw hfError(ErrorCode.UNKNOWN_SESSION, 'session has ended');
    const v = this.ep.read(body);
    this.ep.authenticate(v);
    const cached = this.replayRn.indexOf(v.rn);
    if (cached >= 0) {
      this.ep.lastHeard = now;
      const body = this.replayBody[cached];
      this.port.answer(exchange, body, body.length);
      return;
    }
    const dup = this.heldRn.indexOf(v.rn);
    if (dup < 0 && this.checkFresh(v.rn) === RnAge.TAKEN) {
      // A request taken recently whose answer is no longer cached: a driver's retry after the answer
      // was lost (more answers went out meanwhile than the cache keeps). It gets the current
      // acknowledgement state, no messages (they are resent as unacknowledged); nothing in it is
      // applied and no held request is displaced, so a captured request sent again gains nothing.
      // The bare answer is not cached: it would push a real answer out of the cache.
      this.ep.lastHeard = now;
      this.answerWith(now, exchange, v.rn, false, false);
      return;
    }
    const ctls = this.checkAuthentic(v);
    this.markTaken(v.rn);
    this.answersLost(v);
    if (dup >= 0) {
      // The same request again while the first is still held (a retry or a duplicate): the newer
      // exchange takes its place; the older one is answered now with the current state.
      const old = this.heldEx[dup];
      this.heldEx[dup] = exchange;
      this.answerWith(now, old, v.rn, false, true, this.heldRoom[dup]);
      this.heldRoom[dup] = v.roomBytes;
    } else {
      this.heldEx.push(exchange);
      this.heldRn.push(v.rn);
      this.heldAt.push(now);
      this.heldRoom.push(v.roomBytes);
    }
    this.take(v, ctls, now);
  }

  /**
   * The request names requests whose answers never reached the device (their connections died): the
   * messages those answers carried are due again at once, and the answers leave the replay cache.
   */
  private answersLost(v: BundleView): void {
    for (let k = 0; k < v.lostCount; k++) {
      const i = this.replayRn.indexOf(v.lost[k]);
      if (i < 0) continue;
      if (this.replayAt[i] >= 0) this.ep.resendSentAt(this.replayAt[i]);
      this.replayRn.splice(i, 1);
      this.replayBody.splice(i, 1);
      this.replayAt.splice(i, 1);
    }
  }

  /**
   * A frame arrived on the direct transport, on connection `conn`. Throws a coded error (changing
   * nothing) if it is bad. An accepted frame moves the session onto that connection: later frames to
   * the device go there (a forged frame cannot move it: it is refused first).
   */
  onFrame(now: number, body: Uint8Array, conn = 0): void {
    if (this.isFinished) throw hfError(ErrorCode.UNKNOWN_SESSION, 'session has ended');
    const v = this.ep.read(body);
    this.ep.authenticate(v);
    if (this.checkFresh(v.rn) === RnAge.TAKEN) throw hfError(ErrorCode.AUTH, `frame number ${v.rn} was already used (newest ${this.rnTop}): replayed?`);
    const ctls = this.checkAuthentic(v);
    this.markTaken(v.rn);
    // A frame on another connection than the one the session is on (its device connected again, and
    // the old connection's close may not have reached here yet) is answered at once too: the
    // device's ladder trusts the new connection only once it hears on it.
    const another = this.transport === Transport.DIRECT && conn !== this.directConn;
    this.directConn = conn;
    if (!this.switchTo(Transport.DIRECT) && another) this.frameOwed = true;
    this.take(v, ctls, now);
  }

  /**
   * Checks a bundle whose tag checked out and whose request number is fresh against the session, and
   * reads its control items. In an authenticated session a refusal here is a SessionRefusal: its answer
   * is an error bundle with this session's id and tag, so the device can tell it from a forged one
   * (PROTOCOL 13.2). Replays are refused before this, untagged: anyone can send a captured bundle again.
   */
  private checkAuthentic(v: BundleView): Control[] {
    try {
      this.ep.check(v);
      return this.readControls(v);
    } catch (e) {
      const sealer = this.ep.sealer;
      if (!isHfError(e) || sealer === null) throw e;
      throw new SessionRefusal(e, sessionErrorBundle(this.sid, v.rn, this.ep.inr.next, e, sealer));
    }
  }

  /** What the device's hello said of it (its labels; none: empty). Not in the snapshot. */
  labels: Readonly<Record<string, string>> = NO_LABELS;

  /**
   * A moved item every answer and frame carries while set (`announceMove`): the session is served by
   * another gateway now, the device is to go there. Not in the snapshot.
   */
  private movedItem: Uint8Array | null = null;

  /** From now on every bundle tells the device the session is served at `url` / `tcp` (null: stop telling). */
  announceMove(to: GatewayAddress | null): void {
    this.movedItem = to === null ? null : encodeControl({ kind: Ctl.MOVED, url: to[0], tcp: to[1] });
  }

  /** The gateways this session's welcome names (the acceptor's `gateways`; none: the field is left out). */
  welcomeGateways: GatewayAddress[] = [];

  /** The direct connection frames go out on (transport-bound: not part of a snapshot). */
  directConn = 0;

  /**
   * Refuses (HF_ERR_AUTH) a request number older than the window: nothing can tell a retry from a
   * captured request sent again. Within the window, says whether `rn` is fresh or was taken (the
   * replay cache answers exact repeats of recent requests before this check).
   */
  private checkFresh(rn: number): RnAgeValue {
    if (rn !== this.rnTop && !before(rn, this.rnTop)) return RnAge.FRESH;
    const k = rn === this.rnTop ? -1 : ((this.rnTop - rn) >>> 0) - 1;
    if (k >= RN_WINDOW) throw hfError(ErrorCode.AUTH, `request number ${rn} is too old (newest ${this.rnTop}): replayed?`);
    return k < 0 || (this.rnSeen & (1 << k)) !== 0 ? RnAge.TAKEN : RnAge.FRESH;
  }

  /** Records `rn` as taken (after checkFresh passed and the bundle was accepted). */
  private markTaken(rn: number): void {
    this.welcome = null; // the device has its welcome: a repeat of the hello is now a replay
    if (before(this.rnTop, rn)) {
      const shift = (rn - this.rnTop) >>> 0;
      // The old top becomes bit shift-1; older bits move up by `shift` (and fall off past the window).
      const moved = shift >= RN_WINDOW ? 0 : this.rnSeen << shift;
      this.rnSeen = shift > RN_WINDOW ? 0 : (moved | (1 << (shift - 1))) >>> 0;
      this.rnTop = rn >>> 0;
    } else if (rn !== this.rnTop) {
      this.rnSeen = (this.rnSeen | (1 << (((this.rnTop - rn) >>> 0) - 1))) >>> 0;
    }
  }

  private take(v: BundleView, ctls: readonly Control[], now: number): void {
    try {
      this.applyBundle(v, now);
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.fail(e);
      this.flushHeld(now);
      return;
    }
    this.applyControls(ctls, now);
    if (this.isFinished) {
      // The device's bundle ended the session (an error item): its held requests get their answer.
      this.flushHeld(now);
      return;
    }
    this.run(now);
  }

  /** The HTTP exchange went away (client disconnected) before it was answered. */
  onExchangeGone(exchange: number): void {
    const i = this.heldEx.indexOf(exchange);
    if (i < 0) return;
    this.heldEx.splice(i, 1);
    this.heldRn.splice(i, 1);
    this.heldAt.splice(i, 1);
    this.heldRoom.splice(i, 1);
  }

  /** The device attached (DIRECT) or lost (HELD) its direct transport. */
  setTransport(now: number, t: TransportValue): void {
    if (this.switchTo(t)) this.run(now);
  }

  private switchTo(t: TransportValue): boolean {
    if (t === this.transport) return false;
    this.transport = t;
    this.ep.resendAll();
    // The first bundle on the new transport goes at once, so the device hears from it (its transport
    // ladder waits for that before it trusts a new TCP connection).
    this.frameOwed = t === Transport.DIRECT;
    return true;
  }

  /**
   * A frame is owed on the direct connection now, messages or not (held requests answered at the
   * switch do not count: they went over HTTP). Cleared by the next frame.
   */
  private frameOwed = false;

  nextDeadline(): number {
    if (this.isFinished) return Infinity;
    let t = this.ep.lastHeard + this.o.idleMs;
    t = Math.min(t, this.ep.retxDeadline());
    if (this.transport === Transport.DIRECT) return Math.min(t, this.baseDeadline(), this.ep.lastSent + this.o.keepaliveMs);
    if (this.heldEx.length > 0) t = Math.min(t, this.heldAt[0] + this.o.holdMs, this.baseDeadline());
    if (this.heldEx.length > this.o.maxHeld) t = Math.min(t, this.heldAt[this.heldEx.length - 1] + this.o.ackDelayMs);
    return t;
  }

  onTimer(now: number): void {
    if (this.isFinished) return;
    if (now >= this.ep.lastHeard + this.o.idleMs) {
      this.fail(hfError(ErrorCode.TIMEOUT, `device silent for ${Math.round(now - this.ep.lastHeard)} ms`));
      this.flushHeld(now);
      return;
    }
    if (now >= this.ep.retxDeadline()) this.ep.onRetxTimer(now);
    this.run(now);
  }

  protected pump(now: number): void {
    if (this.isFinished) return;
    if (this.transport === Transport.DIRECT) {
      // Requests still held from before the switch are released at once; news goes on the frame.
      while (this.heldEx.length > 0) this.answerOldest(now, false);
      if (this.drained) {
        this.frame(now);
        this.finish();
        return;
      }
      if (this.frameOwed || this.directWants(now)) this.frame(now);
      return;
    }
    while (this.heldEx.length > 0) {
      const want = (this.heldEx.length > this.o.maxHeld && !this.displacedWaits(now)) || this.newsDue(now) || now >= this.heldAt[0] + this.o.holdMs || this.drained;
      if (!want) break;
      this.answerOldest(now, true);
    }
    if (this.drained) {
      this.finish();
      this.flushHeld(now);
    }
  }

  /**
   * A request beyond maxHeld displaces the oldest held one, which is answered at once, except on a
   * pair's primary (a delivery gate) while the messages that came with it wait for the application
   * (for the standby to hold them, then for the application to consume them): then the displaced
   * answer waits up to `ackDelayMs` from the newer request's arrival, so that it carries their
   * acknowledgement and the application's replies instead of going out empty and the device
   * needing another exchange for them (as without a standby, where the application consumes them
   * before the answer is written).
   */
  private displacedWaits(now: number): boolean {
    const n = this.heldEx.length;
    return n === this.o.maxHeld + 1 && this.ep.gateBacklog && now < this.heldAt[n - 1] + this.o.ackDelayMs;
  }

  private frame(now: number): void {
    this.frameOwed = false;
    const close = this.closeItem();
    if (close !== null) this.closeSent = true;
    const items = close === null ? (this.movedItem === null ? null : [this.movedItem]) : this.movedItem === null ? [close] : [close, this.movedItem];
    const len = this.ep.writeBundle(this.sid, 0, now, items, true);
    this.afterWrite(now);
    this.port.transmit(this.ep.writer.buf, len, this.directConn);
  }

  private answerOldest(now: number, messages: boolean): void {
    const ex = this.heldEx.shift() as number;
    const rn = this.heldRn.shift() as number;
    this.heldAt.shift();
    const room = this.heldRoom.shift() as number;
    this.answerWith(now, ex, rn, messages, true, room);
  }

  /** Answers `exchange` (request `rn`); `room` > 0 keeps the answer within that many bytes where it can. */
  private answerWith(now: number, exchange: number, rn: number, messages: boolean, cache = true, room = 0): void {
    const close = this.closeItem();
    if (close !== null) this.closeSent = true;
    const items: Uint8Array[] = [];
    if (close !== null) items.push(close);
    if (this.failure !== undefined) items.push(this.failureItem());
    else if (this.movedItem !== null) items.push(this.movedItem);
    const w = this.ep.writer;
    this.ep.caps.sizeCap = room > 0 ? room : Infinity;
    const len = this.ep.writeBundle(this.sid, rn, now, items.length > 0 ? items : null, messages && !this.isFinished);
    this.ep.caps.sizeCap = Infinity;
    this.afterWrite(now);
    if (cache && this.o.replayCache > 0) this.remember(rn, w.buf.slice(0, len), now);
    this.port.answer(exchange, w.buf, len);
  }

  private remember(rn: number, body: Uint8Array, at: number): void {
    if (this.o.replayCache === 0) return;
    const i = this.replayRn.indexOf(rn);
    if (i >= 0) {
      // Answered twice (a duplicate was released early): the later answer is the one to replay.
      this.replayBody[i] = body;
      this.replayAt[i] = at;
      this.replayVer[i] = ++this.replayCount;
      return;
    }
    if (this.replayRn.length >= this.o.replayCache) {
      this.replayRn.shift();
      this.replayBody.shift();
      this.replayAt.shift();
      this.replayVer.shift();
    }
    this.replayRn.push(rn);
    this.replayBody.push(body);
    this.replayAt.push(at);
    this.replayVer.push(++this.replayCount);
  }

  protected farewell(now: number): void {
    if (this.transport === Transport.DIRECT) {
      const len = this.ep.writeBundle(this.sid, 0, now, [this.failureItem()], false);
      this.port.transmit(this.ep.writer.buf, len, this.directConn);
    }
    this.flushHeld(now); // over HTTP each held request is answered with the error item
  }

  /** Answers everything still held (the link finished). */
  private flushHeld(now: number): void {
    while (this.heldEx.length > 0) this.answerOldest(now, false);
  }
}
