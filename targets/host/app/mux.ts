/**
 * Streams and plain messages over one Channel (docs/MUX.md): `open(host, port)` gives a Duplex, the
 * peer's OPENs arrive as 'stream' events, `send`/'message' carry messages that are not streams.
 *
 *   'stream' (stream, target)  the peer opened a stream to "host:port": call stream.accept() or
 *                              stream.refuse(code, message), now or later (e.g. after connecting).
 *                              With no 'stream' listener every OPEN is refused with HF_ERR_FORBIDDEN.
 *   'message' (Buffer)         a plain message from the peer, in order
 *   'drain'                    send() may be called again after it returned false
 *   'close' (err?)             the channel closed (err: HfError if it failed, or the peer broke the
 *                              mux protocol); every stream is destroyed by then
 *
 * Flow control: each stream receives at most `credit` bytes the local reader has not taken; CREDIT is
 * granted as the reader drains, so a slow reader stalls only its own stream. When the channel refuses
 * a message, every writer's callback waits for the channel's 'drain'; only small control frames are
 * queued meanwhile (at most a few per stream).
 *
 * Memory: every Mux of the process writes its frames into one buffer per frame size (a gateway's
 * thousands of sessions hold none each): a Channel's `send` copies what it accepts before it returns
 * (LinkChannel: into its out-ring), and a control frame that has to wait is queued as a copy.
 */
import { EventEmitter } from 'node:events';
import { checkInt } from '../../../firmware/check';
import { ErrorCode, type ErrorCodeValue, type HfError, hfError, isHfError } from '../../../firmware/errors';
import { type MuxFrame, MuxOp, MuxTable, type MuxTableOptions, MuxWriter, StreamState, formatTarget, parseTarget } from '../../../firmware/mux';
import type { Channel, ChannelEvents } from './channel';
import { type MuxDriver, MuxStream, type WriteCallback } from './mux-stream';

export { MuxStream } from './mux-stream';

/** The frame buffers every Mux shares, by size (see the header: frames are copied as they are sent). */
const frameBuffers = new Map<number, Uint8Array>();
function sharedFrameBuffer(bytes: number): Uint8Array {
  let b = frameBuffers.get(bytes);
  if (b === undefined) {
    b = new Uint8Array(bytes);
    frameBuffers.set(bytes, b);
  }
  return b;
}

export interface MuxOptions extends MuxTableOptions {
  /** Bytes each stream may receive ahead of its reader (default 1048576; 1..2^30). */
  credit?: number;
}

/** The text a refusal or reset carries (the code travels beside it). */
function reasonOf(err: Error | null, fallback: string): string {
  return err === null ? fallback : err.message;
}

function asBuffer(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.length);
}

export class Mux extends EventEmitter implements MuxDriver {
  private readonly ch: Channel;
  private readonly table: MuxTable;
  private readonly w: MuxWriter;
  private readonly credit: number;
  /** Grant CREDIT once this many consumed bytes are owed, or when the sender runs this low (half the credit). */
  private readonly grantStep: number;
  private readonly hwm: number;
  /** Streams of the table, by id (a stream leaves with its table entry). */
  private readonly streams = new Map<number, MuxStream>();
  /** Streams with a write or an END waiting. */
  private readonly writers = new Set<MuxStream>();
  /** Control frames (copies) waiting for the channel's room. */
  private readonly control: Uint8Array[] = [];
  /** The channel refused a message: nothing more until its 'drain'. */
  private blocked = false;
  private wantDrain = false;
  private flushing = false;
  private again = false;
  private closing = false;
  private endSent = false;
  private failure: HfError | undefined;
  closed = false;
  // biome-ignore lint/suspicious/noExplicitAny: one table for listeners of events with different arguments
  private readonly chListeners: [keyof ChannelEvents, (...a: any[]) => void][];

  constructor(ch: Channel, opts: MuxOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, `options must be an object, got ${String(opts)}`);
    this.table = new MuxTable(opts);
    this.credit = opts.credit === undefined ? 1048576 : checkInt('credit', opts.credit, 1, 1 << 30);
    // Half the credit at a time: each CREDIT is a message the link carries and acknowledges, so for
    // bulk one per 512 KiB read rather than one per 64 KiB (each a wake-up of the peer's process).
    this.grantStep = Math.max(1, this.credit >>> 1);
    this.hwm = Math.min(16384, this.credit);
    this.w = new MuxWriter(this.table.limits, sharedFrameBuffer(this.table.limits.maxFrame));
    this.ch = ch;
    this.chListeners = [
      [
        'message',
        (b: Buffer, done: () => void) => {
          // ackAfter 'app': a frame is confirmed once it was handled (a plain message emitted, data
          // written to its stream, a command taken), so one never handled is the peer's to send again.
          this.onFrame(b);
          done();
        },
      ],
      [
        'drain',
        () => {
          this.blocked = false;
          this.flush();
        },
      ],
      ['end', () => this.onPeerEnd()],
      ['close', (err?: HfError) => this.onChannelClose(err)],
    ];
    for (const [ev, fn] of this.chListeners) ch.on(ev, fn);
    if (ch.closed) process.nextTick(() => this.onChannelClose(hfError(ErrorCode.CLOSED, 'channel closed before the mux was made')));
    else if (this.table.role === 'device') {
      // Every device mux announces itself (docs/MUX.md 2a): a session resumed by a new process starts its streams over.
      const epoch = (Math.floor(Math.random() * 0xfffffffe) + 1) >>> 0;
      this.table.starting(epoch);
      this.ctl(this.w.start(epoch));
    }
  }

  /** Streams open now (both directions). */
  get size(): number {
    return this.streams.size;
  }

  /**
   * Opens a stream to `host:port` on the peer. The stream emits 'connect' when accepted, or 'error'
   * (HF_ERR_FORBIDDEN, HF_ERR_CONNECT, HF_ERR_LIMIT, ...) when refused. Writes wait until then.
   * Throws HF_ERR_OPTION for a bad host or port, HF_ERR_CLOSED once the mux is closing.
   */
  open(host: string, port: number): MuxStream {
    if (this.closing) throw hfError(ErrorCode.CLOSED, `open of ${host}:${port} on a closed mux`);
    let target: string;
    try {
      target = formatTarget(String(host), port, this.table.limits.maxTarget);
    } catch (e) {
      throw hfError(ErrorCode.OPTION, `open: ${reasonOf(e as Error, '')}`, e);
    }
    let id: number;
    try {
      id = this.table.open(this.credit);
    } catch (e) {
      const s = new MuxStream(this, 0, host, port, target, false, this.hwm);
      process.nextTick(() => s.destroy(e as Error));
      return s;
    }
    const s = new MuxStream(this, id, host, port, target, false, this.hwm);
    this.streams.set(id, s);
    this.ctl(this.w.open(id, this.credit, target));
    return s;
  }

  /**
   * Sends a plain message (0..maxFrame-5 bytes, else HF_ERR_TOO_BIG). False: the channel has no room
   * and the message was NOT taken; send it again after 'drain'.
   */
  send(data: Uint8Array): boolean {
    if (this.closing) throw hfError(ErrorCode.CLOSED, 'send on a closed mux');
    const frame = this.w.message(data);
    if (this.blocked || this.control.length > 0 || !this.trySend(frame)) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /** Resets every stream (HF_ERR_CLOSED) and ends the channel; 'close' follows. Idempotent. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    for (const s of [...this.streams.values()]) s.destroy();
    this.flush();
  }

  /** Ends the session at once: the channel is destroyed, every stream with it. Idempotent. */
  destroy(err?: Error): void {
    if (this.closed) return;
    this.closing = true;
    if (!this.ch.closed) this.ch.destroy(err);
    else this.onChannelClose(isHfError(err) ? err : undefined);
  }

  // ---- frames from the peer ----------------------------------------------------------------------

  private onFrame(b: Buffer): void {
    if (this.closed || this.failure !== undefined) return;
    let f: MuxFrame | null;
    try {
      f = this.table.receive(b);
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.fail(e);
      return;
    }
    if (f === null) return;
    if (f.op === MuxOp.MESSAGE) {
      this.emit('message', asBuffer(f.data));
      return;
    }
    if (f.op === MuxOp.START) {
      if (this.table.role === 'gateway') {
        // After a restart (a second START) the table forgot the device's previous streams: end their
        // local halves. Then answer.
        if (this.table.peerStarts > 1)
          for (const s of [...this.streams.values()]) {
            this.streams.delete(s.id);
            this.writers.delete(s);
            s.destroy(hfError(ErrorCode.CLOSED, `stream ${s.id} (${s.target}): the device started a new mux (it restarted)`));
          }
        this.ctl(this.w.start(f.epoch));
      }
      return;
    }
    if (f.op === MuxOp.OPEN) {
      this.onOpen(f.id, f.target);
      return;
    }
    const s = this.streams.get(f.id);
    if (s === undefined) return; // the table passes on frames only of streams it knows: none here is a bug's trace, not a crash
    switch (f.op) {
      case MuxOp.OPEN_OK:
        s.emit('connect');
        this.flush();
        break;
      case MuxOp.OPEN_FAIL:
      case MuxOp.RESET:
        this.streams.delete(f.id);
        s.destroy(hfError(f.code as ErrorCodeValue, f.message));
        break;
      case MuxOp.DATA:
        s.bytesRead += f.data.length;
        s.push(asBuffer(f.data));
        this.grantIfDue(s);
        break;
      case MuxOp.END:
        this.forgetIfGone(s);
        s.push(null);
        break;
      case MuxOp.CREDIT:
        this.flush();
        break;
    }
  }

  private onOpen(id: number, target: string): void {
    const { host, port } = parseTarget(target, this.table.limits.maxTarget);
    const s = new MuxStream(this, id, host, port, target, true, this.hwm);
    this.streams.set(id, s);
    if (this.closing) s.refuse(ErrorCode.CLOSED, `${target}: the mux is closing`);
    else if (this.table.size > this.table.maxStreams) s.refuse(ErrorCode.LIMIT, `${target}: ${this.table.maxStreams} streams open already (maxStreams)`);
    else if (this.listenerCount('stream') === 0) s.refuse(ErrorCode.FORBIDDEN, `${target}: nobody accepts streams here`);
    else this.emit('stream', s, target);
  }

  private onPeerEnd(): void {
    // The peer sends nothing more: a stream it did not end or reset cannot finish.
    for (const s of [...this.streams.values()]) {
      const e = this.table.get(s.id);
      if (e !== undefined && !e.remoteEnd) s.destroy(hfError(ErrorCode.CLOSED, `stream ${s.id} (${s.target}): the peer closed the session`));
    }
    this.close();
  }

  private onChannelClose(err?: HfError): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    const e = this.failure ?? err;
    for (const [ev, fn] of this.chListeners) this.ch.off(ev, fn);
    this.control.length = 0;
    for (const s of [...this.streams.values()]) s.destroy(e ?? hfError(ErrorCode.CLOSED, `stream ${s.id} (${s.target}): the session closed`));
    this.streams.clear();
    this.writers.clear();
    if (e && this.listenerCount('error') > 0) this.emit('error', e);
    this.emit('close', e);
  }

  /** The peer broke the protocol: the session ends with that error. */
  private fail(e: HfError): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    this.closing = true;
    if (this.ch.closed) this.onChannelClose(e);
    else this.ch.destroy(e);
  }

  private forgetIfGone(s: MuxStream): void {
    if (this.table.get(s.id) === undefined) this.streams.delete(s.id);
  }

  // ---- sending -----------------------------------------------------------------------------------

  /** Sends a frame now, or false (blocked; the channel took nothing). */
  private trySend(frame: Uint8Array): boolean {
    if (this.ch.closed || this.failure !== undefined || this.endSent) {
      this.blocked = true;
      return false;
    }
    try {
      if (this.ch.send(frame)) return true;
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.fail(e);
      return false;
    }
    this.blocked = true;
    return false;
  }

  /** A control frame: sent now, or queued (a copy) behind the ones already waiting. */
  private ctl(frame: Uint8Array): void {
    if (this.closed || this.failure !== undefined || this.endSent) return;
    if (this.blocked || this.control.length > 0 || !this.trySend(frame)) this.control.push(frame.slice());
  }

  /** Sends queued control frames, then DATA and END round-robin until done or blocked. */
  private flush(): void {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    const done: WriteCallback[] = [];
    try {
      do {
        this.again = false;
        while (!this.blocked && this.control.length > 0 && this.trySend(this.control[0])) this.control.shift();
        let progress = true;
        while (progress && !this.blocked) {
          progress = false;
          for (const s of this.writers) {
            if (this.step(s, done)) progress = true;
            if (this.blocked) break;
          }
        }
      } while (this.again && !this.blocked);
    } finally {
      this.flushing = false;
    }
    for (const cb of done) cb();
    if (this.blocked || this.control.length > 0) return;
    if (this.closing && !this.endSent && !this.closed) {
      this.endSent = true;
      if (!this.ch.closed) this.ch.end();
    }
    if (this.wantDrain && !this.closing) {
      this.wantDrain = false;
      this.emit('drain');
    }
  }

  /** One frame for stream `s` if it has something to send and may: true if it sent one. */
  private step(s: MuxStream, done: WriteCallback[]): boolean {
    const e = this.table.get(s.id);
    if (e === undefined) {
      this.writers.delete(s);
      return false;
    }
    const p = s.pendingWrite;
    if (p !== null) {
      const n = Math.min(p.chunk.length - p.off, this.table.sendable(s.id, this.w.maxData));
      if (n === 0 || !this.trySend(this.w.data(s.id, p.chunk, p.off, n))) return false;
      this.table.sent(s.id, n);
      p.off += n;
      s.bytesWritten += n;
      if (p.off === p.chunk.length) {
        s.pendingWrite = null;
        done.push(p.cb);
        if (s.pendingFinal === null) this.writers.delete(s);
      }
      return true;
    }
    const fin = s.pendingFinal;
    if (fin !== null) {
      if (e.state !== StreamState.OPEN || !this.trySend(this.w.end(s.id))) return false;
      this.table.end(s.id);
      s.pendingFinal = null;
      this.writers.delete(s);
      this.forgetIfGone(s);
      done.push(fin);
      return true;
    }
    this.writers.delete(s);
    return false;
  }

  /** CREDIT for what the reader of `s` took, once enough is owed or the sender runs low. */
  private grantIfDue(s: MuxStream): void {
    const e = this.table.get(s.id);
    if (e === undefined || e.state !== StreamState.OPEN || e.remoteEnd) return;
    const owed = this.credit - e.recvCredit - s.readableLength;
    if (owed <= 0 || (owed < this.grantStep && e.recvCredit >= this.grantStep)) return;
    this.table.grant(s.id, owed);
    this.ctl(this.w.credit(s.id, owed));
  }

  // ---- MuxDriver: what streams ask ------------------------------------------------------------------

  streamWrite(s: MuxStream): void {
    this.writers.add(s);
    this.flush();
  }

  streamFinal(s: MuxStream): void {
    this.writers.add(s);
    this.flush();
  }

  streamRead(s: MuxStream): void {
    this.grantIfDue(s);
  }

  streamDestroy(s: MuxStream, err: Error | null): void {
    this.writers.delete(s);
    const gone = err ?? hfError(ErrorCode.CLOSED, `stream ${s.id} destroyed`);
    const p = s.pendingWrite;
    const fin = s.pendingFinal;
    s.pendingWrite = null;
    s.pendingFinal = null;
    if (p !== null) p.cb(gone);
    if (fin !== null) fin(gone);
    const e = this.table.get(s.id);
    if (e !== undefined && this.streams.get(s.id) === s) {
      const code = isHfError(err) ? err.code : ErrorCode.CLOSED;
      const why = reasonOf(err, 'stream destroyed');
      if (e.state === StreamState.ACCEPTING) {
        this.table.refuse(s.id);
        this.ctl(this.w.openFail(s.id, code, why));
      } else {
        this.table.reset(s.id);
        this.ctl(this.w.reset(s.id, code, why));
      }
    }
    if (this.streams.get(s.id) === s) this.streams.delete(s.id);
  }

  streamAccept(s: MuxStream): void {
    if (s.destroyed || this.closed) return;
    const e = this.table.get(s.id);
    if (!s.incoming || e === undefined || e.state !== StreamState.ACCEPTING) {
      throw hfError(ErrorCode.PROTOCOL, `accept of stream ${s.id} (${s.target}), which is not waiting for an answer`);
    }
    this.table.accept(s.id, this.credit);
    this.ctl(this.w.openOk(s.id, this.credit));
    this.flush();
  }

  streamRefuse(s: MuxStream, code: ErrorCodeValue, message: string): void {
    if (s.destroyed) return;
    const e = this.table.get(s.id);
    if (!s.incoming || (e !== undefined && e.state !== StreamState.ACCEPTING)) {
      throw hfError(ErrorCode.PROTOCOL, `refuse of stream ${s.id} (${s.target}), which is not waiting for an answer`);
    }
    if (e !== undefined) {
      this.table.refuse(s.id);
      this.ctl(this.w.openFail(s.id, code, message));
    }
    this.streams.delete(s.id);
    s.destroy();
  }
}
