/**
 * The control connection between a primary gateway and its standby: one TCP (or TLS) connection
 * carrying peer-frames.ts frames of peer-link.ts messages, authenticated by a shared key, kept
 * alive by heartbeats. Replication runs on top of it through the PeerLink interface.
 *
 * Handshake (named states: HELLO, PROOF, READY, DEAD):
 *   1. both sides send `hello` {role, node, nonce (32 random bytes), epoch} at once;
 *   2. on the peer's hello: a peer of the same role is refused (HF_ERR_PEER), a peer echoing this
 *      side's nonce is refused (HF_ERR_AUTH); the connecting side then sends its `proof`;
 *   3. the accepting side checks that proof, asks its owner (`accept`, the listener's peer count) and
 *      only then sends its own proof, so it never proves anything to a peer that has not proven itself;
 *   4. the connecting side checks the accepting side's proof: both are READY.
 *   proof = HMAC-SHA256(key, "holdfast-peer-v1" ‖ own role ‖ own nonce ‖ peer's nonce ‖ own epoch as
 *   8-byte big-endian), compared with timingSafeEqual. A wrong proof is answered with
 *   `{t:'err', code:'HF_ERR_AUTH'}` and the connection closed. No complete handshake within
 *   `handshakeMs` (the TCP connect included) -> HF_ERR_TIMEOUT.
 *
 * Afterwards each side sends `{t:'hb', epoch}` whenever it wrote nothing for `heartbeatMs`; the peer
 * is dead after `heartbeatMisses` × `heartbeatMs` without a byte from it (any bytes count, so a large
 * frame in transit keeps the connection alive; a check that runs late because this process was busy
 * waits for the next one, so this side's own stall is not blamed on the peer). A socket that ends,
 * closes or resets is dead at once.
 *
 * What arrives after 'ready' and before the owner listens for 'message' (the rest of the chunk that
 * completed the handshake while a connect's promise is still settling) is held, and handed over in
 * order once a 'message' or 'dead' listener is added; so is the connection's end behind held
 * messages, or when nobody listened for it: nothing the peer sent right behind its proof is lost.
 *
 * 'dead' (code, message) is emitted exactly once per connection, never from inside the call that
 * caused it, and then the socket is destroyed and every timer cleared:
 *   HF_ERR_CLOSED  the socket ended, closed or failed, or `close()` was called here ('closed here')
 *   HF_ERR_TIMEOUT no handshake in time, or the peer was silent past its heartbeats
 *   HF_ERR_PEER    a malformed frame or message (sent to the peer as an err first), or a peer of the same role
 *   HF_ERR_AUTH    a wrong proof, either way
 *   HF_ERR_CONNECT the connection could not be made (connect only)
 *   any other code a received `err` message (HF_ERR_BUSY from a full listener, an `accept` refusal)
 * Timers are unref'd: an idle connection does not hold the process open.
 *
 * Writes: what is sent in one turn of the event loop is encoded into one buffer (peer-frames.ts
 * PeerFrameBatch) and leaves in one socket write once the turn's I/O callbacks ran (setImmediate);
 * an err the connection ends with goes after whatever was queued before it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../../firmware/errors';
import { TypedEmitter } from '../../app/typed-emitter';
import { formatAddress, listenOn, parseAddress } from '../../net/address';
import { PEER_MAX_FRAME_BYTES, PeerFrameBatch, PeerFrameDecoder, encodePeerFrame } from './peer-frames';
import type { PeerHello, PeerLink, PeerMessage, PeerRole } from './peer-link';
import { NODE_MAX_CHARS, checkPeerMessage } from './peer-messages';

/** The domain separator at the start of every proof's input. */
const PROOF_LABEL = 'holdfast-peer-v1';
const NONCE_BYTES = 32;
const KEY_MIN_BYTES = 16;

/** Options of both ends of a control connection (PeerConnection.connect, PeerListener.listen). */
export interface PeerOptions {
  /** The pair's shared key: a UTF-8 string or bytes, at least 16 bytes. */
  key: string | Uint8Array;
  /** This gateway's node name (1..128 characters), told to the peer. */
  node: string;
  /** This gateway's epoch (unsigned integer), told to the peer in its hello and heartbeats. */
  epoch: number;
  /** This side's role: 'standby' for connect, 'primary' for listen by default. */
  role?: PeerRole;
  /** Heartbeat interval in ms (default 50). */
  heartbeatMs?: number;
  /** Heartbeat intervals without a byte from the peer before it is dead (default 4). */
  heartbeatMisses?: number;
  /** Time for the whole handshake in ms, the TCP connect included (default 2000). */
  handshakeMs?: number;
  /** Bound on one received frame's bytes (default 64 MiB). */
  maxFrameBytes?: number;
  /** `send` returns false while the socket's unsent bytes are over this (default 8 MiB). */
  highWaterBytes?: number;
  /** TLS instead of plain TCP: `client` for connect, `server` for listen (Node's own options). */
  tls?: { client?: tls.ConnectionOptions; server?: tls.TlsOptions };
}

/** A listener's options: those of a connection, and who it takes. */
export interface PeerListenerOptions extends PeerOptions {
  /** Authenticated live peers at once (default 1); one more is refused with HF_ERR_BUSY. */
  maxPeers?: number;
  /**
   * Asked about each authenticated peer before the handshake completes: an error refuses the peer
   * (an err with its code is sent, the connection closed), null takes it.
   */
  accept?: (hello: PeerHello) => HfError | null;
}

interface Settings {
  key: Buffer;
  node: string;
  epoch: number;
  role: PeerRole;
  heartbeatMs: number;
  heartbeatMisses: number;
  handshakeMs: number;
  maxFrameBytes: number;
  highWaterBytes: number;
}

function intOption(o: Record<string, unknown>, name: string, dflt: number, min: number, max: number): number {
  const v = o[name] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw hfError(ErrorCode.OPTION, `${name} must be an integer ${min}..${max}, got ${String(v)}`);
  return v;
}

function checkOptions(opts: PeerOptions, defaultRole: PeerRole): Settings {
  if (typeof opts !== 'object' || opts === null) throw hfError(ErrorCode.OPTION, 'peer options must be an object');
  const o = opts as unknown as Record<string, unknown>;
  let key: Buffer;
  if (typeof opts.key === 'string') key = Buffer.from(opts.key, 'utf8');
  else if (opts.key instanceof Uint8Array) key = Buffer.from(opts.key);
  else throw hfError(ErrorCode.OPTION, `key must be a string or a Uint8Array, got ${typeof opts.key}`);
  if (key.length < KEY_MIN_BYTES) throw hfError(ErrorCode.OPTION, `key must be at least ${KEY_MIN_BYTES} bytes, got ${key.length}`);
  if (typeof opts.node !== 'string' || opts.node.length < 1 || opts.node.length > NODE_MAX_CHARS) {
    throw hfError(ErrorCode.OPTION, `node must be a string of 1..${NODE_MAX_CHARS} characters, got ${JSON.stringify(opts.node)}`);
  }
  const role = opts.role ?? defaultRole;
  if (role !== 'primary' && role !== 'standby') throw hfError(ErrorCode.OPTION, `role must be "primary" or "standby", got ${JSON.stringify(role)}`);
  return {
    key,
    node: opts.node,
    epoch: intOption(o, 'epoch', Number.NaN, 0, Number.MAX_SAFE_INTEGER),
    role,
    heartbeatMs: intOption(o, 'heartbeatMs', 50, 1, 3_600_000),
    heartbeatMisses: intOption(o, 'heartbeatMisses', 4, 1, 1000),
    handshakeMs: intOption(o, 'handshakeMs', 2000, 1, 3_600_000),
    maxFrameBytes: intOption(o, 'maxFrameBytes', PEER_MAX_FRAME_BYTES, 1, 0xffffffff),
    highWaterBytes: intOption(o, 'highWaterBytes', 8 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
  };
}

/**
 * A side's proof: HMAC-SHA256(key, "holdfast-peer-v1" ‖ role ‖ ownNonce ‖ peerNonce ‖ epoch as 8-byte
 * big-endian), 32 bytes. `role`, `ownNonce` and `epoch` are the proving side's.
 */
export function peerProof(key: string | Uint8Array, role: PeerRole, ownNonce: Uint8Array, peerNonce: Uint8Array, epoch: number): Buffer {
  const e = Buffer.alloc(8);
  e.writeBigUInt64BE(BigInt(epoch));
  return createHmac('sha256', typeof key === 'string' ? Buffer.from(key, 'utf8') : key)
    .update(PROOF_LABEL)
    .update(role)
    .update(ownNonce)
    .update(peerNonce)
    .update(e)
    .digest();
}

/** Events of a PeerConnection. */
export type PeerConnectionEvents = {
  /** The handshake is done: peerRole, peerNode and peerEpoch are known. */
  ready: [];
  /** A validated message after the handshake (never hello, proof or hb). */
  message: [m: PeerMessage];
  /** The socket's unsent bytes fell back to highWaterBytes after `send` returned false. */
  drain: [];
  /** Once: the connection is over (see the file comment for the codes). */
  dead: [code: string, message: string];
};

enum State {
  HELLO = 0,
  PROOF = 1,
  READY = 2,
  DEAD = 3,
}

interface Side {
  /** The connecting side proves first; the accepting side proves after it checked that proof. */
  provesFirst: boolean;
  /** The accepting side's owner, asked once the peer's proof is right. */
  admit?: (conn: PeerConnection, hello: PeerHello) => HfError | null;
}

/** One end of the control connection. Made by PeerConnection.connect or a PeerListener. */
export class PeerConnection extends TypedEmitter<PeerConnectionEvents> implements PeerLink {
  /** The connection's remote "host:port". */
  readonly remote: string;
  private readonly socket: net.Socket;
  private readonly s: Settings;
  private readonly side: Side;
  private readonly decoder: PeerFrameDecoder;
  private readonly nonce = randomBytes(NONCE_BYTES);
  private state = State.HELLO;
  private peer: PeerHello | null = null;
  private epoch: number;
  private established: boolean;
  private lastSent = performance.now();
  private lastHeard = performance.now();
  private wantDrain = false;
  /** Frames written since the last flush; they leave together once this turn of the event loop is over. */
  private readonly batch = new PeerFrameBatch();
  private flushQueued = false;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** From 'ready' until a 'message' or 'dead' listener is added: what arrived meanwhile, in order (see above). */
  private early: (PeerMessage | { dead: [string, string] })[] | null = null;

  private constructor(socket: net.Socket, s: Settings, side: Side, remote: string) {
    super();
    this.socket = socket;
    this.s = s;
    this.side = side;
    this.epoch = s.epoch;
    this.decoder = new PeerFrameDecoder({ maxFrameBytes: s.maxFrameBytes });
    this.established = !socket.connecting;
    this.remote = remote;
    socket.setNoDelay(true);
    socket.on(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
      this.established = true;
    });
    // Node's own event (not one of this class's): a listener is about to be added.
    EventEmitter.prototype.on.call(this, 'newListener', (event: string) => {
      if ((event === 'message' || event === 'dead') && this.early !== null) queueMicrotask(() => this.handOverEarly());
    });
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.fail(ErrorCode.CLOSED, 'the peer ended the connection'));
    socket.on('close', () => {
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
      this.fail(ErrorCode.CLOSED, 'the connection closed');
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code ?? e.message;
      if (!this.established) this.fail(socket instanceof tls.TLSSocket && !/^E[A-Z]+$/.test(why) ? ErrorCode.TLS : ErrorCode.CONNECT, `connecting: ${why}`);
      else this.fail(ErrorCode.CLOSED, `the connection failed: ${why}`);
    });
    socket.on('drain', () => {
      if (this.wantDrain && this.state !== State.DEAD && socket.writableLength <= s.highWaterBytes) {
        this.wantDrain = false;
        this.emit('drain');
      }
    });
    this.handshakeTimer = setTimeout(() => this.refuse(ErrorCode.TIMEOUT, `no handshake within handshakeMs ${s.handshakeMs}`), s.handshakeMs);
    this.handshakeTimer.unref();
    this.write({ t: 'hello', role: s.role, node: s.node, nonce: this.nonce, epoch: this.epoch });
  }

  /**
   * Connects to a listener at `address` ("host:port") and runs the handshake, as role 'standby'
   * unless `opts.role` says otherwise. Resolves when the connection is ready; rejects with
   * HF_ERR_OPTION, HF_ERR_CONNECT, HF_ERR_AUTH, HF_ERR_TIMEOUT, HF_ERR_PEER or the listener's code.
   */
  static connect(address: string, opts: PeerOptions): Promise<PeerConnection> {
    return new Promise((resolve, reject) => {
      const s = checkOptions(opts, 'standby');
      const a = parseAddress(address, 'peer address');
      const client = opts.tls?.client;
      const socket = client !== undefined ? tls.connect({ ...client, host: a.host, port: a.port }) : net.connect({ host: a.host, port: a.port });
      const conn = new PeerConnection(socket, s, { provesFirst: true }, formatAddress(a));
      const onDead = (code: string, message: string): void => reject(hfError(code as HfError['code'], `peer ${formatAddress(a)}: ${message}`));
      conn.once('dead', onDead);
      conn.once('ready', () => {
        conn.off('dead', onDead);
        resolve(conn);
      });
    });
  }

  /** The peer's role (known once the peer's hello arrived; throws HF_ERR_STATE before). */
  get peerRole(): PeerRole {
    return this.known().role;
  }

  /** The peer's node name. */
  get peerNode(): string {
    return this.known().node;
  }

  /** The peer's epoch: from its hello, then from each of its heartbeats. */
  get peerEpoch(): number {
    return this.known().epoch;
  }

  /** This side's role. */
  get role(): PeerRole {
    return this.s.role;
  }

  /** Whether the handshake is done and the connection not dead. */
  get ready(): boolean {
    return this.state === State.READY;
  }

  /** Changes the epoch this side's heartbeats carry (an unsigned integer). */
  setEpoch(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw hfError(ErrorCode.OPTION, `epoch must be an unsigned integer up to 2^53-1, got ${String(n)}`);
    this.epoch = n;
  }

  /**
   * Encodes and writes `m` (not validated). Returns false when the socket's unsent bytes are over
   * highWaterBytes: 'drain' follows once they are back. Throws HF_ERR_CLOSED once the connection is
   * dead, HF_ERR_STATE before it is ready.
   */
  send(m: PeerMessage): boolean {
    if (this.state === State.DEAD) throw hfError(ErrorCode.CLOSED, 'the peer connection is closed');
    if (this.state !== State.READY) throw hfError(ErrorCode.STATE, 'the peer connection is not ready');
    this.write(m);
    if (this.socket.writableLength + this.batch.bytes > this.s.highWaterBytes) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Closes the connection: the peer is sent an err HF_ERR_CLOSED, and 'dead' (HF_ERR_CLOSED,
   * 'closed here') follows once, as for any other end. A second call, or one after 'dead', does nothing.
   */
  close(): void {
    this.refuse(ErrorCode.CLOSED, 'closed here', 'closed by the peer');
  }

  /** Whether 'dead' was decided (a method, so the compiler does not narrow `state` across calls). */
  private isDead(): boolean {
    return this.state === State.DEAD;
  }

  private known(): PeerHello {
    if (this.peer === null) throw hfError(ErrorCode.STATE, "the peer's hello has not arrived");
    return this.peer;
  }

  /**
   * Queues `m`: what is written in one turn of the event loop (a record per answer, many sessions'
   * answers a turn) leaves in one socket write, after the turn's I/O callbacks (setImmediate).
   */
  private write(m: PeerMessage): void {
    this.batch.add(m);
    this.lastSent = performance.now();
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    if (this.state === State.DEAD || this.batch.bytes === 0) return;
    this.socket.write(this.batch.take());
  };

  private onData(d: Buffer): void {
    if (this.state === State.DEAD) return;
    this.lastHeard = performance.now();
    let frames: unknown[];
    try {
      frames = this.decoder.push(d);
    } catch (e) {
      this.refuse(ErrorCode.PEER, isHfError(e) ? e.message : String(e));
      return;
    }
    for (const v of frames) {
      if (this.isDead()) return;
      let m: PeerMessage;
      try {
        m = checkPeerMessage(v);
      } catch (e) {
        this.refuse(ErrorCode.PEER, isHfError(e) ? e.message : String(e));
        return;
      }
      this.onMessage(m);
    }
  }

  private onMessage(m: PeerMessage): void {
    if (m.t === 'err') {
      this.fail(m.code, `refused by the peer: ${m.message}`);
      return;
    }
    switch (this.state) {
      case State.HELLO:
        if (m.t !== 'hello') return this.refuse(ErrorCode.PEER, `expected hello, got ${m.t}`);
        if (m.role === this.s.role) return this.refuse(ErrorCode.PEER, `the peer ${JSON.stringify(m.node)} is also ${m.role}`);
        if (Buffer.compare(m.nonce, this.nonce) === 0) {
          // Nonces are not secret: a plain comparison. A reflected hello also has this side's role.
          return this.refuse(ErrorCode.AUTH, "the peer's hello repeats this side's nonce");
        }
        this.peer = m;
        this.state = State.PROOF;
        if (this.side.provesFirst) this.prove();
        return;
      case State.PROOF: {
        if (m.t !== 'proof') return this.refuse(ErrorCode.PEER, `expected proof, got ${m.t}`);
        const peer = this.known();
        const want = peerProof(this.s.key, peer.role, peer.nonce, this.nonce, peer.epoch);
        if (!timingSafeEqual(want, m.proof)) return this.refuse(ErrorCode.AUTH, `the proof of ${JSON.stringify(peer.node)} is wrong (another key?)`);
        if (this.side.admit !== undefined) {
          const no = this.side.admit(this, peer);
          if (no !== null) return this.refuse(no.code, no.message);
        }
        if (!this.side.provesFirst) this.prove();
        this.state = State.READY;
        this.startHeartbeats();
        this.early = [];
        this.emit('ready');
        return;
      }
      case State.READY:
        if (m.t === 'hb') {
          this.known().epoch = m.epoch;
          return;
        }
        if (m.t === 'hello' || m.t === 'proof') return this.refuse(ErrorCode.PEER, `unexpected ${m.t} after the handshake`);
        if (this.early !== null) this.early.push(m);
        else this.emit('message', m);
        return;
      default:
        return;
    }
  }

  private prove(): void {
    const peer = this.known();
    this.write({ t: 'proof', proof: peerProof(this.s.key, this.s.role, this.nonce, peer.nonce, this.epoch) });
  }

  private startHeartbeats(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    const { heartbeatMs, heartbeatMisses } = this.s;
    const deadAfter = heartbeatMs * heartbeatMisses;
    const tickMs = Math.max(1, Math.floor(heartbeatMs / 4));
    this.lastHeard = performance.now();
    let lastTick = this.lastHeard;
    this.heartbeatTimer = setInterval(() => {
      const now = performance.now();
      // A late tick means this process was busy (a large frame encoded or decoded): what the peer
      // sent meanwhile may still wait unread in the socket, so silence is judged at the next tick.
      const late = now - lastTick > 2 * tickMs + 5;
      lastTick = now;
      if (!late && now - this.lastHeard >= deadAfter) {
        this.refuse(ErrorCode.TIMEOUT, `nothing from the peer for ${Math.round(now - this.lastHeard)} ms (heartbeatMisses ${heartbeatMisses} × heartbeatMs ${heartbeatMs})`);
      } else if (now - this.lastSent >= heartbeatMs) {
        this.write({ t: 'hb', epoch: this.epoch });
      }
    }, tickMs);
    this.heartbeatTimer.unref();
  }

  /** Ends the connection telling the peer why (an err with `code`), then 'dead'. */
  private refuse(code: string, message: string, told = message): void {
    if (this.state === State.DEAD) return;
    if (!this.socket.destroyed && this.socket.writable) {
      try {
        // What was written before (an err of the owner's, records) goes first.
        if (this.batch.bytes > 0) this.socket.write(this.batch.take());
        this.socket.end(encodePeerFrame({ t: 'err', code, message: told }));
      } catch {
        // the socket is going anyway
      }
      // The err gets a moment to leave; the socket is destroyed then at the latest.
      this.lingerTimer = setTimeout(() => this.socket.destroy(), 250);
      this.lingerTimer.unref();
    }
    this.die(code, message, false);
  }

  /** Ends the connection at once, then 'dead'. */
  private fail(code: string, message: string): void {
    this.die(code, message, true);
  }

  private die(code: string, message: string, destroy: boolean): void {
    if (this.state === State.DEAD) return;
    this.state = State.DEAD;
    this.batch.clear();
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.handshakeTimer = null;
    this.heartbeatTimer = null;
    if (destroy || this.lingerTimer === null) {
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
      this.socket.destroy();
    }
    process.nextTick(() => {
      // Held behind held messages (they come first), or while nobody listens for it yet.
      const q = this.early;
      if (q !== null && (q.length > 0 || this.listenerCount('dead') === 0)) q.push({ dead: [code, message] });
      else this.emit('dead', code, message);
    });
  }

  /** The owner listens now: what arrived since 'ready' is handed over, in order, its end last. */
  private handOverEarly(): void {
    const q = this.early;
    if (q === null) return;
    this.early = null;
    for (const m of q) {
      if ('dead' in m) this.emit('dead', m.dead[0], m.dead[1]);
      else this.emit('message', m);
    }
  }

  /** @internal The listener's way in. */
  static accepted(socket: net.Socket, s: Settings, admit: Side['admit']): PeerConnection {
    const remote = socket.remoteAddress !== undefined ? formatAddress({ host: socket.remoteAddress, port: socket.remotePort ?? 0 }) : 'unknown';
    return new PeerConnection(socket, s, { provesFirst: false, admit }, remote);
  }
}

/** Events of a PeerListener. */
export type PeerListenerEvents = {
  /** An authenticated, ready peer; the listener's owner takes it from here. */
  peer: [conn: PeerConnection];
  /** A connection that ended before it was ready (code and message as its 'dead'), and where from. */
  refused: [code: string, message: string, remote: string];
};

/** Accepts control connections as role 'primary' (by default) and hands out the authenticated ones. */
export class PeerListener extends TypedEmitter<PeerListenerEvents> {
  /** The bound "host:port". */
  readonly address: string;
  private readonly server: net.Server;
  private readonly conns = new Set<PeerConnection>();
  private readonly live = new Set<PeerConnection>();
  private closed = false;

  private settings: Settings | null = null;

  private constructor(server: net.Server, address: string) {
    super();
    this.server = server;
    this.address = address;
  }

  /** The epoch told in the hello and heartbeats of connections accepted from now on (a node promoted). */
  setEpoch(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw hfError(ErrorCode.OPTION, `epoch must be an unsigned integer up to 2^53-1, got ${String(n)}`);
    if (this.settings !== null) this.settings.epoch = n;
  }

  /**
   * Listens on `address` ("host:port", port 0 for any). Each connection runs the handshake; the
   * authenticated ones beyond `maxPeers` live at once, or that `accept` refuses, are sent an err and
   * closed. Rejects with HF_ERR_OPTION or HF_ERR_CONNECT.
   */
  static async listen(address: string, opts: PeerListenerOptions): Promise<PeerListener> {
    const s = checkOptions(opts, 'primary');
    const maxPeers = intOption(opts as unknown as Record<string, unknown>, 'maxPeers', 1, 1, 1_000_000);
    if (opts.accept !== undefined && typeof opts.accept !== 'function') throw hfError(ErrorCode.OPTION, 'accept must be a function');
    const want = parseAddress(address, 'peer listen address');
    const server = opts.tls?.server !== undefined ? tls.createServer(opts.tls.server) : net.createServer();
    const bound = await listenOn(server, want, 'peer listener');
    const l = new PeerListener(server, bound);
    l.settings = s;
    const admit = (conn: PeerConnection, hello: PeerHello): HfError | null => {
      if (l.live.size >= maxPeers) return hfError(ErrorCode.BUSY, `already ${l.live.size} peer(s) of maxPeers ${maxPeers}`);
      const no = opts.accept?.(hello) ?? null;
      if (no === null) l.live.add(conn);
      return no;
    };
    server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', (socket: net.Socket) => {
      if (l.closed) {
        socket.destroy();
        return;
      }
      const conn = PeerConnection.accepted(socket, s, admit);
      l.conns.add(conn);
      conn.once('ready', () => l.emit('peer', conn));
      conn.once('dead', (code, message) => {
        l.conns.delete(conn);
        const wasLive = l.live.delete(conn);
        if (!wasLive) l.emit('refused', code, message, conn.remote);
      });
    });
    // A TLS handshake that fails never becomes a connection; it is not this listener's to count.
    server.on('tlsClientError', () => {});
    return l;
  }

  /** Authenticated peers now live. */
  get peers(): number {
    return this.live.size;
  }

  /** Stops listening and closes every connection it accepted (peers handed out included). Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const c of [...this.conns]) c.close();
    }
    return new Promise((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
  }
}
