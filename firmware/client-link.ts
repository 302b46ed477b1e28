/**
 * ClientLink: the device side of a session (Figure 6 of the protocol document, plus the direct
 * transport).
 *
 * Over HTTP (Transport.HELD) the client keeps a request outstanding at all times so the server can
 * always answer, and sends another one
 *   - when a full bundle of messages has accumulated,
 *   - when messages wait and the coalescing delay passed, or an acknowledgement is owed,
 *   - when a response arrives and none is left outstanding,
 *   - when a request times out (a held request gets `hold + RTO`; once a newer request went out the
 *     server must answer the older one at once, so it gets `RTO`); retransmissions of what is
 *     unacknowledged ride along,
 * never more than `maxOutstanding` at once. After `failAfter` consecutive unanswered requests, with the
 * server silent for at least `deadAfterMs`, the link fails with HF_ERR_TIMEOUT.
 *
 * A request whose connection died before its answer (`onRequestFailed(now, rn, true)`: reset, cut,
 * a middlebox's limit) is lost, not late: its messages are due again at once, the next request goes at
 * once (the first `retryAtOnce` in a row, and any while the gateway answered within the last
 * `retryBackoffMaxMs`; then after a short doubling back-off with jitter, at most `retryBackoffMaxMs`),
 * the retransmission timer is left alone, and requests shrink (`pathBytes`
 * halves, down to `minBundleBytes`) so that a path which cuts long connections still carries some; each
 * answer doubles it again.
 *
 * States: IDLE -> HELLO (hello sent, resent on timeout) -> OPEN -> CLOSING -> CLOSED, or FAILED.
 */
import { type Control, Ctl, type ErrorItem, type Welcome, encodeControl, limitsOf } from './control';
import { behind } from './check';
import { Endpoint } from './endpoint';
import { ErrorCode, type ErrorCodeValue, type HfError, hfError, isHfError } from './errors';
import { LinkBase, type LinkPort, LinkState, Transport, type TransportValue } from './link-base';
import { type AckAfter, checkAckAfter, type LinkOptions, type ResolvedOptions, resolveOptions } from './options';
import type { BundleView } from './wire';
import { type ClientData, SNAPSHOT_VERSION, decodeSnapshot, encodeSnapshot } from './snapshot';
import { Journal, type JournalOptions, Rec, getU32 } from './journal';
import type { Storage } from '../hal/storage';
import { equalBytes } from './bytes';
import type { Crypto } from '../hal/crypto';
import { Sealer, helloProof, sessionKey } from './auth';
import { MAX_LOST, SID_BYTES } from './wire';

export interface ClientPort extends LinkPort {
  /**
   * Carry `body[0, len)`: over HTTP as a new request (number `rn`), over a direct transport as a
   * frame. The bytes are valid only during the call (copy them if the write is asynchronous).
   */
  transmit(body: Uint8Array, len: number, rn: number): void;
}

export interface ClientConfig {
  /** Device id. */
  id: string;
  /** Fills a buffer with random bytes (hal Entropy). */
  random: (buf: Uint8Array) => void;
  /**
   * The device's secret key (with `crypto`): the hello proves it and every bundle of the session is
   * tagged with a key derived from it (see auth.ts). Without it the session is not authenticated.
   */
  key?: Uint8Array;
  /** HMAC from the target's HAL; required with `key`. */
  crypto?: Crypto;
  /** Hello counter for this new session: larger than any before (persisted, or from the wall clock). */
  helloCounter?: number;
  options?: LinkOptions;
  /**
   * When the device acknowledges the gateway's messages (default 'received'; options.ts AckAfter):
   * 'app', only once its application confirmed them (`confirm`). With a journal attached, 'received'
   * already waits until the application was handed the message (Endpoint.ackConsumed).
   */
  ackAfter?: AckAfter;
  /** The device's labels, told in every hello (a cluster of gateways places the session by them). */
  labels?: Record<string, string>;
}

const NONCE_BYTES = 16;
/** Request numbers skip this far ahead after a restore (past any the server's replay cache holds). */
const RN_JUMP = 1 << 24;

export class ClientLink extends LinkBase {
  declare protected port: ClientPort;
  readonly id: string;
  sid: Uint8Array | null = null;
  /** Last request number used. */
  rn = 0;
  /** Server's hold limit and held count, from its welcome. */
  serverHold: number;
  serverHeld = 1;
  private readonly config: ClientConfig;
  private readonly nonce = new Uint8Array(NONCE_BYTES);
  private helloN: number;
  // Outstanding requests, oldest first.
  private readonly reqRn: number[] = [];
  private readonly reqDeadline: number[] = [];
  /** When each outstanding request was written (its messages carry this send time). */
  private readonly reqSentAt: number[] = [];
  /** Bytes a request may take now: the path's apparent budget, halved on each cut, doubled on each answer. */
  pathBytes: number;
  /** Requests in a row whose connection died before the answer. */
  cuts = 0;
  /** No new request before this time (back-off after `retryAtOnce` cuts in a row). */
  private holdOff = 0;
  private readonly jitter = new Uint8Array(2);
  /**
   * Requests whose connection died (their answers, if any, were lost), newest last, each with its
   * place in the count of all such (`lostTotal`): the next requests name them in their room field
   * until one of those is answered.
   */
  private readonly lostRn = new Uint32Array(MAX_LOST);
  private readonly lostIdx = new Float64Array(MAX_LOST);
  private lostCount = 0;
  private lostTotal = 0;
  /** `lostTotal` when each outstanding request was written. */
  private readonly reqLost: number[] = [];
  /** Consecutive requests that went unanswered. */
  unanswered = 0;
  /** No keep-alive request before this time (back-off after failures). */
  private retryAt = 0;
  /** Request number of the first request sent once everything was drained (close handshake). */
  private finalRn = -1;
  private helloSends = 0;
  private helloSentAt = 0;

  constructor(config: ClientConfig, port: ClientPort, resolved?: ResolvedOptions) {
    const o = resolved ?? resolveOptions(config.options);
    if ((config.key === undefined) !== (config.crypto === undefined)) throw hfError(ErrorCode.OPTION, 'key and crypto go together: give both or neither');
    if (config.key !== undefined && config.key.length === 0) throw hfError(ErrorCode.OPTION, 'key must not be empty');
    const ackApp = checkAckAfter(config.ackAfter) === 'app';
    super(o, new Endpoint(o, 0, 0), port, LinkState.IDLE);
    this.ep.ackApp = ackApp;
    this.config = config;
    this.id = config.id;
    this.serverHold = o.holdMs;
    this.helloN = config.helloCounter ?? 0;
    this.pathBytes = o.maxBundleBytes;
  }

  get outstanding(): number {
    return this.reqRn.length;
  }

  /** Whether request `rn` is still awaited (a driver cancels the HTTP requests that are not). */
  isOutstanding(rn: number): boolean {
    return this.reqRn.indexOf(rn) >= 0;
  }

  /** Starts the session: IDLE -> HELLO. */
  start(now: number): void {
    if (this.state !== LinkState.IDLE) return;
    this.state = LinkState.HELLO;
    this.ep.lastHeard = now;
    this.run(now);
  }

  /** The whole session as CBOR bytes (see snapshot.ts). */
  snapshot(now: number): Uint8Array {
    const link: ClientData = {
      ...this.linkData(),
      id: this.id,
      sid: this.sid,
      rn: this.rn,
      helloN: this.helloN,
      serverHold: this.serverHold,
      serverHeld: this.serverHeld,
      skey: this.ep.sealer?.key ?? null,
    };
    return encodeSnapshot<ClientData>({ v: SNAPSHOT_VERSION, role: 'client', at: now, o: this.o, link, ep: this.ep.toData(now) });
  }

  /**
   * Rebuilds a client from `snapshot()` bytes. Outstanding requests are not restored (they belonged to
   * the old transport); request numbers jump ahead so none collides with an answer the server still
   * remembers. Call `resumeSession(now)` (or `start(now)` if it had no session yet) to go on.
   */
  static restore(bytes: Uint8Array, now: number, config: ClientConfig, port: ClientPort): ClientLink {
    const s = decodeSnapshot<ClientData>(bytes, 'client');
    const c = new ClientLink({ ...config, id: s.link.id, helloCounter: s.link.helloN }, port, s.o);
    c.ep.fromData(s.ep, now);
    // The mode given now wins over the snapshot's (messages it held unconfirmed are delivered again).
    if (config.ackAfter !== undefined) c.ep.ackApp = config.ackAfter === 'app';
    c.restoreLinkData(s.link);
    c.sid = s.link.sid === null ? null : new Uint8Array(s.link.sid);
    // The transport belonged to the old process: the driver sets one, and the first setTransport
    // must take effect (announce the session, resend what is unacknowledged) whichever it is.
    c.transport = Transport.HELD;
    c.rn = (s.link.rn + RN_JUMP) >>> 0;
    c.serverHold = s.link.serverHold;
    c.serverHeld = s.link.serverHeld;
    if (s.link.skey != null) {
      if (config.crypto === undefined) throw hfError(ErrorCode.STATE, 'snapshot of an authenticated session, but no crypto given');
      c.ep.sealer = new Sealer(config.crypto, new Uint8Array(s.link.skey));
    }
    if (c.sid === null && !c.isFinished) c.state = LinkState.IDLE;
    c.ep.restartSending();
    return c;
  }

  /**
   * Makes the session durable: from now on sends, releases and deliveries go to `journal`, which
   * starts with a checkpoint of the current state. The device then acknowledges only what its
   * application consumed.
   */
  attachJournal(journal: Journal, now: number): void {
    this.journal = journal;
    this.ep.journal = journal;
    this.ep.ackConsumed = true;
    journal.checkpoint(this.snapshot(now));
  }

  private journal: Journal | null = null;

  protected override maybeCheckpoint(now: number): void {
    this.checkpointIf(now, false);
  }

  override close(now: number): void {
    const was = this.localEnd;
    super.close(now);
    this.checkpointIf(now, was < 0 && this.localEnd >= 0);
  }

  /** Checkpoints when the session changed in a way records do not capture, or the journal is long. */
  private checkpointIf(now: number, changed: boolean): void {
    if (this.journal !== null && (changed || this.journal.wantsCheckpoint)) this.journal.checkpoint(this.snapshot(now));
  }

  /**
   * Rebuilds the device's client from its journal after a restart (power cut, crash, kill -9): the
   * last checkpoint plus every record after it. Returns null if storage holds no journal. The journal
   * stays attached. Call `resumeSession(now)` if the result has a session id, else `start(now)`.
   */
  static fromJournal(storage: Storage, now: number, config: ClientConfig, port: ClientPort, opts: JournalOptions = {}): ClientLink | null {
    const j = Journal.load(storage, opts.key);
    if (j === null) return null;
    const c = ClientLink.restore(j.checkpoint, now, config, port);
    const ep = c.ep;
    for (const [type, body] of j.records) {
      if (type === Rec.MESSAGE) {
        if (!ep.out.push(body)) throw hfError(ErrorCode.STATE, `journal holds more messages than the out-ring fits`);
      } else if (type === Rec.RELEASED) {
        const tail = getU32(body, 0);
        if (ep.out.holds(tail) || tail === ep.out.head) ep.out.release(tail);
      } else if (type === Rec.DELIVERED) {
        ep.inr.reset(getU32(body, 0), getU32(body, 4));
      }
    }
    ep.restartSending();
    // A new process never reuses a hello counter: the next hello goes above the recorded one.
    if (c.sid === null) c.helloN = Math.max(c.helloN + 1, config.helloCounter ?? 0) >>> 0;
    c.attachJournal(new Journal(storage, c.o.maxMessage, opts), now);
    return c;
  }

  /**
   * Whether the gateway lost this session for good: it failed by the silence rule (nothing genuine
   * heard for `deadAfterMs`, `failAfter` requests unanswered or refused) with HF_ERR_UNKNOWN_SESSION
   * as the last untagged answer (a restarted gateway), or, unauthenticated, on that error. Resuming it
   * again would only be refused: a driver starts a new session instead (`successor`).
   */
  get sessionLost(): boolean {
    return this.state === LinkState.FAILED && this.sid !== null && this.failure?.code === ErrorCode.UNKNOWN_SESSION;
  }

  /**
   * A new client (IDLE, no session, hello counter above this one's) that carries this finished
   * session's unacknowledged messages, in order, into a new session, for a session the gateway lost
   * (`sessionLost`). The gateway may have taken some of them before it lost the session (their
   * acknowledgement never came back): across the new session they are delivered at least once, not
   * exactly once (PROTOCOL 11.7). Attach a journal to the result before starting it so the messages
   * stay durable; `carried` says how many there are. This client stops writing to its journal (the
   * successor's replaces it).
   */
  successor(now: number, config: ClientConfig, port: ClientPort): ClientLink {
    if (!this.isFinished) throw hfError(ErrorCode.STATE, 'successor of a session that has not ended');
    this.journal = null;
    this.ep.journal = null;
    const c = new ClientLink({ ...config, id: this.id, helloCounter: Math.max(config.helloCounter ?? 0, (this.helloN + 1) >>> 0) }, port, this.o);
    const out = this.ep.out;
    for (let q = out.tail; q !== out.head; q = (q + 1) >>> 0) {
      const payload = new Uint8Array(out.lenOf(q));
      out.copyOut(q, payload);
      if (!c.send(now, payload)) throw hfError(ErrorCode.STATE, `successor cannot hold message ${q}: its out-ring is full`);
      c.carried++;
    }
    return c;
  }

  /** Messages a successor took over from the lost session before it (see `successor`). */
  carried = 0;

  /** Hello counter of the latest hello (a driver persists it so the next process starts above it). */
  get helloCounter(): number {
    return this.helloN;
  }

  /**
   * Each hello attempt is a new hello (next counter, fresh nonce): if an earlier one reached the
   * gateway and only its welcome was lost, the newer one replaces that session there, and a late
   * welcome of an abandoned attempt is ignored (its request is no longer outstanding).
   */
  private nextHello(): Uint8Array {
    if (this.helloSends > 0) this.helloN = (this.helloN + 1) >>> 0;
    this.config.random(this.nonce);
    const { key, crypto } = this.config;
    const proof = key !== undefined && crypto !== undefined ? helloProof(crypto, key, this.id, this.helloN, this.nonce) : new Uint8Array(0);
    return encodeControl({
      kind: Ctl.HELLO,
      id: this.id,
      n: this.helloN,
      nonce: this.nonce,
      proof,
      seq: this.ep.out.tail,
      off: this.ep.out.tailOff,
      lim: limitsOf(this.o),
      ring: [this.o.outSlots, this.o.outBytes],
      ...(this.carried > 0 ? { again: this.carried } : {}),
      ...(this.config.labels === undefined ? {} : { lab: this.config.labels }),
    });
  }

  /** Resumes a restored session (state OPEN or CLOSING) on the current transport. */
  resumeSession(now: number): void {
    this.ep.lastHeard = now;
    this.resuming = true;
    // The first bundle goes at once: the gateway learns where the session lives now.
    this.ep.ackOwed = true;
    this.ep.ackOwedSince = -Infinity;
    this.run(now);
  }

  /** A resumed session has not yet heard from the gateway (onOpen fires when it does). */
  private resuming = false;

  /**
   * The session just moved onto a new direct connection and has sent nothing on it yet: the first
   * frame there carries no messages (an empty bundle of the session, perhaps with a close item), so
   * it fits the gateway's limit for connections that have not proved a key (PROTOCOL 11.4); what is
   * due follows in the next frame at once.
   */
  private freshDirect = false;

  /** The driver moved the session to another transport: unacknowledged messages go out again there. */
  setTransport(now: number, t: TransportValue): void {
    if (t === this.transport) return;
    this.transport = t;
    this.transportRn = this.rn;
    this.freshDirect = t === Transport.DIRECT;
    this.reqRn.length = 0;
    this.reqDeadline.length = 0;
    this.reqSentAt.length = 0;
    this.reqLost.length = 0;
    this.lostCount = 0;
    this.cuts = 0;
    this.holdOff = 0;
    this.pathBytes = this.o.maxBundleBytes;
    this.ep.resendAll();
    this.retryAt = 0;
    // The first bundle on the new transport tells the server at once where the session now lives.
    this.ep.ackOwed = true;
    this.ep.ackOwedSince = -Infinity;
    this.run(now);
  }

  /**
   * Request `rn` will not be answered. `cut`: its connection died before the answer (reset or cut
   * after it was made): it is lost, and goes again at once (see the file comment). Otherwise (an answer that
   * is not the gateway's: an HTTP error page, a body that is not a bundle; or no connection at all:
   * refused, unreachable) the next request waits a backed-off RTO.
   */
  onRequestFailed(now: number, rn: number, cut = false): void {
    const i = this.reqRn.indexOf(rn);
    if (this.isFinished || i < 0) return;
    if (!cut) return this.requestLost(now, rn);
    const sentAt = this.reqSentAt[i];
    this.forget(i);
    this.noteLost(rn);
    this.unanswered++;
    this.cuts++;
    this.pathBytes = Math.max(this.o.minBundleBytes, this.pathBytes >>> 1);
    if (this.state !== LinkState.HELLO) {
      this.ep.resendSentAt(sentAt);
      // The gateway never saw this one, so it may still hold the newest of the others.
      const rto = this.ep.rtt.rto;
      for (let j = Math.max(0, this.reqRn.length - this.serverHeld); j < this.reqRn.length; j++) {
        this.reqDeadline[j] = Math.max(this.reqDeadline[j], this.reqSentAt[j] + this.serverHold + rto);
      }
    }
    this.retryAt = now;
    // At once while the path still answers now and then (a gateway heard within retryBackoffMaxMs,
    // at most 64 in a row); else after retryAtOnce in a row, a back-off.
    const answering = now - this.ep.lastHeard < this.o.retryBackoffMaxMs && this.cuts <= 64;
    this.holdOff = this.cuts <= this.o.retryAtOnce || answering ? 0 : now + this.backoffMs();
    this.checkDead(now);
    this.run(now);
  }

  /**
   * The driver moved to another gateway (a pair's other node): the back-off earned by the old one
   * (refused or cut requests, doubled timeouts) says nothing about the new one, so the next request
   * goes at once.
   */
  newGateway(now: number): void {
    if (this.isFinished) return;
    this.cuts = 0;
    this.holdOff = 0;
    this.retryAt = now;
    this.ep.rtt.unback();
    this.run(now);
  }

  /** Back-off before the next request after `retryAtOnce` cuts in a row: doubling, the upper half random. */
  private backoffMs(): number {
    const n = Math.min(this.cuts - this.o.retryAtOnce - 1, 20);
    const ms = Math.min(this.o.retryBackoffMaxMs, this.o.retryBackoffMs * 2 ** n);
    this.config.random(this.jitter);
    return ms / 2 + (ms / 2) * (((this.jitter[0] << 8) | this.jitter[1]) / 65536);
  }

  private forget(i: number): void {
    this.reqRn.splice(i, 1);
    this.reqDeadline.splice(i, 1);
    this.reqSentAt.splice(i, 1);
    this.reqLost.splice(i, 1);
  }

  /** Remembers that request `rn`'s answer, if the gateway wrote one, was lost (the oldest goes when full). */
  private noteLost(rn: number): void {
    if (this.lostCount === MAX_LOST) {
      this.lostRn.copyWithin(0, 1);
      this.lostIdx.copyWithin(0, 1);
      this.lostCount--;
    }
    this.lostRn[this.lostCount] = rn;
    this.lostIdx[this.lostCount] = this.lostTotal++;
    this.lostCount++;
  }

  /** Request `i` was answered: the gateway has read the lost requests it named. */
  private lostTold(i: number): void {
    const told = this.reqLost[i];
    let k = 0;
    while (k < this.lostCount && this.lostIdx[k] < told) k++;
    if (k === 0) return;
    this.lostRn.copyWithin(0, k);
    this.lostIdx.copyWithin(0, k);
    this.lostCount -= k;
  }

  /** Request `rn` gets no usable answer: it counts as unanswered, and the next waits a backed-off RTO. */
  private requestLost(now: number, rn: number): void {
    const i = this.reqRn.indexOf(rn);
    if (i >= 0) this.forget(i);
    this.unanswered++;
    this.ep.rtt.backoff();
    this.retryAt = now + this.ep.rtt.rto;
    this.checkDead(now);
    this.run(now);
  }

  /** A bundle arrived (HTTP response body or direct frame): `buf[start, end)`. */
  onBundle(now: number, buf: Uint8Array, start = 0, end = buf.length): void {
    if (this.isFinished || this.state === LinkState.IDLE) return;
    const ep = this.ep;
    let v: BundleView;
    let ctls: Control[];
    try {
      v = ep.read(buf, start, end);
      ctls = this.readControls(v);
      if (this.state === LinkState.HELLO) {
        if (!this.acceptWelcome(v, ctls, now)) return;
      } else if (!v.hasSid || this.sid === null || !equalBytes(v.buf, v.sidOff, this.sid, 0, this.sid.length)) {
        // An error without our session id answers a request of ours (e.g. the session is gone).
        if (!v.hasSid && ctls.length > 0 && this.answersCurrent(v.rn)) {
          if (this.ep.sealer === null) this.applyControls(ctls, now);
          else this.onUntaggedError(now, v.rn, ctls);
        } else this.port.onReject?.(hfError(ErrorCode.PROTOCOL, 'bundle for another session'));
        return;
      }
      if (this.state !== LinkState.HELLO) ep.authenticate(v);
      ep.check(v);
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.port.onReject?.(e);
      return;
    }
    try {
      this.applyBundle(v, now);
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.fail(e);
      return;
    }
    this.applyControls(ctls, now);
    if (this.isFinished) return;
    const i = this.reqRn.indexOf(v.rn);
    if (i >= 0) {
      this.lostTold(i);
      this.forget(i);
    }
    this.unanswered = 0;
    this.cuts = 0;
    this.holdOff = 0;
    this.pathBytes = Math.min(this.o.maxBundleBytes, this.pathBytes * 2);
    this.untaggedError = null;
    this.retryAt = 0;
    if (this.resuming) {
      // The gateway still has the session: it is open again, in this process.
      this.resuming = false;
      this.port.onOpen?.();
      if (this.isFinished) return;
    }
    if (this.finalRn >= 0 && (!behind(v.rn, this.finalRn) || this.transport === Transport.DIRECT)) {
      this.deliver(now);
      this.finish();
      return;
    }
    this.run(now);
  }

  /**
   * Whether a refusal (an error bundle, which has no session id) answers something this client sent
   * on its current transport: an outstanding request, or a frame sent since the last transport change.
   * Late answers to abandoned requests are ignored.
   */
  private answersCurrent(rn: number): boolean {
    if (this.reqRn.indexOf(rn) >= 0) return true;
    const d = (rn - this.transportRn) >>> 0;
    return this.transport === Transport.DIRECT && d >= 1 && d <= (this.rn - this.transportRn) >>> 0;
  }

  /**
   * An untagged error answered a request of a session that has a key (PROTOCOL 13.2): anyone on the
   * path could have written it, so it does not end the session. It is refused (onReject), counted, and
   * treated like a failed request (back-off, then the next request); if the gateway really lost the
   * session, the silence rule ends it (`failAfter` answers missing, nothing genuine heard for
   * `deadAfterMs`) with this code. One exception, as before: HF_ERR_UNKNOWN_SESSION after our own close
   * with everything acknowledged is the end of the session.
   */
  private onUntaggedError(now: number, rn: number, ctls: readonly Control[]): void {
    let c: ErrorItem | null = null;
    for (const x of ctls) if (x.kind === Ctl.ERROR) c = x;
    if (c === null) {
      this.port.onReject?.(hfError(ErrorCode.AUTH, 'untagged bundle without error item for an authenticated session'));
      return;
    }
    if (c.code === ErrorCode.UNKNOWN_SESSION && this.localEnd >= 0 && this.ep.out.isEmpty) {
      this.finish();
      return;
    }
    this.untaggedErrors++;
    const known = (Object.values(ErrorCode) as string[]).includes(c.code);
    const code = known ? (c.code as ErrorCodeValue) : ErrorCode.PROTOCOL;
    this.untaggedError = hfError(code, `untagged error from the gateway (not ending the session by itself): ${known ? '' : `${JSON.stringify(c.code)}: `}${c.message}`);
    this.port.onReject?.(this.untaggedError);
    this.requestLost(now, rn);
  }

  /** Untagged error bundles refused since the session got its key (each counted as a failed request). */
  untaggedErrors = 0;
  /** The latest untagged error since the gateway was last heard: the failure if the silence rule fires. */
  private untaggedError: HfError | null = null;

  /** Request number in use when the transport last changed. */
  private transportRn = 0;

  /** HELLO state: takes the welcome (or an error) from a response. Returns false to stop processing. */
  private acceptWelcome(v: BundleView, ctls: readonly Control[], now: number): boolean {
    let welcome: Welcome | null = null;
    for (const c of ctls) if (c.kind === Ctl.WELCOME) welcome = c;
    if (this.reqRn.indexOf(v.rn) < 0) return false; // the answer to an abandoned hello
    if (welcome === null || !v.hasSid) {
      if (ctls.length > 0) this.applyControls(ctls, now);
      return false;
    }
    const sid = v.buf.slice(v.sidOff, v.sidOff + SID_BYTES);
    const { key, crypto } = this.config;
    if (key !== undefined && crypto !== undefined) {
      // The welcome's tag proves the gateway knows the device key; a forged welcome is refused and
      // the hello stays outstanding.
      const sealer = new Sealer(crypto, sessionKey(crypto, key, sid, this.nonce));
      if (v.tagOff < 0 || !sealer.verify(v.buf, v.start, v.tagOff)) throw hfError(ErrorCode.AUTH, 'welcome does not carry the session tag: the gateway does not know this device key');
      this.ep.sealer = sealer;
    }
    this.sid = sid;
    // The hello's round trip is the first sample, if the hello went out once (Karn).
    if (this.helloSends === 1) this.ep.rtt.sample(now - this.helloSentAt);
    this.ep.setPeerStart(welcome.seq, welcome.off, v.winMsgs, v.winBytes);
    this.ep.setPeerLimits(welcome.lim);
    this.ep.peerRing = welcome.ring ?? null;
    this.serverHold = welcome.hold;
    this.serverHeld = Math.max(1, welcome.held);
    this.state = this.localEnd >= 0 ? LinkState.CLOSING : LinkState.OPEN;
    this.checkpointIf(now, true);
    if (welcome.gw !== undefined) this.port.onGateways?.(welcome.gw);
    this.port.onOpen?.();
    return !this.isFinished;
  }

  protected override onPeerError(c: ErrorItem): void {
    // The session is gone after we closed and everything we sent was acknowledged: that is a close.
    if (c.code === ErrorCode.UNKNOWN_SESSION && this.localEnd >= 0 && this.ep.out.isEmpty) {
      this.finish();
      return;
    }
    super.onPeerError(c);
  }

  nextDeadline(): number {
    if (this.isFinished || this.state === LinkState.IDLE) return Infinity;
    let t = Infinity;
    for (let i = 0; i < this.reqDeadline.length; i++) if (this.reqDeadline[i] < t) t = this.reqDeadline[i];
    if (this.unanswered >= this.o.failAfter) t = Math.min(t, this.ep.lastHeard + this.o.deadAfterMs);
    if (this.state === LinkState.HELLO) {
      if (this.reqRn.length === 0) t = Math.min(t, Math.max(this.retryAt, this.holdOff));
      return t;
    }
    t = Math.min(t, this.ep.retxDeadline());
    if (this.transport === Transport.DIRECT) {
      t = Math.min(t, this.baseDeadline(), this.ep.lastSent + this.o.keepaliveMs);
    } else if (this.reqRn.length === 0) {
      t = Math.min(t, Math.max(this.retryAt, this.holdOff));
    } else if (this.reqRn.length < this.o.maxOutstanding) {
      // A resumed session's second request, and a drained session's final one, are due at once.
      const due = this.resuming || (this.drained && this.finalRn < 0) ? this.retryAt : this.baseDeadline();
      t = Math.min(t, Math.max(due, this.holdOff, this.retryAt));
    }
    return t;
  }

  onTimer(now: number): void {
    if (this.isFinished || this.state === LinkState.IDLE) return;
    let expired = false;
    for (let i = 0; i < this.reqDeadline.length; ) {
      if (this.reqDeadline[i] <= now) {
        this.forget(i);
        this.unanswered++;
        expired = true;
      } else i++;
    }
    // One back-off per timeout event: the retransmission timer backs off when it fires; a lost hello
    // (no messages in flight yet) backs off here.
    if (this.state === LinkState.HELLO) {
      if (expired) this.ep.rtt.backoff();
    } else if (now >= this.ep.retxDeadline()) this.ep.onRetxTimer(now);
    this.checkDead(now);
    this.run(now);
  }

  private checkDead(now: number): void {
    if (this.unanswered >= this.o.failAfter && now >= this.ep.lastHeard + this.o.deadAfterMs) {
      // Closed, everything acknowledged, and the server went quiet: nothing was lost.
      if (this.localEnd >= 0 && this.ep.out.isEmpty && this.peerEnd >= 0) this.finish();
      else {
        const silent = `${this.unanswered} requests unanswered, server silent for ${Math.round(now - this.ep.lastHeard)} ms`;
        const u = this.untaggedError;
        this.fail(u === null ? hfError(ErrorCode.TIMEOUT, silent) : hfError(u.code as ErrorCodeValue, `${silent}; last answer an untagged error: ${u.message}`));
      }
    }
  }

  protected pump(now: number): void {
    if (this.isFinished || this.state === LinkState.IDLE) return;
    if (this.transport === Transport.DIRECT) {
      if (this.state === LinkState.HELLO) {
        if (this.reqRn.length === 0 && now >= this.retryAt) this.request(now, true);
        return;
      }
      if (this.drained && this.finalRn < 0) {
        this.request(now, false);
        this.finalRn = this.rn;
        return;
      }
      if (this.directWants(now)) {
        const fresh = this.freshDirect;
        this.request(now, false);
        if (fresh && this.ep.hasSendable) this.request(now, false);
      }
      return;
    }
    if (this.state === LinkState.HELLO) {
      if (this.reqRn.length === 0 && now >= this.retryAt && now >= this.holdOff) this.request(now, true);
      return;
    }
    // After a failed request (requestLost) no request goes before `retryAt`, whatever else is
    // outstanding: the back-off holds for the resumed session's second request and for news too, so
    // answers that are all refusals (untagged errors) cannot drive requests faster than the back-off.
    while (this.reqRn.length < this.o.maxOutstanding && now >= this.holdOff && now >= this.retryAt) {
      let want: boolean;
      if (this.reqRn.length === 0) want = true;
      else if (this.drained && this.finalRn < 0) want = true;
      // A resumed session asks for an answer at once: the second request makes the gateway answer the
      // first (with its window, which the journal does not keep), instead of holding it.
      else if (this.resuming) want = true;
      else want = this.newsDue(now);
      if (!want) break;
      const final = this.drained && this.finalRn < 0;
      this.request(now, false);
      if (final) this.finalRn = this.rn;
    }
  }

  protected farewell(now: number): void {
    if (this.sid === null) return; // the gateway has no session to end
    this.rn = (this.rn + 1) >>> 0;
    const len = this.ep.writeBundle(this.sid, this.rn, now, [this.failureItem()], false);
    this.port.transmit(this.ep.writer.buf, len, this.rn);
  }

  /** Writes and transmits one request (or frame). */
  private request(now: number, hello: boolean): void {
    const ep = this.ep;
    this.rn = (this.rn + 1) >>> 0;
    let len: number;
    if (hello) {
      const item = this.nextHello();
      this.helloSends++;
      this.helloSentAt = now;
      this.checkpointIf(now, true); // the hello counter must survive a restart
      len = ep.writeBundle(null, this.rn, now, [item], false);
    } else {
      const close = this.closeItem();
      if (close !== null) this.closeSent = true;
      const messages = !(this.freshDirect && this.transport === Transport.DIRECT);
      const held = this.transport === Transport.HELD;
      ep.caps.sizeCap = held ? this.pathBytes : Infinity;
      // The answer is asked to fit the same budget, and lost answers are named (PROTOCOL 5.1).
      if (held && (this.pathBytes < this.o.maxBundleBytes || this.lostCount > 0)) {
        ep.askRoom = this.pathBytes;
        ep.askLost = this.lostRn;
        ep.askLostCount = this.lostCount;
      }
      len = ep.writeBundle(this.sid, this.rn, now, close === null ? null : [close], messages);
      ep.askRoom = 0;
    }
    if (this.transport === Transport.DIRECT) this.freshDirect = false;
    this.afterWrite(now);
    if (this.transport === Transport.HELD || hello) {
      // The server answers older held requests as soon as this one arrives; the newest may be held.
      const quick = now + ep.rtt.rto;
      const keep = this.reqRn.length - (this.serverHeld - 1);
      for (let i = 0; i < keep; i++) if (this.reqDeadline[i] > quick) this.reqDeadline[i] = quick;
      this.reqRn.push(this.rn);
      this.reqDeadline.push(hello ? quick : now + this.serverHold + ep.rtt.rto);
      this.reqSentAt.push(now);
      this.reqLost.push(this.lostTotal);
    }
    this.port.transmit(ep.writer.buf, len, this.rn);
  }
}
