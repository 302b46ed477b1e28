/**
 * The gateway's end of one device's management channel (docs/PROTOCOL.md 14.6): a mux stream to
 * MANAGE_TARGET, opened when there is a first command to send, carrying length-prefixed command items
 * out and replies (accepted, answer) back.
 *
 *   idle --send--> opening --OPEN_OK--> ready --stream lost--> idle (opened again on the next send)
 *                     |                                   \--mux closed--> closed
 *                     +--HF_ERR_FORBIDDEN--> unmanaged (the device has no management resource)
 *
 *   'ready'               the stream was accepted: commands given to `send` before it went out now
 *   'reply' (Reply)       an accepted notice or an answer, checked (command.ts)
 *   'lost' (HfError)      the stream is gone (the device's mux began again, a reset): every command
 *                         sent on it and unanswered must be sent again (same id) on the next stream
 *   'unmanaged' (HfError) the device refused the channel; nothing will be sent
 *   'close'               the mux closed (the session ended)
 *
 * `send` takes an encoded command item (encodeCommand's bytes; the header is added here) and says
 * whether it was written now (true) or waits for the stream to open (false: the caller counts it as
 * sent on 'ready'). A reply that does not decode, or a bad item length, resets the stream with its code
 * (HF_ERR_COMMAND, HF_ERR_LIMIT) and is 'lost'.
 */
import { EventEmitter } from 'node:events';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../../firmware/errors';
import { decodeReply, type Reply } from '../../../../firmware/manage/command';
import { DEFAULT_MAX_ITEM_BYTES, ItemReader, itemHeader, MANAGE_HOST, MANAGE_PORT } from '../../../../firmware/manage/items';
import type { Mux, MuxStream } from '../../app/mux';

export interface DeviceLinkOptions {
  /** Largest reply item taken from the device, bytes (default 16842752). */
  maxItemBytes?: number;
}

export type DeviceLinkState = 'idle' | 'opening' | 'ready' | 'unmanaged' | 'closed';

export class DeviceLink extends EventEmitter {
  private readonly mux: Mux;
  private readonly maxItemBytes: number;
  private stream: MuxStream | null = null;
  private st: DeviceLinkState = 'idle';
  /** Items given while opening, written once the stream is accepted. */
  private waiting: Uint8Array[] = [];

  constructor(mux: Mux, opts: DeviceLinkOptions = {}) {
    super();
    this.mux = mux;
    this.maxItemBytes = opts.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES;
    mux.once('close', () => {
      const was = this.st;
      this.st = 'closed';
      this.stream = null;
      this.waiting = [];
      if (was !== 'closed') this.emit('close');
    });
  }

  get state(): DeviceLinkState {
    return this.st;
  }

  /**
   * Writes the command item `item` (true), or keeps it until the stream opens (false). Nothing happens
   * once unmanaged or closed (false; the caller sees the state).
   */
  send(item: Uint8Array): boolean {
    if (this.st === 'unmanaged' || this.st === 'closed') return false;
    if (this.st === 'idle') this.open();
    if (this.st !== 'ready' || this.stream === null) {
      this.waiting.push(item);
      return false;
    }
    this.write(this.stream, item);
    return true;
  }

  /** Resets the stream (the session carries on). */
  close(): void {
    this.stream?.destroy();
  }

  private write(s: MuxStream, item: Uint8Array): void {
    s.write(itemHeader(item.length));
    s.write(item);
  }

  private open(): void {
    let s: MuxStream;
    try {
      s = this.mux.open(MANAGE_HOST, MANAGE_PORT);
    } catch {
      return; // the mux is closing: 'close' follows
    }
    this.st = 'opening';
    this.stream = s;
    const reader = new ItemReader(this.maxItemBytes);
    s.on('connect', () => {
      if (this.stream !== s) return;
      this.st = 'ready';
      const items = this.waiting;
      this.waiting = [];
      for (const it of items) this.write(s, it);
      this.emit('ready');
    });
    s.on('data', (chunk: Buffer) => {
      if (this.stream !== s) return;
      let replies: Reply[];
      try {
        replies = reader.push(chunk).map((b) => decodeReply(b));
      } catch (e) {
        s.destroy(isHfError(e) ? e : hfError(ErrorCode.COMMAND, String(e)));
        return;
      }
      for (const r of replies) this.emit('reply', r);
    });
    s.on('error', () => {}); // 'close' below says what happened
    s.on('close', () => {
      if (this.stream !== s) return;
      this.stream = null;
      const err = (s.errored as HfError | null) ?? hfError(ErrorCode.CLOSED, 'the management stream ended');
      if (this.st === 'closed') return;
      if (this.st === 'opening' && isHfError(err) && err.code === ErrorCode.FORBIDDEN) {
        this.st = 'unmanaged';
        this.waiting = [];
        this.emit('unmanaged', err);
        return;
      }
      const wasOpening = this.st === 'opening';
      this.st = 'idle';
      if (wasOpening && this.waiting.length > 0) {
        // Refused for another reason (a limit, a reset): what waited was never sent; the caller re-sends.
        this.waiting = [];
      }
      this.emit('lost', err);
    });
    s.resume();
  }
}
