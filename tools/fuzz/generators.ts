/**
 * Valid inputs for the fuzzer, each drawn from a seeded Prng: CBOR values, control items, bundles
 * (untagged, hellos with a correct proof, and keyed session bundles with a correct tag), mux frames
 * and TCP frame streams. Every generator returns bytes that its decoder must accept as they are; the
 * mutators (mutators.ts) then break them.
 */
import { helloProof, type Sealer } from '../../firmware/auth';
import { CborWriter } from '../../firmware/cbor';
import { encodeValue } from '../../firmware/cbor-value';
import { Ctl, type Control, encodeControl } from '../../firmware/control';
import { MuxOp, type MuxFrame, encodeFrame } from '../../firmware/mux-frame';
import { Key, MAX_LOST, MIN_ROOM, SID_BYTES, TAG_LEN, WIRE_DEFAULTS, WIRE_VERSION } from '../../firmware/wire';
import type { Crypto } from '../../hal/crypto';
import type { Prng } from '../../targets/sim/prng';
import { frame } from '../../targets/host/net/frames';

/** Integers at the edges of CBOR's head sizes and of u32/u53 arithmetic. */
export const INTERESTING = [0, 1, 23, 24, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER];

export function bytesOf(p: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  p.fill(b);
  return b;
}

/** A length that is usually small and sometimes up to `max`. */
function len(p: Prng, max: number): number {
  return p.chance(0.8) ? p.int(Math.min(max, 32) + 1) : p.int(max + 1);
}

function u32(p: Prng): number {
  return p.chance(0.3) ? INTERESTING[p.int(12)] : p.u32();
}

const WORDS = ['', 'a', 'id', 'ümlaut', '日本', '😀', '__proto__', 'constructor', 'x'.repeat(40)];

function text(p: Prng): string {
  if (p.chance(0.5)) return WORDS[p.int(WORDS.length)];
  let s = '';
  const n = len(p, 64);
  for (let i = 0; i < n; i++) s += String.fromCharCode(0x20 + p.int(0x5f));
  return s;
}

/** A value encodeValue can write, nested at most `depth` more levels. */
export function genJsValue(p: Prng, depth = 4): unknown {
  const k = p.int(depth > 0 ? 11 : 8);
  switch (k) {
    case 0:
      return INTERESTING[p.int(INTERESTING.length)] * (p.chance(0.3) ? -1 : 1);
    case 1:
      return p.int(1000);
    case 2:
      return [0.5, -0, Number.NaN, Infinity, -Infinity, 1e300, 2 ** 53 + 2][p.int(7)];
    case 3:
      return text(p);
    case 4:
      return bytesOf(p, len(p, 300));
    case 5:
      return [null, true, false, undefined][p.int(4)];
    case 6:
      return p.u32();
    case 7:
      return -p.int(100000);
    case 8:
    case 9: {
      const a: unknown[] = [];
      const n = len(p, 20);
      for (let i = 0; i < n; i++) a.push(genJsValue(p, depth - 1));
      return a;
    }
    default: {
      const o: Record<string, unknown> = {};
      const n = len(p, 12);
      for (let i = 0; i < n; i++) Object.defineProperty(o, text(p) + i, { value: genJsValue(p, depth - 1), enumerable: true, writable: true, configurable: true });
      return o;
    }
  }
}

export function genValue(p: Prng): Uint8Array {
  return encodeValue(genJsValue(p));
}

const LIM_OK = (p: Prng): [number, number, number, number, number] => [1 + p.int(1024), 256 + p.int(1 << 20), p.int(1 << 17), p.int(16), 2 + p.int(8)];

/** A control item of a known kind (or, sometimes, an unknown kind or extra fields: skipped, still valid). */
export function genControlValue(p: Prng): Control {
  switch (p.int(5)) {
    case 4:
      return { kind: Ctl.MOVED, url: text(p).slice(0, 512), tcp: text(p).slice(0, 300) };
    case 0:
      return {
        kind: Ctl.HELLO,
        id: 'd' + text(p).slice(0, 100),
        n: p.u32(),
        nonce: bytesOf(p, 8 + p.int(57)),
        proof: bytesOf(p, p.int(65)),
        seq: u32(p),
        off: u32(p),
        lim: LIM_OK(p),
        ...(p.chance(0.5) ? { ring: [1 + p.int(4096), 1 + p.int(1 << 20)] as [number, number] } : {}),
        ...(p.chance(0.3) ? { lab: { site: text(p).slice(0, 256), [`k${p.int(9)}`]: text(p).slice(0, 256) } } : {}),
      };
    case 1:
      return { kind: Ctl.WELCOME, seq: u32(p), off: u32(p), hold: p.int(60000), idle: p.int(600000), held: p.int(16), lim: LIM_OK(p) };
    case 2:
      return { kind: Ctl.CLOSE, end: u32(p) };
    default:
      return { kind: Ctl.ERROR, code: 'HF_ERR_' + text(p).slice(0, 20), message: text(p) };
  }
}

export function genControl(p: Prng): Uint8Array {
  if (p.chance(0.1)) return encodeValue([6 + p.int(100), { x: genJsValue(p, 2) }]);
  const c = genControlValue(p);
  if (p.chance(0.1)) {
    // A later version's field, which this version skips unread.
    const { kind, ...fields } = c;
    return encodeValue([kind, { ...fields, later: genJsValue(p, 2) }]);
  }
  return encodeControl(c);
}

/** What a generated bundle carries. */
export interface BundleSpec {
  sid: Uint8Array | null;
  rn: number;
  ack: number;
  sacks: number[];
  win: [number, number];
  /** Runs of messages: first seq, first offset, payloads. */
  runs: { seq: number; off: number; payloads: Uint8Array[] }[];
  ctls: Uint8Array[];
  /** Unknown keys (a later version's fields) with their encoded values. */
  extra: { key: number; value: Uint8Array }[];
  tagged: boolean;
}

/** Encodes a bundle; a tagged one gets 16 zero bytes as its tag (see `seal`). */
export function encodeBundle(s: BundleSpec): Uint8Array {
  let size = 128 + s.sacks.length * 5 + s.ctls.reduce((n, c) => n + c.length, 0) + s.extra.reduce((n, e) => n + e.value.length + 3, 0);
  for (const r of s.runs) for (const m of r.payloads) size += m.length + 5;
  size += s.runs.length * 12;
  const w = new CborWriter(new Uint8Array(size));
  const pairs = 4 + (s.sid ? 1 : 0) + (s.sacks.length > 0 ? 1 : 0) + (s.runs.length > 0 ? 1 : 0) + (s.ctls.length > 0 ? 1 : 0) + s.extra.length + (s.tagged ? 1 : 0);
  w.mapHeader(pairs);
  w.uint(Key.VERSION);
  w.uint(WIRE_VERSION);
  if (s.sid) {
    w.uint(Key.SID);
    w.bytes(s.sid);
  }
  w.uint(Key.RN);
  w.uint(s.rn);
  w.uint(Key.ACK);
  w.uint(s.ack);
  if (s.sacks.length > 0) {
    w.uint(Key.SACK);
    w.arrayHeader(s.sacks.length);
    for (const n of s.sacks) w.uint(n);
  }
  w.uint(Key.WIN);
  w.arrayHeader(2);
  w.uint(s.win[0]);
  w.uint(s.win[1]);
  if (s.runs.length > 0) {
    w.uint(Key.MSGS);
    w.arrayHeader(s.runs.length);
    for (const r of s.runs) {
      w.arrayHeader(2 + r.payloads.length);
      w.uint(r.seq);
      w.uint(r.off);
      for (const m of r.payloads) w.bytes(m);
    }
  }
  if (s.ctls.length > 0) {
    w.uint(Key.CTL);
    w.arrayHeader(s.ctls.length);
    for (const c of s.ctls) w.copy(c, 0, c.length);
  }
  for (const e of s.extra) {
    w.uint(e.key);
    w.copy(e.value, 0, e.value.length);
  }
  if (s.tagged) {
    w.uint(Key.TAG);
    w.bytesHeader(TAG_LEN);
    w.pos += TAG_LEN;
  }
  return w.buf.slice(0, w.pos);
}

/** Where a tag would be if `b` ends in a tag field (`08 50` + 16 bytes), else -1. */
export function tagAt(b: Uint8Array): number {
  const at = b.length - TAG_LEN;
  return at >= 2 && b[at - 2] === Key.TAG && b[at - 1] === 0x40 + TAG_LEN ? at : -1;
}

/** Signs `b` in place if it ends in a tag field; returns whether it did. */
export function seal(sealer: Sealer, b: Uint8Array): boolean {
  const at = tagAt(b);
  if (at < 0) return false;
  sealer.sign(b, 0, at);
  return true;
}

/** Sack ranges: ascending, non-empty pairs (at most `max` pairs). */
function sacks(p: Prng, from: number, max: number): number[] {
  const out: number[] = [];
  let at = from;
  const n = p.int(max + 1);
  for (let i = 0; i < n; i++) {
    const start = (at + 1 + p.int(8)) >>> 0;
    const end = (start + 1 + p.int(8)) >>> 0;
    out.push(start, end);
    at = end;
  }
  return out;
}

/** Message runs from (seq, off): ascending, each run continuing the offsets of its messages. */
function runs(p: Prng, seq: number, off: number, maxMessages: number, maxPayload: number): BundleSpec['runs'] {
  const out: BundleSpec['runs'] = [];
  let total = 0;
  const nRuns = p.int(4);
  for (let r = 0; r < nRuns && total < maxMessages; r++) {
    const k = 1 + p.int(Math.min(6, maxMessages - total));
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < k; i++) payloads.push(bytesOf(p, len(p, maxPayload)));
    out.push({ seq, off, payloads });
    total += k;
    for (const m of payloads) off = (off + m.length) >>> 0;
    seq = (seq + k) >>> 0;
    if (p.chance(0.3)) {
      // A gap: the next run starts later (a lost bundle in between).
      const gap = 1 + p.int(3);
      seq = (seq + gap) >>> 0;
      off = (off + gap * 10) >>> 0;
    }
  }
  return out;
}

/** A bundle of any shape the reader accepts, untagged or with a zero tag. */
export function genBundleSpec(p: Prng): BundleSpec {
  const ctls: Uint8Array[] = [];
  const nc = p.chance(0.6) ? 0 : p.int(WIRE_DEFAULTS.maxControls + 1);
  for (let i = 0; i < nc; i++) ctls.push(genControl(p));
  const extra: BundleSpec['extra'] = [];
  if (p.chance(0.1)) extra.push({ key: Key.ROOM + 1 + p.int(100), value: genValue(p) });
  const msgs = p.chance(0.5) ? runs(p, u32(p), u32(p), 40, 600) : [];
  // The fields of a message in pieces (PROTOCOL 5.1): a piece only where no runs are.
  if (msgs.length === 0 && p.chance(0.2)) extra.push({ key: Key.PIECE, value: genPiece(p) });
  if (p.chance(0.15)) extra.push({ key: Key.PART, value: cbor((w) => uints(w, [u32(p), 1 + p.int(WIRE_DEFAULTS.maxMessage - 1)])) });
  if (p.chance(0.15)) extra.push({ key: Key.ROOM, value: cbor((w) => uints(w, [MIN_ROOM + p.int(1 << 18), ...Array.from({ length: p.int(MAX_LOST + 1) }, () => u32(p))])) });
  return {
    sid: p.chance(0.5) ? bytesOf(p, SID_BYTES) : null,
    rn: u32(p),
    ack: u32(p),
    sacks: p.chance(0.3) ? sacks(p, p.u32(), WIRE_DEFAULTS.maxSackRanges) : [],
    win: [u32(p), u32(p)],
    runs: msgs,
    ctls,
    extra,
    tagged: p.chance(0.3),
  };
}

/** [seq, off, at, total, bytes]: a valid piece of a message of up to maxMessage bytes. */
function genPiece(p: Prng): Uint8Array {
  const total = 1 + p.int(WIRE_DEFAULTS.maxMessage);
  const at = p.int(total);
  const n = 1 + p.int(Math.min(total - at, 2000));
  return cbor((w) => {
    w.arrayHeader(5);
    w.uint(u32(p));
    w.uint(u32(p));
    w.uint(at);
    w.uint(total);
    w.bytes(bytesOf(p, n));
  }, n + 32);
}

function uints(w: CborWriter, ns: number[]): void {
  w.arrayHeader(ns.length);
  for (const n of ns) w.uint(n);
}

/** The bytes `write` encodes (into at most `size` bytes). */
function cbor(write: (w: CborWriter) => void, size = 64): Uint8Array {
  const w = new CborWriter(new Uint8Array(size));
  write(w);
  return w.buf.slice(0, w.pos);
}

export function genBundle(p: Prng): Uint8Array {
  return encodeBundle(genBundleSpec(p));
}

/** A mux frame of any op, valid as decodeFrame checks it. */
export function genMuxFrameValue(p: Prng): MuxFrame {
  const id = 1 + p.int(0xfffffffe);
  switch (p.int(9)) {
    case 0:
      return { op: MuxOp.OPEN, id, credit: u32(p), target: ['127.0.0.1:5432', '[::1]:22', 'example.com:443', 'a:1', `h${p.int(1000)}:${1 + p.int(65535)}`][p.int(5)] };
    case 1:
      return { op: MuxOp.OPEN_OK, id, credit: u32(p) };
    case 2:
      return { op: MuxOp.OPEN_FAIL, id, code: 'HF_ERR_CONNECT', message: text(p) };
    case 3:
      return { op: MuxOp.RESET, id, code: ['HF_ERR_FORBIDDEN', 'X', 'A_1'][p.int(3)], message: text(p) };
    case 4:
      return { op: MuxOp.DATA, id, data: bytesOf(p, 1 + len(p, 2000)) };
    case 5:
      return { op: MuxOp.END, id };
    case 6:
      return { op: MuxOp.CREDIT, id, credit: 1 + p.int(0xfffffffe) };
    case 7:
      return { op: MuxOp.START, id: 0, epoch: 1 + p.int(0xfffffffe) };
    default:
      return { op: MuxOp.MESSAGE, id: 0, data: bytesOf(p, len(p, 2000)) };
  }
}

export function genMuxFrame(p: Prng): Uint8Array {
  return encodeFrame(genMuxFrameValue(p));
}

/** A byte stream of 1..4 length-prefixed frames of bundles (as the direct TCP transport sends them). */
export function genTcpStream(p: Prng): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = 1 + p.int(4);
  for (let i = 0; i < n; i++) {
    const b = genBundle(p);
    parts.push(frame(b, b.length));
  }
  return Buffer.concat(parts);
}

/** A device of the fuzzed gateway: its id and key, and the state of its current session. */
export interface FuzzDevice {
  id: string;
  key: Uint8Array;
  /** The hello counter of the last hello sent. */
  n: number;
  session: FuzzSession | null;
}

/** A session the fuzzer opened with a real hello: what the next valid bundle of it carries. */
export interface FuzzSession {
  sid: Uint8Array;
  sealer: Sealer;
  rn: number;
  /** Next sequence number and offset of the device's messages. */
  seq: number;
  off: number;
  /** What the device acknowledges of the gateway's messages (the gateway's first seq). */
  ack: number;
  /** Whether the gateway still has the session. */
  live(): boolean;
}

/** A hello bundle for `d` with the next counter and a correct proof (the nonce is returned too). */
export function genHello(p: Prng, crypto: Crypto, d: FuzzDevice, seq: number, off: number): { body: Uint8Array; nonce: Uint8Array } {
  d.n = (d.n + 1) >>> 0;
  const nonce = bytesOf(p, 8 + p.int(57));
  const proof = helloProof(crypto, d.key, d.id, d.n, nonce);
  const hello = encodeControl({ kind: Ctl.HELLO, id: d.id, n: d.n, nonce, proof, seq, off, lim: [512, 262144, 65536, 8, 4], ...(p.chance(0.5) ? { ring: [64, 65536] as [number, number] } : {}) });
  const body = encodeBundle({ sid: null, rn: 1, ack: 0, sacks: [], win: [64, 65536], runs: [], ctls: [hello], extra: [], tagged: false });
  return { body, nonce };
}

/** The next valid bundle of session `s`: tagged, carrying 0..6 new messages (it does not advance `s`). */
export function genSessionBundle(p: Prng, s: FuzzSession): { body: Uint8Array; spec: BundleSpec } {
  const msgs: Uint8Array[] = [];
  const k = p.chance(0.4) ? 0 : 1 + p.int(6);
  for (let i = 0; i < k; i++) msgs.push(bytesOf(p, len(p, 400)));
  const ctls: Uint8Array[] = [];
  if (p.chance(0.03)) ctls.push(encodeControl({ kind: Ctl.CLOSE, end: (s.seq + k) >>> 0 }));
  const spec: BundleSpec = {
    sid: s.sid,
    rn: (s.rn + 1) >>> 0,
    ack: s.ack,
    sacks: [],
    win: [64, 65536],
    runs: k > 0 ? [{ seq: s.seq, off: s.off, payloads: msgs }] : [],
    ctls,
    extra: [],
    tagged: true,
  };
  const body = encodeBundle(spec);
  seal(s.sealer, body);
  return { body, spec };
}

/** Moves `s` past a bundle the gateway took. */
export function advance(s: FuzzSession, spec: BundleSpec): void {
  s.rn = spec.rn;
  for (const r of spec.runs) {
    s.seq = (r.seq + r.payloads.length) >>> 0;
    let off = r.off;
    for (const m of r.payloads) off = (off + m.length) >>> 0;
    s.off = off;
  }
}
