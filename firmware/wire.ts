/**
 * The bundle: one CBOR map per HTTP request body, HTTP response body or TCP frame. See
 * docs/PROTOCOL.md for every field, its type and its limits.
 *
 *   { 0: version, 1: session id, 2: request number, 3: ack, 4: sack ranges, 5: window,
 *     6: message runs, 7: control items, 9: piece, 10: part, 11: room, 8: tag }
 *
 * 9-11 carry a message in pieces over a path that only lets small bundles through (PROTOCOL 5.1):
 * `piece` is [seq, off, at, total, bytes]: bytes [at, at+len) of message seq (stream offset off,
 * total bytes long); `part` is [seq, bytes]: the receiver holds the first `bytes` bytes of message
 * seq, its next in order; `room` is [bytes, lost rn...]: a request asking for an answer of at most
 * `bytes` bytes and naming requests whose answers were lost.
 *
 * The tag (see auth.ts), when present, is the last field: 16 bytes authenticating every byte of the
 * bundle before them.
 *
 * `BundleWriter` writes from the out-ring and the in-ring's acknowledgement state straight into one
 * buffer it allocated once; `BundleReader` validates a whole body into a `BundleView` of numbers and
 * offsets (also allocated once) before anything is applied, so bad input changes no session state.
 * Neither allocates per message. Control items are rare and go through the general CBOR value codec (cbor-value.ts, see control.ts).
 */
import { CborReader, CborWriter, headerSize } from './cbor';
import { before, behind } from './check';
import { ErrorCode, hfError } from './errors';
import { type OutRing, memory } from './out-ring';

export const WIRE_VERSION = 1;

export const Key = {
  VERSION: 0,
  SID: 1,
  RN: 2,
  ACK: 3,
  SACK: 4,
  WIN: 5,
  MSGS: 6,
  CTL: 7,
  TAG: 8,
  PIECE: 9,
  PART: 10,
  ROOM: 11,
} as const;

/** Most lost request numbers a `room` field names. */
export const MAX_LOST = 4;

/** How many request numbers below its newest one a gateway still accepts (once each); older ones are replays. */
export const RN_WINDOW = 32;
/** Smallest answer a `room` field may ask for (a bundle header and a small piece). */
export const MIN_ROOM = 256;
/** Bytes a `piece` field takes besides its payload: key, array(5), four u32 and the bytes header. */
export const PIECE_OVERHEAD = 1 + 1 + 4 * 5 + 5;

export const SID_BYTES = 16;
/** Bytes of the tag field's value (see auth.ts). */
export const TAG_LEN = 16;

export interface WireLimits {
  /** Most messages in one bundle (default 512). */
  maxMessages?: number;
  /** Largest bundle body in bytes (default 262144). */
  maxBundleBytes?: number;
  /** Largest message payload in bytes (default 65536). */
  maxMessage?: number;
  /** Most selective-ack ranges in one bundle (default 8). */
  maxSackRanges?: number;
  /** Most control items in one bundle (default 4). */
  maxControls?: number;
}

export const WIRE_DEFAULTS: Required<WireLimits> = {
  maxMessages: 512,
  maxBundleBytes: 262144,
  maxMessage: 65536,
  maxSackRanges: 8,
  maxControls: 4,
};

/**
 * The five wire limits of `l` (a link's whole options may be given), defaults for those unset: always
 * an object of one shape (a gateway keeps two per session).
 */
function wireLimits(l: WireLimits): Required<WireLimits> {
  const d = WIRE_DEFAULTS;
  return {
    maxMessages: l.maxMessages ?? d.maxMessages,
    maxBundleBytes: l.maxBundleBytes ?? d.maxBundleBytes,
    maxMessage: l.maxMessage ?? d.maxMessage,
    maxSackRanges: l.maxSackRanges ?? d.maxSackRanges,
    maxControls: l.maxControls ?? d.maxControls,
  };
}

/** Largest header a bundle without messages takes, with every ack field and no control items. */
export function headerBudget(limits: Required<WireLimits>): number {
  // map(9) + version + sid + rn + ack + sack pairs + window + msgs/ctl array headers + tag.
  return 1 + 2 + (2 + 1 + SID_BYTES) + 2 * 6 + 1 + 3 + limits.maxSackRanges * 2 * 5 + 1 + 1 + 2 * 5 + 2 * 3 + (1 + 1 + TAG_LEN);
}

/** Header fields of an outgoing bundle. */
export interface BundleHead {
  sid: Uint8Array | null;
  rn: number;
  ack: number;
  winMsgs: number;
  winBytes: number;
}

/**
 * What one peer's bundles may carry: its reader's limits met with this side's (`limitTo`) and the
 * link's current byte cap (`sizeCap`). A writer shared by many sessions is handed each session's
 * own before it writes (`BundleWriter.caps`).
 */
export interface WriterCaps {
  messages: number;
  bytes: number;
  sacks: number;
  /** Bytes the next bundles should stay within (Infinity: no cap below `bytes`). */
  sizeCap: number;
}

/**
 * Writes bundles into one buffer of `maxBundleBytes`. Call `begin`, optionally `sack` for each range
 * and `message` for each chosen sequence number (ascending), `control` for pre-encoded control items,
 * then `finish`, which returns the body length; the body is `buf[0, length)`, valid until the next
 * `begin`.
 */
export class BundleWriter {
  readonly buf: Uint8Array;
  private readonly w: CborWriter;
  private readonly limits: Required<WireLimits>;
  private readonly sacks: Uint32Array;
  private sackCount = 0;
  private readonly seqs: Uint32Array;
  private msgCount = 0;
  private msgBytes = 0;
  private ctls: Uint8Array[] = [];
  private ctlBytes = 0;
  /** A piece to write: message pieceSeq's bytes [pieceAt, pieceAt + pieceLen); pieceLen 0: none. */
  private pieceSeq = 0;
  private pieceAt = 0;
  private pieceLen = 0;
  /** The part field: partBytes > 0 says the first partBytes of message partSeq are here. */
  private partSeq = 0;
  private partBytes = 0;
  /** The room field: roomBytes > 0 asks for an answer of at most that; lost request numbers follow. */
  private roomBytes = 0;
  private readonly lost: Uint32Array = new Uint32Array(MAX_LOST);
  private lostCount = 0;
  private head: BundleHead = { sid: null, rn: 0, ack: 0, winMsgs: 0, winBytes: 0 };
  private ring: OutRing | null = null;
  /** What the peer's reader accepts (never above this side's own limits), and the size cap: the writing session's. */
  caps: WriterCaps;

  /** `buf`, if given, is the memory bundles are written into (`maxBundleBytes` long). */
  constructor(limits: WireLimits = {}, buf?: Uint8Array) {
    this.limits = wireLimits(limits);
    this.buf = memory('bundle buffer', buf, this.limits.maxBundleBytes);
    this.w = new CborWriter(this.buf);
    this.sacks = new Uint32Array(this.limits.maxSackRanges * 2);
    this.seqs = new Uint32Array(this.limits.maxMessages);
    this.caps = this.newCaps();
    this.fixed = headerBudget(this.limits);
  }

  /** Caps at this writer's own limits, no size cap: a new session's, until its peer's limits are known. */
  newCaps(): WriterCaps {
    return { messages: this.limits.maxMessages, bytes: this.limits.maxBundleBytes, sacks: this.limits.maxSackRanges, sizeCap: Infinity };
  }

  /**
   * Bytes the next bundles should stay within (set by the link while the path cuts big requests). A
   * message larger than this does not go whole: the oldest unacknowledged one goes in pieces (see
   * `piece`), later ones wait until they are the oldest or the cap grows.
   */
  /** Narrows what bundles carry to what the peer's reader accepts (from its hello or welcome), in `caps`. */
  limitTo(peer: Required<WireLimits>, caps: WriterCaps = this.caps): void {
    caps.messages = Math.min(this.limits.maxMessages, peer.maxMessages);
    caps.bytes = Math.min(this.limits.maxBundleBytes, peer.maxBundleBytes);
    caps.sacks = Math.min(this.limits.maxSackRanges, peer.maxSackRanges);
  }

  begin(sid: Uint8Array | null, rn: number, ack: number, winMsgs: number, winBytes: number, ring: OutRing | null): void {
    const h = this.head;
    h.sid = sid;
    h.rn = rn >>> 0;
    h.ack = ack >>> 0;
    h.winMsgs = winMsgs;
    h.winBytes = winBytes;
    this.ring = ring;
    this.sackCount = 0;
    this.msgCount = 0;
    this.msgBytes = 0;
    this.ctls.length = 0;
    this.ctlBytes = 0;
    this.pieceLen = 0;
    this.partBytes = 0;
    this.roomBytes = 0;
    this.lostCount = 0;
  }

  /** Bytes left for messages (or a piece) in this bundle under `sizeCap`, after what was added. */
  get roomLeft(): number {
    return Math.min(this.caps.bytes, this.caps.sizeCap) - this.fixed - this.ctlBytes - this.msgBytes;
  }

  /** Whether message `seq` of the ring would fit this bundle under `sizeCap` (not only as the first). */
  fits(seq: number): boolean {
    const len = (this.ring as OutRing).lenOf(seq);
    return headerSize(len) + len + 11 <= this.roomLeft;
  }

  /** Adds a piece: bytes [at, at + len) of message `seq` of the ring given to `begin` (one per bundle, no messages beside it). */
  piece(seq: number, at: number, len: number): void {
    this.pieceSeq = seq >>> 0;
    this.pieceAt = at;
    this.pieceLen = len;
    this.msgBytes += PIECE_OVERHEAD + len;
  }

  /** Says the first `bytes` bytes of message `seq` (the next in order) are here. */
  part(seq: number, bytes: number): void {
    this.partSeq = seq >>> 0;
    this.partBytes = bytes;
    this.msgBytes += 1 + 1 + 10;
  }

  /** Asks for an answer of at most `bytes` bytes, naming requests whose answers were lost. */
  room(bytes: number, lost: ArrayLike<number>, lostCount: number): void {
    this.roomBytes = bytes;
    this.lostCount = Math.min(lostCount, MAX_LOST);
    for (let i = 0; i < this.lostCount; i++) this.lost[i] = lost[i];
    this.msgBytes += 1 + 1 + 5 * (1 + this.lostCount);
  }

  /** Adds a selective-ack range [start, end); returns false when the range table is full. */
  sack(start: number, end: number): boolean {
    if (this.sackCount >= this.caps.sacks) return false;
    this.sacks[this.sackCount * 2] = start;
    this.sacks[this.sackCount * 2 + 1] = end;
    this.sackCount++;
    return true;
  }

  /** Adds a pre-encoded control item. */
  control(item: Uint8Array): void {
    if (this.ctls.length === this.limits.maxControls) throw hfError(ErrorCode.LIMIT, `more than ${this.limits.maxControls} control items`);
    this.ctls.push(item);
    this.ctlBytes += item.length;
  }

  get messages(): number {
    return this.msgCount;
  }

  /** Upper bound of the bytes the bundle takes now. */
  /** Bytes every bundle may need besides messages and control items (computed once). */
  private readonly fixed: number;

  /**
   * Adds message `seq` of the out-ring given to `begin`, if it fits: returns false (adding nothing)
   * when the bundle already has `maxMessages` or the bytes would pass `maxBundleBytes`.
   * Sequence numbers must ascend.
   */
  message(seq: number): boolean {
    if (this.msgCount >= this.caps.messages || this.ring === null) return false;
    const len = this.ring.lenOf(seq);
    // Worst case every message starts a run of its own.
    const cost = headerSize(len) + len + 1 + 5 + 5;
    const cap = Math.min(this.caps.bytes, this.caps.sizeCap);
    if (this.fixed + this.ctlBytes + this.msgBytes + cost > cap) return false;
    this.seqs[this.msgCount++] = seq;
    this.msgBytes += cost;
    return true;
  }

  /**
   * Offset of the tag's 16 bytes in `buf` after a `finish(true)` (zeros until the sealer signs them);
   * -1 after `finish(false)`.
   */
  tagOff = -1;

  /** Writes the bundle, with room for a tag at its end if `tagged`; returns its length in bytes. */
  finish(tagged = false): number {
    const w = this.w;
    const h = this.head;
    w.reset();
    let pairs = 4; // version, rn, ack, win
    if (tagged) pairs++;
    if (h.sid !== null) pairs++;
    if (this.sackCount > 0) pairs++;
    if (this.msgCount > 0) pairs++;
    if (this.ctls.length > 0) pairs++;
    if (this.pieceLen > 0) pairs++;
    if (this.partBytes > 0) pairs++;
    if (this.roomBytes > 0) pairs++;
    w.mapHeader(pairs);
    w.uint(Key.VERSION);
    w.uint(WIRE_VERSION);
    if (h.sid !== null) {
      w.uint(Key.SID);
      w.bytes(h.sid);
    }
    w.uint(Key.RN);
    w.uint(h.rn);
    w.uint(Key.ACK);
    w.uint(h.ack);
    if (this.sackCount > 0) {
      w.uint(Key.SACK);
      w.arrayHeader(this.sackCount * 2);
      for (let i = 0; i < this.sackCount * 2; i++) w.uint(this.sacks[i]);
    }
    w.uint(Key.WIN);
    w.arrayHeader(2);
    w.uint(h.winMsgs);
    w.uint(h.winBytes);
    if (this.msgCount > 0) this.writeRuns();
    if (this.ctls.length > 0) {
      w.uint(Key.CTL);
      w.arrayHeader(this.ctls.length);
      for (let i = 0; i < this.ctls.length; i++) w.copy(this.ctls[i], 0, this.ctls[i].length);
    }
    if (this.pieceLen > 0) {
      const ring = this.ring as OutRing;
      w.uint(Key.PIECE);
      w.arrayHeader(5);
      w.uint(this.pieceSeq);
      w.uint(ring.offOf(this.pieceSeq));
      w.uint(this.pieceAt);
      w.uint(ring.lenOf(this.pieceSeq));
      ring.writePiece(this.pieceSeq, this.pieceAt, this.pieceLen, w);
    }
    if (this.partBytes > 0) {
      w.uint(Key.PART);
      w.arrayHeader(2);
      w.uint(this.partSeq);
      w.uint(this.partBytes);
    }
    if (this.roomBytes > 0) {
      w.uint(Key.ROOM);
      w.arrayHeader(1 + this.lostCount);
      w.uint(this.roomBytes);
      for (let i = 0; i < this.lostCount; i++) w.uint(this.lost[i]);
    }
    this.tagOff = -1;
    if (tagged) {
      w.uint(Key.TAG);
      w.bytesHeader(TAG_LEN);
      this.tagOff = w.pos;
      for (let i = 0; i < TAG_LEN; i++) w.buf[w.pos + i] = 0;
      w.pos += TAG_LEN;
    }
    return w.pos;
  }

  private writeRuns(): void {
    const w = this.w;
    const ring = this.ring as OutRing;
    const seqs = this.seqs;
    const n = this.msgCount;
    let runs = 1;
    for (let i = 1; i < n; i++) if (seqs[i] !== (seqs[i - 1] + 1) >>> 0) runs++;
    w.uint(Key.MSGS);
    w.arrayHeader(runs);
    let i = 0;
    while (i < n) {
      let j = i + 1;
      while (j < n && seqs[j] === (seqs[j - 1] + 1) >>> 0) j++;
      w.arrayHeader(2 + j - i);
      w.uint(seqs[i]);
      w.uint(ring.offOf(seqs[i]));
      for (let k = i; k < j; k++) ring.writePayload(seqs[k], w);
      i = j;
    }
  }
}

/**
 * A validated bundle: numbers and offsets into `buf`, refilled by each `BundleReader.read`. Message i
 * is sequence `seqs[i]`, stream offset `offs[i]`, payload `buf[starts[i], starts[i] + lens[i])`.
 */
export class BundleView {
  buf: Uint8Array = new Uint8Array(0);
  /** Where the bundle starts in `buf`. */
  start = 0;
  version = 0;
  /** The tag's 16 bytes are `buf[tagOff, tagOff + 16)`, covering `buf[start, tagOff)` (everything before them); -1: untagged. */
  tagOff = -1;
  /** Session id bytes are `buf[sidOff, sidOff + 16)`; -1 when the bundle has none. */
  sidOff = -1;
  rn = 0;
  ack = 0;
  winMsgs = 0;
  winBytes = 0;
  sackCount = 0;
  readonly sacks: Uint32Array;
  msgCount = 0;
  readonly seqs: Uint32Array;
  readonly offs: Uint32Array;
  readonly starts: Uint32Array;
  readonly lens: Uint32Array;
  /** Per message, what the receiving endpoint's validation found (NEW or DUPLICATE). */
  readonly verdicts: Uint8Array;
  ctlCount = 0;
  readonly ctlStarts: Uint32Array;
  readonly ctlEnds: Uint32Array;
  /** The piece field: pieceLen 0 when absent; its bytes are buf[pieceStart, pieceStart + pieceLen). */
  pieceSeq = 0;
  pieceOff = 0;
  pieceAt = 0;
  pieceTotal = 0;
  pieceStart = 0;
  pieceLen = 0;
  /** The part field: partBytes 0 when absent. */
  partSeq = 0;
  partBytes = 0;
  /** The room field: roomBytes 0 when absent. */
  roomBytes = 0;
  lostCount = 0;
  readonly lost = new Uint32Array(MAX_LOST);

  constructor(limits: Required<WireLimits>) {
    this.sacks = new Uint32Array(limits.maxSackRanges * 2);
    this.seqs = new Uint32Array(limits.maxMessages);
    this.offs = new Uint32Array(limits.maxMessages);
    this.starts = new Uint32Array(limits.maxMessages);
    this.lens = new Uint32Array(limits.maxMessages);
    this.verdicts = new Uint8Array(limits.maxMessages);
    this.ctlStarts = new Uint32Array(limits.maxControls);
    this.ctlEnds = new Uint32Array(limits.maxControls);
  }

  get hasSid(): boolean {
    return this.sidOff >= 0;
  }
}

const peeker = new CborReader();

/**
 * Where the session id of the bundle in `buf[start, end)` is (its 16 bytes start there), or -1 if it
 * has none or is malformed: a cheap walk over the top-level keys for routing before the full read.
 * Nothing is validated beyond that walk; the session's own read refuses a bad bundle.
 */
export function peekSid(buf: Uint8Array, start = 0, end = buf.length): number {
  const r = peeker;
  try {
    if (seekKey(r, buf, start, end, Key.SID)) {
      const n = r.bytes('sid', SID_BYTES);
      return n === SID_BYTES ? r.pos - n : -1;
    }
  } catch {
    // malformed: the full read says how
  }
  return -1;
}

/**
 * The request number of a bundle, from a walk of its header like `peekSid` (no allocation, no
 * validation of the rest): what a refusal answers to, without parsing the refused body again.
 * 0 when the header does not give one.
 */
export function peekRn(buf: Uint8Array, start = 0, end = buf.length): number {
  const r = peeker;
  try {
    if (seekKey(r, buf, start, end, Key.RN)) return r.uint('rn');
  } catch {
    // malformed: no number to answer to
  }
  return 0;
}

/** Moves `r` to the value of top-level key `key` of the bundle map in `buf[start, end)`; false if absent. */
function seekKey(r: CborReader, buf: Uint8Array, start: number, end: number, key: number): boolean {
  r.reset(buf, start, end);
  const pairs = r.mapHeader('bundle', 16);
  for (let i = 0; i < pairs; i++) {
    if (r.uint('key', 0xffff) === key) return true;
    r.skip();
  }
  return false;
}

/** Validates bundle bodies against the limits; one reader and one view per session or listener. */
export class BundleReader {
  readonly limits: Required<WireLimits>;
  readonly view: BundleView;
  private readonly r = new CborReader();

  constructor(limits: WireLimits = {}) {
    this.limits = wireLimits(limits);
    this.view = new BundleView(this.limits);
  }

  /**
   * Parses and validates `buf[start, end)` into `view`. Throws HF_ERR_CBOR (malformed or truncated),
   * HF_ERR_BUNDLE (wrong type, missing or repeated field, bad version) or HF_ERR_LIMIT (a count or
   * length over its limit). Touches no session state.
   */
  read(buf: Uint8Array, start = 0, end = buf.length): BundleView {
    const r = this.r;
    const v = this.view;
    const L = this.limits;
    if (end - start > L.maxBundleBytes) throw hfError(ErrorCode.LIMIT, `bundle of ${end - start} bytes, limit ${L.maxBundleBytes}`);
    r.reset(buf, start, end);
    v.buf = buf;
    v.start = start;
    v.tagOff = -1;
    v.sidOff = -1;
    v.sackCount = 0;
    v.msgCount = 0;
    v.ctlCount = 0;
    v.pieceLen = 0;
    v.partBytes = 0;
    v.roomBytes = 0;
    v.lostCount = 0;
    let seen = 0;
    const pairs = r.mapHeader('bundle', 16);
    for (let i = 0; i < pairs; i++) {
      const key = r.uint('key', 0xffff);
      if (key <= Key.ROOM) {
        if (seen & (1 << key)) throw hfError(ErrorCode.BUNDLE, `key ${key} appears twice`);
        seen |= 1 << key;
      }
      switch (key) {
        case Key.VERSION:
          v.version = r.uint('version');
          if (v.version !== WIRE_VERSION) throw hfError(ErrorCode.BUNDLE, `version ${v.version} is not ${WIRE_VERSION}`);
          break;
        case Key.SID: {
          const n = r.bytes('sid', SID_BYTES);
          if (n !== SID_BYTES) throw hfError(ErrorCode.BUNDLE, `sid of ${n} bytes, expected ${SID_BYTES}`);
          v.sidOff = r.pos - n;
          break;
        }
        case Key.RN:
          v.rn = r.uint('rn');
          break;
        case Key.ACK:
          v.ack = r.uint('ack');
          break;
        case Key.SACK: {
          const n = r.arrayHeader('sack', L.maxSackRanges * 2);
          if (n % 2 !== 0) throw hfError(ErrorCode.BUNDLE, `sack has ${n} numbers, expected pairs`);
          for (let k = 0; k < n; k++) v.sacks[k] = r.uint('sack');
          v.sackCount = n / 2;
          for (let k = 0; k < v.sackCount; k++) {
            const start = v.sacks[2 * k];
            const end = v.sacks[2 * k + 1];
            if (end === start || before(end, start)) throw hfError(ErrorCode.BUNDLE, `sack range [${start}, ${end}) is empty or reversed`);
          }
          break;
        }
        case Key.WIN:
          if (r.arrayHeader('win', 2) !== 2) throw hfError(ErrorCode.BUNDLE, 'win must be [messages, bytes]');
          v.winMsgs = r.uint('win.messages');
          v.winBytes = r.uint('win.bytes');
          break;
        case Key.MSGS:
          this.readRuns();
          break;
        case Key.CTL: {
          const n = r.arrayHeader('ctl', L.maxControls);
          for (let k = 0; k < n; k++) {
            v.ctlStarts[k] = r.pos;
            r.skip();
            v.ctlEnds[k] = r.pos;
          }
          v.ctlCount = n;
          break;
        }
        case Key.TAG: {
          if (i !== pairs - 1) throw hfError(ErrorCode.BUNDLE, 'tag must be the last field of the bundle');
          const n = r.bytes('tag', TAG_LEN);
          if (n !== TAG_LEN) throw hfError(ErrorCode.BUNDLE, `tag of ${n} bytes, expected ${TAG_LEN}`);
          v.tagOff = r.pos - n;
          break;
        }
        case Key.PIECE: {
          if (r.arrayHeader('piece', 5) !== 5) throw hfError(ErrorCode.BUNDLE, 'piece must be [seq, off, at, total, bytes]');
          v.pieceSeq = r.uint('piece.seq');
          v.pieceOff = r.uint('piece.off');
          v.pieceAt = r.uint('piece.at');
          v.pieceTotal = r.uint('piece.total');
          const n = r.bytes('piece.bytes', L.maxMessage);
          if (n === 0 || v.pieceTotal > L.maxMessage || v.pieceAt + n > v.pieceTotal) {
            throw hfError(ErrorCode.BUNDLE, `piece [${v.pieceAt}, +${n}) of a message of ${v.pieceTotal} bytes (limit ${L.maxMessage})`);
          }
          v.pieceStart = r.pos - n;
          v.pieceLen = n;
          break;
        }
        case Key.PART:
          if (r.arrayHeader('part', 2) !== 2) throw hfError(ErrorCode.BUNDLE, 'part must be [seq, bytes]');
          v.partSeq = r.uint('part.seq');
          v.partBytes = r.uint('part.bytes');
          if (v.partBytes === 0 || v.partBytes >= L.maxMessage) throw hfError(ErrorCode.BUNDLE, `part of ${v.partBytes} bytes (1..${L.maxMessage - 1})`);
          break;
        case Key.ROOM: {
          const n = r.arrayHeader('room', 1 + MAX_LOST);
          if (n < 1) throw hfError(ErrorCode.BUNDLE, 'room must be [bytes, lost rn...]');
          v.roomBytes = r.uint('room.bytes');
          if (v.roomBytes < MIN_ROOM) throw hfError(ErrorCode.BUNDLE, `room of ${v.roomBytes} bytes, at least ${MIN_ROOM}`);
          for (let k = 1; k < n; k++) v.lost[k - 1] = r.uint('room.lost');
          v.lostCount = n - 1;
          break;
        }
        default:
          r.skip(); // unknown key: a later version's field
      }
    }
    if (!r.done) throw hfError(ErrorCode.CBOR, `${r.end - r.pos} bytes after the bundle`);
    if (v.pieceLen > 0 && v.msgCount > 0) throw hfError(ErrorCode.BUNDLE, 'a piece rides alone: no message runs beside it');
    const required = (1 << Key.VERSION) | (1 << Key.RN) | (1 << Key.ACK) | (1 << Key.WIN);
    if ((seen & required) !== required) {
      const missing = ['version', 'sid', 'rn', 'ack', 'sack', 'win'].filter((_, k) => (required & (1 << k)) !== 0 && (seen & (1 << k)) === 0);
      throw hfError(ErrorCode.BUNDLE, `missing ${missing.join(', ')}`);
    }
    return v;
  }

  private readRuns(): void {
    const r = this.r;
    const v = this.view;
    const L = this.limits;
    const runs = r.arrayHeader('msgs', L.maxMessages);
    let total = 0;
    let prevEnd = -1;
    for (let i = 0; i < runs; i++) {
      const items = r.arrayHeader('run', L.maxMessages + 2);
      if (items < 3) throw hfError(ErrorCode.BUNDLE, `run ${i} has ${items} items, expected [seq, off, payload...]`);
      const k = items - 2;
      if (total + k > L.maxMessages) throw hfError(ErrorCode.LIMIT, `more than ${L.maxMessages} messages`);
      let seq = r.uint('run.seq');
      let off = r.uint('run.off');
      if (prevEnd >= 0 && behind(seq, prevEnd)) {
        throw hfError(ErrorCode.BUNDLE, `run ${i} starts at ${seq}, before the previous run ended (${prevEnd})`);
      }
      for (let m = 0; m < k; m++) {
        const len = r.bytes('payload', L.maxMessage);
        v.seqs[total] = seq;
        v.offs[total] = off;
        v.starts[total] = r.pos - len;
        v.lens[total] = len;
        total++;
        seq = (seq + 1) >>> 0;
        off = (off + len) >>> 0;
      }
      prevEnd = seq;
    }
    v.msgCount = total;
  }
}
