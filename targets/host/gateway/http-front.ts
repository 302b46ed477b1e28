/**
 * The gateway's HTTP front: `POST /v1/link` with an `application/cbor` body of one bundle. The request
 * is handed to the acceptor and held until its session answers it; the answer is one bundle with
 * Content-Length and `Cache-Control: no-store` (nothing in between may cache or transform it).
 *
 * Refusals carry the error code three ways: the HTTP status (403, 400, 413, 503, ...), the header
 * `x-holdfast-error`, and the body — an error bundle (CBOR) for a client that sent CBOR, else JSON
 * `{"code": ..., "message": ...}` for people with curl. A refusal changes no session.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import { errorBundle } from '../../../firmware/error-bundle';
import { ErrorCode, type ErrorCodeValue, type HfError, hfError } from '../../../firmware/errors';
import type { ServerLink } from '../../../firmware/server-link';
import { type Address, listenOn } from '../net/address';
import { type FrontHost, type HttpListener, Refusal } from './front';
import { CBOR_TYPE, EPOCH_HEADER, ERROR_HEADER, statusFor } from '../net/http-status';

/** How a worker's HTTP front treats the connections handed to it (see HttpFront.handedOff). */
export type HandoffHttp = 'close' | 'keep-alive';

/** What an exchange answers into: an HTTP response, or a relayed request's answer (RelayReply). */
interface Reply {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  setHeader(name: string, value: string): unknown;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body: Buffer): unknown;
  on(event: 'close', listener: () => void): unknown;
  destroy(): unknown;
}

interface Exchange {
  res: Reply;
  link: ServerLink | null;
}

/** What a relayed request's owner answers: status, error code ('' none) and body, sent on as they are. */
export interface RelayedAnswer {
  status: number;
  code: string;
  body: Uint8Array;
}

/** Closes an exchange's connection unanswered: the device sends the request again on a new one. */
function unanswered(res: Reply): void {
  if (res instanceof RelayReply) res.drop();
  else (res as http.ServerResponse).req.socket.destroy();
}

/** The answer of a request another gateway relayed here (cluster): collected, then handed back whole. */
class RelayReply implements Reply {
  headersSent = false;
  readonly destroyed = false;
  private status = 200;
  private code = '';
  private readonly done: (a: RelayedAnswer) => void;
  readonly answer: Promise<RelayedAnswer>;

  constructor() {
    let done!: (a: RelayedAnswer) => void;
    this.answer = new Promise((resolve) => {
      done = resolve;
    });
    this.done = done;
  }

  setHeader(name: string, value: string): void {
    if (name === ERROR_HEADER) this.code = value;
  }

  writeHead(status: number, headers: Record<string, string | number>): void {
    this.headersSent = true;
    this.status = status;
    const code = headers[ERROR_HEADER];
    if (typeof code === 'string') this.code = code;
  }

  end(body: Buffer): void {
    this.done({ status: this.status, code: this.code, body });
  }

  on(): void {}

  /** Closed unanswered here (the session moved): the relaying node closes its device's connection. */
  drop(): void {
    this.done({ status: 503, code: ErrorCode.MOVED, body: new Uint8Array(0) });
  }

  /** The gateway shuts down before it answered: the relaying node's device sends it again elsewhere. */
  destroy(): void {
    const body = Buffer.from(`${JSON.stringify({ code: ErrorCode.CLOSED, message: 'gateway shutting down' })}\n`);
    this.done({ status: 503, code: ErrorCode.CLOSED, body });
  }
}

export class HttpFront implements HttpListener {
  private readonly server: http.Server | https.Server;
  private readonly secure: boolean;
  private readonly gw: FrontHost;
  private readonly want: Address;
  private readonly exchanges = new Map<number, Exchange>();
  private seq = 0;
  /** Bound address once listening. */
  address = '';

  /**
   * A worker's front (connections handed by the main process, which routed their first request).
   * 'close': every response closes its connection, so each request is routed by the main process.
   * 'keep-alive': connections stay; a later request on one is served only if its session is here (or
   * it is a hello the main process places here); any other closes the connection unanswered, and the
   * device sends it again on a new one, which the main process routes.
   */
  private readonly handedOff: HandoffHttp | null;
  /** Handed-off connections that carried a request already. */
  private readonly used = new WeakSet<net.Socket>();

  /**
   * `tls`: Node's server TLS options (gateway/tls.ts); null: plain HTTP. `handedOff`: a worker's
   * front (see the field); null: a front of its own listener.
   */
  constructor(gw: FrontHost, want: Address, tlsOptions: tls.TlsOptions | null = null, handedOff: HandoffHttp | null = null) {
    this.gw = gw;
    this.handedOff = handedOff;
    this.want = want;
    this.secure = tlsOptions !== null;
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => this.onRequest(req, res);
    this.server = tlsOptions === null ? http.createServer(onRequest) : https.createServer(tlsOptions, onRequest);
    // A failed handshake (an untrusted or missing client certificate, plain HTTP on the TLS port) only
    // closes that connection.
    this.server.on('tlsClientError', (e: NodeJS.ErrnoException) => gw.log.debug('tls handshake failed', { front: 'http', reason: e.code ?? e.message }));
    // Held requests are answered within the link's hold limit; a socket between requests may idle a
    // little longer than that before the gateway closes it.
    const hold = gw.holdMs;
    this.server.keepAliveTimeout = hold + 10_000;
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 60_000;
  }

  get url(): string {
    return `${this.secure ? 'https' : 'http'}://${this.address}${this.gw.path}`;
  }

  /** Whether this front serves HTTPS. */
  get tls(): boolean {
    return this.secure;
  }

  /** New certificate and key for connections from now on (HTTPS only). */
  setSecureContext(o: tls.TlsOptions): void {
    if (this.server instanceof https.Server) this.server.setSecureContext(o);
  }

  /** Requests held open now. */
  get held(): number {
    return this.exchanges.size;
  }

  async listen(): Promise<void> {
    this.address = await listenOn(this.server, this.want, 'http');
  }

  /** Serves a connection accepted elsewhere; `head`: its bytes already read (parsed first). */
  adopt(socket: net.Socket, head: Buffer): void {
    if (head.length > 0) socket.unshift(head);
    this.server.emit('connection', socket);
  }

  close(): Promise<void> {
    for (const x of this.exchanges.values()) x.res.destroy();
    this.exchanges.clear();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.gw.counters.httpRequests++;
    if (this.handedOff === 'close') res.setHeader('Connection', 'close');
    const cbor = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === CBOR_TYPE;
    const path = (req.url ?? '').split('?')[0];
    if (path !== this.gw.path) return this.reject(res, cbor, hfError(ErrorCode.HTTP, `no such endpoint ${JSON.stringify(path)}; the link is POST ${this.gw.path}`), 404);
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return this.reject(res, cbor, hfError(ErrorCode.HTTP, `method ${req.method} not allowed; the link is POST ${this.gw.path}`), 405);
    }
    if (!cbor) return this.reject(res, false, hfError(ErrorCode.HTTP, `content type must be ${CBOR_TYPE}, got ${JSON.stringify(req.headers['content-type'] ?? '')}`), 415);
    // A standby serves no device: JSON, not an error bundle, so the device's session is untouched.
    if (this.gw.standby()) return this.reject(res, false, hfError(ErrorCode.STANDBY, 'this gateway is a standby: send to the primary'));
    const declared = req.headers['content-length'] === undefined ? -1 : Number(req.headers['content-length']);
    if (declared > this.gw.maxBody) return this.tooLarge(req, res, declared);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > this.gw.maxBody) {
        over = true;
        this.tooLarge(req, res, size);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (over) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      const from = req.socket.remoteAddress ?? '?';
      const relayed = this.gw.relay(body, from);
      if (relayed !== null) return this.relayed(res, relayed);
      if (this.handedOff !== 'keep-alive') return this.dispatch(body, res, from);
      if (!this.used.has(req.socket)) {
        this.used.add(req.socket);
        return this.dispatch(body, res, from);
      }
      const here = this.gw.mayServe(body);
      if (here === true) this.dispatch(body, res, from);
      else if (here === false) this.misrouted(req);
      else
        here.then(
          (ok) => {
            if (res.destroyed) return; // gone while the main process was asked
            if (ok) this.dispatch(body, res, from);
            else this.misrouted(req);
          },
          () => this.misrouted(req),
        );
    });
    req.on('error', () => res.destroy());
  }

  /** A request for another worker on a handed connection: the connection closes unanswered, and the device sends it again on a new one. */
  private misrouted(req: http.IncomingMessage): void {
    this.gw.counters.misrouted++;
    this.gw.log.debug('request for another worker: connection closed to be routed again', { from: req.socket.remoteAddress });
    req.socket.destroy();
  }

  /** A request another node serves (cluster): its answer, written as that node gave it. */
  private relayed(res: http.ServerResponse, answer: Promise<RelayedAnswer | null>): void {
    answer.then(
      (a) => {
        if (res.headersSent || res.destroyed) return;
        if (a === null) return this.reject(res, true, hfError(ErrorCode.NATS, 'relay: the session is served nowhere now'));
        if (a.code === ErrorCode.MOVED) return res.req.socket.destroy(); // closed unanswered there: sent again
        this.gw.counters.relayed++;
        res.writeHead(a.status, { 'Content-Type': CBOR_TYPE, 'Content-Length': a.body.length, 'Cache-Control': 'no-store', ...(a.code === '' ? {} : { [ERROR_HEADER]: a.code }) });
        res.end(Buffer.from(a.body.buffer, a.body.byteOffset, a.body.length));
      },
      (e: HfError) => this.reject(res, true, e),
    );
  }

  /** Serves a request another gateway of the cluster relayed here (from address `from`); resolves with its answer. */
  serveRelayed(body: Uint8Array, from: string): Promise<RelayedAnswer> {
    const reply = new RelayReply();
    if (this.gw.standby()) this.reject(reply, false, hfError(ErrorCode.STANDBY, 'this gateway is a standby: send to the primary'));
    else if (body.length > this.gw.maxBody) this.reject(reply, true, hfError(ErrorCode.LIMIT, `request body of ${body.length} bytes, limit ${this.gw.maxBody}`), 413);
    else this.dispatch(body, reply, from, true);
    return reply.answer;
  }

  private dispatch(body: Uint8Array, res: Reply, from: string, relayed = false): void {
    const gw = this.gw;
    const ex = ++this.seq;
    const x: Exchange = { res, link: null };
    this.exchanges.set(ex, x);
    res.on('close', () => {
      // Gone before it was answered: the client (or a proxy) closed the connection.
      if (this.exchanges.get(ex) !== x) return;
      this.exchanges.delete(ex);
      if (x.link !== null) gw.exchangeGone(x.link, ex);
    });
    const got = gw.request(ex, body, from, relayed);
    if (got instanceof Refusal) {
      if (this.exchanges.get(ex) === x) this.exchanges.delete(ex);
      if (got.unanswered) {
        unanswered(res);
        return;
      }
      this.refuse(res, true, got.rn, got.error, statusFor(got.error.code as ErrorCodeValue), got.body);
      return;
    }
    if (this.exchanges.get(ex) === x) x.link = got;
  }

  /**
   * Closes held exchange `ex` unanswered (its connection with it): the device sends the request
   * again on a new connection. Its session hears nothing of it (exchangeGone is not called).
   */
  drop(ex: number): void {
    const x = this.exchanges.get(ex);
    if (x === undefined) return;
    this.exchanges.delete(ex);
    unanswered(x.res);
  }

  /** Answers exchange `ex` with a bundle (200). The bytes are copied: they are valid only now. */
  respond(ex: number, body: Uint8Array, len: number): void {
    const x = this.exchanges.get(ex);
    if (x === undefined) return;
    this.exchanges.delete(ex);
    if (x.res.destroyed) return;
    const epoch = this.gw.epoch();
    if (epoch > 0) x.res.setHeader(EPOCH_HEADER, String(epoch));
    x.res.writeHead(200, { 'Content-Type': CBOR_TYPE, 'Content-Length': len, 'Cache-Control': 'no-store' });
    x.res.end(Buffer.from(body.subarray(0, len)));
  }

  private tooLarge(req: http.IncomingMessage, res: http.ServerResponse, size: number): void {
    // The rest of the body is not read: the connection closes after the answer.
    res.setHeader('Connection', 'close');
    this.reject(res, true, hfError(ErrorCode.LIMIT, `request body of ${size} bytes, limit ${this.gw.maxBody}`), 413);
    res.on('finish', () => req.destroy());
  }

  /** A refusal of the front's own (not a bundle the gateway refused): counted by code, then answered. */
  private reject(res: Reply, cbor: boolean, e: HfError, status?: number): void {
    this.gw.counters.refused(e.code);
    this.refuse(res, cbor, 0, e, status);
  }

  /** `bundle`: the error bundle to send (a Refusal's, perhaps tagged); default an untagged one. */
  private refuse(res: Reply, cbor: boolean, rn: number, e: HfError, status = statusFor(e.code as ErrorCodeValue), bundle?: Uint8Array): void {
    if (res.headersSent || res.destroyed) return;
    const epoch = this.gw.epoch();
    if (epoch > 0) res.setHeader(EPOCH_HEADER, String(epoch));
    const body = cbor ? Buffer.from(bundle ?? errorBundle(rn, e)) : Buffer.from(JSON.stringify({ code: e.code, message: e.message }) + '\n');
    res.writeHead(status, {
      'Content-Type': cbor ? CBOR_TYPE : 'application/json',
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
      [ERROR_HEADER]: e.code,
      ...(status === 503 && e.code !== ErrorCode.STANDBY ? { 'Retry-After': '5' } : {}),
    });
    res.end(body);
  }
}
