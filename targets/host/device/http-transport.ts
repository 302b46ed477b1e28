/**
 * The device's HTTP transport: each bundle the link transmits is one `POST` with an `application/cbor`
 * body; the response body is the gateway's bundle for it. A keep-alive agent with as many sockets as
 * the link keeps requests outstanding (default two: one sits held at the gateway while the next goes
 * out with news). Through a forward proxy when one is configured: absolute-form request targets, the
 * proxy's own keep-alive connections, and Proxy-Authorization when the proxy URL carries credentials.
 *
 * A request the link no longer waits for (it gave up on it) is cancelled with `cancelAbandoned`.
 *
 * https: (`tls` given): the agent's connections are TLS (tls-client.ts), handed to the request only
 * once the gateway's certificate passed; through a proxy each connection is first a `CONNECT
 * host:port` tunnel (Proxy-Authorization on the CONNECT), then TLS to the gateway inside it, and the
 * requests inside are origin-form. A refused certificate fails the request with HF_ERR_TLS.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';
import { before } from '../../../firmware/check';
import { RN_WINDOW } from '../../../firmware/wire';
import { CBOR_TYPE, EPOCH_HEADER, ERROR_HEADER } from '../net/http-status';
import { type ClientTls, openTls } from './tls-client';

type OnSocket = (err: Error | null, socket: net.Socket) => void;

/** An agent whose connections `open` makes (TLS, possibly inside a CONNECT tunnel), asynchronously. */
class ConnectAgent extends http.Agent {
  private readonly open: (cb: OnSocket) => void;
  constructor(opts: http.AgentOptions, open: (cb: OnSocket) => void) {
    super(opts);
    this.open = open;
  }
  // Node's Agent takes a callback here and waits for it when nothing is returned.
  override createConnection(_opts: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): undefined {
    if (cb !== undefined) this.open(cb);
    return undefined;
  }
}

export interface HttpTransportOptions {
  /** The gateway's link URL (http://host:port/v1/link). */
  url: URL;
  /** Forward proxy, or null. */
  proxy: URL | null;
  /** TLS to the gateway (an https: URL), or null for plain http. */
  tls?: ClientTls | null;
  /** Sockets kept (= requests outstanding at once). */
  sockets: number;
  /** Largest response body accepted. */
  maxBody: number;
  /** A response arrived for request `rn` (its body is the caller's), from a gateway at `epoch` (0: not in a pair). */
  onAnswer: (rn: number, body: Buffer, epoch: number) => void;
  /** Request `rn` failed (connection refused or reset, not a bundle, ...). */
  onFailed: (rn: number, err: HfError) => void;
  /** Something worth a log line happened (plain words). */
  onNote?: (text: string) => void;
  /**
   * A request cut on a reused connection is sent again with its number only while it is fewer than
   * this many numbers behind the newest posted (default `RESEND_WINDOW`); an older one fails as cut
   * instead, and the link sends its messages in a new request. The gateway takes a number once and
   * refuses one more than 32 behind its newest as a replay (firmware/server-link.ts), so a request
   * held there a long time (a session handed to another node closes its held requests) would be refused.
   */
  resendWindow?: number;
}

/** Default `resendWindow`: half the gateway's window of request numbers, room for those on the way. */
export const RESEND_WINDOW = RN_WINDOW / 2;

/** Failures on reused connections in a row after which connections are not kept any more. */
const STALE_LIMIT = 3;

export class HttpTransport {
  private readonly o: HttpTransportOptions;
  private readonly agent: http.Agent;
  /** For a request on a fresh connection: false (plain) or a TLS agent that keeps nothing. */
  private readonly freshAgent: http.Agent | false;
  private readonly inflight = new Map<number, http.ClientRequest>();
  /** Requests cancelled on purpose: their errors are not failures. */
  private readonly cancelled = new WeakSet<http.ClientRequest>();
  private readonly target: { host: string; port: number; path: string; headers: Record<string, string> };
  private closed = false;
  /** Keep connections between requests (until the peer shows it does not). */
  private keepAlive = true;
  /** Requests in a row that failed on a reused connection. */
  private staleReuses = 0;
  /** The last request's connection died: the next one goes on a new connection. */
  private freshNext = false;
  /** The newest request number posted (serial order), and whether any was. */
  private newest = 0;
  private posted = false;

  constructor(o: HttpTransportOptions) {
    this.o = o;
    const agentOpts = { keepAlive: true, maxSockets: o.sockets, maxFreeSockets: o.sockets, scheduling: 'lifo', noDelay: true } as http.AgentOptions;
    const tls = o.tls ?? null;
    if (tls === null) {
      this.agent = new http.Agent(agentOpts);
      this.freshAgent = false;
    } else {
      const open = (cb: OnSocket): void => this.openTls(tls, cb);
      this.agent = new ConnectAgent(agentOpts, open);
      this.freshAgent = new ConnectAgent({ keepAlive: false }, open);
    }
    const headers: Record<string, string> = { 'Content-Type': CBOR_TYPE, Accept: CBOR_TYPE };
    if (o.proxy !== null && tls === null) {
      headers.Host = o.url.host;
      if (o.proxy.username !== '') {
        const cred = `${decodeURIComponent(o.proxy.username)}:${decodeURIComponent(o.proxy.password)}`;
        headers['Proxy-Authorization'] = 'Basic ' + Buffer.from(cred).toString('base64');
      }
    }
    // Plain http through a proxy: absolute-form requests to the proxy. TLS: requests to the gateway
    // (the agent makes the tunnel).
    const via = o.proxy !== null && tls === null ? o.proxy : o.url;
    this.target = {
      host: via.hostname.replace(/^\[|\]$/g, ''),
      port: Number(via.port || (via.protocol === 'https:' ? 443 : 80)),
      path: o.proxy !== null && tls === null ? o.url.href : o.url.pathname + o.url.search,
      headers,
    };
  }

  /** One TLS connection to the gateway, through a CONNECT tunnel when there is a proxy. */
  private openTls(tls: ClientTls, cb: OnSocket): void {
    const host = this.o.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.o.url.port || 443);
    const start = (socket?: net.Socket): void => {
      const s = openTls(tls, host, port, (err) => cb(err, s), socket);
    };
    const proxy = this.o.proxy;
    if (proxy === null) return start();
    const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const headers: Record<string, string> = { Host: authority };
    if (proxy.username !== '') headers['Proxy-Authorization'] = 'Basic ' + Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64');
    const where = `proxy ${proxy.hostname}:${proxy.port || 80}`;
    const req = http.request({ agent: false, method: 'CONNECT', host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 80), path: authority, headers });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return cb(hfError(ErrorCode.HTTP, `${where}: CONNECT ${authority} answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim()), socket);
      }
      start(socket);
    });
    req.on('response', (res) => {
      res.resume();
      cb(hfError(ErrorCode.HTTP, `${where}: CONNECT ${authority} answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim()), res.socket);
    });
    req.on('error', (e: NodeJS.ErrnoException) => cb(hfError(ErrorCode.CONNECT, `${where}: ${e.code ?? e.message}`, e), req.socket as net.Socket));
    req.end();
  }

  /** The forward proxy requests go through, or null. */
  get proxy(): URL | null {
    return this.o.proxy;
  }

  /** Requests on the way. */
  get pending(): number {
    return this.inflight.size;
  }

  /**
   * Sends `body` as request `rn`. A request that fails on a reused keep-alive socket before any answer
   * (the server or a proxy closed it meanwhile: tinyproxy closes every client connection after one
   * answer without saying so) goes once more on a fresh connection; the same request number twice is
   * safe, the gateway takes it once. After `STALE_LIMIT` such failures in a row, connections are no
   * longer kept (the peer evidently does not keep them).
   */
  post(rn: number, body: Buffer, fresh = false): void {
    if (this.closed) return;
    const t = this.target;
    // After a connection died, the next request takes a new one: the kept ones may be on their way out too.
    const agent = fresh || this.freshNext || !this.keepAlive ? this.freshAgent : this.agent;
    this.freshNext = false;
    if (!this.posted || before(this.newest, rn)) this.newest = rn;
    this.posted = true;
    const req = http.request({ agent, method: 'POST', host: t.host, port: t.port, path: t.path, headers: { ...t.headers, 'Content-Length': String(body.length) } });
    this.inflight.set(rn, req);
    let done = false;
    const fail = (err: HfError): void => {
      if (done) return;
      done = true;
      if (err.code === ErrorCode.CONNECT) this.freshNext = true;
      if (this.inflight.get(rn) === req) this.inflight.delete(rn);
      if (!this.closed && !this.cancelled.has(req)) this.o.onFailed(rn, err);
      this.settled();
    };
    let answered = false;
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!fresh && !answered && req.reusedSocket && !done && !this.closed && !this.cancelled.has(req) && this.inflight.get(rn) === req) {
        const behind = (this.newest - rn) >>> 0;
        if (behind >= (this.o.resendWindow ?? RESEND_WINDOW)) {
          return fail(hfError(ErrorCode.CONNECT, `gateway ${t.host}:${t.port}: request ${rn} cut unanswered, ${behind} numbers behind the newest: not sent again with its number`, e));
        }
        done = true;
        this.inflight.delete(rn);
        if (++this.staleReuses >= STALE_LIMIT && this.keepAlive) {
          this.keepAlive = false;
          this.o.onNote?.(`${this.o.proxy !== null ? 'the proxy' : 'the gateway'} closes connections after each answer: a new connection per request from now on`);
        }
        this.post(rn, body, true);
        return;
      }
      // Coded failures of the connection (HF_ERR_TLS: the certificate; a proxy refusing CONNECT) as they are.
      if (isHfError(e)) return fail(e);
      fail(hfError(ErrorCode.CONNECT, `${this.o.proxy !== null && this.freshAgent === false ? 'proxy' : 'gateway'} ${t.host}:${t.port}: ${e.code ?? e.message}`, e));
    });
    req.on('response', (res) => {
      answered = true;
      if (req.reusedSocket) this.staleReuses = 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.o.maxBody) {
          fail(hfError(ErrorCode.LIMIT, `response body over ${this.o.maxBody} bytes`));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('error', () => {});
      res.on('aborted', () => fail(hfError(ErrorCode.CONNECT, 'response cut off')));
      res.on('end', () => {
        if (done) return;
        const type = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (!res.complete) return fail(hfError(ErrorCode.CONNECT, 'response cut off'));
        if (type !== CBOR_TYPE) {
          // Not the gateway speaking (a proxy's error page, a captive portal, ...).
          const code = res.headers[ERROR_HEADER];
          // A standby of a pair: the request was not taken; the device tries the other gateway.
          if (code === ErrorCode.STANDBY) return fail(hfError(ErrorCode.STANDBY, `gateway ${t.host}:${t.port} is a standby`));
          return fail(hfError(ErrorCode.HTTP, `HTTP ${res.statusCode} ${res.statusMessage ?? ''} with ${type || 'no'} body${code ? ` (${code})` : ''}`.trim()));
        }
        done = true;
        if (this.inflight.get(rn) === req) this.inflight.delete(rn);
        const epoch = Number(res.headers[EPOCH_HEADER] ?? 0);
        if (!this.closed) this.o.onAnswer(rn, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size), Number.isSafeInteger(epoch) && epoch > 0 ? epoch : 0);
        this.settled();
      });
    });
    req.end(body);
  }

  /** Cancels every request on the way whose number `keep` rejects (the link stopped waiting for it). */
  cancelAbandoned(keep: (rn: number) => boolean): void {
    for (const [rn, req] of this.inflight) {
      if (keep(rn)) continue;
      this.inflight.delete(rn);
      this.cancelled.add(req);
      req.destroy();
    }
  }

  /** Cancels every request on the way (the device moves to another gateway); returns their numbers. */
  abandonAll(): number[] {
    const rns = [...this.inflight.keys()];
    this.cancelAbandoned(() => false);
    return rns;
  }

  /**
   * Closes: no more requests; those on the way get `graceMs` to finish (the last one may tell the
   * gateway the session ended), then everything is cut. Idempotent.
   */
  close(graceMs = 0): void {
    if (this.closed) return;
    this.closed = true;
    if (graceMs <= 0 || this.inflight.size === 0) return this.cut();
    const t = setTimeout(() => this.cut(), graceMs);
    this.whenIdle = () => {
      clearTimeout(t);
      this.cut();
    };
  }

  /** Called when a request leaves `inflight`: the last one of a closing transport cuts the rest. */
  private whenIdle: (() => void) | null = null;

  private settled(): void {
    if (this.closed && this.inflight.size === 0 && this.whenIdle !== null) {
      const f = this.whenIdle;
      this.whenIdle = null;
      f();
    }
  }

  private cut(): void {
    for (const req of this.inflight.values()) req.destroy();
    this.inflight.clear();
    this.agent.destroy();
    if (this.freshAgent !== false) this.freshAgent.destroy();
  }
}
