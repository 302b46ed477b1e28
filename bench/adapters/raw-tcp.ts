/**
 * raw-tcp, the floor: `[length u32 BE][message]` frames on a net.Socket with setNoDelay, writes of one
 * tick corked into one writev, up to `Window.high` bytes buffered in the socket (tuned like the
 * peers' windows; the socket's own 16 KiB highWaterMark would let one 16 KiB message out per drain).
 * No acknowledgements, no reconnect, no authentication: what is left when every guarantee is taken
 * away. `raw-tcp-tls` is the same over a tls.Server and tls.connect (bench/tls.ts): the floor of the
 * TLS rows.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { type Adapter, BaseConn, type ConnectOptions, Registry, type Server, Window, listenLocal, within } from '../adapter';
import { TLS_SETTINGS, benchTls } from '../tls';

const HEAD = 4;
/** Largest frame accepted (the workloads send at most 16 KiB). */
const MAX_FRAME = 1 << 20;

class SocketConn extends BaseConn {
  private corked = false;
  private chunks: Buffer[] = [];
  private have = 0;

  constructor(private readonly s: net.Socket) {
    super();
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => this.read(d));
    s.on('drain', () => this.window.wake());
    s.on('error', () => {});
    s.on('close', () => this.ended());
  }

  send(msg: Buffer): boolean {
    if (this.closed || this.s.destroyed) return false;
    if (this.s.writableLength >= Window.high) return false;
    if (!this.corked) {
      this.corked = true;
      this.s.cork();
      process.nextTick(() => {
        this.corked = false;
        this.s.uncork();
      });
    }
    const f = Buffer.allocUnsafe(HEAD + msg.length);
    f.writeUInt32BE(msg.length, 0);
    msg.copy(f, HEAD);
    this.s.write(f);
    return true;
  }

  /** Reassembles frames from socket chunks. */
  private read(d: Buffer): void {
    this.chunks.push(d);
    this.have += d.length;
    while (this.have >= HEAD) {
      let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.have);
      const len = buf.readUInt32BE(0);
      if (len > MAX_FRAME) {
        this.s.destroy();
        return;
      }
      if (this.have < HEAD + len) {
        this.chunks = [buf];
        return;
      }
      this.deliver(buf.subarray(HEAD, HEAD + len));
      buf = buf.subarray(HEAD + len);
      this.have = buf.length;
      this.chunks = this.have > 0 ? [buf] : [];
    }
  }

  close(timeoutMs: number): Promise<void> {
    return this.closeWithin(
      timeoutMs,
      'raw-tcp close',
      () => this.s.end(),
      () => this.s.destroy(),
    );
  }
}

function raw(name: string, secure: boolean): Adapter {
  return {
    name,
    settings: `${secure ? 'tls.Server + tls.connect' : 'net.Socket'}, setNoDelay(true), u32 length prefix, writes of one tick corked${secure ? `; ${TLS_SETTINGS}` : ''}`,
    reconnects: false,
    windowed: true,
    plain: secure ? 'raw-tcp' : undefined,
    async listen(): Promise<Server> {
      const conns = new Registry<SocketConn>();
      const sockets = new Set<net.Socket>();
      const onSocket = (s: net.Socket): void => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        conns.add(new SocketConn(s));
      };
      const server = secure ? tls.createServer({ cert: benchTls().cert, key: benchTls().key }, onSocket) : net.createServer(onSocket);
      const port = await listenLocal(server);
      return conns.server(
        port,
        () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy();
            server.close(() => resolve());
          }),
      );
    },
    async connect(ports, opts: ConnectOptions): Promise<SocketConn> {
      const s = secure ? tls.connect({ host: '127.0.0.1', port: ports.main, ca: benchTls().ca }) : net.connect({ host: '127.0.0.1', port: ports.main });
      try {
        await within(
          new Promise<void>((resolve, reject) => {
            s.once(secure ? 'secureConnect' : 'connect', () => resolve());
            s.once('error', reject);
          }),
          opts.timeoutMs,
          `${name} connect`,
        );
      } catch (e) {
        s.destroy();
        throw e;
      }
      return new SocketConn(s);
    },
  };
}

export const rawTcp = raw('raw-tcp', false);
export const rawTcpTls = raw('raw-tcp-tls', true);
