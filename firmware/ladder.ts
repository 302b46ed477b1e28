/**
 * The transport ladder: which transport a device's session rides. Direct TCP first; HTTP when TCP
 * cannot connect, or connects but nothing comes back within `directTimeoutMs` (a middlebox that
 * accepts and swallows), or goes silent for `directSilenceMs` (a NAT that forgot the connection).
 * While on HTTP it probes TCP again after `reprobeMs`, doubling up to `reprobeMaxMs` while probes
 * fail, and moves the session back when one succeeds. The session (rings, sequence numbers) belongs
 * to the link, not the transport, so a move loses and duplicates nothing.
 *
 * A pure state machine: events come in as calls with the current time, actions go out through the
 * port, and the driver calls `onTimer(now)` at `nextDeadline()`.
 *
 *   IDLE --start--> TRYING --connected--> VERIFYING --heard--> DIRECT
 *                     |                      |                   |
 *                     +-- refused/timeout ---+--- timeout/lost --+--> FALLBACK --reprobe--> TRYING
 *
 * Without a TCP address the ladder goes straight to HTTP and stays (state HTTP_ONLY).
 */
import { checkMs } from './check';
import { ErrorCode, hfError } from './errors';

export const Rung = {
  IDLE: 0,
  /** Connecting TCP (the session is on HTTP, or not started). */
  TRYING: 1,
  /** TCP connected and the session moved onto it; waiting to hear from the gateway. */
  VERIFYING: 2,
  DIRECT: 3,
  /** On HTTP, waiting for the next probe. */
  FALLBACK: 4,
  /** On HTTP for good (no TCP address). */
  HTTP_ONLY: 5,
  STOPPED: 6,
} as const;
export type RungValue = (typeof Rung)[keyof typeof Rung];
export const RUNG_NAMES = ['idle', 'trying tcp', 'verifying tcp', 'tcp', 'http', 'http', 'stopped'];

export interface LadderOptions {
  /** Longest a TCP connect plus the first frame back may take, ms (default 3000). */
  directTimeoutMs?: number;
  /** On TCP, silence after which the connection is taken as dead, ms (default 45000: three keep-alives). */
  directSilenceMs?: number;
  /** First wait before probing TCP again from HTTP, ms (default 30000)... */
  reprobeMs?: number;
  /** ... doubling per failed probe up to this, ms (default 600000). */
  reprobeMaxMs?: number;
  /** After a working TCP connection drops, first retry after this, ms (default 1000). */
  reconnectMs?: number;
}

export const LADDER_DEFAULTS: Required<LadderOptions> = {
  directTimeoutMs: 3000,
  directSilenceMs: 45000,
  reprobeMs: 30000,
  reprobeMaxMs: 600000,
  reconnectMs: 1000,
};

/** What the ladder asks of its driver. */
export interface LadderPort {
  /** Open a TCP connection to the gateway (report back with connected / lost). */
  connect(): void;
  /** Close the TCP connection (no `lost` is expected for it). */
  disconnect(): void;
  /** Carry the session on TCP / on HTTP from now on. */
  useDirect(): void;
  useHttp(reason: string): void;
}

export class Ladder {
  readonly o: Required<LadderOptions>;
  state: RungValue = Rung.IDLE;
  private readonly port: LadderPort;
  private readonly hasTcp: boolean;
  private deadline = Infinity;
  private lastHeard = 0;
  private wait: number;
  /** Moves between transports so far (for logs and tests). */
  moves = 0;

  constructor(hasTcp: boolean, port: LadderPort, opts: LadderOptions = {}) {
    const o = { ...LADDER_DEFAULTS };
    for (const k of Object.keys(opts) as (keyof LadderOptions)[]) {
      if (!Object.hasOwn(LADDER_DEFAULTS, k)) throw hfError(ErrorCode.OPTION, `unknown ladder option ${k}`);
      if (opts[k] !== undefined) o[k] = opts[k] as number;
    }
    checkMs('directTimeoutMs', o.directTimeoutMs, 1);
    checkMs('directSilenceMs', o.directSilenceMs, 1);
    checkMs('reprobeMs', o.reprobeMs, 1);
    checkMs('reprobeMaxMs', o.reprobeMaxMs, o.reprobeMs);
    checkMs('reconnectMs', o.reconnectMs, 0);
    this.o = o;
    this.port = port;
    this.hasTcp = hasTcp;
    this.wait = o.reprobeMs;
  }

  get onDirect(): boolean {
    return this.state === Rung.VERIFYING || this.state === Rung.DIRECT;
  }

  start(now: number): void {
    if (this.state !== Rung.IDLE) return;
    if (!this.hasTcp) {
      this.state = Rung.HTTP_ONLY;
      this.port.useHttp('no tcp address');
      return;
    }
    this.tryTcp(now);
  }

  /** The TCP connection is up. */
  connected(now: number): void {
    if (this.state !== Rung.TRYING) return;
    this.state = Rung.VERIFYING;
    this.lastHeard = now;
    this.moves++;
    this.port.useDirect();
  }

  /** A frame arrived on TCP. */
  heard(now: number): void {
    this.lastHeard = now;
    if (this.state === Rung.VERIFYING) {
      this.state = Rung.DIRECT;
      this.wait = this.o.reprobeMs;
      this.deadline = now + this.o.directSilenceMs;
    } else if (this.state === Rung.DIRECT) {
      this.deadline = now + this.o.directSilenceMs;
    }
  }

  /** The TCP connection failed to open, or closed. */
  lost(now: number, reason: string): void {
    if (this.state === Rung.DIRECT) {
      // A connection that worked dropped: the gateway may be restarting; retry soon, on HTTP meanwhile.
      this.fallback(now, this.o.reconnectMs, `tcp lost: ${reason}`);
    } else if (this.state === Rung.TRYING || this.state === Rung.VERIFYING) {
      this.fallback(now, this.backoff(), `tcp failed: ${reason}`);
    }
  }

  /**
   * The device moved to another gateway and closed its TCP connection without a report (an attempt
   * still connecting included). Nothing failed: the probe back-off starts over and TCP to the new
   * gateway is tried after reconnectMs, whatever the rung (on HTTP meanwhile).
   */
  retarget(now: number, reason: string): void {
    if (this.state === Rung.IDLE || this.state === Rung.HTTP_ONLY || this.state === Rung.STOPPED) return;
    this.wait = this.o.reprobeMs;
    this.fallback(now, this.o.reconnectMs, reason);
  }

  nextDeadline(): number {
    return this.deadline;
  }

  onTimer(now: number): void {
    if (now < this.deadline) return;
    switch (this.state) {
      case Rung.TRYING:
        this.port.disconnect();
        this.fallback(now, this.backoff(), `no tcp connection within ${this.o.directTimeoutMs} ms`);
        break;
      case Rung.VERIFYING:
        this.port.disconnect();
        this.fallback(now, this.backoff(), `nothing heard on tcp within ${this.o.directTimeoutMs} ms`);
        break;
      case Rung.DIRECT:
        this.port.disconnect();
        this.fallback(now, this.o.reconnectMs, `tcp silent for ${Math.round(now - this.lastHeard)} ms`);
        break;
      case Rung.FALLBACK:
        this.tryTcp(now);
        break;
      default:
        this.deadline = Infinity;
    }
  }

  /** Stops: closes TCP; no more actions. */
  stop(): void {
    if (this.state === Rung.STOPPED) return;
    if (this.state === Rung.TRYING || this.onDirect) this.port.disconnect();
    this.state = Rung.STOPPED;
    this.deadline = Infinity;
  }

  private tryTcp(now: number): void {
    this.state = Rung.TRYING;
    this.deadline = now + this.o.directTimeoutMs;
    this.port.connect();
  }

  private fallback(now: number, after: number, reason: string): void {
    if (this.onDirect) this.moves++;
    this.state = Rung.FALLBACK;
    this.deadline = now + after;
    this.port.useHttp(reason); // the driver ignores it when the session is already on HTTP
  }

  /** The wait before the next probe, doubling each time a probe fails. */
  private backoff(): number {
    const w = this.wait;
    this.wait = Math.min(this.o.reprobeMaxMs, this.wait * 2);
    return w;
  }
}
