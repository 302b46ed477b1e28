/**
 * The gateway on the host target: one Acceptor (the session table) served over HTTP (`POST /v1/link`,
 * held requests) and over direct TCP (length-prefixed frames), with a timer per session and a
 * message Channel per session for the application.
 *
 *   const gw = await Gateway.start({ http: '127.0.0.1:8080', tcp: '127.0.0.1:8081', devices: { 'pi-1': 'secret' } });
 *   gw.on('session', (ch) => ch.on('message', (m) => ch.send(m)));
 *
 * Events: 'session' (channel: GatewayChannel), 'listening'. Exchanges (HTTP requests held open) and
 * TCP connections are numbered: HTTP exchanges count up from 1; a TCP connection with id k answers as
 * exchange -k.
 */
import { EventEmitter } from 'node:events';
import { Acceptor } from '../../../firmware/acceptor';
import { ErrorCode, hfError } from '../../../firmware/errors';
import { LinkOptions } from '../../../firmware/options';
import { ServerLink } from '../../../firmware/server-link';
import { Transport } from '../../../firmware/link-base';
import { BundleReader, WIRE_DEFAULTS } from '../../../firmware/wire';
import type { Log } from '../../../hal/log';
import { Channel, LinkChannel } from '../app/channel';
import { hostClock } from '../../node/clock';
import { nodeCrypto } from '../../node/crypto';
import { hostEntropy } from '../../node/entropy';
import { HttpFront } from './http-front';
import { TcpFront } from './tcp-front';
import { silentLog } from '../../node/log';
import { Address, parseAddress } from '../net/address';

/** Device id -> secret key (text keys are taken as their UTF-8 bytes). */
export type DeviceKeys = Record<string, string | Uint8Array> | Map<string, string | Uint8Array> | ((id: string) => Uint8Array | null);

export interface GatewayOptions {
  /** HTTP listener, "host:port" (port 0: any free port). null: none. */
  http?: string | Address | null;
  /** Direct TCP listener. null (default): none. */
  tcp?: string | Address | null;
  /** The devices allowed in and their keys. null: no authentication at all (tests and demos only). */
  devices: DeviceKeys | null;
  /** Link bounds for every session (see firmware/options.ts); unset ones from GATEWAY_LINK_DEFAULTS. */
  link?: LinkOptions;
  /** Most sessions at once (default 10000). */
  maxSessions?: number;
  /** Most direct TCP connections at once (default 10000). */
  maxConnections?: number;
  /** The HTTP path of the link (default "/v1/link"). */
  path?: string;
  log?: Log;
}

/** A session's channel on the gateway. */
export interface GatewayChannel extends Channel {
  /** Session id, hex (for logs). */
  readonly sessionId: string;
  /** "http" or "tcp": what carries the session now. */
  readonly transport: 'http' | 'tcp';
}

/** What the gateway keeps per session besides the link. */
export interface Slot {
  link: ServerLink;
  channel: LinkChannel;
  timer: NodeJS.Timeout | null;
  /** Deadline the timer is set for. */
  at: number;
}

const utf8 = new TextEncoder();

/**
 * A gateway keeps a session per device, each with its rings reserved up front, so its defaults are
 * smaller than a device's: a 128 KiB window each way (1024 messages), messages up to 32 KiB, bundles
 * up to 128 KiB — 416 KiB reserved a session (a device's defaults reserve 832 KiB), of which a
 * fresh idle session touches about 80 KiB (`npm run bench:peers`, idle workload). The window bounds
 * one session's throughput to window / round trip (128 KiB at 100 ms: 10 Mbit/s; 1024 small
 * messages per round trip); raise it with `link`, or lower it to keep more sessions per MiB.
 */
export const GATEWAY_LINK_DEFAULTS: LinkOptions = { outSlots: 1024, outBytes: 131072, inSlots: 1024, inBytes: 131072, maxMessage: 32768, maxBundleBytes: 131072 };

function keyLookup(devices: DeviceKeys): (id: string) => Uint8Array | null {
  if (typeof devices === 'function') return devices;
  const m = new Map<string, Uint8Array>();
  const entries = devices instanceof Map ? [...devices.entries()] : Object.entries(devices);
  for (const [id, k] of entries) {
    const key = typeof k === 'string' ? utf8.encode(k) : k;
    if (!(key instanceof Uint8Array) || key.length === 0) throw hfError(ErrorCode.OPTION, `device ${JSON.stringify(id)}: key must be a non-empty string`);
    m.set(id, key);
  }
  return (id) => m.get(id) ?? null;
}

export class Gateway extends EventEmitter {
  readonly acceptor: Acceptor;
  readonly log: Log;
  readonly path: string;
  /** Largest request body accepted (the link's maxBundleBytes); larger gets 413. */
  readonly maxBody: number;
  readonly http: HttpFront | null;
  readonly tcp: TcpFront | null;
  private readonly slots = new Map<ServerLink, Slot>();
  /** Parses refused bodies again for their request number (errors only). */
  private readonly peek: BundleReader;
  private closed = false;

  private constructor(opts: GatewayOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, 'gateway options must be an object');
    if (opts.devices === undefined) throw hfError(ErrorCode.OPTION, 'devices is required (null runs without authentication)');
    this.log = opts.log ?? silentLog;
    this.path = opts.path ?? '/v1/link';
    const keyOf = opts.devices === null ? null : keyLookup(opts.devices);
    this.acceptor = new Acceptor({
      options: { ...GATEWAY_LINK_DEFAULTS, ...opts.link },
      maxSessions: opts.maxSessions,
      random: (b) => hostEntropy.fill(b),
      ...(keyOf === null ? {} : { keyOf, crypto: nodeCrypto }),
      open: (link) => this.open(link),
      // Not zero-filled (nothing is read before it is written): a new session costs no memset, and
      // pages the session never uses are never touched.
      alloc: (n) => Buffer.allocUnsafeSlow(n).buffer as ArrayBuffer,
      corkInput: true,
      onDrop: (link) => this.drop(link),
    });
    this.maxBody = this.acceptor.o.maxBundleBytes;
    this.peek = new BundleReader({ ...WIRE_DEFAULTS, maxBundleBytes: this.maxBody, maxMessages: 4096, maxSackRanges: 64, maxControls: 16, maxMessage: this.maxBody });
    const http = opts.http === undefined ? '127.0.0.1:0' : opts.http;
    this.http = http === null ? null : new HttpFront(this, parseAddress(http, 'http'));
    this.tcp = opts.tcp === undefined || opts.tcp === null ? null : new TcpFront(this, parseAddress(opts.tcp, 'tcp'), opts.maxConnections ?? 10000);
    if (this.http === null && this.tcp === null) throw hfError(ErrorCode.OPTION, 'a gateway needs an http or a tcp listener');
  }

  /** Builds a gateway and starts its listeners. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    try {
      if (gw.http !== null) await gw.http.listen();
      if (gw.tcp !== null) await gw.tcp.listen();
    } catch (e) {
      await gw.close();
      throw e;
    }
    gw.log.info('listening', { http: gw.http?.url, tcp: gw.tcp?.address });
    gw.emit('listening');
    return gw;
  }

  now(): number {
    return hostClock.now();
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.acceptor.size;
  }

  /** The request number of a refused body, best effort (0 if it has none). */
  rnOf(body: Uint8Array): number {
    try {
      return this.peek.read(body).rn;
    } catch {
      return 0;
    }
  }

  // ---- sessions --------------------------------------------------------------------------------

  private open(link: ServerLink) {
    const sidHex = Buffer.from(link.sid).toString('hex');
    const slot: Slot = { link, channel: null as unknown as LinkChannel, timer: null, at: Infinity };
    const channel = new LinkChannel(link.deviceId, { now: () => this.now(), kick: () => this.arm(slot) });
    Object.defineProperty(channel, 'sessionId', { value: sidHex, enumerable: true });
    Object.defineProperty(channel, 'transport', { get: () => (link.transport === Transport.DIRECT ? 'tcp' : 'http'), enumerable: true });
    channel.attach(link);
    slot.channel = channel;
    this.slots.set(link, slot);
    const cp = channel.port();
    this.log.info('session opened', { device: link.deviceId, session: sidHex.slice(0, 8), sessions: this.acceptor.size + 1 });
    process.nextTick(() => {
      if (!this.closed) this.emit('session', channel as unknown as GatewayChannel);
    });
    return {
      ...cp,
      answer: (exchange: number, body: Uint8Array, len: number) => this.answer(exchange, body, len),
      transmit: (body: Uint8Array, len: number, conn: number) => this.tcp?.send(-conn, body, len),
      onClose: (err?: Error) => {
        if (err) this.log.info('session failed', { device: link.deviceId, session: sidHex.slice(0, 8), code: (err as { code?: string }).code, reason: err.message });
        else this.log.info('session closed', { device: link.deviceId, session: sidHex.slice(0, 8) });
        cp.onClose?.(err as never);
      },
    };
  }

  private drop(link: ServerLink): void {
    const slot = this.slots.get(link);
    if (slot === undefined) return;
    if (slot.timer !== null) clearTimeout(slot.timer);
    slot.timer = null;
    this.slots.delete(link);
  }

  /** Answers exchange `exchange`: an HTTP response, or a frame on TCP connection -exchange. */
  private answer(exchange: number, body: Uint8Array, len: number): void {
    if (exchange < 0) this.tcp?.send(-exchange, body, len);
    else this.http?.respond(exchange, body, len);
  }

  /** Re-arms the session's timer after anything happened to it. */
  arm(slot: Slot): void {
    const t = slot.link.nextDeadline();
    // A timer set for no later than `t` stays (if it fires early, nothing is due and fire() re-arms).
    if (slot.timer !== null && slot.at <= t) return;
    if (slot.timer !== null) clearTimeout(slot.timer);
    slot.timer = null;
    slot.at = t;
    if (t === Infinity || this.closed) return;
    slot.timer = setTimeout(() => this.fire(slot), Math.max(1, Math.ceil(t - this.now())));
  }

  private fire(slot: Slot): void {
    slot.timer = null;
    slot.at = Infinity;
    this.acceptor.tick(slot.link, this.now());
    if (this.slots.has(slot.link)) this.arm(slot);
  }

  /**
   * Re-arms the timer of `link`'s session (after a request or frame), and makes sure the sessions
   * corked by this turn's input are uncorked at its end.
   */
  touched(link: ServerLink | null): void {
    if (!this.uncorkQueued) {
      this.uncorkQueued = true;
      process.nextTick(this.uncork);
    }
    if (link === null) return;
    const slot = this.slots.get(link);
    if (slot !== undefined) this.arm(slot);
  }

  private uncorkQueued = false;
  private readonly uncork = (): void => {
    this.uncorkQueued = false;
    for (const l of this.acceptor.uncorkAll(this.now())) {
      const slot = this.slots.get(l);
      if (slot !== undefined) this.arm(slot);
    }
  };

  // ---- shutdown --------------------------------------------------------------------------------

  /** Stops listening, ends every session (HF_ERR_CLOSED) and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const now = this.now();
    for (const slot of [...this.slots.values()]) {
      slot.link.abort(now, ErrorCode.CLOSED, 'gateway shutting down');
      this.acceptor.sweep(slot.link);
    }
    await Promise.all([this.http?.close(), this.tcp?.close()]);
    this.log.info('stopped');
  }
}
