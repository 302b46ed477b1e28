/**
 * The stream multiplexer's core (docs/MUX.md): the table of one side's streams, their states and
 * their flow-control credit. Pure: it checks frames against the streams and keeps the accounts; the
 * driver (targets/host/app/mux.ts) does the I/O and calls the methods below as it sends.
 *
 * Stream ids: the device opens odd ids (1, 3, 5, ...), the gateway even ids (2, 4, ...); id 0 is the
 * session itself (MESSAGE frames). Ids are never reused, so a frame for an id this side has closed
 * (a RESET crossed it on the wire) is recognised and ignored, with no tombstones kept.
 *
 * `receive` checks a whole frame before it changes anything: when it throws (HfError with a stable
 * code: BUNDLE/LIMIT from the codec, PROTOCOL for a frame that breaks the stream rules, WINDOW for
 * DATA past the granted credit) the table is as it was.
 */
import { checkInt } from './check';
import { ErrorCode, hfError } from './errors';
import { MUX_OP_NAMES, type MuxFrame, type MuxLimits, MuxOp, decodeFrame, resolveMuxLimits } from './mux-frame';

export * from './mux-frame';

/** Stream states. A stream leaves the table when both sides sent END, or on RESET / OPEN_FAIL. */
export const StreamState = {
  /** This side sent OPEN and waits for OPEN_OK / OPEN_FAIL. */
  OPENING: 0,
  /** The peer sent OPEN; this side has not yet accepted or refused. */
  ACCEPTING: 1,
  OPEN: 2,
} as const;
export type StreamStateValue = (typeof StreamState)[keyof typeof StreamState];
const STATE_NAMES = ['opening', 'accepting', 'open'];

export type MuxRole = 'device' | 'gateway';

export interface MuxTableOptions extends MuxLimits {
  /** Which side this is: the device opens odd stream ids, the gateway even ones. */
  role: MuxRole;
  /** Most streams at once, both directions together (default 256; 1..65536). */
  maxStreams?: number;
}

/** One stream's accounts. Read-only outside this file. */
export interface StreamEntry {
  readonly id: number;
  state: StreamStateValue;
  /** Bytes this side may still send (granted by the peer, not yet used). */
  sendCredit: number;
  /** Bytes the peer may still send (granted by this side, not yet received). */
  recvCredit: number;
  /** This side sent END. */
  localEnd: boolean;
  /** The peer sent END. */
  remoteEnd: boolean;
}

const MAX_U32 = 0xffffffff;

export class MuxTable {
  readonly role: MuxRole;
  readonly limits: Required<MuxLimits>;
  readonly maxStreams: number;
  private readonly streams = new Map<number, StreamEntry>();
  /** The next id this side opens (odd on the device, even on the gateway); past 2^32 - 1: exhausted. */
  private nextOwn: number;
  /** The highest id the peer opened so far (0: none). */
  private lastPeer = 0;
  /** Device: the epoch of the START it sent, until the gateway answers it (0: answered, or gateway). */
  epoch = 0;
  /** Gateway: STARTs received (a second one means the device's mux started over). */
  peerStarts = 0;

  /** Device: a START of `epoch` is being sent (see MuxOp.START). */
  starting(epoch: number): void {
    this.epoch = epoch >>> 0;
  }

  constructor(opts: MuxTableOptions) {
    if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, `options must be an object, got ${String(opts)}`);
    if (opts.role !== 'device' && opts.role !== 'gateway') throw hfError(ErrorCode.OPTION, `role must be 'device' or 'gateway', got ${String(opts.role)}`);
    this.role = opts.role;
    this.limits = resolveMuxLimits({ maxFrame: opts.maxFrame, maxTarget: opts.maxTarget });
    this.maxStreams = opts.maxStreams === undefined ? 256 : checkInt('maxStreams', opts.maxStreams, 1, 65536);
    this.nextOwn = opts.role === 'device' ? 1 : 2;
  }

  /** Streams in the table now. */
  get size(): number {
    return this.streams.size;
  }

  get(id: number): StreamEntry | undefined {
    return this.streams.get(id);
  }

  /** True if `id` has the parity of the streams this side opens. */
  isOwn(id: number): boolean {
    return (id & 1) === (this.role === 'device' ? 1 : 0);
  }

  /** True if `id` was in use once and is closed now (frames for it are stale, not wrong). */
  private wasClosed(id: number): boolean {
    return this.isOwn(id) ? id < this.nextOwn : id <= this.lastPeer;
  }

  /** The stream a frame names, null if it is closed already; throws if it never existed. */
  private known(f: MuxFrame): StreamEntry | null {
    const e = this.streams.get(f.id);
    if (e !== undefined) return e;
    // Until the gateway answered our START, frames may still come for the streams of this device's
    // previous mux (the session outlived its process): they are stale, not wrong.
    if (this.wasClosed(f.id) || this.epoch !== 0) return null;
    throw hfError(ErrorCode.PROTOCOL, `${MUX_OP_NAMES[f.op]} on stream ${f.id}, which was never opened`);
  }

  private mustBe(e: StreamEntry, f: MuxFrame, state: StreamStateValue): void {
    if (e.state !== state) throw hfError(ErrorCode.PROTOCOL, `${MUX_OP_NAMES[f.op]} on stream ${e.id}, which is ${STATE_NAMES[e.state]}`);
  }

  /**
   * Decodes, checks and applies one frame from the peer. Returns the frame (DATA/MESSAGE bytes are
   * views into `b`), or null for a frame on a stream this side already closed (ignore it). Throws HfError and changes nothing on bad input.
   * An OPEN is entered as ACCEPTING even past `maxStreams`: the driver refuses it (size > maxStreams).
   */
  receive(b: Uint8Array): MuxFrame | null {
    const f = decodeFrame(b, this.limits);
    if (f.op === MuxOp.MESSAGE) return f;
    if (f.op === MuxOp.START) {
      if (this.role === 'gateway') {
        // A device mux after the first one: the previous one is gone (its process restarted and
        // resumed the session), with every stream; its ids start over.
        if (this.peerStarts++ > 0) {
          this.streams.clear();
          this.lastPeer = 0;
        }
        return f;
      }
      if (f.epoch !== this.epoch) return null; // the answer to an older START: not ours
      this.epoch = 0;
      return f;
    }
    if (f.op === MuxOp.OPEN) {
      if (this.isOwn(f.id)) throw hfError(ErrorCode.PROTOCOL, `OPEN of stream ${f.id}: the ${this.role === 'device' ? 'gateway opens even' : 'device opens odd'} ids`);
      if (f.id <= this.lastPeer) throw hfError(ErrorCode.PROTOCOL, `OPEN of stream ${f.id}, not above the last opened ${this.lastPeer}`);
      this.lastPeer = f.id;
      this.streams.set(f.id, { id: f.id, state: StreamState.ACCEPTING, sendCredit: f.credit, recvCredit: 0, localEnd: false, remoteEnd: false });
      return f;
    }
    if ((f.op === MuxOp.OPEN_OK || f.op === MuxOp.OPEN_FAIL) && !this.isOwn(f.id)) {
      throw hfError(ErrorCode.PROTOCOL, `${MUX_OP_NAMES[f.op]} of stream ${f.id}, which this side (${this.role}) cannot have opened`);
    }
    const e = this.known(f);
    if (e === null) return null;
    switch (f.op) {
      case MuxOp.OPEN_OK:
        this.mustBe(e, f, StreamState.OPENING);
        e.state = StreamState.OPEN;
        e.sendCredit = f.credit;
        break;
      case MuxOp.OPEN_FAIL:
        this.mustBe(e, f, StreamState.OPENING);
        this.streams.delete(e.id);
        break;
      case MuxOp.DATA:
        this.mustBe(e, f, StreamState.OPEN);
        if (e.remoteEnd) throw hfError(ErrorCode.PROTOCOL, `DATA on stream ${e.id} after its END`);
        if (f.data.length > e.recvCredit) throw hfError(ErrorCode.WINDOW, `DATA of ${f.data.length} bytes on stream ${e.id}, credit ${e.recvCredit}`);
        e.recvCredit -= f.data.length;
        break;
      case MuxOp.END:
        this.mustBe(e, f, StreamState.OPEN);
        if (e.remoteEnd) throw hfError(ErrorCode.PROTOCOL, `second END on stream ${e.id}`);
        e.remoteEnd = true;
        if (e.localEnd) this.streams.delete(e.id);
        break;
      case MuxOp.CREDIT:
        this.mustBe(e, f, StreamState.OPEN);
        if (e.sendCredit + f.credit > MAX_U32) throw hfError(ErrorCode.WINDOW, `CREDIT of ${f.credit} on stream ${e.id} takes its credit past 2^32-1`);
        e.sendCredit += f.credit;
        break;
      case MuxOp.RESET:
        this.streams.delete(e.id);
        break;
    }
    return f;
  }

  // ---- this side's actions: call each as the matching frame is sent ----------------------------

  /** Opens a stream (send OPEN with `credit`): returns its id. HF_ERR_LIMIT when full or out of ids. */
  open(credit: number): number {
    checkInt('credit', credit, 0, MAX_U32);
    if (this.streams.size >= this.maxStreams) throw hfError(ErrorCode.LIMIT, `${this.streams.size} streams open, maxStreams ${this.maxStreams}`);
    if (this.nextOwn > MAX_U32) throw hfError(ErrorCode.LIMIT, `stream ids exhausted (next would be ${this.nextOwn})`);
    const id = this.nextOwn;
    this.nextOwn += 2;
    this.streams.set(id, { id, state: StreamState.OPENING, sendCredit: 0, recvCredit: credit, localEnd: false, remoteEnd: false });
    return id;
  }

  /** Accepts a stream the peer opened (send OPEN_OK with `credit`). */
  accept(id: number, credit: number): void {
    checkInt('credit', credit, 0, MAX_U32);
    const e = this.local(id, 'accept');
    if (e.state !== StreamState.ACCEPTING) throw hfError(ErrorCode.PROTOCOL, `accept of stream ${id}, which is ${STATE_NAMES[e.state]}`);
    e.state = StreamState.OPEN;
    e.recvCredit = credit;
  }

  /** Refuses a stream the peer opened (send OPEN_FAIL). */
  refuse(id: number): void {
    const e = this.local(id, 'refuse');
    if (e.state !== StreamState.ACCEPTING) throw hfError(ErrorCode.PROTOCOL, `refuse of stream ${id}, which is ${STATE_NAMES[e.state]}`);
    this.streams.delete(id);
  }

  /** Bytes one DATA frame on `id` may carry now (0: wait for credit, or the stream is not open). */
  sendable(id: number, maxData: number): number {
    const e = this.streams.get(id);
    if (e === undefined || e.state !== StreamState.OPEN || e.localEnd) return 0;
    return Math.min(e.sendCredit, maxData);
  }

  /** DATA of `n` bytes was sent on `id` (n <= sendable). */
  sent(id: number, n: number): void {
    const e = this.local(id, 'DATA');
    if (e.state !== StreamState.OPEN || e.localEnd || n < 1 || n > e.sendCredit) {
      throw hfError(ErrorCode.PROTOCOL, `DATA of ${n} bytes on stream ${id} (${STATE_NAMES[e.state]}, credit ${e.sendCredit}${e.localEnd ? ', ended' : ''})`);
    }
    e.sendCredit -= n;
  }

  /** CREDIT of `n` bytes was sent on `id`. */
  grant(id: number, n: number): void {
    const e = this.local(id, 'CREDIT');
    if (e.state !== StreamState.OPEN || n < 1 || e.recvCredit + n > MAX_U32) throw hfError(ErrorCode.PROTOCOL, `CREDIT of ${n} on stream ${id} (credit ${e.recvCredit})`);
    e.recvCredit += n;
  }

  /** END was sent on `id`. */
  end(id: number): void {
    const e = this.local(id, 'END');
    if (e.state !== StreamState.OPEN || e.localEnd) throw hfError(ErrorCode.PROTOCOL, `END on stream ${id} (${STATE_NAMES[e.state]}${e.localEnd ? ', ended' : ''})`);
    e.localEnd = true;
    if (e.remoteEnd) this.streams.delete(id);
  }

  /** RESET was sent on `id` (any state; a stream already gone is fine). */
  reset(id: number): void {
    this.streams.delete(id);
  }

  private local(id: number, what: string): StreamEntry {
    const e = this.streams.get(id);
    if (e === undefined) throw hfError(ErrorCode.CLOSED, `${what} on stream ${id}, which is not open`);
    return e;
  }
}
