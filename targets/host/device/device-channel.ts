/**
 * The device's session channel: a LinkChannel (targets/host/app/channel.ts) that also says what
 * carries the session and where it stands. `connect()` returns one; the Device driver behind it
 * (./device.ts) answers its questions through `DeviceState`.
 */
import type { EndpointStats } from '../../../firmware/endpoint';
import type { HfError } from '../../../firmware/errors';
import { type ChannelEvents, type ChannelHost, LinkChannel } from '../app/channel';

/** A DeviceChannel's events: a channel's, and 'transport' when the session moves. */
export type DeviceChannelEvents = ChannelEvents & {
  /** The session moved onto `name` (or started on it), for `reason` (in plain words). */
  transport: [name: 'tcp' | 'http', reason: string];
  /** The device moved to another of its gateways (`url`), after a failure with `code`. */
  gateway: [url: string, code: string];
};

/**
 * A device session's counters (a copy taken when asked; they only rise): the link's (bundles,
 * messages and payload bytes each way, retransmits, duplicates dropped, retransmission timeouts),
 * the HTTP requests made and failed (no connection, an answer not the gateway's, TLS refused), and
 * `messagesCarried`: the unacknowledged messages this session took over from one the gateway lost
 * (device.ts, PROTOCOL 11.7).
 */
export type DeviceStats = EndpointStats & { requestsSent: number; requestsFailed: number; messagesCarried: number };

/** What the channel asks of the driver that runs the device's session. */
export interface DeviceState {
  readonly transport: 'tcp' | 'http' | 'none';
  /** Session id (hex), null before the gateway's welcome. */
  readonly sessionId: string | null;
  readonly resumed: boolean;
  readonly accepted: number;
  readonly gateway: string;
  readonly stats: DeviceStats;
  /** Stops all I/O, leaving the session as the journal has it. */
  detach(): void;
}

export class DeviceChannel extends LinkChannel<DeviceChannelEvents> {
  private readonly state: DeviceState;

  /** Built by `connect()`; applications do not make their own. */
  constructor(deviceId: string, host: ChannelHost, state: DeviceState) {
    super(deviceId, host);
    this.state = state;
  }

  /** What carries the session now. */
  get transport(): 'tcp' | 'http' | 'none' {
    return this.state.transport;
  }

  /** Session id (hex) once the gateway welcomed the device; null before. */
  get sessionId(): string | null {
    return this.state.sessionId;
  }

  /** True when this process took over a session from the journal. */
  get resumed(): boolean {
    return this.state.resumed;
  }

  /**
   * Messages send() has accepted in this session, counting those a previous process accepted before
   * a restart (the next message is number `accepted`).
   */
  get accepted(): number {
    return this.state.accepted;
  }

  /** The URL of the gateway the device talks to now (one of its `gateway` list). */
  get gateway(): string {
    return this.state.gateway;
  }

  /** This session's counters in this process (a copy: read it again for newer numbers). */
  get stats(): DeviceStats {
    return this.state.stats;
  }

  /** Stops all I/O and leaves the session as the journal has it (the next connect resumes it). No event follows. */
  detach(): void {
    this.state.detach();
  }
}

export type { HfError };
