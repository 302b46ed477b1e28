/**
 * DeadlineTimer: the one piece that drives a state machine's timers. The link objects never set a
 * timer; they say when they next need one (`nextDeadline()`), and a driver keeps one timer on the
 * target's Clock (hal/clock.ts) for the earliest deadline, calls back when it passes, and sets the
 * next one. The device, the gateway (one per session), the sim pair and the loopback pair all drive
 * their links with it, and a session handed between drivers takes nothing else along.
 *
 *   const t = new DeadlineTimer(clock, () => link.nextDeadline(), (now) => link.onTimer(now));
 *   t.arm();     // after anything happened to the link
 *
 * Two policies (an option, default `keepEarlier: true`):
 * - keepEarlier: a timer already set for no later than the new deadline stays. Deadlines mostly move
 *   later (every acknowledgement pushes the retransmission timer out), so the timer is not churned;
 *   when it fires early the callback finds nothing due and the timer is set again. Delays are whole
 *   milliseconds, at least `minDelayMs` (real timers are no finer).
 * - exact (`keepEarlier: false`): the timer always sits at the deadline itself (virtual clocks, where
 *   an early firing would be an event of its own and change a seeded run).
 */
import type { Clock, TimerHandle } from '../hal/clock';

export interface DeadlineTimerOptions {
  /** Keep a timer set no later than the new deadline (default true); false: always exactly at it. */
  keepEarlier?: boolean;
  /** keepEarlier only: the shortest delay, ms (default 1); delays are rounded up to whole ms. */
  minDelayMs?: number;
}

export class DeadlineTimer {
  private readonly clock: Clock;
  private readonly deadline: () => number;
  private readonly due: (now: number) => void;
  private readonly keepEarlier: boolean;
  private readonly minDelayMs: number;
  private handle: TimerHandle | null = null;
  /** What the timer is set for (Infinity: not set). */
  private at = Infinity;
  private stopped = false;

  /**
   * `deadline()` is the earliest time (on `clock`) the machine needs a call, Infinity for none;
   * `due(now)` is called once that time has come (or, with keepEarlier, a little before it: check).
   * After `due` returns, the timer is set again from `deadline()`.
   */
  constructor(clock: Clock, deadline: () => number, due: (now: number) => void, opts: DeadlineTimerOptions = {}) {
    this.clock = clock;
    this.deadline = deadline;
    this.due = due;
    this.keepEarlier = opts.keepEarlier ?? true;
    this.minDelayMs = opts.minDelayMs ?? 1;
  }

  /** The time the timer is set for (Infinity: none). */
  get setFor(): number {
    return this.at;
  }

  /** Sets the timer from `deadline()`; call after anything happened to the machine. */
  arm(): void {
    if (this.stopped) return;
    const t = this.deadline();
    if (this.handle !== null && (this.keepEarlier ? this.at <= t : this.at === t)) return;
    if (this.handle !== null) this.clock.cancel(this.handle);
    this.handle = null;
    this.at = t;
    if (t === Infinity) return;
    const now = this.clock.now();
    const ms = this.keepEarlier ? Math.max(this.minDelayMs, Math.ceil(t - now)) : Math.max(0, t - now);
    this.handle = this.clock.schedule(ms, this.fire);
  }

  /** Cancels the timer for good (arm() does nothing after this). Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.handle !== null) this.clock.cancel(this.handle);
    this.handle = null;
    this.at = Infinity;
  }

  private readonly fire = (): void => {
    this.handle = null;
    this.at = Infinity;
    if (this.stopped) return;
    this.due(this.clock.now());
    this.arm();
  };
}
