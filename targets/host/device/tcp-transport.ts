/**
 * The device's direct TCP transport: one connection to the gateway carrying length-prefixed bundles
 * both ways (frames.ts). It reports what happens (up, frame, down) and knows nothing of the ladder
 * that decides when to use it. Each `connect` starts a new attempt; events of an older attempt are
 * ignored, and `close` reports nothing.
 */
import * as net from 'node:net';
import { isHfError } from '../../../firmware/errors';
import type { Address } from '../net/address';
import { FrameReader, FrameWriter } from '../net/frames';

export interface TcpTransportEvents {
  onUp(): void;
  onFrame(body: Buffer): void;
  onDown(reason: string): void;
}

export class TcpTransport {
  private readonly to: Address;
  private readonly maxFrame: number;
  private readonly ev: TcpTransportEvents;
  private socket: net.Socket | null = null;
  private readonly writer = new FrameWriter();
  private up = false;
  private attempt = 0;

  constructor(to: Address, maxFrame: number, ev: TcpTransportEvents) {
    this.to = to;
    this.maxFrame = maxFrame;
    this.ev = ev;
  }

  connect(): void {
    this.close();
    const n = ++this.attempt;
    const reader = new FrameReader(this.maxFrame);
    const s = net.connect({ host: this.to.host, port: this.to.port });
    this.socket = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, 30_000);
    const live = (): boolean => n === this.attempt;
    s.on('connect', () => {
      if (!live()) return;
      this.up = true;
      this.ev.onUp();
    });
    s.on('data', (chunk: Buffer) => {
      if (!live()) return;
      try {
        reader.push(chunk, (body) => {
          if (live()) this.ev.onFrame(body);
        });
      } catch (e) {
        this.drop(n, isHfError(e) ? `${e.code}: ${e.message}` : (e as Error).message);
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => this.drop(n, e.code ?? e.message));
    s.on('close', () => this.drop(n, 'connection closed'));
  }

  /** Writes one frame; false if there is no connection (the link retransmits what is lost). */
  send(body: Uint8Array, len: number): boolean {
    if (!this.up || this.socket === null) return false;
    this.writer.write(this.socket, body, len);
    return true;
  }

  /** Sends what is written, then closes, without reporting it (for the session's last frame). */
  end(): void {
    this.attempt++;
    this.up = false;
    if (this.socket !== null) {
      const s = this.socket;
      this.socket = null;
      s.end();
      setTimeout(() => s.destroy(), 1000).unref();
    }
  }

  /** Closes the connection without reporting it. */
  close(): void {
    this.attempt++;
    this.up = false;
    if (this.socket !== null) {
      this.socket.destroy();
      this.socket = null;
    }
  }

  private drop(n: number, reason: string): void {
    if (n !== this.attempt) return;
    this.attempt++;
    this.up = false;
    this.socket?.destroy();
    this.socket = null;
    this.ev.onDown(reason);
  }
}
