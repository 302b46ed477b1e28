/**
 * The device's direct TCP transport: one connection to the gateway carrying length-prefixed bundles
 * both ways (frames.ts). It reports what happens (up, frame, down) and knows nothing of the ladder
 * that decides when to use it. Each `connect` starts a new attempt; events of an older attempt are
 * ignored, and `close` reports nothing.
 *
 * With `tls` the connection is TLS (tls-client.ts): it is up only once the handshake is done and the
 * gateway's certificate passed; a refused one goes down with the HF_ERR_TLS (retried as any other
 * failed connection, with the ladder's back-off).
 */
import * as net from 'node:net';
import { type HfError, isHfError } from '../../../firmware/errors';
import type { Address } from '../net/address';
import { FrameReader, FrameWriter } from '../net/frames';
import { type ClientTls, openTls } from './tls-client';

export interface TcpTransportEvents {
  onUp(): void;
  onFrame(body: Buffer): void;
  /** The gateway told its pair epoch (an epoch frame, before its frames). */
  onEpoch?(epoch: number): void;
  /** The connection went down; `err` when a coded failure says why (HF_ERR_TLS: the certificate). */
  onDown(reason: string, err?: HfError): void;
}

export class TcpTransport {
  private readonly to: Address;
  private readonly maxFrame: number;
  private readonly ev: TcpTransportEvents;
  private socket: net.Socket | null = null;
  private readonly writer = new FrameWriter();
  private up = false;
  private attempt = 0;

  private readonly tls: ClientTls | null;

  constructor(to: Address, maxFrame: number, ev: TcpTransportEvents, tls: ClientTls | null = null) {
    this.to = to;
    this.maxFrame = maxFrame;
    this.ev = ev;
    this.tls = tls;
  }

  connect(): void {
    this.close();
    const n = ++this.attempt;
    const reader = new FrameReader(this.maxFrame);
    const live = (): boolean => n === this.attempt;
    reader.takeEpochs((epoch) => {
      if (live()) this.ev.onEpoch?.(epoch);
    });
    const up = (): void => {
      if (!live()) return;
      this.up = true;
      this.ev.onUp();
    };
    const s =
      this.tls === null
        ? net.connect({ host: this.to.host, port: this.to.port })
        : openTls(this.tls, this.to.host, this.to.port, (err) => (err === null ? up() : this.drop(n, `${err.code}: ${err.message}`, err)));
    this.socket = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, 30_000);
    if (this.tls === null) s.on('connect', up);
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

  private drop(n: number, reason: string, err?: HfError): void {
    if (n !== this.attempt) return;
    this.attempt++;
    this.up = false;
    this.socket?.destroy();
    this.socket = null;
    this.ev.onDown(reason, err);
  }
}
