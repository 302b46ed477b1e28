/**
 * A Node `Duplex` over a whole Channel, so code written for a `net.Socket` runs unchanged over a
 * session: writes become messages of at most `maxChunk` bytes, each message read is pushed as one
 * chunk, `end()` closes this direction (half-close), the peer's end is the stream's 'end'.
 *
 * Backpressure both ways: when `send()` refuses a message (the out-ring is full) the write callback
 * waits for the channel's 'drain' and the message is sent again; when `push()` says the stream's
 * buffer is full the channel is paused (the peer is held back by the link's window) until `_read`.
 *
 * A channel that closes with an error destroys the stream with that error; a clean close ends it.
 * Destroying the stream destroys the channel, except after a clean half-close both ways (then the
 * channel finishes delivering what is queued and closes by itself).
 */
import { Duplex } from 'node:stream';
import { checkInt } from '../../../firmware/check';
import { ErrorCode, hfError } from '../../../firmware/errors';
import type { Channel, ChannelEvents } from './channel';

export interface ChannelStreamOptions {
  /** Largest message a write is cut into, bytes (default 16384; 1..65536, at most the link's maxMessage). */
  maxChunk?: number;
  /** The stream's readable and writable highWaterMark, bytes (default 16384). */
  highWaterMark?: number;
}

export function channelStream(ch: Channel, opts: ChannelStreamOptions = {}): Duplex {
  if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, `options must be an object, got ${String(opts)}`);
  const maxChunk = opts.maxChunk === undefined ? 16384 : checkInt('maxChunk', opts.maxChunk, 1, 65536);
  const hwm = opts.highWaterMark === undefined ? 16384 : checkInt('highWaterMark', opts.highWaterMark, 1, 1 << 30);
  return new ChannelDuplex(ch, maxChunk, hwm);
}

class ChannelDuplex extends Duplex {
  private readonly ch: Channel;
  private readonly maxChunk: number;
  /** The write waiting for 'drain': its bytes, how far they went, its callback. */
  private pending: { chunk: Buffer; off: number; cb: (err?: Error | null) => void } | null = null;
  private ended = false;
  // biome-ignore lint/suspicious/noExplicitAny: one table for listeners of events with different arguments
  private readonly chListeners: [keyof ChannelEvents, (...a: any[]) => void][];

  constructor(ch: Channel, maxChunk: number, hwm: number) {
    super({ allowHalfOpen: true, highWaterMark: hwm });
    this.ch = ch;
    this.maxChunk = maxChunk;
    this.chListeners = [
      [
        'message',
        (m: Buffer, done: () => void) => {
          if (!this.destroyed && !this.push(m)) ch.pause();
          done(); // ackAfter 'app': confirmed once the stream took it
        },
      ],
      ['drain', () => this.flush()],
      [
        'end',
        () => {
          if (!this.destroyed) this.push(null);
        },
      ],
      ['close', (err?: Error) => this.onChannelClose(err)],
    ];
    for (const [ev, fn] of this.chListeners) ch.on(ev, fn);
    if (ch.closed) process.nextTick(() => this.onChannelClose(hfError(ErrorCode.CLOSED, 'channel closed before the stream was made')));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk, off: 0, cb };
    this.flush();
  }

  /** Sends what it can of the pending write; its callback runs once every byte was accepted. */
  private flush(): void {
    const p = this.pending;
    if (p === null) return;
    try {
      while (p.off < p.chunk.length) {
        const n = Math.min(this.maxChunk, p.chunk.length - p.off);
        if (!this.ch.send(p.chunk.subarray(p.off, p.off + n))) return; // refused: again on 'drain'
        p.off += n;
      }
    } catch (e) {
      this.pending = null;
      p.cb(e as Error);
      return;
    }
    this.pending = null;
    p.cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.ended = true;
    if (!this.ch.closed) this.ch.end();
    cb();
  }

  override _read(): void {
    this.ch.resume();
  }

  private onChannelClose(err?: Error): void {
    for (const [ev, fn] of this.chListeners) this.ch.off(ev, fn);
    if (this.destroyed) return;
    if (err) {
      this.destroy(err);
      return;
    }
    if (this.pending !== null) {
      this.destroy(hfError(ErrorCode.CLOSED, `channel closed with ${this.pending.chunk.length - this.pending.off} bytes of a write unsent`));
      return;
    }
    this.push(null);
    if (!this.writableEnded) this.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const p = this.pending;
    this.pending = null;
    if (p !== null) p.cb(err ?? hfError(ErrorCode.CLOSED, 'stream destroyed'));
    const clean = err === null && this.ended && this.readableEnded;
    if (!this.ch.closed && !clean) this.ch.destroy(err ?? undefined);
    cb(err);
  }
}
