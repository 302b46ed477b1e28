/**
 * A device and a gateway joined by the simulated network, driven by the virtual clock: the sim
 * target's process entry point, used by the property and scenario tests. It plays the part the host
 * target's HTTP and TCP drivers play for real: it carries bundles, answers refused requests with an
 * error bundle, and runs each side's timers at the deadlines the links ask for.
 */
import { Acceptor } from '../../firmware/acceptor';
import type { SlabLender } from '../../firmware/slab-pool';
import { ClientLink } from '../../firmware/client-link';
import { refusalBundle } from '../../firmware/error-bundle';
import { type HfError, isHfError } from '../../firmware/errors';
import { Transport } from '../../firmware/link-base';
import type { AckAfter, LinkOptions } from '../../firmware/options';
import type { ServerLink } from '../../firmware/server-link';
import { peekRn } from '../../firmware/wire';
import { SimClock } from './clock';
import { type Faults, NO_FAULTS, SimNet } from './net';
import { Prng } from './prng';
import { MemoryStorage } from './storage';
import { Journal } from '../../firmware/journal';
import { DeadlineTimer } from '../../firmware/deadline-timer';
import { nodeCrypto } from '../node/crypto';

export interface PairConfig {
  seed: number;
  client?: LinkOptions;
  server?: LinkOptions;
  requests?: Faults;
  responses?: Faults;
  /** Start on the direct transport (else HTTP). */
  direct?: boolean;
  /** A delivered message; `seq` is what `confirm` takes with ackAfter 'app'. */
  onDeviceMessage?: (buf: Uint8Array, off: number, len: number, seq: number) => boolean;
  onGatewayMessage?: (buf: Uint8Array, off: number, len: number, seq: number) => boolean;
  /** When both ends acknowledge (default 'received'); with 'app' the callbacks above confirm. */
  ackAfter?: AckAfter;
  onDeviceDrain?: () => void;
  onGatewayDrain?: () => void;
  onDeviceEnd?: () => void;
  onDeviceClose?: (e?: HfError) => void;
  onGatewayEnd?: () => void;
  /** Journal the device's session to storage that survives `crash()`. */
  durable?: boolean;
  /**
   * The device's secret key, known to the gateway (default SIM_KEY): hellos prove it and every
   * bundle is tagged. null runs the session unauthenticated.
   */
  key?: Uint8Array | null;
  /** The gateway's sessions take their ring memory from this lender (as the host gateway's do) instead of an arena each. */
  memory?: SlabLender;
}

const noop = (): void => {};
const DEVICE_ID = 'device-1';
/** The sim device's key (any fixed bytes: the sim proves the mechanism, not the secrecy). */
export const SIM_KEY = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
const DEAD_PORT = { transmit: noop, deliver: () => true };
const EXACT = { keepEarlier: false };

export class SimPair {
  readonly clock = new SimClock();
  readonly rng: Prng;
  readonly net: SimNet;
  readonly acceptor: Acceptor;
  client: ClientLink;
  /** The gateway's link for the device's current session. */
  server: ServerLink | null = null;
  /** Every server link ever opened, oldest first. */
  readonly servers: ServerLink[] = [];
  deviceError: HfError | undefined;
  deviceClosed = false;
  gatewayClosed: HfError | 'clean' | undefined;
  /** Requests refused by the gateway (code -> count). */
  readonly refusals = new Map<string, number>();
  readonly rejects: HfError[] = [];
  private readonly cfg: PairConfig;
  private readonly key: Uint8Array | null;
  private exchange = 0;
  /** Client incarnation: responses to a dead incarnation's requests are lost with its sockets. */
  private incarnation = 0;
  private readonly exIncarnation = new Map<number, number>();
  /** Request number of each exchange (a cut answer fails that request at the device). */
  private readonly exRn = new Map<number, number>();
  /** Each side's timer, exactly at the deadline its state machine asks for (a seeded run replays). */
  private readonly clientTimer: DeadlineTimer;
  private readonly serverTimer: DeadlineTimer;
  private helloCounter = 1;
  /** The device's permanent storage (kept across crashes). */
  readonly storage = new MemoryStorage();
  /** True between `crash()` and `restart()`. */
  crashed = false;
  /** Hello counters used so far step by this much per client incarnation. */
  static readonly HELLO_STEP = 1000;

  constructor(cfg: PairConfig) {
    this.cfg = cfg;
    this.key = cfg.key === undefined ? SIM_KEY : cfg.key;
    this.rng = new Prng(cfg.seed);
    this.net = new SimNet(this.clock, this.rng, cfg.requests ?? NO_FAULTS, cfg.responses ?? cfg.requests ?? NO_FAULTS);
    const idRng = new Prng(cfg.seed ^ 0x5eed);
    this.acceptor = new Acceptor({
      options: cfg.server,
      random: (b) => idRng.fill(b),
      ...(cfg.memory === undefined ? {} : { memory: cfg.memory }),
      ...(this.key === null ? {} : { keyOf: (id: string) => (id === DEVICE_ID ? this.key : null), crypto: nodeCrypto }),
      open: (link) => {
        this.server = link;
        this.servers.push(link);
        if (cfg.ackAfter !== undefined) link.setAckAfter(cfg.ackAfter);
        return {
          answer: (ex, body, len) => this.answer(ex, body, len),
          transmit: (body, len) => this.frameDown(body, len),
          deliver: cfg.onGatewayMessage ?? (() => true),
          onDrain: cfg.onGatewayDrain,
          onEnd: cfg.onGatewayEnd,
          onClose: (e) => {
            if (link === this.server) this.gatewayClosed = e ?? 'clean';
          },
        };
      },
    });
    this.clientTimer = new DeadlineTimer(
      this.clock,
      () => (this.crashed ? Infinity : this.client.nextDeadline()),
      (now) => {
        this.client.onTimer(now);
        this.arm();
      },
      EXACT,
    );
    this.serverTimer = new DeadlineTimer(
      this.clock,
      () => this.acceptor.nextDeadline(),
      (now) => {
        this.acceptor.onTimer(now);
        this.arm();
      },
      EXACT,
    );
    this.client = this.newClient();
    if (cfg.durable) this.client.attachJournal(new Journal(this.storage, this.client.o.maxMessage, { compactBytes: 4096 }), this.now);
    if (cfg.direct) this.net.openDirect();
  }

  /** The device loses power: its objects and sockets are gone, its storage stays. */
  crash(): void {
    if (this.crashed) return;
    this.crashed = true;
    this.incarnation++;
    this.client.setPort(DEAD_PORT);
    this.client.ep.journal = null; // a dead process writes nothing more
    if (this.cfg.direct || this.client.transport === Transport.DIRECT) this.net.closeDirect();
    if (this.server !== null && !this.server.isFinished && this.server.transport === Transport.DIRECT) this.server.setTransport(this.now, Transport.HELD);
    this.arm();
  }

  /** The device boots again and resumes from its journal (or starts afresh without one). */
  restart(): void {
    if (!this.crashed) return;
    this.crashed = false;
    const inc = ++this.incarnation;
    const config = this.clientConfig();
    const restored = this.cfg.durable ? ClientLink.fromJournal(this.storage, this.now, config, this.clientPort(inc), { compactBytes: 4096 }) : null;
    this.client = restored ?? new ClientLink(config, this.clientPort(inc));
    this.client.transport = Transport.HELD;
    if (this.client.sid !== null && !this.client.isFinished) this.client.resumeSession(this.now);
    else this.client.start(this.now);
    this.arm();
  }

  /** The device's id, and its key and crypto unless the session runs unauthenticated. */
  private identity(): { id: string; key?: Uint8Array; crypto?: typeof nodeCrypto } {
    return this.key === null ? { id: DEVICE_ID } : { id: DEVICE_ID, key: this.key, crypto: nodeCrypto };
  }

  /** A new incarnation's identity, options and next hello counter. */
  private clientConfig() {
    this.helloCounter += SimPair.HELLO_STEP;
    return { ...this.identity(), random: (b: Uint8Array) => this.rng.fill(b), helloCounter: this.helloCounter, options: this.cfg.client, ackAfter: this.cfg.ackAfter };
  }

  private newClient(): ClientLink {
    const inc = ++this.incarnation;
    const c = new ClientLink(this.clientConfig(), this.clientPort(inc));
    if (this.cfg.direct) c.transport = Transport.DIRECT;
    return c;
  }

  get now(): number {
    return this.clock.now();
  }

  start(): void {
    if (this.crashed) return;
    this.client.start(this.now);
    this.arm();
  }

  deviceSend(bytes: Uint8Array): boolean {
    if (this.crashed) return false;
    const ok = this.client.send(this.now, bytes);
    this.arm();
    return ok;
  }

  gatewaySend(bytes: Uint8Array): boolean {
    if (this.server === null) return false;
    const ok = this.server.send(this.now, bytes);
    this.arm();
    return ok;
  }

  /** Runs the simulation for `ms` of virtual time, or until `stop()`. */
  run(ms: number, stop?: () => boolean): void {
    this.clock.runUntil(this.now + ms, stop);
  }

  /** Moves the device to the direct transport (a new TCP connection) or back to HTTP. */
  useDirect(on: boolean): void {
    if (on) {
      this.net.openDirect();
      this.client.setTransport(this.now, Transport.DIRECT);
    } else {
      this.net.closeDirect();
      this.client.setTransport(this.now, Transport.HELD);
      if (this.server !== null && !this.server.isFinished) this.server.setTransport(this.now, Transport.HELD);
    }
    this.arm();
  }

  /** The client's port for incarnation `inc` (for a restored client). */
  clientPort(inc: number) {
    return {
      transmit: (body: Uint8Array, len: number, rn: number) => this.transmit(inc, body, len, rn),
      deliver: (b: Uint8Array, o: number, l: number, seq: number) => (this.cfg.onDeviceMessage ? this.cfg.onDeviceMessage(b, o, l, seq) : true),
      onDrain: () => this.cfg.onDeviceDrain?.(),
      onEnd: () => this.cfg.onDeviceEnd?.(),
      onClose: (e?: HfError) => {
        if (inc !== this.incarnation) return;
        this.deviceClosed = true;
        this.deviceError = e;
        this.cfg.onDeviceClose?.(e);
      },
      onReject: (e: HfError) => this.rejects.push(e),
    };
  }

  // ---- carrying ----------------------------------------------------------------------------------

  private transmit(inc: number, body: Uint8Array, len: number, rn: number): void {
    if (inc !== this.incarnation) return;
    const copy = body.slice(0, len);
    if (this.client.transport === Transport.DIRECT) {
      this.net.frame(true, () => this.gatewayFrame(copy));
      return;
    }
    this.net.carry(
      this.net.requests,
      () => {
        const ex = ++this.exchange;
        this.exIncarnation.set(ex, inc);
        this.exRn.set(ex, rn);
        try {
          this.acceptor.onRequest(this.now, ex, copy);
        } catch (e) {
          if (!isHfError(e)) throw e;
          this.refuse(ex, copy, e);
        }
        this.arm();
      },
      () => this.requestCut(inc, rn),
    );
  }

  /** The connection of request `rn` died before its answer: the device's transport says so. */
  private requestCut(inc: number, rn: number): void {
    if (inc !== this.incarnation) return;
    this.client.onRequestFailed(this.now, rn, true);
    this.arm();
  }

  private gatewayFrame(body: Uint8Array): void {
    try {
      this.acceptor.onFrame(this.now, body, -1);
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.refusals.set(e.code, (this.refusals.get(e.code) ?? 0) + 1);
      const err = refusalBundle(peekRn(body), e);
      this.net.frame(false, () => this.clientBundle(err, this.incarnation));
    }
    this.arm();
  }

  private refuse(ex: number, body: Uint8Array, e: HfError): void {
    this.refusals.set(e.code, (this.refusals.get(e.code) ?? 0) + 1);
    this.answer(ex, refusalBundle(peekRn(body), e), -1);
  }

  private answer(ex: number, body: Uint8Array, len: number): void {
    const copy = len < 0 ? body : body.slice(0, len);
    if (ex < 0) {
      this.frameDown(copy, copy.length);
      return;
    }
    const inc = this.exIncarnation.get(ex) ?? -1;
    const rn = this.exRn.get(ex) ?? -1;
    this.exIncarnation.delete(ex);
    this.exRn.delete(ex);
    this.net.carry(
      this.net.responses,
      () => this.clientBundle(copy, inc),
      () => this.requestCut(inc, rn),
    );
  }

  private frameDown(body: Uint8Array, len: number): void {
    const copy = body.slice(0, len);
    const inc = this.incarnation;
    this.net.frame(false, () => this.clientBundle(copy, inc));
  }

  private clientBundle(body: Uint8Array, inc: number): void {
    if (inc !== this.incarnation) return;
    this.client.onBundle(this.now, body);
    this.arm();
  }

  // ---- timers ------------------------------------------------------------------------------------

  /** Re-arms both sides' timers at the deadlines their state machines ask for. */
  arm(): void {
    this.clientTimer.arm();
    this.serverTimer.arm();
  }
}

export { noop };
