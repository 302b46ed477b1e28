/**
 * Control items: the rare, non-message parts of a bundle, each a CBOR array `[kind, fields]` with
 * `fields` a map of text keys. Encoded and decoded with cbor-value.ts (they are not on the per-message
 * path); byte strings go out inside tag 64, as in the examples of docs/PROTOCOL.md section 12.
 *
 *   [1, {id, n, nonce, proof, seq, off, lim, ring, again, lab}] hello: device id, hello counter, proof of
 *                                            the key, first seq/offset, what its reader accepts, how
 *                                            many of its first messages may have reached a session
 *                                            before, its labels (placement in a cluster)
 *   [2, {seq, off, hold, idle, held, lim, ring}] welcome: server's first seq/offset, hold/idle limits, held
 *                                            count, what its reader accepts
 *   [3, {end}]                               close: the sender will send no message at or after `end`
 *   [4, {code, message}]                     error: the session ends with this code
 *   [5, {url, tcp}]                          moved: the session is served at this gateway now
 */
import { CborReader, MajorType, U32_MAX } from './cbor';
import { decodeValue, encodeValue } from './cbor-value';
import { ErrorCode, hfError, isHfError } from './errors';

export const Ctl = { HELLO: 1, WELCOME: 2, CLOSE: 3, ERROR: 4, MOVED: 5 } as const;

/**
 * A sender's out-ring: [slots, bytes]. The most it can have unacknowledged, which may be less than the
 * receiver's window: the receiver acknowledges at once when half of the smaller one has arrived.
 */
export type Ring = [number, number];

/** A receiver's bundle limits: [maxMessages, maxBundleBytes, maxMessage, maxSackRanges, maxControls]. */
export type Limits = [number, number, number, number, number];

export interface Hello {
  kind: typeof Ctl.HELLO;
  /** Device id (1..128 characters). */
  id: string;
  /** Random bytes chosen by the device for this hello (8..64 bytes). */
  nonce: Uint8Array;
  /** Proof of the device key over the nonce (0..64 bytes; verified by the gateway's authenticator). */
  proof: Uint8Array;
  /** First sequence number and byte offset of the device's messages. */
  seq: number;
  off: number;
  /** Hello counter: grows with every new session of this device, so an old hello cannot be replayed. */
  n: number;
  /** What the device's reader accepts. */
  lim: Limits;
  /** The device's out-ring [slots, bytes] (optional). */
  ring?: Ring;
  /**
   * How many of the device's first messages (from `seq`) a previous session may already have
   * delivered: a successor's carried messages (PROTOCOL 11.7). Optional; absent: none.
   */
  again?: number;
  /**
   * The device's labels (optional; at most MAX_LABELS, keys 1..64 and values up to 256 characters),
   * which a cluster places the session by. Advisory: not covered by `proof`.
   */
  lab?: Record<string, string>;
}

/** Most labels a hello carries. */
export const MAX_LABELS = 32;

export interface Welcome {
  kind: typeof Ctl.WELCOME;
  seq: number;
  off: number;
  /** Longest the server holds a request, ms. */
  hold: number;
  /** Silence after which the server ends the session, ms. */
  idle: number;
  /** Most requests the server holds at once. */
  held: number;
  /** What the server's reader accepts. */
  lim: Limits;
  /** The gateway's out-ring [slots, bytes] (optional). */
  ring?: Ring;
  /**
   * The gateways a device may use for this session (optional): [URL, direct TCP "host:port" or ""]
   * each, at most MAX_WELCOME_GATEWAYS (a pair's nodes; the device adds those it did not know).
   */
  gw?: GatewayAddress[];
}

/** A gateway as a welcome names it: its URL and its direct TCP address ("" for none). */
export type GatewayAddress = [url: string, tcp: string];

/** Most gateways a welcome names. */
export const MAX_WELCOME_GATEWAYS = 8;

export interface Close {
  kind: typeof Ctl.CLOSE;
  end: number;
}

export interface ErrorItem {
  kind: typeof Ctl.ERROR;
  code: string;
  message: string;
}

/**
 * The session is served by another gateway of a cluster now (it was handed there): its URL and direct
 * TCP address ("" none). The device moves to it, adding it to the gateways it knows.
 */
export interface Moved {
  kind: typeof Ctl.MOVED;
  url: string;
  tcp: string;
}

export type Control = Hello | Welcome | Close | ErrorItem | Moved;

/** Encodes a control item (allocates; control items are rare). */
export function encodeControl(c: Control): Uint8Array {
  switch (c.kind) {
    case Ctl.HELLO:
      return encodeValue([
        c.kind,
        {
          id: c.id,
          n: c.n,
          nonce: c.nonce,
          proof: c.proof,
          seq: c.seq,
          off: c.off,
          lim: c.lim,
          ...(c.ring ? { ring: c.ring } : {}),
          ...(c.again ? { again: c.again } : {}),
          ...(c.lab && Object.keys(c.lab).length > 0 ? { lab: c.lab } : {}),
        },
      ]);
    case Ctl.WELCOME:
      return encodeValue([
        c.kind,
        { seq: c.seq, off: c.off, hold: c.hold, idle: c.idle, held: c.held, lim: c.lim, ...(c.ring ? { ring: c.ring } : {}), ...(c.gw && c.gw.length > 0 ? { gw: c.gw } : {}) },
      ]);
    case Ctl.CLOSE:
      return encodeValue([c.kind, { end: c.end }]);
    case Ctl.ERROR:
      return encodeValue([c.kind, { code: c.code, message: c.message.length > 1024 ? c.message.slice(0, 1021) + '...' : c.message }]);
    case Ctl.MOVED:
      return encodeValue([c.kind, { url: c.url, tcp: c.tcp }]);
  }
}

function u32(f: Record<string, unknown>, k: string): number {
  const v = f[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw hfError(ErrorCode.BUNDLE, `control field ${k} must be a u32, got ${String(v)}`);
  return v;
}

function limits(f: Record<string, unknown>): Limits {
  const v = f.lim;
  if (!Array.isArray(v) || v.length !== 5) throw hfError(ErrorCode.BUNDLE, 'control field lim must be [maxMessages, maxBundleBytes, maxMessage, maxSackRanges, maxControls]');
  const l = v.map((x) => u32({ lim: x }, 'lim')) as Limits;
  if (l[0] < 1 || l[1] < 256 || l[4] < 2) throw hfError(ErrorCode.BUNDLE, `control field lim ${JSON.stringify(l)} is below the protocol minimum`);
  return l;
}

/** The optional `ring` field: the sender's out-ring [slots, bytes] (absent: unknown). */
function ring(f: Record<string, unknown>): Ring | undefined {
  const v = f.ring;
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== 2) throw hfError(ErrorCode.BUNDLE, 'control field ring must be [slots, bytes]');
  const r = v.map((x) => u32({ ring: x }, 'ring')) as Ring;
  if (r[0] < 1 || r[1] < 1) throw hfError(ErrorCode.BUNDLE, `control field ring ${JSON.stringify(r)} must be at least [1, 1]`);
  return r;
}

function withRing(f: Record<string, unknown>): { ring?: Ring } {
  const r = ring(f);
  return r === undefined ? {} : { ring: r };
}

/** The welcome's optional `gw` field: [[url, tcp], ...] of short texts (their form is the device's to check). */
function gateways(v: unknown): GatewayAddress[] {
  if (!Array.isArray(v) || v.length > MAX_WELCOME_GATEWAYS) throw hfError(ErrorCode.BUNDLE, `control field gw must be a list of at most ${MAX_WELCOME_GATEWAYS} [url, tcp]`);
  return v.map((g) => {
    if (!Array.isArray(g) || g.length !== 2 || typeof g[0] !== 'string' || typeof g[1] !== 'string' || g[0].length > 512 || g[1].length > 300)
      throw hfError(ErrorCode.BUNDLE, 'control field gw: each entry must be [url, tcp] texts (url ≤ 512, tcp ≤ 300 characters)');
    return [g[0], g[1]] as GatewayAddress;
  });
}

/** The hello's optional `lab` field: a map of short texts. */
function labels(v: unknown): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw hfError(ErrorCode.BUNDLE, 'control field lab must be a map of texts');
  const keys = Object.keys(v);
  if (keys.length > MAX_LABELS) throw hfError(ErrorCode.BUNDLE, `control field lab must have at most ${MAX_LABELS} labels, got ${keys.length}`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const val = (v as Record<string, unknown>)[k];
    if (k.length < 1 || k.length > 64 || typeof val !== 'string' || val.length > 256)
      throw hfError(ErrorCode.BUNDLE, 'control field lab: each label must be a key of 1..64 characters and a text of at most 256');
    out[k] = val;
  }
  return out;
}

/** Limits as a tuple, for hello and welcome. */
export function limitsOf(o: { maxMessages: number; maxBundleBytes: number; maxMessage: number; maxSackRanges: number; maxControls: number }): Limits {
  return [o.maxMessages, o.maxBundleBytes, o.maxMessage, o.maxSackRanges, o.maxControls];
}

/** Tuple back to named limits. */
export function limitsFrom(l: Limits) {
  return { maxMessages: l[0], maxBundleBytes: l[1], maxMessage: l[2], maxSackRanges: l[3], maxControls: l[4] };
}

function bytes(f: Record<string, unknown>, k: string, min: number, max: number): Uint8Array {
  const v = f[k];
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) throw hfError(ErrorCode.BUNDLE, `control field ${k} must be ${min}..${max} bytes`);
  return v;
}

function text(f: Record<string, unknown>, k: string, max: number): string {
  const v = f[k];
  if (typeof v !== 'string' || v.length > max) throw hfError(ErrorCode.BUNDLE, `control field ${k} must be text of at most ${max} characters`);
  return v;
}

/** The fields of each kind this version knows; other keys are skipped unread (a later version's). */
const FIELDS: Record<number, readonly string[] | undefined> = {
  [Ctl.HELLO]: ['id', 'n', 'nonce', 'proof', 'seq', 'off', 'lim', 'ring', 'again', 'lab'],
  [Ctl.WELCOME]: ['seq', 'off', 'hold', 'idle', 'held', 'lim', 'ring', 'gw'],
  [Ctl.CLOSE]: ['end'],
  [Ctl.ERROR]: ['code', 'message'],
  [Ctl.MOVED]: ['url', 'tcp'],
};

const SHAPE = 'control item must be [kind, {fields}]';
const r = new CborReader();

/** The next item of `r` as a value. An integer beyond 2^53-1 is an invalid field here (HF_ERR_BUNDLE). */
function nextValue(): unknown {
  const start = r.pos;
  r.skip();
  try {
    return decodeValue(r.buf, start, r.pos);
  } catch (e) {
    if (isHfError(e) && e.code === ErrorCode.LIMIT) throw hfError(ErrorCode.BUNDLE, `control item: ${e.message}`, e);
    throw e;
  }
}

/**
 * Decodes and validates one control item from `buf[start, end)`. Returns null for a kind this version
 * does not know (ignored, for forward compatibility); throws HF_ERR_CBOR if the item is not well-formed
 * CBOR and HF_ERR_BUNDLE for a malformed one. Only the fields of a known kind are decoded: unknown
 * kinds and unknown keys may hold any well-formed CBOR (PROTOCOL.md sections 2 and 7).
 */
export function decodeControl(buf: Uint8Array, start: number, end: number): Control | null {
  r.reset(buf, start, end);
  r.skip();
  if (r.pos !== end) throw hfError(ErrorCode.CBOR, `control item: ${end - r.pos} bytes after the item at byte ${r.pos}`);
  r.reset(buf, start, end);
  if (r.peekMajor() !== MajorType.ARRAY || r.arrayHeader('control item', U32_MAX) !== 2) throw hfError(ErrorCode.BUNDLE, SHAPE);
  const kind = nextValue();
  if (typeof kind !== 'number' || r.peekMajor() !== MajorType.MAP) throw hfError(ErrorCode.BUNDLE, SHAPE);
  const pairs = r.mapHeader('control fields', U32_MAX);
  const names = FIELDS[kind];
  if (names === undefined) return null;
  const f: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (let i = 0; i < pairs; i++) {
    if (r.peekMajor() !== MajorType.TEXT) throw hfError(ErrorCode.BUNDLE, `control field name at byte ${r.pos} is not text`);
    const k = nextValue() as string;
    if (seen.has(k)) throw hfError(ErrorCode.BUNDLE, `control field ${k} appears twice`);
    seen.add(k);
    if (names.includes(k)) f[k] = nextValue();
    else r.skip();
  }
  switch (kind) {
    case Ctl.HELLO: {
      const id = text(f, 'id', 128);
      if (id.length === 0) throw hfError(ErrorCode.BUNDLE, 'hello id is empty');
      return {
        kind: Ctl.HELLO,
        id,
        n: u32(f, 'n'),
        nonce: bytes(f, 'nonce', 8, 64),
        proof: bytes(f, 'proof', 0, 64),
        seq: u32(f, 'seq'),
        off: u32(f, 'off'),
        lim: limits(f),
        ...withRing(f),
        ...(f.again === undefined ? {} : { again: u32(f, 'again') }),
        ...(f.lab === undefined ? {} : { lab: labels(f.lab) }),
      };
    }
    case Ctl.WELCOME:
      return {
        kind: Ctl.WELCOME,
        seq: u32(f, 'seq'),
        off: u32(f, 'off'),
        hold: u32(f, 'hold'),
        idle: u32(f, 'idle'),
        held: u32(f, 'held'),
        lim: limits(f),
        ...withRing(f),
        ...(f.gw === undefined ? {} : { gw: gateways(f.gw) }),
      };
    case Ctl.CLOSE:
      return { kind: Ctl.CLOSE, end: u32(f, 'end') };
    case Ctl.ERROR:
      return { kind: Ctl.ERROR, code: text(f, 'code', 64), message: text(f, 'message', 1024) };
    case Ctl.MOVED:
      return { kind: Ctl.MOVED, url: text(f, 'url', 512), tcp: text(f, 'tcp', 300) };
    default:
      return null;
  }
}
