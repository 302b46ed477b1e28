/**
 * The application's view of a session: a message channel. The same on the device (`connect`) and on
 * the gateway (`'session'` event). Events never fire from inside the call that caused them.
 *
 *   send(bytes) -> boolean   true: accepted, and delivered exactly once, in order. false: NOT
 *                            accepted (the out-ring is full): send it again after 'drain'
 *   'open'                   the session is established (device: the gateway's welcome arrived)
 *   'message' (data, done, seq, again)
 *                            one message from the peer, in order, exactly once. With ackAfter 'app'
 *                            the peer keeps it (unacknowledged) until the application confirms it:
 *                            `done()`, or `ack(seq)` with the `seq` (its sequence number) of this
 *                            or a later message; with 'received' both are no-ops. With 'standby'
 *                            (a pair's gateway) the channel confirms each message itself once its
 *                            listeners returned: what they sent in reply is recorded with it, and
 *                            a standby that takes over hands on what they had not finished. `again`:
 *                            the message may have reached an application before (redelivered)
 *   ack(seq?)                ackAfter 'app': confirms message `seq` and every one before it (no
 *                            `seq`: every message emitted so far). HF_ERR_CONFIRM for a message
 *                            already confirmed or not emitted yet
 *   'drain'                  room again after send() returned false
 *   'end'                    the peer closed its direction; every message it sent was delivered
 *   'close' (err?)           the session is over: cleanly (no argument) or failed (HfError with code)
 *   pause()/resume()         stop/restart 'message' events (the peer is held back by the window);
 *                            messages already taken from the link in this tick still arrive
 *   end()                    close this direction once everything queued is delivered
 *   destroy(err?)            end the session at once (the peer's session fails with HF_ERR_CLOSED;
 *                            here 'close' carries `err`, or nothing when none was given)
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, type HfError, hfError } from '../../../firmware/errors';
import type { LinkBase, LinkPort } from '../../../firmware/link-base';
import type { AckAfter } from '../../../firmware/options';
import { TypedEmitter } from './typed-emitter';

/**
 * A message this large or larger is bulk: the link stays corked for it until the immediates run
 * (after every socket read of this round of polling), not just to the end of the tick.
 */
export const BULK_BYTES = 4096;

/** `done` of a message on a channel that acknowledges on receipt (ackAfter 'received'). */
const NO_OP = (): void => {};

/** The events of every channel and what their listeners get. */
export type ChannelEvents = {
  open: [];
  /**
   * `done` confirms this message (ackAfter 'app'; a no-op with 'received'); `seq` is its sequence
   * number, for `ack(seq)`; `again` is true when the message may have reached an application before
   * (redelivered: a successor session's carried message, or one left unconfirmed before a restore).
   */
  message: [data: Buffer, done: () => void, seq: number, again: boolean];
  drain: [];
  end: [];
  close: [err?: HfError];
  error: [err: Error];
};

/** The application's view of a session, whichever end it is on (see the top of this file). */
export interface Channel<E extends ChannelEvents = ChannelEvents> extends TypedEmitter<E> {
  /** Device id of the session. */
  readonly deviceId: string;
  send(data: Uint8Array): boolean;
  /** ackAfter 'app': confirms message `seq` and all before it (no `seq`: all emitted so far). */
  ack(seq?: number): void;
  /** When the peer's messages are acknowledged to it: 'received', 'app' (confirmed by `ack`/`done`) or 'standby'. */
  readonly ackAfter: AckAfter;
  /** Messages sent that the peer has not acknowledged yet. */
  readonly unacknowledged: number;
  pause(): void;
  resume(): void;
  end(): void;
  destroy(err?: Error): void;
  readonly closed: boolean;
}

/**
 * What a channel needs from the driver that runs its link. The driver promises never to reuse the
 * bytes of a bundle it hands the link (messages are given to the application as views into them).
 */
export interface ChannelHost {
  /** The driver's clock (ms). */
  now(): number;
  /** Re-arm timers / flush after the link changed state. */
  kick(): void;
}

/**
 * The driver's side of a LinkChannel, behind symbols that index.ts does not export: an application
 * holding a channel cannot reach its link.
 */
export const kAttach: unique symbol = Symbol('holdfast.attach');
export const kPort: unique symbol = Symbol('holdfast.port');
/**
 * The driver's: the channel confirms each message itself once its 'message' listeners returned (a
 * pair's ackAfter 'standby': what the standby records as consumed is what the application handled,
 * not what the link merely queued for it).
 */
export const kConfirmAfterHandler: unique symbol = Symbol('holdfast.confirmAfterHandler');

/**
 * A Channel over a link. The driver gives the link `channel[kPort]()` as (part of) its port; messages,
 * drains, ends and closes are queued and emitted on the next tick.
 */
export class LinkChannel<E extends ChannelEvents = ChannelEvents> extends TypedEmitter<E> implements Channel<E> {
  readonly deviceId: string;
  private link: LinkBase | null = null;
  private readonly host: ChannelHost;
  private paused = false;
  private wantResume = false;
  /** kConfirmAfterHandler: confirms each message after its listeners ran. */
  private selfConfirm = false;
  closed = false;
  /** destroy() without an error: the local 'close' carries none. */
  private quiet = false;

  constructor(deviceId: string, host: ChannelHost) {
    super();
    this.deviceId = deviceId;
    this.host = host;
  }

  /** See kConfirmAfterHandler (the link's ackAfter is 'app' underneath). */
  [kConfirmAfterHandler](): void {
    this.selfConfirm = true;
  }

  /** Binds the link (after it was built with `[kPort]()`), or a replacement after a restore. */
  [kAttach](link: LinkBase): void {
    this.link = link;
  }

  /** The link-facing half: plug these into the link's port. */
  [kPort](): Pick<LinkPort, 'deliver' | 'onOpen' | 'onDrain' | 'onEnd' | 'onClose'> {
    return {
      onOpen: () => this.later('open'),
      deliver: (buf, off, len, seq) => {
        // Bytes in the link's own memory (a message it kept back in its ring) are valid only during
        // the call: the application gets a copy. Bytes straight from the received bundle are the
        // driver's, which never reuses a bundle it handed the link: the application gets a view.
        const inRing = this.link?.ep.ownsBytes(buf) === true;
        const again = this.link?.ep.isAgain(seq) === true;
        this.later('message', inRing ? Buffer.from(buf.subarray(off, off + len)) : Buffer.from(buf.buffer, buf.byteOffset + off, len), seq, again);
        return !this.paused;
      },
      onDrain: () => this.later('drain'),
      onEnd: () => this.later('end'),
      onClose: (failure) => {
        if (this.closed) return;
        this.closed = true;
        const err = this.quiet ? undefined : failure;
        // 'error' only for those who listen for it (an unheard 'error' would throw).
        this.later('close', err);
      },
    };
  }

  /**
   * Events wait for the next tick, in order, all in one queue: a bundle of a hundred messages costs
   * one nextTick, not a hundred.
   */
  private later(event: keyof ChannelEvents, arg?: unknown, seq = 0, again = false): void {
    this.queue.push(event, arg, seq, again);
    if (this.queue.length === 4) process.nextTick(this.flushEvents);
  }

  private readonly queue: unknown[] = [];
  private readonly flushEvents = (): void => {
    const q = this.queue;
    // The queue holds ChannelEvents only; E may add events but never changes these.
    const emit = EventEmitter.prototype.emit;
    let confirmed = -1;
    for (let i = 0; i < q.length; i += 4) {
      const event = q[i] as keyof ChannelEvents;
      if (event === 'close') {
        const err = q[i + 1] as Error | undefined;
        if (err && EventEmitter.prototype.listenerCount.call(this, 'error') > 0) emit.call(this, 'error', err);
        emit.call(this, 'close', err);
      } else if (event === 'message') {
        const seq = q[i + 2] as number;
        this.emitted = seq;
        this.anyEmitted = true;
        emit.call(this, 'message', q[i + 1], this.app ? () => this.ack(seq) : NO_OP, seq, q[i + 3]);
        if (this.selfConfirm) confirmed = seq;
      } else emit.call(this, event);
    }
    q.length = 0;
    if (confirmed >= 0 && this.link !== null && !this.link.isFinished) {
      this.link.confirm(this.host.now(), confirmed);
      this.host.kick();
    }
  };

  /** Sequence number of the last message emitted (valid once `anyEmitted`). */
  private emitted = 0;
  private anyEmitted = false;

  /** Messages `send` accepted that the peer has not acknowledged yet (with its ackAfter 'app': not confirmed yet). */
  get unacknowledged(): number {
    return this.link === null ? 0 : this.link.ep.out.length;
  }

  get ackAfter(): AckAfter {
    if (this.selfConfirm) return 'standby';
    return this.link === null ? 'received' : this.link.ackAfter;
  }

  private get app(): boolean {
    return !this.selfConfirm && this.link?.ep.ackApp === true;
  }

  ack(seq?: number): void {
    if (!this.app) return;
    const link = this.live;
    if (seq === undefined) {
      // Everything emitted so far; nothing when all of it is confirmed already.
      if (!this.anyEmitted || !link.ep.inr.isConfirmable(this.emitted)) return;
      seq = this.emitted;
    } else if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) {
      throw hfError(ErrorCode.CONFIRM, `ack takes the seq of a 'message' event, got ${String(seq)}`);
    }
    link.confirm(this.host.now(), seq);
    this.host.kick();
  }

  private get live(): LinkBase {
    if (this.link === null) throw hfError(ErrorCode.CLOSED, 'channel has no session yet');
    return this.link;
  }

  send(data: Uint8Array): boolean {
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'send on a closed channel');
    const link = this.live;
    // Messages sent in one tick leave together: the link is corked until the next tick. A large one
    // (bulk: a forwarded port's DATA frames) keeps it corked until the immediates run instead, so
    // the socket reads of one round of polling (64 KiB each) leave as one bundle rather than one
    // each; a small one (an interactive reply) does not wait for the rest of the round.
    if (!this.corking) {
      this.corking = true;
      link.cork();
      if (data.length >= BULK_BYTES) setImmediate(this.uncork);
      else process.nextTick(this.uncork);
    }
    return link.send(this.host.now(), data);
  }

  private corking = false;
  private readonly uncork = (): void => {
    this.corking = false;
    if (this.link === null) return;
    this.link.uncork(this.host.now());
    this.host.kick();
  };

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.wantResume) return;
    this.wantResume = true;
    process.nextTick(() => {
      this.wantResume = false;
      if (this.paused || this.link === null) return;
      this.link.resume(this.host.now());
      this.host.kick();
    });
  }

  end(): void {
    if (this.closed || this.link === null) return;
    this.link.close(this.host.now());
    this.host.kick();
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    // Like a socket: destroy() without an error closes quietly here; the peer still learns that the
    // session was aborted (HF_ERR_CLOSED).
    this.quiet = err === undefined;
    if (this.link !== null) this.link.abort(this.host.now(), ErrorCode.CLOSED, err?.message ?? 'destroyed by the application');
    else this.closed = true;
    this.host.kick();
  }
}
