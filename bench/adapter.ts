/**
 * The one interface every system under test is measured through. A system is an `Adapter`: `listen`
 * runs its server side in the server process, `connect` opens one client connection in the client
 * process. Both sides hand the workloads a `Conn` (connect, send, on message, close).
 *
 * One message is one message of the system (a holdfast message, a WebSocket message, an engine.io
 * message, an MQTT PUBLISH, a length-prefixed frame). Every system is given the same Buffers.
 */
import type { AddressInfo, Server as NetServer } from 'node:net';

/** One open connection (or session) as the workloads see it. */
export interface Conn {
  /**
   * Hands one message to the system. true: taken. false: NOT taken (the system is backed up); call
   * again after `onceDrain`. The caller does not touch `msg` afterwards.
   */
  send(msg: Buffer): boolean;
  /** Called for each message that arrives (the Buffer is the callee's to keep). */
  onMessage(fn: (msg: Buffer) => void): void;
  /** Calls `fn` once, when send() may take messages again (or soon, when the connection is closed). */
  onceDrain(fn: () => void): void;
  /** Calls `fn` once, when the connection is gone for good (no reconnect will bring it back). */
  onClose(fn: () => void): void;
  readonly closed: boolean;
  /** Closes cleanly; resolves when done or after `timeoutMs` at most (then it is destroyed). */
  close(timeoutMs: number): Promise<void>;
}

/** The server's listening ports by role (e.g. { http, tcp } or { main }): proxies go in front of each. */
export type Ports = Record<string, number>;

/** A running server side. */
export interface Server {
  readonly ports: Ports;
  /** Called for each new connection or session (for session-based systems: once per client id). */
  onConnection(fn: (c: Conn) => void): void;
  /** Live connections or sessions now. */
  readonly size: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  /** Client ids the server lets in (holdfast: the devices map, one key each). */
  ids: string[];
}

export interface ConnectOptions {
  /** Client id (distinct per connection; session-based systems resume by it). */
  id: string;
  /** Longest the connection may take to open, ms. */
  timeoutMs: number;
  /** One of the idle sessions of the memory workload (it will carry no messages). */
  idle?: boolean;
}

export interface Adapter {
  readonly name: string;
  /** One line: the settings this system runs with (printed with the results). */
  readonly settings: string;
  /** Whether the client reconnects by itself after its connection is cut. */
  readonly reconnects: boolean;
  /** Whether sending is bounded by a `Window` (libraries that take every message); else by the system. */
  readonly windowed: boolean;
  /** TLS rows only: the name of the same system without TLS (the report puts the two side by side). */
  readonly plain?: string;
  /** Runs the server side in this process (127.0.0.1, any free ports). */
  listen(opts: ListenOptions): Promise<Server>;
  /** Opens one client connection to `ports` on 127.0.0.1; resolves once it carries messages. */
  connect(ports: Ports, opts: ConnectOptions): Promise<Conn>;
}

/** The secret key of a client id (holdfast sessions are authenticated with it). */
export function keyOf(id: string): string {
  return `bench-key-${id}`;
}

/** Rejects after `ms` with `what` in the message, unless `p` settles first. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/**
 * Send-side flow control for libraries that take every message (ws, engine.io, mqtt): bytes handed
 * over and not yet confirmed written are counted; past `Window.high` the adapter refuses (send()
 * returns false) until confirmations bring the count down to half of it. How much to keep in flight
 * is the application's choice, not the library's, and it moves these libraries' numbers several-fold
 * (many small writes outstanding are slow in some), so the runner tries a few values per system and
 * message size and keeps the best (`measure` in bench/runner.ts).
 */
export class Window {
  /** Bytes in flight at most, for every Window of this process. */
  static high = 256 * 1024;
  pending = 0;
  private waiters: (() => void)[] = [];

  get full(): boolean {
    return this.pending >= Window.high;
  }

  add(bytes: number): void {
    this.pending += bytes;
  }

  /** `bytes` were confirmed written (or dropped): wakes waiters once below the low mark. */
  done(bytes: number): void {
    this.pending -= bytes;
    if (this.pending <= Window.high / 2) this.wake();
  }

  /** Forget everything pending (the library flushed or dropped it all). */
  reset(): void {
    this.pending = 0;
    this.wake();
  }

  once(fn: () => void): void {
    this.waiters.push(fn);
  }

  wake(): void {
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }
}

/**
 * The common part of a Conn: message, drain and close listeners. Adapters extend it and implement
 * `send` and `close`, calling `deliver`, `drained` and `ended`.
 */
export abstract class BaseConn implements Conn {
  closed = false;
  private messageFn: (m: Buffer) => void = () => {};
  private closeFns: (() => void)[] = [];
  protected readonly window = new Window();

  abstract send(msg: Buffer): boolean;
  abstract close(timeoutMs: number): Promise<void>;

  onMessage(fn: (msg: Buffer) => void): void {
    this.messageFn = fn;
  }

  onceDrain(fn: () => void): void {
    // A closed connection never drains: the caller hears at once (and finds `closed`).
    if (this.closed) setImmediate(fn);
    else this.window.once(fn);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeFns.push(fn);
  }

  protected deliver(m: Buffer): void {
    this.messageFn(m);
  }

  /** Closes politely (`gentle`); if the connection has not closed within `timeoutMs`, `force`s it. */
  protected async closeWithin(timeoutMs: number, what: string, gentle: () => void, force: () => void): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => this.onClose(resolve));
    gentle();
    try {
      await within(done, timeoutMs, what);
    } catch {
      force();
    }
  }

  protected ended(): void {
    if (this.closed) return;
    this.closed = true;
    const fns = this.closeFns;
    this.closeFns = [];
    for (const fn of fns) fn();
    // Whoever waits for a drain learns the connection is gone (and finds `closed`).
    this.window.wake();
  }
}

/** Starts `server` listening on 127.0.0.1 at a port the system picks; resolves with that port. */
export function listenLocal(server: NetServer): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** A server's live connections, and who hears of new ones. */
export class Registry<C extends Conn> {
  readonly live = new Set<C>();
  private fn: (c: C) => void = () => {};

  add(c: C): C {
    this.live.add(c);
    c.onClose(() => this.live.delete(c));
    this.fn(c);
    return c;
  }

  onConnection(fn: (c: C) => void): void {
    this.fn = fn;
  }

  /** The `Server` of one listener on `port` whose connections are these; `close` stops it. */
  server(port: number, close: () => Promise<void>): Server {
    const live = this.live;
    return {
      ports: { main: port },
      onConnection: (fn) => this.onConnection(fn),
      get size() {
        return live.size;
      },
      close,
    };
  }
}
