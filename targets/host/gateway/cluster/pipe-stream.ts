/**
 * One byte stream between two cluster nodes over NATS (a forwarded connection whose target is behind
 * another node, pipes.ts): a Node Duplex whose frames go to the peer's subject for it.
 *
 * Frames (binary; the first byte is the kind):
 *   1 DATA    [seq u32][bytes]   the next bytes; seq counts DATA frames from 0
 *   2 END     [seq u32]          no more bytes (half-close); seq is the number of DATA frames sent
 *   3 RESET   [utf8 "CODE message"]  the stream is aborted
 *   4 CREDIT  [bytes u32]        the receiver has room for that many more bytes
 *
 * Flow control is by bytes: a side sends at most `windowBytes` that the peer has not credited back.
 * The receiver credits what it pushed while its readable buffer had room, and what was read out once
 * it had none; so a stream holds at most its window plus its buffer, however fast the sender. A
 * frame out of sequence (NATS dropped one) resets the stream: a pipe never delivers a gap.
 */
import { Duplex } from 'node:stream';
import { ErrorCode, type HfError, hfError } from '../../../../firmware/errors';

export const PipeFrame = { DATA: 1, END: 2, RESET: 3, CREDIT: 4 } as const;

export interface PipeStreamOptions {
  /** Bytes in flight unacknowledged by the peer, at most (default 1 MiB). */
  windowBytes?: number;
  /** Largest DATA frame's bytes (default 64 KiB; NATS's max_payload bounds it). */
  frameBytes?: number;
}

/** The pipes' bounds (cluster option `pipes`); here, free of NATS's types, for the package's declarations. */
export interface PipesOptions extends PipeStreamOptions {
  /** How long the far node may take to connect to the target, ms (default 10000). */
  connectTimeoutMs?: number;
}

export const PIPE_DEFAULTS: Readonly<Required<PipeStreamOptions>> = { windowBytes: 1 << 20, frameBytes: 64 * 1024 };

const CODE_TEXT = /^(HF_ERR_[A-Z_]+) ([\s\S]*)$/;

export class PipeStream extends Duplex {
  private readonly window: number;
  private readonly frame: number;
  /** Bytes this side may still send. */
  private credit: number;
  /** A write waiting for credit: the rest of its chunk and its callback. */
  private waiting: { rest: Buffer; cb: (e?: Error | null) => void } | null = null;
  private sentFrames = 0;
  private nextFrame = 0;
  /** Bytes pushed to the reader and not yet credited back. */
  private owed = 0;
  /** The reader's buffer was full at the last push: credit waits for _read. */
  private full = false;
  /** The peer reset the stream or is gone: nothing more is sent to it. */
  private silent = false;

  constructor(
    readonly id: string,
    private readonly send: (frame: Uint8Array) => void,
    o: PipeStreamOptions = {},
    allowHalfOpen = true,
  ) {
    super({ allowHalfOpen, readableHighWaterMark: 64 * 1024 });
    this.window = o.windowBytes ?? PIPE_DEFAULTS.windowBytes;
    this.frame = o.frameBytes ?? PIPE_DEFAULTS.frameBytes;
    this.credit = this.window;
  }

  /** Takes one frame from the peer. A malformed or out-of-order one resets the stream. */
  receive(f: Uint8Array): void {
    if (this.destroyed) return;
    const kind = f[0];
    const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
    if (kind === PipeFrame.RESET) {
      this.silent = true;
      const text = Buffer.from(f.subarray(1)).toString('utf8');
      const m = CODE_TEXT.exec(text);
      this.destroy(hfError((m?.[1] ?? ErrorCode.CONNECT) as typeof ErrorCode.CONNECT, `pipe ${this.id} reset by the peer: ${m?.[2] ?? text}`));
      return;
    }
    if (f.byteLength < 5) return this.fail(hfError(ErrorCode.PEER, `pipe ${this.id}: a frame of ${f.byteLength} bytes`));
    const n = dv.getUint32(1);
    if (kind === PipeFrame.CREDIT) {
      this.credit += n;
      this.flushWaiting();
      return;
    }
    if (kind !== PipeFrame.DATA && kind !== PipeFrame.END) return this.fail(hfError(ErrorCode.PEER, `pipe ${this.id}: frame kind ${kind}`));
    if (n !== this.nextFrame) return this.fail(hfError(ErrorCode.NATS, `pipe ${this.id}: frame ${n} where ${this.nextFrame} was due (bytes were lost)`));
    if (kind === PipeFrame.END) {
      this.push(null);
      return;
    }
    this.nextFrame++;
    const bytes = f.subarray(5);
    this.owed += bytes.byteLength;
    if (this.push(bytes)) {
      if (this.owed >= this.window / 4) this.payBack();
    } else this.full = true;
  }

  /** The peer is gone (its node died, NATS went away): the stream is destroyed with `err`, no RESET sent. */
  gone(err: HfError): void {
    this.silent = true;
    this.destroy(err);
  }

  private fail(err: HfError): void {
    this.destroy(err);
  }

  private payBack(): void {
    if (this.owed === 0 || this.silent) return;
    const f = new Uint8Array(5);
    f[0] = PipeFrame.CREDIT;
    new DataView(f.buffer).setUint32(1, this.owed);
    this.owed = 0;
    this.send(f);
  }

  override _read(): void {
    if (this.full) {
      this.full = false;
      this.payBack();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.waiting = { rest: chunk, cb };
    this.flushWaiting();
  }

  private flushWaiting(): void {
    const w = this.waiting;
    if (w === null) return;
    while (w.rest.byteLength > 0 && this.credit > 0) {
      const n = Math.min(w.rest.byteLength, this.frame, this.credit);
      const f = new Uint8Array(5 + n);
      f[0] = PipeFrame.DATA;
      new DataView(f.buffer).setUint32(1, this.sentFrames++);
      f.set(w.rest.subarray(0, n), 5);
      this.credit -= n;
      w.rest = w.rest.subarray(n);
      this.send(f);
    }
    if (w.rest.byteLength === 0) {
      this.waiting = null;
      w.cb();
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    const f = new Uint8Array(5);
    f[0] = PipeFrame.END;
    new DataView(f.buffer).setUint32(1, this.sentFrames);
    this.send(f);
    cb();
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    const clean = this.writableFinished && this.readableEnded;
    if (!clean && !this.silent) {
      this.silent = true;
      const code = (err as HfError | null)?.code ?? ErrorCode.CLOSED;
      const text = `${String(code).startsWith('HF_ERR_') ? code : ErrorCode.CLOSED} ${err?.message ?? 'closed'}`;
      const b = Buffer.from(text.slice(0, 1024), 'utf8');
      const f = new Uint8Array(1 + b.byteLength);
      f[0] = PipeFrame.RESET;
      f.set(b, 1);
      try {
        this.send(f);
      } catch {
        // NATS is closed: the peer learns it from its own side
      }
    }
    const w = this.waiting;
    this.waiting = null;
    if (w !== null) w.cb(err ?? hfError(ErrorCode.CLOSED, `pipe ${this.id} closed`));
    cb(err);
  }
}

/**
 * A pipe that plays a socket for the TCP front (a direct TCP connection that reached another node and
 * is served here): the device's address, and the socket methods the front calls, which a pipe has no
 * use for (Nagle, keep-alive: the relaying node's own socket has them).
 */
export class PipedSocket extends PipeStream {
  readonly remotePort = 0;

  constructor(
    id: string,
    send: (frame: Uint8Array) => void,
    readonly remoteAddress: string,
    o: PipeStreamOptions = {},
  ) {
    // Not half-open, as the front's own sockets: the device's end ends it (it would stay open else).
    super(id, send, o, false);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  /** Ends it once what was written has gone. */
  destroySoon(): void {
    if (this.writableFinished) this.destroy();
    else {
      this.once('finish', () => this.destroy());
      this.end();
    }
  }
}
