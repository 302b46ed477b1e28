/**
 * engine.io (server) + engine.io-client, each forced onto one transport (no upgrades):
 *   eio-polling          HTTP long-polling; the Node client gets a keep-alive http.Agent
 *   eio-polling-noagent  the same without an agent: the client opens a TCP connection per request
 *   eio-websocket        WebSocket only
 * Binary messages (in polling payloads engine.io carries them base64-encoded). Server: httpCompression
 * and perMessageDeflate off, maxHttpBufferSize 1e7, other options at their defaults (pings every 25 s).
 * Why 1e7: engine.io-client splits what it has buffered into POSTs of at most maxHttpBufferSize by its
 * own size estimate, which counts base64 at 1.33x plus 2 bytes a packet while the payload takes 4/3x
 * plus 2; with the default 1e6, about 1 MB of queued binary messages makes a POST a little over the
 * limit, the server answers 413 and the session closes.
 * engine.io has no reconnect (socket.io's Manager adds one on top).
 * Flow control: engine.io's own 'drain' (its write buffer was handed to the transport) resets the
 * Window.
 */
import * as http from 'node:http';
import { attach, type Socket as ServerSocket } from 'engine.io';
import { Socket as ClientSocket, type SocketOptions } from 'engine.io-client';
import { type Adapter, BaseConn, type ConnectOptions, Registry, type Server, listenLocal, within } from '../adapter';

type Kind = 'eio-polling' | 'eio-polling-noagent' | 'eio-websocket';

/** What a server-side and a client-side engine.io socket have in common here. */
interface EioSocket {
  readyState: string;
  send(data: Buffer): unknown;
  close(): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: engine.io's server and client sockets type their listeners differently
  on(ev: string, fn: (...a: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  once(ev: string, fn: (...a: any[]) => void): unknown;
}

const asBuffer = (d: unknown): Buffer => (Buffer.isBuffer(d) ? d : typeof d === 'string' ? Buffer.from(d) : Buffer.from(d as ArrayBuffer));

class EioConn extends BaseConn {
  constructor(
    private readonly sock: EioSocket,
    private readonly agent: http.Agent | null,
  ) {
    super();
    sock.on('message', (d: unknown) => this.deliver(asBuffer(d)));
    sock.on('drain', () => this.window.reset());
    sock.on('error', () => {});
    sock.on('close', () => {
      this.agent?.destroy();
      this.ended();
    });
  }

  send(msg: Buffer): boolean {
    if (this.closed || this.sock.readyState !== 'open') return false;
    if (this.window.full) return false;
    this.window.add(msg.length);
    this.sock.send(msg);
    return true;
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    await this.closeWithin(
      timeoutMs,
      'engine.io close',
      () => this.sock.close(),
      () => this.ended(),
    );
    this.agent?.destroy();
  }
}

function eio(name: Kind): Adapter {
  const transport = name === 'eio-websocket' ? 'websocket' : 'polling';
  return {
    name,
    settings:
      name === 'eio-websocket'
        ? "transports: ['websocket'], no upgrade, perMessageDeflate: false, maxHttpBufferSize: 1e7"
        : `transports: ['polling'], no upgrade, httpCompression: false, maxHttpBufferSize: 1e7, ${name === 'eio-polling' ? 'client agent: http.Agent({keepAlive: true})' : 'no client agent (a TCP connection per request)'}`,
    reconnects: false,
    windowed: true,
    async listen(): Promise<Server> {
      const conns = new Registry<EioConn>();
      const server = http.createServer();
      const engine = attach(server, { transports: [transport], allowUpgrades: false, httpCompression: false, perMessageDeflate: false, maxHttpBufferSize: 1e7 });
      engine.on('connection', (s: ServerSocket) => conns.add(new EioConn(s as unknown as EioSocket, null)));
      const port = await listenLocal(server);
      return conns.server(
        port,
        () =>
          new Promise<void>((resolve) => {
            engine.close();
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
    },
    async connect(ports, opts: ConnectOptions): Promise<EioConn> {
      const agent = name === 'eio-polling' ? new http.Agent({ keepAlive: true }) : null;
      const o: SocketOptions = { transports: [transport], upgrade: false };
      // engine.io-client passes `agent` to http.request in Node (its types say string | boolean).
      if (agent !== null) (o as { agent?: unknown }).agent = agent;
      const sock = new ClientSocket(`http://127.0.0.1:${ports.main}`, o);
      sock.binaryType = 'nodebuffer' as never;
      try {
        await within(
          new Promise<void>((resolve, reject) => {
            sock.once('open', () => resolve());
            sock.once('error', (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
          }),
          opts.timeoutMs,
          `${name} connect`,
        );
      } catch (e) {
        sock.close();
        agent?.destroy();
        throw e;
      }
      return new EioConn(sock as unknown as EioSocket, agent);
    },
  };
}

export const eioPolling = eio('eio-polling');
export const eioPollingNoAgent = eio('eio-polling-noagent');
export const eioWebsocket = eio('eio-websocket');
