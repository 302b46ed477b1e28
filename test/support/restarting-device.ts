/**
 * What `holdfast device --state DIR` does with its sessions, in the test's process: a new connect()
 * 200 ms after each session that ended, until `stop()`. Records each opened session's id, the
 * requests each ended session sent, and the device's log lines.
 */
import { type DeviceOptions, type DeviceChannel, connect } from '../../targets/host/device/device';
import { createLog } from '../../targets/node/log';

export class RestartingDevice {
  /** The current session's channel. */
  ch: DeviceChannel | null = null;
  /** Session ids, in the order they opened. */
  readonly opened: string[] = [];
  /** Requests each ended session sent. */
  readonly requests: number[] = [];
  /** The device's log, one line each. */
  readonly lines: string[] = [];
  private stopped = false;
  private readonly o: DeviceOptions;

  constructor(o: Omit<DeviceOptions, 'log'>) {
    this.o = { ...o, log: createLog({ name: 'device', out: { write: (s: string) => this.lines.push(s.slice(0, -1)) } }) };
    this.start();
  }

  private start(): void {
    const cur = connect(this.o);
    this.ch = cur;
    cur.on('error', () => {});
    cur.on('open', () => this.opened.push(cur.sessionId ?? ''));
    cur.once('close', () => {
      this.requests.push(cur.stats.requestsSent);
      if (!this.stopped) setTimeout(() => !this.stopped && this.start(), 200);
    });
  }

  /** No new session after this; the current one is destroyed. */
  stop(): void {
    this.stopped = true;
    this.ch?.destroy();
  }
}
