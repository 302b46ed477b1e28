/**
 * ws: a WebSocketServer and a WebSocket client (the `ws` package), binary messages,
 * perMessageDeflate off on both sides (ws sets TCP_NODELAY itself). ws has no reconnect of its own.
 * Flow control: the send callback (the frame was written to the socket) releases the Window.
 * `ws-tls` is the same over an https server and a wss:// URL (bench/tls.ts).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { WebSocket, WebSocketServer } from 'ws';
import { type Adapter, BaseConn, type ConnectOptions, Registry, type Server, listenLocal, within } from '../adapter';
import { TLS_SETTINGS, benchTls } from '../tls';

class WsConn extends BaseConn {
  constructor(private readonly ws: WebSocket) {
    super();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => this.deliver(data));
    ws.on('error', () => {});
    ws.on('close', () => this.ended());
  }

  send(msg: Buffer): boolean {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.window.full) return false;
    const n = msg.length;
    this.window.add(n);
    this.ws.send(msg, { binary: true }, () => this.window.done(n));
    return true;
  }

  close(timeoutMs: number): Promise<void> {
    return this.closeWithin(
      timeoutMs,
      'ws close',
      () => this.ws.close(),
      () => this.ws.terminate(),
    );
  }
}

function wsAdapter(name: string, secure: boolean): Adapter {
  return {
    name,
    settings: `ws WebSocketServer + WebSocket, perMessageDeflate: false, binary frames${secure ? `; https.createServer + wss:// URL; ${TLS_SETTINGS}` : ''}`,
    reconnects: false,
    windowed: true,
    plain: secure ? 'ws' : undefined,
    async listen(): Promise<Server> {
      const conns = new Registry<WsConn>();
      const server = secure ? https.createServer({ cert: benchTls().cert, key: benchTls().key }) : http.createServer();
      const wss = new WebSocketServer({ server, perMessageDeflate: false });
      wss.on('connection', (sock: WebSocket) => conns.add(new WsConn(sock)));
      const port = await listenLocal(server);
      return conns.server(
        port,
        () =>
          new Promise<void>((resolve) => {
            for (const c of wss.clients) c.terminate();
            wss.close();
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
    },
    async connect(ports, opts: ConnectOptions): Promise<WsConn> {
      const sock = secure
        ? new WebSocket(`wss://127.0.0.1:${ports.main}/`, { perMessageDeflate: false, ca: benchTls().ca })
        : new WebSocket(`ws://127.0.0.1:${ports.main}/`, { perMessageDeflate: false });
      try {
        await within(
          new Promise<void>((resolve, reject) => {
            sock.once('open', () => resolve());
            sock.once('error', reject);
          }),
          opts.timeoutMs,
          `${name} connect`,
        );
      } catch (e) {
        sock.terminate();
        throw e;
      }
      return new WsConn(sock);
    },
  };
}

export const ws = wsAdapter('ws', false);
export const wsTls = wsAdapter('ws-tls', true);
