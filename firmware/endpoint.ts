/**
 * One side of a session's message exchange, whatever carries it: the out-ring and what the peer has
 * acknowledged of it, the in-ring and what this side owes the peer (acknowledgement, window), the
 * round-trip estimator, and the rules that pick which messages go into the next bundle.
 *
 * Sending rules. A message goes out when it was never sent (and fits the peer's window), or when it is
 * due again: its retransmission timer expired (`onRetxTimer`), or a message sent after it has been
 * received by the peer and a reordering allowance passed (loss detection in the manner of RACK,
 * RFC 8985). A message leaves the out-ring only on the peer's cumulative acknowledgement; selective
 * acknowledgements only spare retransmissions. Round trips are sampled only from messages sent once.
 *
 * The role state machines (ClientLink, ServerLink) decide when a bundle is written; this decides what
 * is in it. Nothing here allocates per message.
 */
import { behind, dist } from './check';
import { ErrorCode, hfError } from './errors';
import { DUPLICATE, InRing } from './in-ring';
import type { ResolvedOptions } from './options';
import { type Limits, type Ring, limitsFrom } from './control';
import type { JournalSink } from './journal';
import { OutRing, SACKED } from './out-ring';
import { RttEstimator } from './rtt';
import { BundleReader, type BundleView, BundleWriter, PIECE_OVERHEAD, type WriterCaps } from './wire';
import type { Sealer } from './auth';
import type { SlabLender } from './slab-pool';

const NO_LOST: ArrayLike<number> = new Uint32Array(0);

/** Out-ring flag: the message is due for retransmission. */
const DUE = 4;

/** Provides a session's memory: an ArrayBuffer of at least `bytes` (contents may be anything). */
export type ArenaAlloc = (bytes: number) => ArrayBuffer;

/**
 * Receives delivered messages: `buf[off, off+len)` is valid only during the call; `seq` is the
 * message's sequence number (what `confirm` takes with ackAfter 'app'). Return false to pause.
 */
export type DeliverFn = (buf: Uint8Array, off: number, len: number, seq: number) => boolean;

/** One out-ring message in a snapshot: [sent age ms or -1, times sent, flags, payload]. */
export type OutMsgData = [number, number, number, Uint8Array];
/** One in-ring message in a snapshot: [seq, offset, payload]. */
export type InMsgData = [number, number, Uint8Array];

export interface EndpointData {
  /** [tail, tailOff, sendNext, messages from tail] */
  out: [number, number, number, OutMsgData[]];
  /**
   * [held, heldOff, held messages (unconfirmed, unconsumed and early arrivals)]: restored, the
   * unconfirmed ones are handed to the application again.
   */
  in: [number, number, InMsgData[]];
  /** Whether the application confirms what it received (ackAfter 'app'; absent in older snapshots). */
  ackApp?: boolean;
  /** [first seq, count]: messages that may have reached the application before (absent: none). */
  again?: [number, number];
  /** [window end seq, window end offset, peer max message, messages per bundle] */
  peer: [number, number, number, number];
  peerLimits: Limits | null;
  /** The peer's out-ring, when it said (absent in older snapshots). */
  peerRing?: Ring | null;
  rtt: number[];
  /** Ages in ms: [loss-detection time, ack owed since (-2 none), last heard, last sent] */
  times: [number, number, number, number];
}

export interface EndpointStats {
  bundlesIn: number;
  bundlesOut: number;
  /** New messages received (duplicates not counted). */
  messagesIn: number;
  /** Messages put in bundles, retransmissions included. */
  messagesOut: number;
  /** Payload bytes of the new messages received (pieces counted as they arrive). */
  bytesIn: number;
  /** Payload bytes put in bundles, retransmissions and pieces included. */
  bytesOut: number;
  duplicatesIn: number;
  retransmits: number;
  timeouts: number;
}

export class Endpoint {
  readonly o: ResolvedOptions;
  readonly out: OutRing;
  readonly inr: InRing;
  readonly writer: BundleWriter;
  /** What this session's bundles may carry (the peer's limits, the size cap): handed to the writer before each bundle, as the writer may be shared. */
  readonly caps: WriterCaps;
  readonly reader: BundleReader;
  readonly rtt: RttEstimator;
  /**
   * The memory the rings and the bundle buffer live in (null with a lender: each ring's slab is
   * lent while it holds messages, the bundle buffer is the lender's shared one). A delivered message
   * whose bytes are in the endpoint's memory is valid only during the deliver call (`ownsBytes`); one
   * that is not was passed straight from the received bundle.
   */
  readonly arena: ArrayBuffer | null;

  /** Exclusive end of the peer's receive window: sequence number and byte offset. */
  peerWndSeq: number;
  peerWndOff: number;
  /** First message never sent (everything in [out.tail, sendNext) went out at least once). */
  sendNext: number;
  /** Messages flagged DUE. */
  private due = 0;
  /** Latest send time of a message the peer is known to have (loss detection). */
  private rackTime = -1;
  /** The peer is owed an acknowledgement or a window update. */
  ackOwed = false;
  /** Time the oldest owed acknowledgement became owed (-1: none). */
  ackOwedSince = -1;
  /** Window end last advertised, to know when an update is worth a bundle. */
  private advSeq = 0;
  /** Window end (byte offset) last advertised. */
  private advOff = 0;
  /** Bundles with new messages received since this side last sent a bundle (its acknowledgement). */
  private bundlesSinceAck = 0;
  /** Where the in-ring stood (next seq, next offset) when this side last sent a bundle. */
  private ackedSeq = 0;
  private ackedOff = 0;
  /** The peer's out-ring [slots, bytes], from its hello or welcome (null: unknown). */
  peerRing: Ring | null = null;
  /** Time a valid bundle last arrived. */
  lastHeard = 0;
  /** Time a bundle last went out. */
  lastSent = 0;
  /** Delivery paused by the application. */
  paused = false;
  /**
   * A delivery gate (a pair's primary with ackAfter 'standby', gate()): messages from `gateSeq` on
   * wait in the ring, received and acknowledged-to-be, until the standby holds them.
   */
  private gated = false;
  private gateSeq = 0;
  /** Cached earliest retransmission deadline; NaN = recompute. */
  private retxAt = NaN;
  /**
   * Pieces (PROTOCOL 5.1): message `pieceSeq` (the oldest unacknowledged) goes out in pieces while
   * bundles are capped below its size; `pieceNext` bytes of it went out, the peer last said it holds
   * `peerPart`.
   */
  private pieceOn = false;
  private pieceSeq = 0;
  private pieceNext = 0;
  private peerPart = 0;
  /** Client: the room field of the next bundle written (0: none) and the lost requests it names (the first `askLostCount` of `askLost`). */
  askRoom = 0;
  askLost: ArrayLike<number> = NO_LOST;
  askLostCount = 0;
  /** What `check` found of the received bundle's piece (NEW or DUPLICATE). */
  private pieceVerdict = DUPLICATE;

  readonly stats: EndpointStats = { bundlesIn: 0, bundlesOut: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, duplicatesIn: 0, retransmits: 0, timeouts: 0 };

  /**
   * `memory`, if given, is where the session's memory comes from: an ArenaAlloc provides it as one
   * block of the given size (it need not be zeroed: nothing is read before it was written); a
   * SlabLender lends the rings' slabs only while they hold messages, and its shared buffer is the
   * bundle buffer (every bundle is handed to its transport, which copies it, within the call that
   * wrote it); the bundle reader is then one for every endpoint of the same options (a bundle is read
   * and applied within one call). Default: a zero-filled ArrayBuffer.
   */
  constructor(o: ResolvedOptions, peerSeq: number, peerOff: number, memory?: ArenaAlloc | SlabLender) {
    this.o = o;
    if (memory !== undefined && typeof memory !== 'function') {
      this.arena = null;
      this.out = new OutRing({ slots: o.outSlots, bytes: o.outBytes, seq: o.initialSeq, off: o.initialOff, pool: memory });
      this.inr = new InRing({ slots: o.inSlots, bytes: o.inBytes, seq: peerSeq, off: peerOff, maxMessage: o.maxMessage, pool: memory });
      // One bundle writer (into the lender's shared buffer) and one reader for every endpoint of the
      // same lender and (resolved, never changed) options: a bundle is written and handed on, or read
      // and applied, within one call. Each endpoint keeps its own caps (WriterCaps).
      [this.writer, this.reader] = memory.memo(o, (): [BundleWriter, BundleReader] => [new BundleWriter(o, memory.shared(o.maxBundleBytes)), new BundleReader(o)]);
    } else {
      // One arena holds the rings' slabs and the bundle buffer, so copies between them are native
      // copyWithin calls (see bytes.ts).
      const scratch = Math.min(o.inBytes, o.maxMessage);
      const size = o.outBytes + o.inBytes + scratch + o.maxBundleBytes;
      const arena = memory !== undefined ? memory(size) : new ArrayBuffer(size);
      this.arena = arena;
      if (arena.byteLength < size) throw hfError(ErrorCode.OPTION, `alloc gave ${arena.byteLength} bytes, ${size} needed`);
      let at = 0;
      const take = (n: number): Uint8Array => {
        const v = new Uint8Array(arena, at, n);
        at += n;
        return v;
      };
      this.out = new OutRing({ slots: o.outSlots, bytes: o.outBytes, seq: o.initialSeq, off: o.initialOff, slab: take(o.outBytes) });
      this.inr = new InRing({ slots: o.inSlots, bytes: o.inBytes, seq: peerSeq, off: peerOff, maxMessage: o.maxMessage, slab: take(o.inBytes), scratch: take(scratch) });
      this.writer = new BundleWriter(o, take(o.maxBundleBytes));
      this.reader = new BundleReader(o);
    }
    this.caps = this.writer.newCaps();
    this.rtt = new RttEstimator(o);
    this.sendNext = this.out.head;
    // Until the peer says otherwise, assume it has rings as large as ours.
    this.peerWndSeq = (this.out.head + o.inSlots) >>> 0;
    this.peerWndOff = (this.out.headOff + o.inBytes) >>> 0;
    this.markAdvertised();
    this.peerMaxMessage = o.maxMessage;
  }

  /**
   * Drops what the rings still hold and gives lent memory back (a finished session, swept from its
   * acceptor's table: nothing will send or deliver on it again).
   */
  discard(): void {
    this.out.discard();
    this.inr.discard();
  }

  /** Whether `buf` is a view of this endpoint's own memory (valid only during a deliver call). */
  ownsBytes(buf: Uint8Array): boolean {
    return this.arena !== null ? buf.buffer === this.arena : this.inr.owns(buf);
  }

  /** Largest message the peer accepts (its maxMessage; ours until it tells). */
  peerMaxMessage: number;

  /** Adopts the peer's reader limits (from its hello or welcome). */
  setPeerLimits(l: Limits): void {
    this.peerLimits = l;
    const peer = limitsFrom(l);
    this.writer.limitTo(peer, this.caps);
    this.peerMaxMessage = Math.min(this.o.maxMessage, peer.maxMessage);
  }

  /** Sets where the peer's messages start and its first window (from its hello or welcome). */
  setPeerStart(seq: number, off: number, winMsgs: number, winBytes: number): void {
    this.inr.restart(seq, off);
    this.markAdvertised();
    this.peerWndSeq = (this.out.tail + winMsgs) >>> 0;
    this.peerWndOff = (this.out.tailOff + winBytes) >>> 0;
  }

  // ---- sending ---------------------------------------------------------------------------------

  /** Copies a message into the out-ring; false when full (backpressure). */
  send(src: Uint8Array, off = 0, len = src.length - off): boolean {
    if (len > this.peerMaxMessage) throw hfError(ErrorCode.TOO_BIG, `message of ${len} bytes, limit ${this.peerMaxMessage}`);
    if (!this.out.push(src, off, len)) return false;
    if (this.journal !== null) this.journal.pushed(src, off, len);
    return true;
  }

  private inWindow(seq: number): boolean {
    if (dist(seq, this.out.tail) >= dist(this.peerWndSeq, this.out.tail)) return false;
    const end = (this.out.offOf(seq) + this.out.lenOf(seq)) >>> 0;
    return dist(end, this.out.tailOff) <= dist(this.peerWndOff, this.out.tailOff);
  }

  /** Messages that could go out now, counted up to `limit`. */
  sendable(limit: number): number {
    let n = Math.min(this.due, limit);
    for (let q = this.sendNext; n < limit && q !== this.out.head && this.inWindow(q); q = (q + 1) >>> 0) n++;
    return n;
  }

  /** True if a full bundle of messages is ready. */
  get fullBundle(): boolean {
    const m = this.caps.messages;
    return this.sendable(m) >= m;
  }

  /** True if anything waits: a new or due message. */
  get hasSendable(): boolean {
    return this.due > 0 || (this.sendNext !== this.out.head && this.inWindow(this.sendNext));
  }

  /** Earliest time an in-flight message's retransmission timer expires (Infinity if none). */
  retxDeadline(): number {
    if (!Number.isNaN(this.retxAt)) return this.retxAt;
    let t = Infinity;
    const out = this.out;
    for (let q = out.tail; q !== this.sendNext; q = (q + 1) >>> 0) {
      if ((out.flagsOf(q) & DUE) !== 0) continue;
      const s = out.sentAt(q);
      if (s >= 0 && s < t) t = s;
    }
    this.retxAt = t === Infinity ? Infinity : t + this.rtt.rto;
    return this.retxAt;
  }

  /** Retransmission timer: flags every in-flight message whose timeout passed; backs off once. */
  onRetxTimer(now: number): boolean {
    const out = this.out;
    const rto = this.rtt.rto;
    let marked = 0;
    for (let q = out.tail; q !== this.sendNext; q = (q + 1) >>> 0) {
      const f = out.flagsOf(q);
      if ((f & DUE) !== 0) continue;
      if (out.sentAt(q) + rto <= now) {
        // A selectively acknowledged message still unacknowledged a whole timeout later may have been
        // dropped by the receiver (it restarted, or consumes slowly): its mark is cleared and it goes
        // again (RFC 2018: SACK is advisory until the cumulative ack).
        if ((f & SACKED) !== 0) out.clearFlag(q, SACKED);
        out.setFlag(q, DUE);
        marked++;
      }
    }
    if (marked > 0) {
      this.due += marked;
      this.stats.timeouts++;
      this.rtt.backoff();
    }
    this.retxAt = NaN;
    return marked > 0;
  }

  /**
   * The bundle written at `sentAt` is known lost (its connection died before the answer): the
   * messages it carried (those last sent then) are due again now. No back-off: a cut connection says
   * nothing about the round trip. Returns how many were marked.
   */
  resendSentAt(sentAt: number): number {
    const out = this.out;
    let marked = 0;
    for (let q = out.tail; q !== this.sendNext; q = (q + 1) >>> 0) {
      if ((out.flagsOf(q) & (SACKED | DUE)) === 0 && out.sentAt(q) === sentAt) {
        out.setFlag(q, DUE);
        marked++;
      }
    }
    this.due += marked;
    if (marked > 0) this.retxAt = NaN;
    // Pieces go in order and the receiver takes only the next one: after any loss the rest follow
    // from what it last said it holds (pieces still on the way are then ignored there).
    if (this.pieceOn) this.pieceNext = Math.min(this.pieceNext, this.peerPart);
    return marked;
  }

  /** After a transport change: everything unacknowledged goes out again on the new one. */
  resendAll(): void {
    if (this.pieceOn) this.pieceNext = Math.min(this.pieceNext, this.peerPart);
    const out = this.out;
    for (let q = out.tail; q !== this.sendNext; q = (q + 1) >>> 0) {
      if ((out.flagsOf(q) & (SACKED | DUE)) === 0) {
        out.setFlag(q, DUE);
        this.due++;
      }
    }
    this.retxAt = NaN;
  }

  /**
   * A window that ends before the oldest unacknowledged message (stale: learned before a restart
   * replayed later acknowledgements) is taken as closed until the peer advertises again.
   */
  private clampWindow(): void {
    if (behind(this.peerWndSeq, this.out.tail)) this.peerWndSeq = this.out.tail;
    if (behind(this.peerWndOff, this.out.tailOff)) this.peerWndOff = this.out.tailOff;
  }

  /**
   * Forgets every transmission: each held message counts as never sent (a restarted device resends
   * everything unacknowledged, in order, on whatever transport it finds).
   */
  restartSending(): void {
    this.pieceOn = false;
    const out = this.out;
    for (let q = out.tail; q !== out.head; q = (q + 1) >>> 0) out.setSendState(q, -1, 0, 0);
    this.sendNext = out.tail;
    this.clampWindow();
    this.due = 0;
    this.rackTime = -1;
    this.retxAt = NaN;
  }

  /** Whether acknowledgement or window news is owed and has waited `ackDelayMs`. */
  ackDue(now: number): boolean {
    return this.ackOwed && now >= this.ackOwedSince + this.o.ackDelayMs;
  }

  /**
   * Writes a bundle into `writer.buf` and returns its length: header with this side's acknowledgement
   * state, the given control items, then as many sendable messages as fit (none if `messages` is
   * false). Marks the messages sent and the acknowledgement paid.
   */
  writeBundle(sid: Uint8Array | null, rn: number, now: number, controls: readonly Uint8Array[] | null, messages: boolean): number {
    const w = this.writer;
    w.caps = this.caps;
    const inr = this.inr;
    const out = this.out;
    if (this.ackConsumed || this.ackApp) {
      // Acknowledge only what the application consumed (journal) or confirmed (ackAfter 'app'); what
      // it has not yet is reported received (a selective ack spares the retransmission) but stays
      // in the peer's ring until then. The window counts from the same point: the whole ring.
      w.begin(sid, rn, inr.held, inr.slots, inr.bytes, out);
      if (inr.held !== inr.next) w.sack(inr.held, inr.next);
    } else {
      w.begin(sid, rn, inr.next, inr.windowMsgs, inr.windowBytes, out);
    }
    if (inr.hasGaps) inr.forEachRange(this.o.maxSackRanges, this.addSack);
    if (inr.partBytes > 0) w.part(inr.next, inr.partBytes);
    if (controls !== null) for (let i = 0; i < controls.length; i++) w.control(controls[i]);
    if (this.askRoom > 0) w.room(this.askRoom, this.askLost, this.askLostCount);
    if (messages && this.caps.sizeCap !== Infinity && this.writePiece(now)) messages = false;
    if (messages) {
      let room = true;
      if (this.due > 0) {
        for (let q = out.tail; room && this.due > 0 && q !== this.sendNext; q = (q + 1) >>> 0) {
          if ((out.flagsOf(q) & DUE) === 0) continue;
          if ((out.flagsOf(q) & SACKED) !== 0) {
            out.clearFlag(q, DUE);
            this.due--;
            continue;
          }
          room = w.message(q);
          if (room) {
            out.clearFlag(q, DUE);
            this.due--;
            out.markSent(q, now);
            this.stats.retransmits++;
            this.stats.bytesOut += out.lenOf(q);
          }
        }
      }
      while (room && this.sendNext !== out.head && this.inWindow(this.sendNext)) {
        room = w.message(this.sendNext);
        if (room) {
          out.markSent(this.sendNext, now);
          this.stats.bytesOut += out.lenOf(this.sendNext);
          this.sendNext = (this.sendNext + 1) >>> 0;
        }
      }
      if (w.messages > 0) this.retxAt = NaN;
    }
    const sealer = sid !== null ? this.sealer : null;
    const len = w.finish(sealer !== null);
    if (sealer !== null) sealer.sign(w.buf, 0, w.tagOff);
    this.stats.bundlesOut++;
    this.stats.messagesOut += w.messages;
    this.ackOwed = false;
    this.ackOwedSince = -1;
    this.bundlesSinceAck = 0;
    this.markAdvertised();
    this.lastSent = now;
    return len;
  }

  /**
   * Bundles are capped (`caps.sizeCap`) below the size of the oldest unacknowledged message and it
   * is due or never sent: its next piece goes instead of messages. Returns whether one was written.
   */
  private writePiece(now: number): boolean {
    const out = this.out;
    const w = this.writer;
    const q = out.tail;
    if (q === out.head) return false;
    const f = out.flagsOf(q);
    const len = out.lenOf(q);
    const mine = this.pieceOn && this.pieceSeq === q;
    const unsent = q === this.sendNext && this.inWindow(q);
    if ((f & SACKED) !== 0 || !((f & DUE) !== 0 || unsent || (mine && this.pieceNext < len))) return false;
    if (w.fits(q)) {
      this.pieceOn = false;
      return false;
    }
    if (!mine) {
      this.pieceOn = true;
      this.pieceSeq = q;
      this.pieceNext = 0;
      this.peerPart = 0;
    } else if (this.pieceNext >= len) this.pieceNext = this.peerPart; // due again: from what the peer holds
    const n = Math.min(len - this.pieceNext, Math.max(64, w.roomLeft - PIECE_OVERHEAD));
    w.piece(q, this.pieceNext, n);
    this.pieceNext += n;
    this.stats.bytesOut += n;
    if (this.pieceNext === len) {
      // The last piece: the message counts as sent (its retransmission timer runs from here).
      if ((f & DUE) !== 0) {
        out.clearFlag(q, DUE);
        this.due--;
        this.stats.retransmits++;
      } else if (unsent) this.sendNext = (q + 1) >>> 0;
      out.markSent(q, now);
      this.retxAt = NaN;
    }
    return true;
  }

  private readonly addSack = (start: number, end: number): void => {
    this.writer.sack(start, end);
  };

  // ---- receiving -------------------------------------------------------------------------------

  /** Parses and validates a body; throws a coded error and changes nothing if it is bad. */
  parse(buf: Uint8Array, start = 0, end = buf.length): BundleView {
    const v = this.read(buf, start, end);
    this.authenticate(v);
    this.check(v);
    return v;
  }

  /**
   * Parses a body (no state check). The view points into `buf`: messages delivered straight from it
   * are visible only during the deliver call; stored ones are copied into the in-ring.
   */
  read(buf: Uint8Array, start = 0, end = buf.length): BundleView {
    return this.reader.read(buf, start, end);
  }

  /**
   * Tags this session's bundles and checks the peer's (null: the session is not authenticated).
   * Set once the session key is known (after the hello); part of a snapshot.
   */
  sealer: Sealer | null = null;

  /** Throws HF_ERR_AUTH unless the bundle carries this session's valid tag (no-op without a sealer). */
  authenticate(v: BundleView): void {
    const s = this.sealer;
    if (s === null) return;
    if (v.tagOff < 0) throw hfError(ErrorCode.AUTH, 'bundle has no tag; this session requires one');
    if (!s.verify(v.buf, v.start, v.tagOff)) throw hfError(ErrorCode.AUTH, 'bundle tag does not match the session key (forged, altered or another session)');
  }

  /** Checks a parsed bundle against this side's state (acks of unsent messages, window). */
  check(v: BundleView): void {
    this.out.checkAck(v.ack);
    for (let k = 0; k < v.sackCount; k++) {
      const a = v.sacks[2 * k];
      const b = v.sacks[2 * k + 1];
      if (dist(b, this.out.tail) > this.out.length && !behind(b, this.out.tail)) {
        throw hfError(ErrorCode.ACK, `sack range [${a}, ${b}) reaches past the last sent message ${(this.out.head - 1) >>> 0}`);
      }
    }
    for (let i = 0; i < v.msgCount; i++) v.verdicts[i] = this.inr.check(v.seqs[i], v.offs[i], v.lens[i]);
    this.pieceVerdict = v.pieceLen > 0 ? this.inr.checkPiece(v.pieceSeq, v.pieceOff, v.pieceTotal, v.pieceAt) : DUPLICATE;
  }

  /**
   * Applies a bundle `parse` accepted: acknowledgements release out-ring messages (and give round-trip
   * samples), the window moves, messages go into the in-ring. Returns how many new messages arrived.
   */
  apply(v: BundleView, now: number, fn: DeliverFn | null = null): number {
    const out = this.out;
    this.stats.bundlesIn++;
    this.lastHeard = now;
    // Cumulative acknowledgement.
    if (out.holds(v.ack) || v.ack === out.head) {
      const ackOff = v.ack === out.head ? out.headOff : out.offOf(v.ack);
      const wndSeq = (v.ack + v.winMsgs) >>> 0;
      const wndOff = (ackOff + v.winBytes) >>> 0;
      if (!behind(wndSeq, this.peerWndSeq)) this.peerWndSeq = wndSeq;
      if (!behind(wndOff, this.peerWndOff)) this.peerWndOff = wndOff;
      if (v.ack !== out.tail) this.releaseTo(v.ack, now);
    }
    if (this.pieceOn) {
      if (this.pieceSeq !== out.tail) this.pieceOn = false;
      else {
        this.peerPart = v.partBytes > 0 && v.partSeq === this.pieceSeq ? v.partBytes : 0;
        if (this.peerPart > this.pieceNext) this.pieceNext = this.peerPart;
      }
    }
    // Selective acknowledgements.
    for (let k = 0; k < v.sackCount; k++) this.markSacked(v.sacks[2 * k], v.sacks[2 * k + 1]);
    if (this.rackTime >= 0) this.detectLoss();
    // Messages. A message delivered straight from the bundle is visible to `fn` only during the call.
    let fresh = 0;
    let passed = 0;
    for (let i = 0; i < v.msgCount; i++) {
      const seq = v.seqs[i];
      // `check` classified each message against the state before this bundle; a run's first message
      // is checked again against what earlier runs of this bundle stored (its offset is the peer's word).
      const first = i === 0 || seq !== (v.seqs[i - 1] + 1) >>> 0;
      if ((first ? this.inr.check(seq, v.offs[i], v.lens[i]) : v.verdicts[i]) === DUPLICATE) {
        this.stats.duplicatesIn++;
      } else if (fn !== null && !this.paused && !this.ackApp && (!this.gated || behind(seq, this.gateSeq)) && this.inr.isPassThrough(seq)) {
        // In order with nothing waiting: straight to the application, no copy into the ring. (Not
        // with ackAfter 'app': a message waiting for its confirmation must stay in the ring.)
        this.inr.pass(seq, v.offs[i], v.lens[i]);
        passed++;
        fresh++;
        this.stats.bytesIn += v.lens[i];
        if (!fn(v.buf, v.starts[i], v.lens[i], seq)) this.paused = true;
      } else {
        this.inr.store(seq, v.offs[i], v.buf, v.starts[i], v.lens[i]);
        fresh++;
        this.stats.bytesIn += v.lens[i];
      }
    }
    if (v.pieceLen > 0) {
      if (this.pieceVerdict === DUPLICATE) this.stats.duplicatesIn++;
      else {
        this.stats.bytesIn += v.pieceLen;
        if (this.inr.storePiece(v.pieceSeq, v.pieceOff, v.pieceTotal, v.buf, v.pieceStart, v.pieceLen) > 0) {
          fresh++;
          this.stats.messagesIn++;
        }
      }
      this.pieceVerdict = DUPLICATE;
      this.owe(now);
      this.ackOwedSince = -Infinity; // the sender goes on from what the part field says: at once
    }
    if (v.msgCount > 0) {
      this.stats.messagesIn += fresh;
      this.owe(now);
      // Like TCP's delayed ack: the acknowledgement goes at once after a second bundle of news that
      // together fill an eighth of the window (bulk: one acknowledgement per two or more large
      // bundles, each a wake-up of the peer's process; a trickle of small bundles waits ackDelayMs),
      // or once the peer used half the window it was last told of; waiting ackDelayMs then would
      // stall a sender at its window (which may be its own ring, smaller than ours).
      const inr = this.inr;
      if (fresh > 0) this.bundlesSinceAck++;
      const slots = this.peerRing === null ? inr.slots : Math.min(inr.slots, this.peerRing[0]);
      const bytes = this.peerRing === null ? inr.bytes : Math.min(inr.bytes, this.peerRing[1]);
      if (
        (this.bundlesSinceAck >= 2 && dist(inr.nextOff, this.ackedOff) >= bytes / 8) ||
        dist(inr.next, this.ackedSeq) >= slots / 2 ||
        dist(inr.nextOff, this.ackedOff) >= bytes / 2 ||
        dist(this.advSeq, inr.next) <= inr.slots / 2 ||
        dist(this.advOff, inr.nextOff) <= inr.bytes / 2
      ) {
        this.ackOwedSince = -Infinity;
      }
    }
    if (passed > 0 && this.journal !== null) this.journal.delivered(this.inr.read, this.inr.readOff);
    return fresh;
  }

  private owe(now: number): void {
    if (!this.ackOwed) {
      this.ackOwed = true;
      this.ackOwedSince = now;
    }
  }

  private releaseTo(ack: number, now: number): void {
    const out = this.out;
    let sample = -1;
    for (let q = out.tail; q !== ack; q = (q + 1) >>> 0) {
      const f = out.flagsOf(q);
      if ((f & DUE) !== 0) this.due--;
      const sent = out.sentAt(q);
      if (sent > this.rackTime) this.rackTime = sent;
      if (out.sendCount(q) === 1 && (f & SACKED) === 0) sample = now - sent;
    }
    // After a restore every held message counts as unsent, yet the peer may have had some of them.
    if (behind(this.sendNext, ack)) this.sendNext = ack;
    out.release(ack);
    this.clampWindow();
    if (this.journal !== null) this.journal.released(ack);
    if (sample >= 0) this.rtt.sample(sample);
    this.retxAt = NaN;
  }

  private markSacked(a: number, b: number): void {
    const out = this.out;
    if (behind(b, out.tail) || b === out.tail) return; // wholly stale
    if (behind(a, out.tail)) a = out.tail;
    for (let q = a; q !== b; q = (q + 1) >>> 0) {
      const f = out.flagsOf(q);
      if ((f & SACKED) !== 0) continue;
      out.setFlag(q, SACKED);
      if ((f & DUE) !== 0) {
        out.clearFlag(q, DUE);
        this.due--;
      }
      const sent = out.sentAt(q);
      if (sent > this.rackTime) this.rackTime = sent;
    }
    this.retxAt = NaN;
  }

  /** A message sent well before one the peer already has is taken as lost and made due. */
  private detectLoss(): void {
    const out = this.out;
    const reo = Math.max(1, this.rtt.srtt / 4);
    const limit = this.rackTime - reo;
    for (let q = out.tail; q !== this.sendNext; q = (q + 1) >>> 0) {
      const f = out.flagsOf(q);
      if ((f & (SACKED | DUE)) !== 0) continue;
      const s = out.sentAt(q);
      if (s >= 0 && s < limit) {
        out.setFlag(q, DUE);
        this.due++;
        this.retxAt = NaN;
      }
    }
  }

  // ---- session state as data ------------------------------------------------------------------

  /**
   * Everything this endpoint is, as plain data (numbers and byte arrays) for a snapshot. Times are
   * stored as ages relative to `now` so the data can be restored on another clock. Without
   * `messages` the two message lists are left empty (a standby's delta carries them: replica.ts).
   */
  toData(now: number, messages = true): EndpointData {
    const out = this.out;
    const inr = this.inr;
    const outMsgs: OutMsgData[] = [];
    for (let q = out.tail; messages && q !== out.head; q = (q + 1) >>> 0) {
      const sent = out.sentAt(q);
      outMsgs.push([sent < 0 ? -1 : now - sent, out.sendCount(q), out.flagsOf(q), this.outPayload(q)]);
    }
    const inMsgs: InMsgData[] = [];
    for (let q = inr.held; messages && q !== inr.top; q = (q + 1) >>> 0) {
      const m = this.inMessage(q);
      if (m !== null) inMsgs.push(m);
    }
    const age = (t: number): number => (t < 0 ? -1 : now - t);
    return {
      out: [out.tail, out.tailOff, this.sendNext, outMsgs],
      in: [inr.held, inr.heldOff, inMsgs],
      ackApp: this.ackApp,
      again: this.againAfterRestore(),
      peer: [this.peerWndSeq, this.peerWndOff, this.peerMaxMessage, this.caps.messages],
      peerLimits: this.peerLimits,
      peerRing: this.peerRing,
      rtt: this.rtt.toData(),
      times: [age(this.rackTime), this.ackOwed ? age(this.ackOwedSince) : -2, now - this.lastHeard, now - this.lastSent],
    };
  }

  /** A copy of out-ring message `seq` (one the ring holds). */
  outPayload(seq: number): Uint8Array {
    const payload = new Uint8Array(this.out.lenOf(seq));
    this.out.copyOut(seq, payload);
    return payload;
  }

  /** In-ring message `seq` as snapshot data (a copy), or null when it has not wholly arrived. */
  inMessage(seq: number): InMsgData | null {
    const inr = this.inr;
    if (!inr.isPresent(seq)) return null;
    const payload = new Uint8Array(inr.lenOf(seq));
    inr.copyOut(seq, payload);
    return [seq, inr.offOf(seq), payload];
  }

  /** Restores what `toData` produced into this (freshly built, empty) endpoint. */
  fromData(d: EndpointData, now: number): void {
    const [tail, tailOff, sendNext, outMsgs] = d.out;
    const out = this.out;
    out.reset(tail, tailOff);
    this.due = 0;
    for (let i = 0; i < outMsgs.length; i++) {
      const [sentAgo, sends, flags, payload] = outMsgs[i];
      if (!out.push(payload)) throw hfError(ErrorCode.STATE, `snapshot holds more messages than the out-ring fits (${outMsgs.length})`);
      const seq = (tail + i) >>> 0;
      out.setSendState(seq, sentAgo < 0 ? -1 : now - sentAgo, sends, flags);
      if ((flags & DUE) !== 0) this.due++;
    }
    this.sendNext = sendNext;
    const [held, heldOff, inMsgs] = d.in;
    if (d.ackApp !== undefined) this.ackApp = d.ackApp;
    if (d.again !== undefined) this.markAgain(d.again[0], d.again[1]);
    this.inr.restart(held, heldOff);
    for (const [seq, off, payload] of inMsgs) {
      if (this.inr.check(seq, off, payload.length) === DUPLICATE) throw hfError(ErrorCode.STATE, `snapshot repeats message ${seq}`);
      this.inr.store(seq, off, payload, 0, payload.length);
    }
    if (d.peerLimits !== null) this.setPeerLimits(d.peerLimits);
    this.peerRing = d.peerRing ?? null;
    [this.peerWndSeq, this.peerWndOff, this.peerMaxMessage] = d.peer;
    this.rtt.fromData(d.rtt);
    const [rackAgo, ackAgo, heardAgo, sentAgo] = d.times;
    this.rackTime = rackAgo < 0 ? -1 : now - rackAgo;
    this.ackOwed = ackAgo !== -2;
    this.ackOwedSince = ackAgo < 0 ? -1 : now - ackAgo;
    this.lastHeard = now - heardAgo;
    this.lastSent = now - sentAgo;
    // Whether delivery is paused belongs to the application, which starts afresh wherever this lands.
    this.paused = false;
    this.markAdvertised();
    this.retxAt = NaN;
  }

  /** Durability: where sends, releases and deliveries are journaled (device), or null. */
  journal: JournalSink | null = null;
  /** Acknowledge only messages the application consumed (set while a journal is attached). */
  ackConsumed = false;
  /**
   * ackAfter 'app': a message handed to the application stays in the in-ring, unacknowledged, until
   * the application confirms it (`confirm`); the acknowledgement and the window count from there.
   */
  ackApp = false;

  /** The peer's reader limits once known (kept for snapshots). */
  peerLimits: Limits | null = null;

  /** Records the window ends this side just told (or is about to tell) the peer. */
  private markAdvertised(): void {
    this.advSeq = (this.inr.next + this.inr.windowMsgs) >>> 0;
    this.advOff = (this.inr.heldOff + this.inr.bytes) >>> 0;
    this.ackedSeq = this.inr.next;
    this.ackedOff = this.inr.nextOff;
  }

  // ---- redeliveries -----------------------------------------------------------------------------

  /** Messages [againFrom, againFrom + againCount) may have reached an application before. */
  private againFrom = 0;
  private againCount = 0;

  /**
   * Marks `count` messages from `from` as possibly delivered before: a successor session's carried
   * messages (the hello's `again`), or unconfirmed ones handed over again after a restore.
   */
  markAgain(from: number, count: number): void {
    this.againFrom = from >>> 0;
    this.againCount = count >>> 0;
  }

  /**
   * Delivers messages only before `seq` from now on (a later call moves the gate on; the caller then
   * delivers). A pair's primary gates each session at what its standby holds.
   */
  gate(seq: number): void {
    this.gated = true;
    this.gateSeq = seq >>> 0;
  }

  /**
   * Whether a gated endpoint (gate()) has messages, received in order, that its application has not
   * consumed (or confirmed) yet: waiting at the gate for the standby, or delivered and not confirmed.
   */
  get gateBacklog(): boolean {
    return this.gated && behind(this.inr.held, this.inr.next);
  }

  /** Whether message `seq` may have reached an application before (see `markAgain`). */
  isAgain(seq: number): boolean {
    return this.againCount > 0 && dist(seq, this.againFrom) < this.againCount;
  }

  /** What a restore of this state marks: the messages handed over and not confirmed, and those marked already. */
  private againAfterRestore(): [number, number] | undefined {
    const inr = this.inr;
    const end = this.againCount > 0 && !behind((this.againFrom + this.againCount) >>> 0, inr.read) ? (this.againFrom + this.againCount) >>> 0 : inr.read;
    const n = dist(end, inr.held);
    return n > 0 && !behind(end, inr.held) ? [inr.held, n] : undefined;
  }

  // ---- delivery --------------------------------------------------------------------------------

  /**
   * Hands in-order messages to `fn` until none is left or `fn` returns false (then delivery pauses
   * until `resume`). If consuming opened the window by half or more since it was last advertised, a
   * window update becomes owed.
   */
  deliver(fn: DeliverFn, now: number): number {
    const inr = this.inr;
    let n = 0;
    const app = this.ackApp;
    while (!this.paused && (!this.gated || behind(inr.read, this.gateSeq)) && inr.peek()) {
      const go = fn(inr.viewBuf, inr.viewOff, inr.viewLen, inr.read);
      if (app) inr.handOver();
      else inr.release();
      n++;
      if (!go) this.paused = true;
    }
    if (n > 0 && !app) {
      if (this.journal !== null) this.journal.delivered(inr.read, inr.readOff);
      this.windowOpened(now);
    }
    return n;
  }

  /**
   * ackAfter 'app': the application confirms message `seq` and every one handed to it before: they
   * leave the in-ring and are acknowledged to the peer (after `ackDelayMs`, or at once when the
   * window opened by half the ring). Throws HF_ERR_CONFIRM, changing nothing, for a message not
   * handed over yet (the deliver call of `seq` itself included: confirm after it returned) or already
   * confirmed, and when ackAfter is not 'app'. Returns how many were freed.
   */
  confirm(seq: number, now: number): number {
    const inr = this.inr;
    if (!this.ackApp) throw hfError(ErrorCode.CONFIRM, `confirm of message ${seq}, but ackAfter is 'received': messages are acknowledged as they arrive`);
    if (!inr.isConfirmable(seq)) {
      const why = behind(seq, inr.held) ? 'was already confirmed' : 'was not delivered yet';
      throw hfError(ErrorCode.CONFIRM, `message ${seq} ${why} (confirmable: [${inr.held}, ${inr.read}))`);
    }
    const n = inr.confirm((seq + 1) >>> 0);
    if (this.journal !== null) this.journal.delivered(inr.held, inr.heldOff);
    this.owe(now);
    this.windowOpened(now);
    return n;
  }

  /** Owes the peer a window update at once if half the ring (slots or bytes) opened since the last advertisement. */
  private windowOpened(now: number): void {
    const inr = this.inr;
    const end = (inr.next + inr.windowMsgs) >>> 0;
    const endOff = (inr.heldOff + inr.bytes) >>> 0;
    const msgs = dist(end, this.advSeq);
    const bytes = dist(endOff, this.advOff);
    if ((msgs >= inr.slots / 2 && !behind(end, this.advSeq)) || (bytes >= inr.bytes / 2 && !behind(endOff, this.advOff))) {
      // The peer may be stopped at the old window end: tell it now.
      this.owe(now);
      this.ackOwedSince = -Infinity;
    }
  }
}
