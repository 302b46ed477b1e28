/**
 * Port forwarding over a Mux, like `ssh -L`. One side listens on local TCP ports and opens a mux
 * stream for each connection it accepts (`forwardPorts`); the other side connects each stream it is
 * asked for to its target, if the target is on its allow list (`serveForwards`). Either side of a
 * session can play either role; the usual one is the device listening and the gateway connecting.
 *
 * Bytes go both ways with half-close: a socket's FIN is the stream's END and the other way round.
 * A refused stream (HF_ERR_FORBIDDEN: not on the allow list; HF_ERR_CONNECT: the target refused or
 * was unreachable) closes the local socket; a reset stream destroys it, a socket error resets the
 * stream.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { checkInt, checkMs } from '../../../firmware/check';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';
import { formatTarget, parseTarget } from '../../../firmware/mux';
import type { Mux, MuxStream } from './mux';

export interface ForwardSpec {
  /** Local port to listen on (0: any free port; see `PortForwarder.ports`). */
  localPort: number;
  /** The target the peer connects to. */
  host: string;
  port: number;
}

export interface ForwardOptions {
  /** Address to listen on (default '127.0.0.1'). */
  bindHost?: string;
  /** Most connections at once per listening port (default 256; 1..65536). */
  maxConnections?: number;
}

export interface ServeOptions {
  /** Targets this side connects to, exactly as "host:port" ("127.0.0.1:5432", "[::1]:22"). */
  allow: string[];
  /** Give up connecting to a target after this long, ms (default 10000). */
  connectTimeoutMs?: number;
  /**
   * Opens the connection to an allowed target (default: a TCP socket to it). It returns a stream
   * that emits 'connect' once open, or fails with 'error' (a cluster node's pipe through the node
   * the target is behind: Gateway.dial).
   */
  dial?: (host: string, port: number) => Duplex;
}

/**
 * Pipes a and b into each other with half-close; an abnormal end of one aborts the other: a mux
 * stream is destroyed with the reason (it travels in the RESET), a socket is reset (RST), so its
 * peer sees ECONNRESET rather than a clean end.
 */
export function splice(a: Duplex, b: Duplex): void {
  pipeInto(a, b);
  pipeInto(b, a);
  const link = (x: Duplex, y: Duplex): void => {
    const stop = (err?: Error): void => {
      if (y.destroyed) return;
      if (y instanceof net.Socket) abortSocket(y);
      else y.destroy(err);
    };
    x.on('error', stop);
    x.on('close', () => {
      if (!(x.readableEnded && x.writableFinished)) stop();
    });
  };
  link(a, b);
  link(b, a);
}

/**
 * `src.pipe(dst)`, except that a socket is corked from the first chunk of a turn of the event loop
 * until the next tick: the messages one bundle delivers (a mux DATA frame each, 16 KiB by default)
 * reach the kernel as one writev instead of a write each, and a write to a loopback or LAN socket
 * costs about the same for 16 KiB as for 64 KiB. Backpressure stays: once uncorked, a socket that
 * did not take everything pauses `src` until 'drain'; what one turn may add is bounded by the
 * stream's credit. Other destinations are piped plainly.
 */
function pipeInto(src: Duplex, dst: Duplex): void {
  if (!(dst instanceof net.Socket)) {
    src.pipe(dst);
    return;
  }
  let corked = false;
  let waiting = false;
  const resume = (): void => {
    waiting = false;
    src.resume();
  };
  const uncork = (): void => {
    corked = false;
    dst.uncork();
    if (dst.writableNeedDrain && !waiting && !dst.destroyed) {
      waiting = true;
      src.pause();
      dst.once('drain', resume);
    }
  };
  src.on('data', (chunk: Buffer) => {
    if (dst.destroyed || dst.writableEnded) return;
    if (!corked) {
      corked = true;
      dst.cork();
      process.nextTick(uncork);
    }
    dst.write(chunk);
  });
  src.on('end', () => {
    if (!dst.destroyed && !dst.writableEnded) dst.end();
  });
}

/** Closes a socket with a reset where Node can (18.3+), else plainly. */
function abortSocket(s: net.Socket): void {
  // Not once end() was called: a reset while its shutdown is pending leaves that request unfinished
  // for good, and Node then spins at exit waiting for it.
  if (typeof s.resetAndDestroy === 'function' && !s.connecting && !s.writableEnded) s.resetAndDestroy();
  else s.destroy();
}

function checkSpec(s: ForwardSpec, i: number): ForwardSpec {
  if (s === null || typeof s !== 'object') throw hfError(ErrorCode.OPTION, `forward ${i} must be an object, got ${String(s)}`);
  checkInt(`forward ${i} localPort`, s.localPort, 0, 65535);
  try {
    formatTarget(s.host, s.port);
  } catch (e) {
    throw hfError(ErrorCode.OPTION, `forward ${i} target: ${(e as Error).message}`, e);
  }
  return { localPort: s.localPort, host: s.host, port: s.port };
}

/**
 * Listening ports that forward to the peer.
 *   'connection' (socket, stream, spec)  a local connection and the stream opened for it
 *   'streamError' (err, spec)            a stream was refused or reset (err.code: HF_ERR_FORBIDDEN, ...)
 */
export class PortForwarder extends EventEmitter {
  /** The bound local ports, in the order of the specs (useful with localPort 0). */
  readonly ports: number[] = [];
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> | null = null;

  /** Local connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  /** @internal */
  async listen(mux: Mux, specs: ForwardSpec[], bindHost: string, maxConnections: number): Promise<void> {
    for (const spec of specs) {
      const server = net.createServer({ allowHalfOpen: true }, (sock) => this.onSocket(mux, sock, spec));
      server.maxConnections = maxConnections;
      this.servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) => {
          const at = `${bindHost.includes(':') ? `[${bindHost}]` : bindHost}:${spec.localPort}`;
          reject(hfError(ErrorCode.CONNECT, `forward listen on ${at} (to ${formatTarget(spec.host, spec.port)}): ${e.code ?? e.message}`, e));
        });
        server.listen({ host: bindHost, port: spec.localPort }, () => {
          server.removeAllListeners('error');
          resolve();
        });
      });
      this.ports.push((server.address() as net.AddressInfo).port);
    }
  }

  private onSocket(mux: Mux, sock: net.Socket, spec: ForwardSpec): void {
    if (this.closing !== null) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    let stream: MuxStream;
    try {
      stream = mux.open(spec.host, spec.port);
    } catch (e) {
      abortSocket(sock);
      this.emit('streamError', e, spec);
      return;
    }
    stream.on('error', (e: Error) => this.emit('streamError', e, spec));
    splice(sock, stream);
    this.emit('connection', sock, stream, spec);
  }

  /** Stops listening and destroys every connection (their streams are reset). Idempotent. */
  close(): Promise<void> {
    if (this.closing === null) {
      const closed = this.servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r())));
      for (const s of this.sockets) abortSocket(s);
      this.closing = Promise.all(closed).then(() => undefined);
    }
    return this.closing;
  }
}

/**
 * Listens on `bindHost`:`localPort` for each spec and forwards every connection through `mux` to
 * the spec's host:port. Resolves once all ports listen (rejects with HF_ERR_CONNECT naming the
 * address, the system error as `cause`, and the ports opened so far closed, when one cannot: in use,
 * not allowed). Throws HF_ERR_OPTION for bad specs or options.
 */
export async function forwardPorts(mux: Mux, specs: ForwardSpec[], opts: ForwardOptions = {}): Promise<PortForwarder> {
  if (!Array.isArray(specs) || specs.length === 0) throw hfError(ErrorCode.OPTION, `specs must be a non-empty array, got ${String(specs)}`);
  if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, `options must be an object, got ${String(opts)}`);
  const checked = specs.map(checkSpec);
  const bindHost = opts.bindHost ?? '127.0.0.1';
  if (typeof bindHost !== 'string' || net.isIP(bindHost) === 0) throw hfError(ErrorCode.OPTION, `bindHost must be an IP address, got ${String(bindHost)}`);
  const maxConnections = opts.maxConnections === undefined ? 256 : checkInt('maxConnections', opts.maxConnections, 1, 65536);
  const f = new PortForwarder();
  try {
    await f.listen(mux, checked, bindHost, maxConnections);
  } catch (e) {
    await f.close();
    throw e;
  }
  return f;
}

/**
 * Connects the peer's streams to their targets.
 *   'connection' (stream, socket)   a stream accepted and connected
 *   'refused' (target, err)         a stream refused (err.code HF_ERR_FORBIDDEN or HF_ERR_CONNECT)
 */
export class ForwardServer extends EventEmitter {
  private readonly mux: Mux;
  private readonly allow: Set<string>;
  private readonly connectTimeoutMs: number;
  private readonly sockets = new Set<Duplex>();
  private readonly dial: (host: string, port: number) => Duplex;
  private readonly onStream = (s: MuxStream, target: string): void => this.serve(s, target);
  private closed = false;

  constructor(mux: Mux, opts: ServeOptions) {
    super();
    if (opts === null || typeof opts !== 'object' || !Array.isArray(opts.allow)) throw hfError(ErrorCode.OPTION, `options.allow must be an array of "host:port"`);
    for (const t of opts.allow) {
      try {
        parseTarget(String(t));
      } catch (e) {
        throw hfError(ErrorCode.OPTION, `allow entry ${JSON.stringify(t)}: ${(e as Error).message}`, e);
      }
    }
    this.allow = new Set(opts.allow);
    this.connectTimeoutMs = opts.connectTimeoutMs === undefined ? 10000 : checkMs('connectTimeoutMs', opts.connectTimeoutMs, 1);
    if (opts.dial !== undefined && typeof opts.dial !== 'function') throw hfError(ErrorCode.OPTION, 'options.dial must be a function');
    this.dial = opts.dial ?? ((host, port) => net.connect({ host, port, allowHalfOpen: true }));
    this.mux = mux;
    mux.on('stream', this.onStream);
  }

  /** Target connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  private refuse(s: MuxStream, target: string, err: HfError): void {
    if (!s.destroyed) s.refuse(err.code, err.message);
    this.emit('refused', target, err);
  }

  private serve(s: MuxStream, target: string): void {
    if (!this.allow.has(target)) {
      this.refuse(s, target, hfError(ErrorCode.FORBIDDEN, `${target} is not on the allow list`));
      return;
    }
    const sock = this.dial(s.host, s.port);
    this.sockets.add(sock);
    let connected = false;
    let failure: Error | null = null;
    const timer = setTimeout(() => sock.destroy(hfError(ErrorCode.CONNECT, `${target}: no connection after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    const giveUp = (): void => {
      if (!sock.destroyed) sock.destroy();
    };
    s.once('close', giveUp); // the opener gave up (RESET) before the connection was made
    sock.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      s.off('close', giveUp);
      if (s.destroyed) {
        sock.destroy();
        return;
      }
      s.accept();
      splice(s, sock);
      this.emit('connection', s, sock);
    });
    sock.on('error', (e) => {
      if (!connected) failure = e;
    });
    sock.once('close', () => {
      clearTimeout(timer);
      this.sockets.delete(sock);
      if (connected) return;
      s.off('close', giveUp);
      const why = failure === null ? 'connection abandoned' : isHfError(failure) ? failure.message : `${(failure as NodeJS.ErrnoException).code ?? failure.message}`;
      this.refuse(s, target, hfError(failure === null && this.closed ? ErrorCode.CLOSED : ErrorCode.CONNECT, `${target}: ${why}`, failure ?? undefined));
    });
  }

  /** Stops serving (later OPENs are refused) and destroys every target connection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mux.off('stream', this.onStream);
    for (const sock of this.sockets) {
      if (sock instanceof net.Socket) abortSocket(sock);
      else sock.destroy(hfError(ErrorCode.CLOSED, 'the forward server closed'));
    }
  }
}

/** Serves the peer's forwarding streams on `mux` for the targets in `opts.allow` (exact "host:port"). */
export function serveForwards(mux: Mux, opts: ServeOptions): ForwardServer {
  return new ForwardServer(mux, opts);
}
