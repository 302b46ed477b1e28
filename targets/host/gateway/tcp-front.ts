/**
 * The gateway's direct TCP front: each connection carries length-prefixed bundles both ways (see
 * frames.ts). The first frame is a hello (a new session) or a bundle of an existing session (the
 * device moving it onto this connection); the session's frames then go out on the connection that
 * carried its latest accepted frame. When that connection closes, the session falls back to waiting
 * for HTTP requests; nothing is lost, unacknowledged messages go again on whatever comes next.
 *
 * A refused frame is answered with an error frame (the code inside); a connection that never carried
 * an accepted frame is closed after its refusal, as is one whose framing is broken.
 *
 * Strangers (connections with no frame accepted yet: they proved no key) are bounded by `TcpLimits`:
 * they may announce only a small first frame (nothing larger is buffered, and nothing is allocated
 * for it before it is complete), must get a frame accepted by a deadline and may not go quiet, are
 * capped in number overall and per source address, and one address may send only so many first
 * frames a second. See docs/PROTOCOL.md 11.4 for what a stranger can cost.
 */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { DeadlineTimer } from '../../../firmware/deadline-timer';
import { errorBundle } from '../../../firmware/error-bundle';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';
import type { ServerLink } from '../../../firmware/server-link';
import { hostClock } from '../../node/clock';
import { type Address, listenOn } from '../net/address';
import { FrameReader, FrameWriter, epochFrame, frame } from '../net/frames';
import { type FrontHost, Refusal, type TcpListener, type TcpRouter } from './front';
import { FirstBytes, FirstBytesState } from './workers/first-bytes';

// ---- limits on strangers (TcpLimits) ------------------------------------------------------------

/** Bounds on direct TCP connections before (and after) they proved a key; see docs/PROTOCOL.md 11.4. */
export interface TcpLimits {
  /**
   * Largest frame a connection may announce before a frame of it was accepted, bytes (default 4096);
   * a larger length is refused at once (HF_ERR_LIMIT) and the connection closed. A hello is about
   * 300 bytes, and a device's first frame on a new connection carries no messages.
   */
  preAuthFrameBytes?: number;
  /** A connection must have a frame accepted within this of connecting, or it is closed (HF_ERR_TIMEOUT), ms (default 10000). */
  preAuthDeadlineMs?: number;
  /** A connection with no frame accepted yet that sends nothing for this long is closed, ms (default 5000). */
  preAuthIdleMs?: number;
  /**
   * A connection that carries a session is closed when nothing arrives on it for this long, ms
   * (default 45000: three keep-alive periods of a device with the default keepaliveMs); the session
   * then waits for HTTP or a new connection. Must exceed the gateway's keepaliveMs.
   */
  connectionIdleMs?: number;
  /** Most connections with no frame accepted yet, at once, from all addresses (default 1000): the rest of maxConnections stays for sessions. */
  maxPreAuth?: number;
  /** Most connections with no frame accepted yet, at once, from one source address (default 64); more are refused (HF_ERR_BUSY). */
  maxPreAuthPerAddress?: number;
  /** First frames (hellos, or sessions moving onto a new connection) taken from one source address per second: the token bucket's refill (default 20). */
  helloRate?: number;
  /** The token bucket's size: first frames one source address may send in a burst (default 100); beyond it they are refused (HF_ERR_BUSY). */
  helloBurst?: number;
}

export const TCP_LIMIT_DEFAULTS: Readonly<Required<TcpLimits>> = {
  preAuthFrameBytes: 4096,
  preAuthDeadlineMs: 10000,
  preAuthIdleMs: 5000,
  connectionIdleMs: 45000,
  maxPreAuth: 1000,
  maxPreAuthPerAddress: 64,
  helloRate: 20,
  helloBurst: 100,
};

/** TcpLimits with every bound set, and the connection cap they sit under. */
export type ResolvedTcpLimits = Readonly<Required<TcpLimits>> & { readonly maxConnections: number };

/**
 * Checks `o` (unset bounds from TCP_LIMIT_DEFAULTS) against `maxConnections` and the gateway's
 * `keepaliveMs`; a bad value is HF_ERR_OPTION naming it. Does not change `o`.
 */
export function resolveTcpLimits(o: TcpLimits | undefined, maxConnections: number, keepaliveMs: number): ResolvedTcpLimits {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw hfError(ErrorCode.OPTION, 'tcpLimits must be an object');
  const int = (name: string, v: number, lo: number, hi: number): number => {
    if (!Number.isInteger(v) || v < lo || v > hi) throw hfError(ErrorCode.OPTION, `${name} must be an integer ${lo}..${hi}, got ${v}`);
    return v;
  };
  const max = int('maxConnections', maxConnections, 1, 1 << 20);
  const r = { ...TCP_LIMIT_DEFAULTS, ...o };
  const rate = r.helloRate;
  if (typeof rate !== 'number' || !(rate > 0) || rate > 1 << 20) throw hfError(ErrorCode.OPTION, `helloRate must be a number above 0, at most ${1 << 20} a second, got ${rate}`);
  return {
    preAuthFrameBytes: int('preAuthFrameBytes', r.preAuthFrameBytes, 512, 2 ** 30),
    preAuthDeadlineMs: int('preAuthDeadlineMs', r.preAuthDeadlineMs, 100, 3_600_000),
    preAuthIdleMs: int('preAuthIdleMs', r.preAuthIdleMs, 100, 3_600_000),
    connectionIdleMs: int('connectionIdleMs', r.connectionIdleMs, keepaliveMs + 1, 86_400_000),
    maxPreAuth: int('maxPreAuth', r.maxPreAuth, 1, max),
    maxPreAuthPerAddress: int('maxPreAuthPerAddress', r.maxPreAuthPerAddress, 1, 1 << 20),
    helloRate: rate,
    helloBurst: int('helloBurst', r.helloBurst, 1, 1 << 20),
    maxConnections: max,
  };
}

/** What the front keeps per source address: its strangers now, and its hello token bucket. */
interface Source {
  preAuth: number;
  tokens: number;
  /** When `tokens` was last brought up to date, ms (hostClock). */
  at: number;
}

/** A TLS connection before its handshake is done (counted among the strangers). */
interface Handshake {
  raw: net.Socket;
  at: number;
  /** Takes it off the strangers' counts (idempotent). */
  end: () => void;
}

/**
 * What the front needs of a connection: a TCP or TLS socket, or in a cluster the pipe of a connection
 * that reached another node (cluster/pipe-stream.ts PipedSocket).
 */
export interface FrontSocket extends Duplex {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  setNoDelay(noDelay?: boolean): this;
  setKeepAlive(enable?: boolean, delayMs?: number): this;
  destroySoon(): void;
}

interface Conn {
  id: number;
  socket: FrontSocket;
  reader: FrameReader;
  /** The session whose frame this connection last carried. */
  link: ServerLink | null;
  /** Source address (the per-address limits' key). */
  addr: string;
  /** No frame accepted yet: counted among the strangers, bounded by the pre-auth limits. */
  preAuth: boolean;
  /** Being closed: later frames are ignored. */
  closing: boolean;
  openedAt: number;
  lastRead: number;
  /** Closes it at dueAt() (a DeadlineTimer: reads only move `lastRead`, the timer stays). */
  timer: DeadlineTimer | null;
  /** The pair epoch last told on it (an epoch frame; 0: none yet). */
  epochTold: number;
  /** Handed here by another node of a cluster (its pipe plays the socket). */
  piped: boolean;
}

export class TcpFront implements TcpListener {
  private readonly server: net.Server | tls.Server;
  private readonly gw: FrontHost;
  private readonly want: Address;
  private readonly maxConnections: number;
  private readonly conns = new Map<number, Conn>();
  /**
   * One frame buffer for every connection: a frame written through to the kernel leaves it free for
   * the next connection's; one the socket had to queue stays the socket's (FrameWriter).
   */
  private readonly writer = new FrameWriter();
  private seq = 0;
  private readonly limits: ResolvedTcpLimits;
  private readonly sources = new Map<string, Source>();
  private preAuthCount = 0;
  private sweeper: NodeJS.Timeout | null = null;
  /** TLS: raw connections whose handshake is not done, by "address:port". */
  private readonly handshaking = new Map<string, Handshake>();
  address = '';

  /** `tlsOptions`: Node's server TLS options (gateway/tls.ts); null: plain TCP. */
  constructor(gw: FrontHost, want: Address, maxConnections: number, tlsOptions: tls.TlsOptions | null = null) {
    this.gw = gw;
    this.want = want;
    this.maxConnections = maxConnections;
    this.limits = resolveTcpLimits(gw.tcpLimits, maxConnections, gw.keepaliveMs);
    // TLS: connections reach onConnection once their handshake is done; a failed one only closes.
    this.server = tlsOptions === null ? net.createServer((s) => this.onConnection(s)) : tls.createServer(tlsOptions, (s) => this.onConnection(s));
    if (tlsOptions !== null) this.server.on('tlsClientError', (e: NodeJS.ErrnoException) => gw.log.debug('tls handshake failed', { front: 'tcp', reason: e.code ?? e.message }));
    // TcpLimits: a connection still in its TLS handshake is a stranger too.
    if (this.server instanceof tls.Server) this.server.on('connection', (raw: net.Socket) => this.onHandshakeStart(raw));
  }

  /** New certificate and key for connections from now on (TLS only). */
  setSecureContext(o: tls.TlsOptions): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext(o);
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Connections open now with no frame accepted yet. */
  get preAuthConnections(): number {
    return this.preAuthCount;
  }

  get pipedConnections(): number {
    let n = 0;
    for (const c of this.conns.values()) if (c.piped) n++;
    return n;
  }

  async listen(): Promise<void> {
    this.address = await listenOn(this.server, this.want, 'tcp');
    this.startSweeper();
  }

  /** Forgets the addresses with no strangers whose bucket is full again (so the map stays small). */
  private startSweeper(): void {
    if (this.sweeper !== null) return;
    this.sweeper = setInterval(() => this.sweep(hostClock.now()), 10_000);
    this.sweeper.unref();
  }

  close(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const h of [...this.handshaking.values()]) h.raw.destroy();
    for (const c of this.conns.values()) {
      c.timer?.stop();
      c.socket.destroy();
    }
    this.conns.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Writes a frame on connection `id` (dropped if it is gone: the link retransmits). */
  send(id: number, body: Uint8Array, len: number): void {
    const c = this.conns.get(id);
    if (c === undefined || c.socket.destroyed) return;
    const epoch = this.gw.epoch();
    if (epoch !== c.epochTold) {
      // A pair's node tells its epoch first (and again once it changed): the device fences an older one.
      c.epochTold = epoch;
      c.socket.write(epochFrame(epoch));
    }
    this.writer.write(c.socket, body, len);
  }

  /**
   * Closes connection `id` at once, with nothing more written or read (a session handed away: the
   * device connects again and reaches the new owner). Its close is told as any other (connectionClosed).
   */
  drop(id: number): void {
    const c = this.conns.get(id);
    if (c === undefined) return;
    c.closing = true;
    c.reader.halt();
    c.socket.destroy();
  }

  /**
   * Serves a connection accepted elsewhere (plain TCP, or a cluster's pipe); `head`: its bytes already
   * read (framed first). `routed`: its node was chosen already (a cluster's relayed connection).
   */
  adopt(socket: FrontSocket, head: Buffer, routed = false): void {
    this.startSweeper();
    if (head.length > 0) socket.unshift(head);
    this.onConnection(socket, routed);
  }

  private onConnection(socket: FrontSocket, routed = false): void {
    socket.on('error', () => {});
    if (this.gw.standby()) {
      // A pair's standby serves no device: closed at once, the device tries the pair's other address.
      socket.destroy();
      return;
    }
    if (!(this.server instanceof tls.Server)) this.gw.counters.tcpConnections++; // TLS: counted at its handshake's start
    const now = hostClock.now();
    const addr = socket.remoteAddress ?? '?';
    // TLS: the handshake is done; the connection is counted (and its deadline runs) from here on.
    const shook = this.handshaking.get(`${addr}:${socket.remotePort}`);
    shook?.end();
    const busy = this.admit(addr);
    if (busy !== null) {
      this.gw.log.debug('tcp connection refused', { from: addr, code: busy.code, reason: busy.message });
      this.gw.refused('connection', addr, busy);
      const e = errorBundle(0, busy);
      socket.end(frame(e, e.length));
      socket.destroySoon(); // once the refusal is written: a peer that never closes holds nothing
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const router = routed ? null : this.gw.tcpRouter();
    if (router !== null) {
      this.route(socket, addr, now, router);
      return;
    }
    this.serve(socket, addr, now, shook?.at ?? now, routed);
  }

  /**
   * A cluster's: reads the connection's first frame (counted among the strangers, under their bounds)
   * and serves it here or hands it, with every byte read, to the node its session is on.
   */
  private route(socket: FrontSocket, addr: string, now: number, router: TcpRouter): void {
    this.enterPreAuth(addr, now);
    const first = new FirstBytes('tcp', { maxHeadBytes: 0, maxBodyBytes: Math.min(this.limits.preAuthFrameBytes, this.gw.maxBody) });
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', leave);
      this.leavePreAuth(addr);
    };
    const timer = setTimeout(() => {
      leave();
      socket.destroy();
    }, this.limits.preAuthDeadlineMs);
    const onData = (chunk: Buffer): void => {
      if (first.push(chunk) !== FirstBytesState.DONE) return;
      socket.pause();
      leave();
      const here = (): void => {
        if (socket.destroyed) return;
        socket.unshift(first.read);
        this.serve(socket, addr, hostClock.now(), now);
        socket.resume();
      };
      let to: string | null | Promise<string | null> = null;
      try {
        to = first.bundle === null ? null : router.owner(first.bundle);
      } catch {
        to = null; // a bundle it cannot read: served (and refused) here
      }
      const go = (node: string | null): void => {
        if (node === null) return here();
        if (socket.destroyed) return;
        this.gw.counters.tcpRelayed++;
        router.relay(node, socket, first.read, addr).catch((e: Error) => {
          this.gw.log.debug('tcp relay refused', { from: addr, node, code: isHfError(e) ? e.code : ErrorCode.NATS, reason: e.message });
          socket.destroy();
        });
      };
      if (to instanceof Promise) to.then(go, () => here());
      else go(to);
    };
    socket.on('data', onData);
    socket.on('close', leave);
  }

  /** Serves a connection here from its first byte on. */
  private serve(socket: FrontSocket, addr: string, now: number, openedAt: number, piped = false): void {
    const reader = new FrameReader(this.gw.maxBody);
    reader.setLimit(Math.min(this.limits.preAuthFrameBytes, this.gw.maxBody), 'before authentication (preAuthFrameBytes)');
    const c: Conn = { id: ++this.seq, socket, reader, link: null, addr, preAuth: true, closing: false, openedAt, lastRead: now, timer: null, epochTold: 0, piped };
    this.conns.set(c.id, c);
    this.enterPreAuth(addr, now);
    c.timer = new DeadlineTimer(
      hostClock,
      () => this.dueAt(c),
      (t) => this.onDue(c, t),
    );
    c.timer.arm();
    socket.on('data', (chunk: Buffer) => {
      c.lastRead = hostClock.now();
      try {
        c.reader.push(chunk, (body) => this.onFrame(c, body));
      } catch (e) {
        if (!isHfError(e)) throw e;
        this.gw.refused('frame', c.addr, e);
        this.refuse(c, 0, e);
        this.shut(c);
      }
    });
    socket.on('close', () => this.onClose(c));
  }

  /**
   * TLS: a raw connection before its handshake counts among the strangers (the same caps) and is
   * destroyed if the handshake is not done within preAuthDeadlineMs, which keeps running after it.
   */
  private onHandshakeStart(raw: net.Socket): void {
    raw.on('error', () => {});
    this.gw.counters.tcpConnections++;
    const now = hostClock.now();
    const addr = raw.remoteAddress ?? '?';
    const busy = this.admit(addr);
    if (busy !== null) {
      this.gw.log.debug('tcp connection refused', { from: addr, code: busy.code, reason: busy.message, tls: 'before the handshake' });
      this.gw.refused('connection', addr, busy);
      raw.destroy(); // no TLS yet to carry an error frame
      return;
    }
    const key = `${addr}:${raw.remotePort}`;
    this.enterPreAuth(addr, now);
    const timer = setTimeout(() => raw.destroy(), this.limits.preAuthDeadlineMs);
    timer.unref();
    const h: Handshake = {
      raw,
      at: now,
      end: () => {
        if (this.handshaking.get(key) !== h) return;
        this.handshaking.delete(key);
        clearTimeout(timer);
        this.leavePreAuth(addr);
      },
    };
    this.handshaking.set(key, h);
    raw.once('close', h.end);
  }

  /** Why a new connection from `addr` is refused (HF_ERR_BUSY), or null to take it. */
  private admit(addr: string): HfError | null {
    const l = this.limits;
    if (this.conns.size >= this.maxConnections) return hfError(ErrorCode.BUSY, `${this.conns.size} connections, limit ${this.maxConnections}`);
    if (this.preAuthCount >= l.maxPreAuth) return hfError(ErrorCode.BUSY, `${this.preAuthCount} connections not yet authenticated, limit maxPreAuth ${l.maxPreAuth}`);
    const n = this.sources.get(addr)?.preAuth ?? 0;
    if (n >= l.maxPreAuthPerAddress) return hfError(ErrorCode.BUSY, `${n} connections not yet authenticated from ${addr}, limit maxPreAuthPerAddress ${l.maxPreAuthPerAddress}`);
    return null;
  }

  /** The state of source address `addr` (made with a full bucket the first time). */
  private source(addr: string, now: number): Source {
    let s = this.sources.get(addr);
    if (s === undefined) {
      s = { preAuth: 0, tokens: this.limits.helloBurst, at: now };
      this.sources.set(addr, s);
    }
    return s;
  }

  /** One more stranger from `addr`. */
  private enterPreAuth(addr: string, now: number): void {
    this.preAuthCount++;
    this.source(addr, now).preAuth++;
  }

  /** One stranger fewer from `addr`. */
  private leavePreAuth(addr: string): void {
    this.preAuthCount--;
    const s = this.sources.get(addr);
    if (s !== undefined) s.preAuth--;
  }

  /** The tokens in `s`'s bucket at `now` (refilled at helloRate, up to helloBurst). */
  private tokensAt(s: Source, now: number): number {
    const l = this.limits;
    return Math.min(l.helloBurst, s.tokens + ((now - s.at) * l.helloRate) / 1000);
  }

  /** Takes one hello token of `addr`'s bucket; false if it is empty. */
  private takeToken(addr: string, now: number): boolean {
    const s = this.source(addr, now);
    s.tokens = this.tokensAt(s, now);
    s.at = now;
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  }

  private sweep(now: number): void {
    for (const [addr, s] of this.sources) {
      if (s.preAuth === 0 && this.tokensAt(s, now) >= this.limits.helloBurst) this.sources.delete(addr);
    }
  }

  /** When connection `c` is closed unless something changes: its pre-auth deadlines, or its idle one. */
  private dueAt(c: Conn): number {
    const l = this.limits;
    if (c.preAuth) return Math.min(c.openedAt + l.preAuthDeadlineMs, c.lastRead + l.preAuthIdleMs);
    return c.lastRead + l.connectionIdleMs;
  }

  /** `c`'s timer fired (perhaps early: reads moved its deadline; the timer then sets itself again). */
  private onDue(c: Conn, now: number): void {
    if (c.socket.destroyed || !this.conns.has(c.id)) {
      c.timer?.stop();
      return;
    }
    if (now < this.dueAt(c)) return;
    c.timer?.stop();
    const l = this.limits;
    if (!c.preAuth) {
      // A session's connection gone quiet: the device is gone or its path is; the session waits for it.
      this.gw.log.debug('tcp connection idle', { id: c.id, from: c.addr, ms: Math.round(now - c.lastRead) });
      c.reader.halt();
      c.socket.destroy();
      return;
    }
    const why =
      now >= c.openedAt + l.preAuthDeadlineMs
        ? `no frame accepted within preAuthDeadlineMs ${l.preAuthDeadlineMs} ms`
        : `nothing received for preAuthIdleMs ${l.preAuthIdleMs} ms before authentication`;
    this.gw.log.debug('tcp connection timed out', { id: c.id, from: c.addr, reason: why });
    const late = hfError(ErrorCode.TIMEOUT, why);
    this.gw.refused('connection', c.addr, late);
    this.refuse(c, 0, late);
    c.reader.halt();
    c.socket.destroy();
  }

  /** Closes `c` once what is written went out (the refusal); nothing more is read from it. */
  private shut(c: Conn): void {
    c.closing = true;
    c.reader.halt();
    c.socket.end();
    c.socket.destroySoon();
  }

  /** `c` has a frame accepted: it is no longer a stranger. */
  private authenticated(c: Conn): void {
    if (!c.preAuth) return;
    this.release(c);
    c.reader.setLimit(this.gw.maxBody);
  }

  /** Takes `c` off the strangers' counts. */
  private release(c: Conn): void {
    c.preAuth = false;
    this.leavePreAuth(c.addr);
  }

  private onFrame(c: Conn, body: Buffer): void {
    this.gw.counters.tcpFrames++;
    if (c.socket.destroyed || c.closing) return;
    if (c.preAuth && !this.takeToken(c.addr, hostClock.now())) {
      const l = this.limits;
      const busy = hfError(ErrorCode.BUSY, `too many hellos from ${c.addr}: helloRate ${l.helloRate} a second, helloBurst ${l.helloBurst}`);
      this.gw.refused('frame', c.addr, busy);
      this.refuse(c, 0, busy);
      this.shut(c);
      return;
    }
    const got = this.gw.frame(c.id, body, c.addr, c.piped);
    if (got instanceof Refusal && got.unanswered) {
      this.drop(c.id);
      return;
    }
    if (got instanceof Refusal) {
      this.refuse(c, got.rn, got.error, got.body);
      if (c.link === null) this.shut(c);
      return;
    }
    this.authenticated(c);
    if (c.link !== got) {
      c.link = got;
      this.gw.log.info('session on tcp', { device: got.deviceId, session: Buffer.from(got.sid).toString('hex').slice(0, 8) });
    }
  }

  /** `bundle`: the error bundle to send (a Refusal's, perhaps tagged); default an untagged one. */
  private refuse(c: Conn, rn: number, e: HfError, bundle?: Uint8Array): void {
    const b = bundle ?? errorBundle(rn, e);
    if (!c.socket.destroyed) c.socket.write(frame(b, b.length));
  }

  private onClose(c: Conn): void {
    this.conns.delete(c.id);
    c.timer?.stop();
    if (c.preAuth) this.release(c);
    if (c.link !== null) this.gw.connectionClosed(c.link, c.id);
  }
}
