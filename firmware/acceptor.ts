/**
 * Acceptor: the gateway's table of sessions. It takes every incoming bundle (HTTP request body or
 * direct frame), starts sessions from hellos, routes the rest to their ServerLink by session id, runs
 * their timers, and forgets finished sessions. One session per device: a newer hello (larger counter)
 * replaces the device's old session; an older or repeated-but-different hello is refused, and an
 * exact repeat of the current hello gets the same welcome again.
 *
 * Errors are thrown as HfError before any session state changes; the transport answers them (HTTP
 * status plus the code in the body).
 */
import { equalBytes, toHex } from './bytes';
import { before } from './check';
import { Ctl, type GatewayAddress, type Hello, decodeControl } from './control';
import { ErrorCode, REPLACED_BY_NEWER, hfError } from './errors';
import { type LinkOptions, type ResolvedOptions, resolveOptions } from './options';
import { ServerLink, type ServerPort } from './server-link';
import type { ArenaAlloc } from './endpoint';
import type { SlabLender } from './slab-pool';
import { BundleReader, type BundleView, SID_BYTES, peekSid } from './wire';
import { Transport } from './link-base';
import { Sealer, checkHelloProof, sessionKey } from './auth';
import type { Crypto } from '../hal/crypto';

export interface AcceptorConfig {
  options?: LinkOptions;
  /** Most sessions at once (default 10000); past it a hello gets HF_ERR_BUSY. */
  maxSessions?: number;
  /** Fills a buffer with random bytes (session ids: must be unguessable). */
  random: (buf: Uint8Array) => void;
  /**
   * The secret key of a device, or null for an unknown device (with `crypto`). When given, every hello
   * must prove its device's key and every bundle of the session must carry the session's tag.
   */
  keyOf?: (id: string) => Uint8Array | null;
  /** HMAC from the target's HAL; required with `keyOf`. */
  crypto?: Crypto;
  /** A further say on each hello (default: accept); runs after the key check. */
  authenticate?: (hello: Hello) => boolean;
  /** The gateways each welcome names (a pair's nodes, [URL, TCP "host:port" or ""]); default none. */
  gateways?: GatewayAddress[];
  /** Gives the new session its port (the application attaches to the link through it). */
  open: (link: ServerLink) => ServerPort;
  /** Told when a session is dropped from the table. */
  onDrop?: (link: ServerLink) => void;
  /**
   * Where each session's memory comes from (see Endpoint): an ArenaAlloc (one block per session), or
   * a SlabLender shared by every session (slabs lent only while rings hold messages). Default:
   * zero-filled ArrayBuffers.
   */
  memory?: ArenaAlloc | SlabLender;
  /**
   * How many session ids handed away (`release`) are remembered (default 4096, oldest forgotten
   * first): a bundle naming one is refused with HF_ERR_MOVED, not HF_ERR_UNKNOWN_SESSION, so the
   * driver closes its connection unanswered and the device sends it again to the new owner.
   */
  movedMemory?: number;
  /**
   * Cork each session that takes a request or frame (see LinkBase.cork) until `uncorkAll`: the
   * driver calls that at the end of its event-loop turn, so an application's reply to a message rides
   * on the answer the request would have got anyway. Default false.
   */
  corkInput?: boolean;
}

/** Placeholder until `open` gives the new link its real port. */
const NULL_PORT: ServerPort = { answer: () => {}, transmit: () => {}, deliver: () => true };

interface DeviceRecord {
  n: number;
  nonce: Uint8Array;
  link: ServerLink | null;
}

/** The newest hello a device's session was opened with: its counter and nonce (what a handoff carries along). */
export interface HelloRecord {
  n: number;
  nonce: Uint8Array;
}

export class Acceptor {
  readonly o: ResolvedOptions;
  private readonly config: AcceptorConfig;
  private readonly maxSessions: number;
  private readonly reader: BundleReader;
  private readonly sessions = new Map<string, ServerLink>();
  private readonly devices = new Map<string, DeviceRecord>();
  /** Sessions being handed away (`quiesce`): still in the table, but no bundle reaches them. */
  private readonly quiesced = new Set<ServerLink>();
  /** Session ids handed away (`release`), oldest first, at most movedMemory. */
  private readonly moved = new Set<string>();
  private readonly movedMemory: number;

  constructor(config: AcceptorConfig) {
    if ((config.keyOf === undefined) !== (config.crypto === undefined)) throw hfError(ErrorCode.OPTION, 'keyOf and crypto go together: give both or neither');
    this.config = config;
    this.o = resolveOptions(config.options);
    this.maxSessions = config.maxSessions ?? 10000;
    const mm = config.movedMemory ?? 4096;
    if (!Number.isInteger(mm) || mm < 0 || mm > 1 << 20) throw hfError(ErrorCode.OPTION, `movedMemory must be an integer 0..${1 << 20}, got ${mm}`);
    this.movedMemory = mm;
    this.reader = new BundleReader(this.o);
  }

  get size(): number {
    return this.sessions.size;
  }

  session(sidHex: string): ServerLink | undefined {
    return this.sessions.get(sidHex);
  }

  /** All live sessions. */
  links(): IterableIterator<ServerLink> {
    return this.sessions.values();
  }

  /**
   * Parses `body` and returns the session it belongs to (null for a hello). Throws HF_ERR_CBOR /
   * HF_ERR_BUNDLE / HF_ERR_LIMIT for a bad body, HF_ERR_UNKNOWN_SESSION for an unknown session id.
   */
  private route(body: Uint8Array): { v: BundleView | null; link: ServerLink | null } {
    // Bundles of a session are routed by a peek at their session id (the session reads them fully,
    // once); the last session routed is compared first, without a lookup.
    let at = peekSid(body);
    let v: BundleView | null = null;
    if (at < 0) {
      v = this.reader.read(body);
      if (!v.hasSid) return { v, link: null };
      at = v.sidOff; // (the walk and the full read agree; this only keeps the two honest)
    }
    const last = this.lastRouted;
    const link = last !== null && equalBytes(body, at, last.sid, 0, SID_BYTES) ? last : this.sessions.get(toHex(body, at, SID_BYTES));
    if (link === undefined || link.isFinished) {
      if (this.moved.size > 0 && this.moved.has(toHex(body, at, SID_BYTES))) throw hfError(ErrorCode.MOVED, `session ${toHex(body, at, 4)}… was handed to another gateway process`);
      throw hfError(ErrorCode.UNKNOWN_SESSION, `no session ${toHex(body, at, 4)}…`);
    }
    if (this.quiesced.size > 0 && this.quiesced.has(link)) throw hfError(ErrorCode.MOVED, `session ${toHex(body, at, 4)}… is being handed to another gateway process`);
    this.lastRouted = link;
    return { v, link };
  }

  /** The session the last bundle was routed to (dropped with it). */
  private lastRouted: ServerLink | null = null;

  /** An HTTP request body arrived as exchange `exchange`. Answers through the link's port, or throws. */
  onRequest(now: number, exchange: number, body: Uint8Array): ServerLink {
    const { v, link } = this.route(body);
    if (link === null) return this.hello(now, exchange, v as BundleView);
    this.corkFor(link);
    link.onRequest(now, exchange, body);
    this.sweep(link);
    return link;
  }

  /** A direct-transport frame arrived. Returns its session (the first frame may be a hello). */
  onFrame(now: number, body: Uint8Array, exchange: number): ServerLink {
    const { v, link } = this.route(body);
    if (link === null) return this.hello(now, exchange, v as BundleView);
    this.corkFor(link);
    link.onFrame(now, body, exchange);
    this.sweep(link);
    return link;
  }

  private hello(now: number, exchange: number, v: BundleView): ServerLink {
    let hello: Hello | null = null;
    for (let k = 0; k < v.ctlCount; k++) {
      const c = decodeControl(v.buf, v.ctlStarts[k], v.ctlEnds[k]);
      if (c !== null && c.kind === Ctl.HELLO) hello = c;
    }
    if (hello === null) throw hfError(ErrorCode.BUNDLE, 'bundle without session id and without hello');
    if (v.msgCount > 0) throw hfError(ErrorCode.BUNDLE, 'a hello carries no messages');
    const { keyOf, crypto } = this.config;
    let key: Uint8Array | null = null;
    if (keyOf !== undefined && crypto !== undefined) {
      key = keyOf(hello.id);
      // Unknown device and wrong key get the same answer: the gateway does not say which ids exist.
      if (key === null || !checkHelloProof(crypto, key, hello.id, hello.n, hello.nonce, hello.proof)) {
        throw hfError(ErrorCode.AUTH, `hello from ${JSON.stringify(hello.id)} does not prove a key this gateway knows`);
      }
    }
    if (this.config.authenticate !== undefined && !this.config.authenticate(hello)) throw hfError(ErrorCode.AUTH, `hello from ${JSON.stringify(hello.id)} refused`);
    const rec = this.devices.get(hello.id);
    if (rec !== undefined) {
      if (hello.n === rec.n && equalBytes(hello.nonce, 0, rec.nonce, 0, rec.nonce.length) && hello.nonce.length === rec.nonce.length) {
        const cur = rec.link;
        if (cur?.replayWelcome(now, exchange)) return cur;
        throw hfError(ErrorCode.AUTH, `hello ${hello.n} from ${JSON.stringify(hello.id)} was already used`);
      }
      if (!before(rec.n, hello.n)) throw hfError(ErrorCode.AUTH, `hello ${hello.n} from ${JSON.stringify(hello.id)} is not newer than ${rec.n} (replayed?)`);
    }
    if (this.sessions.size >= this.maxSessions && (rec === undefined || rec.link === null || rec.link.isFinished)) {
      throw hfError(ErrorCode.BUSY, `${this.sessions.size} sessions, limit ${this.maxSessions}`);
    }
    if (rec !== undefined && rec.link !== null && !rec.link.isFinished) {
      rec.link.abort(now, ErrorCode.CLOSED, REPLACED_BY_NEWER);
      this.sweep(rec.link);
    }
    const sid = new Uint8Array(SID_BYTES);
    this.config.random(sid);
    const link = new ServerLink(this.o, sid, hello.id, hello.seq, hello.off, NULL_PORT, this.config.memory);
    if (this.config.gateways !== undefined) link.welcomeGateways = this.config.gateways;
    if (hello.lab !== undefined) link.labels = hello.lab;
    if (key !== null && crypto !== undefined) link.ep.sealer = new Sealer(crypto, sessionKey(crypto, key, sid, hello.nonce));
    link.setPort(this.config.open(link));
    this.sessions.set(toHex(sid), link);
    this.devices.set(hello.id, { n: hello.n, nonce: hello.nonce.slice(), link });
    if (exchange < 0) {
      link.directConn = exchange;
      link.setTransport(now, Transport.DIRECT);
    }
    link.answerHello(now, exchange, v.rn, v.winMsgs, v.winBytes, hello);
    return link;
  }

  /**
   * Takes over a session restored from a snapshot (a standby after failover, a cluster node after a
   * handoff). Replaces any session this table had for the same id or device. `hello`: the hello the
   * session was opened with (a handoff carries it), so a repeat of that hello gets the session's
   * welcome again here and an older one is refused as it was by the old owner.
   */
  adopt(link: ServerLink, now: number, hello?: HelloRecord): void {
    const rec = this.devices.get(link.deviceId);
    if (rec !== undefined && rec.link !== null && rec.link !== link && !rec.link.isFinished) {
      rec.link.abort(now, ErrorCode.CLOSED, 'replaced by an adopted session');
      this.sweep(rec.link);
    }
    const sid = toHex(link.sid);
    this.moved.delete(sid); // it came back
    if (this.config.gateways !== undefined) link.welcomeGateways = this.config.gateways;
    this.sessions.set(sid, link);
    const h = hello !== undefined && (rec === undefined || !before(hello.n, rec.n)) ? hello : rec;
    this.devices.set(link.deviceId, { n: h?.n ?? 0, nonce: h?.nonce.slice() ?? new Uint8Array(0), link });
  }

  /**
   * First step of handing session `sidHex` away: it stays in the table and keeps its state, but no
   * bundle reaches it any more (one that names it is refused with HF_ERR_MOVED, changing nothing)
   * and its timers do not run here. Throws HF_ERR_UNKNOWN_SESSION when there is no such live session.
   */
  quiesce(sidHex: string): ServerLink {
    const link = this.sessions.get(sidHex);
    if (link === undefined || link.isFinished) throw hfError(ErrorCode.UNKNOWN_SESSION, `no session ${sidHex.slice(0, 8)}…`);
    this.quiesced.add(link);
    return link;
  }

  /** The newest hello counter of `deviceId` here, and whether a live session of it is open here; null: never seen. */
  helloOf(deviceId: string): { n: number; live: boolean } | null {
    const rec = this.devices.get(deviceId);
    return rec === undefined ? null : { n: rec.n, live: rec.link !== null && !rec.link.isFinished };
  }

  /** Whether `link` is quiesced (being handed away). */
  isQuiesced(link: ServerLink): boolean {
    return this.quiesced.has(link);
  }

  /**
   * Last step of handing a session away (after its snapshot was taken): takes `link` out of the table
   * (onDrop is told), remembers its id as moved, and returns the hello it was opened with.
   */
  release(link: ServerLink): HelloRecord {
    const sid = toHex(link.sid);
    if (this.sessions.get(sid) !== link) throw hfError(ErrorCode.UNKNOWN_SESSION, `no session ${sid.slice(0, 8)}… in this table`);
    this.sessions.delete(sid);
    this.quiesced.delete(link);
    if (this.lastRouted === link) this.lastRouted = null;
    if (this.movedMemory > 0) {
      this.moved.add(sid);
      if (this.moved.size > this.movedMemory) this.moved.delete(this.moved.values().next().value as string);
    }
    const rec = this.devices.get(link.deviceId);
    const hello: HelloRecord = { n: rec?.n ?? 0, nonce: (rec?.nonce ?? new Uint8Array(0)).slice() };
    if (rec !== undefined && rec.link === link) rec.link = null;
    this.config.onDrop?.(link);
    return hello;
  }

  /** The HTTP exchange went away before it was answered. */
  onExchangeGone(link: ServerLink, exchange: number): void {
    link.onExchangeGone(exchange);
  }

  /** Earliest deadline of any session (Infinity if none). */
  nextDeadline(): number {
    let t = Infinity;
    for (const l of this.sessions.values()) {
      if (this.quiesced.has(l)) continue;
      const d = l.nextDeadline();
      if (d < t) t = d;
    }
    return t;
  }

  /** Runs every session's due timers and drops finished sessions. */
  onTimer(now: number): void {
    for (const l of this.sessions.values()) {
      if (this.quiesced.has(l)) continue;
      if (l.nextDeadline() <= now) l.onTimer(now);
      this.sweep(l);
    }
  }

  private readonly corked: ServerLink[] = [];

  private corkFor(link: ServerLink): void {
    if (this.config.corkInput !== true || this.corked.indexOf(link) >= 0) return;
    link.cork();
    this.corked.push(link);
  }

  /** Uncorks every session corked since the last call; returns them (their timers may have moved). */
  uncorkAll(now: number): ServerLink[] {
    const links = this.corked.splice(0);
    for (const l of links) {
      l.uncork(now);
      this.sweep(l);
    }
    return links;
  }

  /** Runs one session's timer if it is due (not while it is quiesced), and drops the session if it finished. */
  tick(link: ServerLink, now: number): void {
    if (!this.quiesced.has(link) && link.nextDeadline() <= now) link.onTimer(now);
    this.sweep(link);
  }

  /** Drops a finished session from the table. */
  sweep(link: ServerLink): void {
    if (!link.isFinished) return;
    const key = toHex(link.sid);
    if (this.sessions.get(key) !== link) return;
    this.sessions.delete(key);
    this.quiesced.delete(link);
    if (this.lastRouted === link) this.lastRouted = null;
    const rec = this.devices.get(link.deviceId);
    if (rec !== undefined && rec.link === link) rec.link = null;
    this.config.onDrop?.(link);
  }
}
