/**
 * What the two role state machines share: the endpoint, the port they emit actions to, the session's
 * lifecycle (open, half-closes, closed, failed), delivery, and the direct-transport pump (on a direct
 * TCP connection there is no request to hold: either side sends a bundle whenever it has news).
 *
 * Events come in as method calls with the current time; actions go out through the port. No I/O and
 * no timers inside: the driver asks `nextDeadline()` and calls `onTimer(now)` when it passes.
 */
import { type Close, type Control, Ctl, type ErrorItem, type GatewayAddress, decodeControl, encodeControl } from './control';
import type { Endpoint } from './endpoint';
import { ErrorCode, type ErrorCodeValue, type HfError, hfError } from './errors';
import { type AckAfter, checkAckAfter, type ResolvedOptions } from './options';
import type { BundleView } from './wire';
import type { LinkData } from './snapshot';

/** Named lifecycle states. */
export const LinkState = {
  /** Client only: not started. */
  IDLE: 0,
  /** Client only: hello sent, no welcome yet. */
  HELLO: 1,
  OPEN: 2,
  /** This side or the peer has closed its direction; not everything is acknowledged yet. */
  CLOSING: 3,
  CLOSED: 4,
  FAILED: 5,
} as const;
export type LinkStateValue = (typeof LinkState)[keyof typeof LinkState];
export const STATE_NAMES = ['idle', 'hello', 'open', 'closing', 'closed', 'failed'];

/** Which kind of transport carries the session now. */
export const Transport = {
  /** HTTP: request/response, the server holds requests. */
  HELD: 0,
  /** Direct TCP: either side sends a framed bundle whenever it likes. */
  DIRECT: 1,
} as const;
export type TransportValue = (typeof Transport)[keyof typeof Transport];

/** Actions a link emits. The driver implements them with real or simulated I/O. */
export interface LinkPort {
  /**
   * Deliver one in-order message; `buf[off, off+len)` is valid only during the call; `seq` is its
   * sequence number (for `confirm` with ackAfter 'app'). False pauses.
   */
  deliver(buf: Uint8Array, off: number, len: number, seq: number): boolean;
  /** The link opened (client: welcome received; or, for a resumed session, the gateway's first answer). */
  onOpen?(): void;
  /** Client: the welcome named the gateways this session may use (a pair's nodes), before onOpen. */
  onGateways?(gateways: readonly GatewayAddress[]): void;
  /** A bundle said the session is served by this gateway now (a cluster handed it there; device only). */
  onMoved?(gateway: GatewayAddress): void;
  onDrain?(): void;
  /** The peer closed its direction: every message it sent has been delivered. */
  onEnd?(): void;
  /** The session ended: cleanly (`error` undefined) or failed. */
  onClose?(error?: HfError): void;
  /** A bundle was refused (bad input); the session goes on. */
  onReject?(error: HfError): void;
}

export abstract class LinkBase {
  readonly o: ResolvedOptions;
  readonly ep: Endpoint;
  protected port: LinkPort;
  state: LinkStateValue;
  transport: TransportValue = Transport.HELD;
  /** This side's CLOSE: sequence number after its last message, or -1 while open. */
  localEnd = -1;
  /** The peer's CLOSE end, or -1. */
  peerEnd = -1;
  protected endSignalled = false;
  /** Set when `send` returned false, so a drain event is owed. */
  protected blocked = false;
  /** Length of the largest message `send` refused since the last drain. */
  private blockedLen = 0;
  /** Time sendable messages started waiting for a bundle (coalescing); -1 none. */
  protected waitingSince = -1;
  /** Re-entrancy guard: sends from inside deliver are pumped by the outer event. */
  protected busy = false;
  failure: HfError | undefined;

  constructor(o: ResolvedOptions, ep: Endpoint, port: LinkPort, state: LinkStateValue) {
    this.o = o;
    this.ep = ep;
    this.port = port;
    this.state = state;
  }

  /** Replaces the port (after a restore, or to attach an application). */
  setPort(port: LinkPort): void {
    this.port = port;
  }

  get isFinished(): boolean {
    return this.state === LinkState.CLOSED || this.state === LinkState.FAILED;
  }

  // ---- application events ----------------------------------------------------------------------

  /**
   * Queues a message. Returns false when the out-ring is full (wait for onDrain); throws HF_ERR_CLOSED
   * after close() or once the session ended, HF_ERR_TOO_BIG for a message over `maxMessage`.
   */
  send(now: number, src: Uint8Array, off = 0, len = src.length - off): boolean {
    if (this.localEnd >= 0 || this.isFinished) throw hfError(ErrorCode.CLOSED, `send on a ${STATE_NAMES[this.state]} link${this.localEnd >= 0 ? ' after close()' : ''}`);
    if (!this.ep.send(src, off, len)) {
      this.blocked = true;
      if (len > this.blockedLen) this.blockedLen = len;
      return false;
    }
    if (this.waitingSince < 0) this.waitingSince = now;
    if (!this.corked) this.run(now);
    return true;
  }

  /**
   * While corked, events only queue and deliver: what to send waits for `uncork`, so messages sent in
   * one burst, or an application's reply to a message it just received, leave in one bundle (over
   * HTTP: on the request being answered anyway) instead of one bundle each. A driver corks for one turn
   * of its event loop and always uncorks.
   */
  cork(): void {
    this.corked = true;
  }

  uncork(now: number): void {
    if (!this.corked) return;
    this.corked = false;
    this.run(now);
  }

  private corked = false;

  /** Closes this direction: no more sends; the peer gets everything already queued, then CLOSE. */
  close(now: number): void {
    if (this.isFinished || this.localEnd >= 0) return;
    this.localEnd = this.ep.out.head;
    if (this.state === LinkState.OPEN) this.state = LinkState.CLOSING;
    this.run(now);
  }

  /** When this side acknowledges the peer's messages: 'app' once the application confirmed them. */
  get ackAfter(): AckAfter {
    return this.ep.ackApp ? 'app' : 'received';
  }

  /**
   * Sets when this side acknowledges the peer's messages (PROTOCOL 6). Only before the first message
   * arrived (HF_ERR_STATE after): a driver sets it as it builds the link or opens the session.
   */
  setAckAfter(mode: AckAfter): void {
    const app = checkAckAfter(mode) === 'app';
    if (app === this.ep.ackApp) return;
    const inr = this.ep.inr;
    if (!inr.isEmpty || this.ep.stats.messagesIn > 0) throw hfError(ErrorCode.STATE, `ackAfter can change only before the first message; ${this.ep.stats.messagesIn} arrived`);
    this.ep.ackApp = app;
  }

  /**
   * ackAfter 'app': the application confirms message `seq` (the `seq` its deliver call had) and every
   * one delivered before it; they are acknowledged to the peer from now on. Throws HF_ERR_CONFIRM for
   * a message not delivered yet or already confirmed; does nothing once the session ended.
   */
  confirm(now: number, seq: number): void {
    if (this.isFinished) return;
    this.ep.confirm(seq, now);
    this.run(now);
  }

  /** Moves the delivery gate (Endpoint.gate) to `seq` and delivers what it lets through. */
  openGate(now: number, seq: number): void {
    if (this.isFinished) return;
    this.ep.gate(seq);
    this.run(now);
  }

  /** Resumes delivery after the port's deliver returned false. */
  resume(now: number): void {
    if (!this.ep.paused) return;
    this.ep.paused = false;
    this.run(now);
  }

  /**
   * Ends the session at once with an error (both sides' buffers are dropped) and tells the peer, best
   * effort, with an error item on one last bundle (the peer's session then fails with the same code
   * instead of waiting for its silence limit).
   */
  abort(now: number, code: ErrorCodeValue = ErrorCode.CLOSED, message = 'aborted'): void {
    if (this.isFinished) return;
    const err = hfError(code, message);
    this.failure = err; // what the farewell tells; the port hears of the failure after it went out
    this.farewell(now);
    this.fail(err);
  }

  /** Sends the peer the failure (an error item) on whatever the transport offers now. */
  protected abstract farewell(now: number): void;

  /** The error item telling the peer why this side failed. */
  protected failureItem(): Uint8Array {
    const f = this.failure as HfError;
    return encodeControl({ kind: Ctl.ERROR, code: f.code, message: f.message });
  }

  // ---- shared machinery ------------------------------------------------------------------------

  /** Runs `pump` once, unless already inside an event (then the outer one pumps). */
  protected run(now: number): void {
    if (this.busy) return;
    this.busy = true;
    try {
      this.deliver(now);
      if (this.corked) return; // uncork pumps
      this.pump(now);
      this.afterPump(now);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Applies a checked bundle, delivering in-order messages straight to the application. Sends the
   * application makes from inside its deliver callback only queue; the caller pumps afterwards.
   */
  protected applyBundle(v: BundleView, now: number): void {
    const was = this.busy;
    this.busy = true;
    try {
      this.ep.apply(v, now, this.isFinished ? null : this.port.deliver);
    } finally {
      this.busy = was;
    }
  }

  protected abstract pump(now: number): void;

  /** Hook after every pump (drain and close bookkeeping). */
  protected afterPump(now: number): void {
    this.maybeCheckpoint(now);
    // 'drain' once the largest message refused since the last drain fits again (room for a slot
    // alone is not enough: the message may still not fit in the bytes left).
    if (this.blocked && !this.isFinished && this.ep.out.fits(this.blockedLen)) {
      this.blocked = false;
      this.blockedLen = 0;
      this.port.onDrain?.();
    }
  }

  /** Durable links checkpoint here when their journal asks (device only). */
  protected maybeCheckpoint(_now: number): void {}

  protected deliver(now: number): void {
    if (this.isFinished) return;
    this.ep.deliver(this.port.deliver, now);
    if (!this.endSignalled && this.peerEnd >= 0 && this.ep.inr.read === this.peerEnd) {
      this.endSignalled = true;
      this.port.onEnd?.();
    }
  }

  /**
   * Decodes every control item of a bundle. Called before anything is applied: a malformed item
   * throws (HF_ERR_CBOR / HF_ERR_BUNDLE) while the session is still untouched.
   */
  protected readControls(v: BundleView): Control[] {
    const out: Control[] = [];
    for (let k = 0; k < v.ctlCount; k++) {
      const c = decodeControl(v.buf, v.ctlStarts[k], v.ctlEnds[k]);
      if (c !== null) out.push(c);
    }
    return out;
  }

  /** Applies close and error items (hello and welcome are the roles' business). */
  protected applyControls(ctls: readonly Control[], now: number): void {
    for (const c of ctls) {
      if (c.kind === Ctl.CLOSE) {
        if (this.peerEnd < 0) {
          this.peerEnd = c.end;
          if (this.state === LinkState.OPEN) this.state = LinkState.CLOSING;
          this.ep.ackOwed = true;
          if (this.ep.ackOwedSince < 0) this.ep.ackOwedSince = now;
        }
      } else if (c.kind === Ctl.ERROR) {
        this.onPeerError(c);
      } else if (c.kind === Ctl.MOVED) {
        this.port.onMoved?.([c.url, c.tcp]);
      }
    }
  }

  protected onPeerError(c: ErrorItem): void {
    const known = (Object.values(ErrorCode) as string[]).includes(c.code);
    // Peers of earlier versions wrote the code into the message as well ("HF_ERR_X: text"): it is a field.
    const text = c.message.startsWith(`${c.code}: `) ? c.message.slice(c.code.length + 2) : c.message;
    // A code this version does not know becomes HF_ERR_PROTOCOL; the message keeps the peer's.
    if (known) this.fail(hfError(c.code as ErrorCodeValue, `peer: ${text}`));
    else this.fail(hfError(ErrorCode.PROTOCOL, `peer: ${JSON.stringify(c.code)}: ${text}`));
  }

  /** True once both directions are closed and everything is acknowledged and consumed. */
  protected get drained(): boolean {
    const ep = this.ep;
    return this.localEnd >= 0 && this.peerEnd >= 0 && ep.out.isEmpty && ep.inr.next === this.peerEnd && ep.inr.held === this.peerEnd;
  }

  /** The CLOSE item to send while this direction is closed (the peer may have missed earlier ones). */
  protected closeItem(): Uint8Array | null {
    if (this.localEnd < 0 || !this.ep.out.isEmpty) return null;
    return encodeControl({ kind: Ctl.CLOSE, end: this.localEnd } as Close);
  }

  protected finish(): void {
    if (this.isFinished) return;
    this.state = LinkState.CLOSED;
    this.port.onClose?.();
  }

  protected fail(err: HfError): void {
    if (this.isFinished) return;
    this.state = LinkState.FAILED;
    this.failure = err;
    this.port.onClose?.(err);
  }

  /**
   * Whether this side has news worth a bundle now, on any transport: a full bundle of messages is
   * ready, messages waited `coalesceMs`, an acknowledgement is due, or this direction's CLOSE has yet
   * to go. The roles add their own reasons (a held request's age, keep-alives).
   */
  protected newsDue(now: number): boolean {
    const ep = this.ep;
    return ep.fullBundle || (ep.hasSendable && now >= this.waitingSince + this.o.coalesceMs) || ep.ackDue(now) || (this.localEnd >= 0 && ep.out.isEmpty && !this.closeSent);
  }

  /** Direct transport: is a bundle worth sending now? News, or `keepaliveMs` of quiet. */
  protected directWants(now: number): boolean {
    return this.newsDue(now) || now >= this.ep.lastSent + this.o.keepaliveMs;
  }

  /** Whether a CLOSE has gone out since this direction closed. */
  protected closeSent = false;

  /** Earliest of the endpoint's timers that matter on any transport. */
  protected baseDeadline(): number {
    const ep = this.ep;
    let t = ep.retxDeadline();
    if (ep.ackOwed) t = Math.min(t, ep.ackOwedSince + this.o.ackDelayMs);
    if (ep.hasSendable && this.waitingSince >= 0) t = Math.min(t, this.waitingSince + this.o.coalesceMs);
    return t;
  }

  /** Marks the coalescing wait over if nothing is left to send. */
  protected afterWrite(now: number): void {
    this.waitingSince = this.ep.hasSendable ? now : -1;
  }

  /** The lifecycle part of a snapshot. */
  protected linkData(): LinkData {
    return { state: this.state, transport: this.transport, localEnd: this.localEnd, peerEnd: this.peerEnd, endSignalled: this.endSignalled, closeSent: this.closeSent };
  }

  protected restoreLinkData(d: LinkData): void {
    this.state = d.state as LinkStateValue;
    this.transport = d.transport as TransportValue;
    this.localEnd = d.localEnd;
    this.peerEnd = d.peerEnd;
    this.endSignalled = d.endSignalled;
    this.closeSent = d.closeSent;
  }

  abstract nextDeadline(): number;
  abstract onTimer(now: number): void;
}
