/**
 * The frames of the stream multiplexer (docs/MUX.md): one frame per channel message, a fixed 5-byte
 * header (op u8, stream id u32 big-endian) and the op's payload. This file is the stateless codec:
 * it checks that a frame is well-formed and within its limits; whether it makes sense for the
 * streams that exist is `MuxTable`'s job (firmware/mux.ts).
 *
 * Error codes: a malformed frame (short, unknown op, trailing bytes, bad text) is HF_ERR_BUNDLE; a
 * frame or target over its limit is HF_ERR_LIMIT; a stream id where the op forbids it is
 * HF_ERR_PROTOCOL.
 */
import { checkInt } from './check';
import { ErrorCode, hfError } from './errors';

/** Frame operations (the first byte of a frame). */
export const MuxOp = {
  /** Open a stream to a target: credit u32, target "host:port" (ASCII, to the end of the frame). */
  OPEN: 0x01,
  /** The stream is accepted: credit u32 (bytes the acceptor will receive). */
  OPEN_OK: 0x02,
  /** The stream is refused: code length u8, code (ASCII), message (UTF-8, to the end). */
  OPEN_FAIL: 0x03,
  /** Stream bytes (at least one). */
  DATA: 0x04,
  /** The sender sends no more DATA on this stream (half-close). */
  END: 0x05,
  /** Abort the stream in both directions: code length u8, code, message (as OPEN_FAIL). */
  RESET: 0x06,
  /** The receiver accepts this many more bytes: u32, not 0. */
  CREDIT: 0x07,
  /** An application message that is not part of any stream (stream id 0). */
  MESSAGE: 0x08,
  /**
   * A new mux on this session (stream id 0, payload: epoch u32, not 0). The device sends it first
   * thing; the gateway then drops every stream of the device's previous mux (a process that resumed
   * the session from its journal) and sends the same frame back.
   */
  START: 0x09,
} as const;
export type MuxOpValue = (typeof MuxOp)[keyof typeof MuxOp];
export const MUX_OP_NAMES: Record<number, string> = {
  1: 'OPEN',
  2: 'OPEN_OK',
  3: 'OPEN_FAIL',
  4: 'DATA',
  5: 'END',
  6: 'RESET',
  7: 'CREDIT',
  8: 'MESSAGE',
  9: 'START',
};

/** Header bytes: op u8 + stream id u32. */
export const MUX_HEADER = 5;
/** Longest error code text in OPEN_FAIL / RESET. */
export const MAX_CODE = 64;

export interface MuxLimits {
  /** Largest frame, header included, in bytes (default 16384; 64..65536; at most the link's maxMessage). */
  maxFrame?: number;
  /** Longest target text "host:port", in bytes (default 255, or less if maxFrame leaves less room; 3..1024). */
  maxTarget?: number;
}
export const MUX_LIMIT_DEFAULTS: Required<MuxLimits> = { maxFrame: 16384, maxTarget: 255 };

/** Validates limits (HF_ERR_OPTION naming the bad one); returns a new object, never mutates `l`. */
export function resolveMuxLimits(l: MuxLimits = {}): Required<MuxLimits> {
  const o = { ...MUX_LIMIT_DEFAULTS };
  if (l.maxFrame !== undefined) o.maxFrame = checkInt('maxFrame', l.maxFrame, 64, 65536);
  if (l.maxTarget !== undefined) o.maxTarget = checkInt('maxTarget', l.maxTarget, 3, 1024);
  else o.maxTarget = Math.min(o.maxTarget, o.maxFrame - MUX_HEADER - 4);
  if (o.maxTarget > o.maxFrame - MUX_HEADER - 4) throw hfError(ErrorCode.OPTION, `maxTarget ${o.maxTarget} does not fit a frame of ${o.maxFrame}`);
  return o;
}

export type MuxFrame =
  | { op: typeof MuxOp.OPEN; id: number; credit: number; target: string }
  | { op: typeof MuxOp.OPEN_OK; id: number; credit: number }
  | { op: typeof MuxOp.OPEN_FAIL | typeof MuxOp.RESET; id: number; code: string; message: string }
  | { op: typeof MuxOp.DATA | typeof MuxOp.MESSAGE; id: number; data: Uint8Array }
  | { op: typeof MuxOp.END; id: number }
  | { op: typeof MuxOp.CREDIT; id: number; credit: number }
  | { op: typeof MuxOp.START; id: number; epoch: number };

/** A forwarding target, split. `host` keeps IPv6 brackets off: "[::1]:22" is host "::1". */
export interface MuxTarget {
  host: string;
  port: number;
}

const utf8Enc = new TextEncoder();
const utf8Dec = new TextDecoder();
const CODE_RE = /^[A-Z][A-Z0-9_]*$/;

/**
 * Splits "host:port" (IPv6 hosts in brackets). Throws HF_ERR_LIMIT when longer than `maxTarget`
 * bytes, HF_ERR_BUNDLE when not printable ASCII or not host:port with a port in 1..65535 written
 * without leading zeros (so that one target has one spelling, and allow lists compare text).
 */
export function parseTarget(t: string, maxTarget = MUX_LIMIT_DEFAULTS.maxTarget): MuxTarget {
  if (t.length > maxTarget) throw hfError(ErrorCode.LIMIT, `target of ${t.length} bytes, limit ${maxTarget}`);
  if (!/^[\x21-\x7e]+$/.test(t)) throw hfError(ErrorCode.BUNDLE, `target ${JSON.stringify(t)} is not printable ASCII`);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([1-9][0-9]{0,4})$/.exec(t);
  const port = m ? Number(m[3]) : 0;
  if (!m || port > 65535) throw hfError(ErrorCode.BUNDLE, `target ${JSON.stringify(t)} is not host:port (port 1..65535)`);
  return { host: m[1] ?? m[2], port };
}

/** The one spelling of a target: "host:port", "[v6]:port". Throws like `parseTarget`. */
export function formatTarget(host: string, port: number, maxTarget = MUX_LIMIT_DEFAULTS.maxTarget): string {
  const t = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  parseTarget(t, maxTarget);
  return t;
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

function putU32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}

function hex2(n: number): string {
  return '0x' + (n < 16 ? '0' : '') + n.toString(16);
}

function exact(op: number, len: number, want: number): void {
  if (len !== want) throw hfError(ErrorCode.BUNDLE, `${MUX_OP_NAMES[op]} payload of ${len} bytes, must be ${want}`);
}

/**
 * Decodes one frame. Checks form and limits only (see the file comment for codes). `data` of DATA
 * and MESSAGE is a view into `b` (no copy): valid as long as the caller keeps `b` unchanged.
 */
export function decodeFrame(b: Uint8Array, limits: Required<MuxLimits> = MUX_LIMIT_DEFAULTS): MuxFrame {
  if (b.length < MUX_HEADER) throw hfError(ErrorCode.BUNDLE, `frame of ${b.length} bytes, the header needs ${MUX_HEADER}`);
  if (b.length > limits.maxFrame) throw hfError(ErrorCode.LIMIT, `frame of ${b.length} bytes, limit ${limits.maxFrame}`);
  const op = b[0];
  const id = u32(b, 1);
  const n = b.length - MUX_HEADER;
  if (op < MuxOp.OPEN || op > MuxOp.START) throw hfError(ErrorCode.BUNDLE, `unknown op ${hex2(op)}`);
  const session = op === MuxOp.MESSAGE || op === MuxOp.START;
  if (session !== (id === 0)) {
    throw hfError(ErrorCode.PROTOCOL, session ? `${MUX_OP_NAMES[op]} on stream ${id}, must be 0` : `${MUX_OP_NAMES[op]} on stream 0 (reserved for MESSAGE and START)`);
  }
  switch (op) {
    case MuxOp.OPEN: {
      if (n < 5) throw hfError(ErrorCode.BUNDLE, `OPEN payload of ${n} bytes, needs credit and a target`);
      if (n - 4 > limits.maxTarget) throw hfError(ErrorCode.LIMIT, `target of ${n - 4} bytes, limit ${limits.maxTarget}`);
      let target = '';
      for (let i = MUX_HEADER + 4; i < b.length; i++) target += String.fromCharCode(b[i]);
      parseTarget(target, limits.maxTarget);
      return { op, id, credit: u32(b, MUX_HEADER), target };
    }
    case MuxOp.OPEN_OK:
      exact(op, n, 4);
      return { op, id, credit: u32(b, MUX_HEADER) };
    case MuxOp.CREDIT: {
      exact(op, n, 4);
      const credit = u32(b, MUX_HEADER);
      if (credit === 0) throw hfError(ErrorCode.BUNDLE, `CREDIT of 0 on stream ${id}`);
      return { op, id, credit };
    }
    case MuxOp.OPEN_FAIL:
    case MuxOp.RESET: {
      const cl = n > 0 ? b[MUX_HEADER] : 0;
      if (cl === 0 || cl > MAX_CODE || 1 + cl > n) throw hfError(ErrorCode.BUNDLE, `${MUX_OP_NAMES[op]} code length ${cl} in a payload of ${n} bytes`);
      let code = '';
      for (let i = MUX_HEADER + 1; i < MUX_HEADER + 1 + cl; i++) code += String.fromCharCode(b[i]);
      if (!CODE_RE.test(code)) throw hfError(ErrorCode.BUNDLE, `${MUX_OP_NAMES[op]} code ${JSON.stringify(code)} is not an error code`);
      const message = utf8Dec.decode(b.subarray(MUX_HEADER + 1 + cl));
      return { op, id, code, message };
    }
    case MuxOp.DATA:
      if (n === 0) throw hfError(ErrorCode.BUNDLE, `DATA without bytes on stream ${id}`);
      return { op, id, data: b.subarray(MUX_HEADER) };
    case MuxOp.END:
      exact(op, n, 0);
      return { op, id };
    case MuxOp.START: {
      exact(op, n, 4);
      const epoch = u32(b, MUX_HEADER);
      if (epoch === 0) throw hfError(ErrorCode.BUNDLE, 'START with epoch 0');
      return { op, id, epoch };
    }
    default:
      return { op: MuxOp.MESSAGE, id, data: b.subarray(MUX_HEADER) };
  }
}

/**
 * Encodes frames into one scratch buffer of `maxFrame` bytes, allocated once. Each method returns a
 * view of that buffer, valid until the next call (Channel.send copies it, so send it at once).
 * Throws HF_ERR_TOO_BIG when DATA or a MESSAGE would not fit a frame, HF_ERR_LIMIT/BUNDLE for a bad
 * target; an error message too long for the frame is cut short.
 */
export class MuxWriter {
  private readonly buf: Uint8Array;
  readonly limits: Required<MuxLimits>;

  /**
   * `buf`, if given, is the memory frames are written into (`maxFrame` long): it may be shared by
   * writers whose frames are always taken (copied) before the next one is written.
   */
  constructor(limits: Required<MuxLimits> = MUX_LIMIT_DEFAULTS, buf?: Uint8Array) {
    this.limits = limits;
    if (buf !== undefined && buf.length !== limits.maxFrame) throw hfError(ErrorCode.OPTION, `frame buffer must be ${limits.maxFrame} bytes, got ${buf.length}`);
    this.buf = buf ?? new Uint8Array(limits.maxFrame);
  }

  /** Most payload bytes one DATA or MESSAGE frame carries. */
  get maxData(): number {
    return this.limits.maxFrame - MUX_HEADER;
  }

  private head(op: number, id: number): void {
    this.buf[0] = op;
    putU32(this.buf, 1, id);
  }

  open(id: number, credit: number, target: string): Uint8Array {
    parseTarget(target, this.limits.maxTarget);
    this.head(MuxOp.OPEN, id);
    putU32(this.buf, MUX_HEADER, credit);
    for (let i = 0; i < target.length; i++) this.buf[MUX_HEADER + 4 + i] = target.charCodeAt(i);
    return this.buf.subarray(0, MUX_HEADER + 4 + target.length);
  }

  openOk(id: number, credit: number): Uint8Array {
    return this.u32Frame(MuxOp.OPEN_OK, id, credit);
  }

  credit(id: number, credit: number): Uint8Array {
    return this.u32Frame(MuxOp.CREDIT, id, credit);
  }

  openFail(id: number, code: string, message: string): Uint8Array {
    return this.reason(MuxOp.OPEN_FAIL, id, code, message);
  }

  reset(id: number, code: string, message: string): Uint8Array {
    return this.reason(MuxOp.RESET, id, code, message);
  }

  end(id: number): Uint8Array {
    this.head(MuxOp.END, id);
    return this.buf.subarray(0, MUX_HEADER);
  }

  /** DATA carrying `src[off, off+len)`; len 1..maxData. */
  data(id: number, src: Uint8Array, off = 0, len = src.length - off): Uint8Array {
    if (len < 1 || len > this.maxData) throw hfError(ErrorCode.TOO_BIG, `DATA of ${len} bytes, must be 1..${this.maxData}`);
    return this.carry(MuxOp.DATA, id, src, off, len);
  }

  /** START of a mux incarnation `epoch` (not 0). */
  start(epoch: number): Uint8Array {
    if (epoch === 0) throw hfError(ErrorCode.OPTION, 'START epoch must not be 0');
    return this.u32Frame(MuxOp.START, 0, epoch >>> 0);
  }

  /** MESSAGE carrying `src` (0..maxData bytes). */
  message(src: Uint8Array): Uint8Array {
    if (src.length > this.maxData) throw hfError(ErrorCode.TOO_BIG, `message of ${src.length} bytes, limit ${this.maxData}`);
    return this.carry(MuxOp.MESSAGE, 0, src, 0, src.length);
  }

  private carry(op: number, id: number, src: Uint8Array, off: number, len: number): Uint8Array {
    this.head(op, id);
    this.buf.set(off === 0 && len === src.length ? src : src.subarray(off, off + len), MUX_HEADER);
    return this.buf.subarray(0, MUX_HEADER + len);
  }

  private u32Frame(op: number, id: number, v: number): Uint8Array {
    this.head(op, id);
    putU32(this.buf, MUX_HEADER, v);
    return this.buf.subarray(0, MUX_HEADER + 4);
  }

  private reason(op: number, id: number, code: string, message: string): Uint8Array {
    if (code.length > MAX_CODE || !CODE_RE.test(code)) throw hfError(ErrorCode.OPTION, `error code ${JSON.stringify(code)} is not an error code`);
    this.head(op, id);
    this.buf[MUX_HEADER] = code.length;
    for (let i = 0; i < code.length; i++) this.buf[MUX_HEADER + 1 + i] = code.charCodeAt(i);
    const start = MUX_HEADER + 1 + code.length;
    const { written } = utf8Enc.encodeInto(message, this.buf.subarray(start));
    return this.buf.subarray(0, start + (written ?? 0));
  }
}

/** Encodes one frame into a new array (for tests and tools; the hot path uses MuxWriter). */
export function encodeFrame(f: MuxFrame, limits: Required<MuxLimits> = MUX_LIMIT_DEFAULTS): Uint8Array {
  const w = new MuxWriter(limits);
  let v: Uint8Array;
  switch (f.op) {
    case MuxOp.OPEN:
      v = w.open(f.id, f.credit, f.target);
      break;
    case MuxOp.OPEN_OK:
      v = w.openOk(f.id, f.credit);
      break;
    case MuxOp.CREDIT:
      v = w.credit(f.id, f.credit);
      break;
    case MuxOp.OPEN_FAIL:
      v = w.openFail(f.id, f.code, f.message);
      break;
    case MuxOp.RESET:
      v = w.reset(f.id, f.code, f.message);
      break;
    case MuxOp.END:
      v = w.end(f.id);
      break;
    case MuxOp.DATA:
      v = w.data(f.id, f.data);
      break;
    case MuxOp.START:
      v = w.start(f.epoch);
      break;
    default:
      v = w.message(f.data);
  }
  return v.slice();
}
