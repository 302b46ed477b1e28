/**
 * The gateway's direct TCP front: each connection carries length-prefixed bundles both ways (see
 * frames.ts). The first frame is a hello (a new session) or a bundle of an existing session (the
 * device moving it onto this connection); the session's frames then go out on the connection that
 * carried its latest accepted frame. When that connection closes, the session falls back to waiting
 * for HTTP requests; nothing is lost, unacknowledged messages go again on whatever comes next.
 *
 * A refused frame is answered with an error frame (the code inside); a connection that never carried
 * an accepted frame is closed after its refusal, as is one whose framing is broken.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { errorBundle } from '../../../firmware/error-bundle';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';
import type { ServerLink } from '../../../firmware/server-link';
import { type Address, listenOn } from '../net/address';
import { FrameReader, FrameWriter, frame } from '../net/frames';
import { type FrontHost, Refusal, type TcpListener } from './front';

interface Conn {
  id: number;
  socket: net.Socket;
  reader: FrameReader;
  writer: FrameWriter;
  /** The session whose frame this connection last carried. */
  link: ServerLink | null;
}

export class TcpFront implements TcpListener {
  private readonly server: net.Server | tls.Server;
  private readonly gw: FrontHost;
  private readonly want: Address;
  private readonly maxConnections: number;
  private readonly conns = new Map<number, Conn>();
  private seq = 0;
  address = '';

  /** `tlsOptions`: Node's server TLS options (gateway/tls.ts); null: plain TCP. */
  constructor(gw: FrontHost, want: Address, maxConnections: number, tlsOptions: tls.TlsOptions | null = null) {
    this.gw = gw;
    this.want = want;
    this.maxConnections = maxConnections;
    // TLS: connections reach onConnection once their handshake is done; a failed one only closes.
    this.server = tlsOptions === null ? net.createServer((s) => this.onConnection(s)) : tls.createServer(tlsOptions, (s) => this.onConnection(s));
    if (tlsOptions !== null) this.server.on('tlsClientError', (e: NodeJS.ErrnoException) => gw.log.debug('tls handshake failed', { front: 'tcp', reason: e.code ?? e.message }));
  }

  /** New certificate and key for connections from now on (TLS only). */
  setSecureContext(o: tls.TlsOptions): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext(o);
  }

  get connections(): number {
    return this.conns.size;
  }

  async listen(): Promise<void> {
    this.address = await listenOn(this.server, this.want, 'tcp');
  }

  close(): Promise<void> {
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Writes a frame on connection `id` (dropped if it is gone: the link retransmits). */
  send(id: number, body: Uint8Array, len: number): void {
    const c = this.conns.get(id);
    if (c === undefined || c.socket.destroyed) return;
    c.writer.write(c.socket, body, len);
  }

  private onConnection(socket: net.Socket): void {
    if (this.conns.size >= this.maxConnections) {
      const busy = hfError(ErrorCode.BUSY, `${this.conns.size} connections, limit ${this.maxConnections}`);
      const e = errorBundle(0, busy);
      socket.end(frame(e, e.length));
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const c: Conn = { id: ++this.seq, socket, reader: new FrameReader(this.gw.maxBody), writer: new FrameWriter(), link: null };
    this.conns.set(c.id, c);
    socket.on('data', (chunk: Buffer) => {
      try {
        c.reader.push(chunk, (body) => this.onFrame(c, body));
      } catch (e) {
        if (!isHfError(e)) throw e;
        this.refuse(c, 0, e);
        socket.end();
        socket.destroySoon?.();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(c));
  }

  private onFrame(c: Conn, body: Buffer): void {
    if (c.socket.destroyed) return;
    const got = this.gw.frame(c.id, body);
    if (got instanceof Refusal) {
      this.refuse(c, got.rn, got.error);
      if (c.link === null) c.socket.end();
      return;
    }
    if (c.link !== got) {
      c.link = got;
      this.gw.log.info('session on tcp', { device: got.deviceId, session: Buffer.from(got.sid).toString('hex').slice(0, 8) });
    }
  }

  private refuse(c: Conn, rn: number, e: HfError): void {
    const b = errorBundle(rn, e);
    if (!c.socket.destroyed) c.socket.write(frame(b, b.length));
  }

  private onClose(c: Conn): void {
    this.conns.delete(c.id);
    if (c.link !== null) this.gw.connectionClosed(c.link, c.id);
  }
}
