/**
 * A simulated network between one device and the gateway, on the virtual clock and a seeded random
 * stream. Each direction of each kind of traffic (HTTP requests, HTTP responses, direct frames) can
 * drop, duplicate and delay (so reorder) what it carries; `cut(ms)` takes the whole path down for a
 * while. Direct frames keep their order (TCP) but a cut kills the connection.
 */
import type { SimClock } from './clock';
import type { Prng } from './prng';

export interface Faults {
  /** Probability a request or response is lost (0..1). */
  drop: number;
  /** Probability it arrives twice. */
  dup: number;
  /** Delay range in ms; a random delay per packet reorders them. */
  delayMin: number;
  delayMax: number;
  /**
   * Share (0..1) of the lost ones whose loss the sender is told of, after the delay: its connection
   * was reset or cut before the answer (HTTP only; default 0: every loss is silent).
   */
  reset?: number;
}

export const NO_FAULTS: Faults = { drop: 0, dup: 0, delayMin: 1, delayMax: 1 };

export class SimNet {
  readonly clock: SimClock;
  readonly rng: Prng;
  requests: Faults;
  responses: Faults;
  /** Until this time everything is dropped (an outage). */
  downUntil = 0;
  /** Delay of direct frames, ms. */
  directDelay = 1;
  /** Direct connection generation; a cut makes frames of older generations vanish. */
  directGen = 0;
  directUp = false;
  /** Last delivery time per direct direction (keeps frames in order). */
  private lastUp = 0;
  private lastDown = 0;
  readonly counts = { sent: 0, dropped: 0, duplicated: 0, reset: 0 };

  constructor(clock: SimClock, rng: Prng, requests: Faults = NO_FAULTS, responses: Faults = requests) {
    this.clock = clock;
    this.rng = rng;
    this.requests = requests;
    this.responses = responses;
  }

  get isDown(): boolean {
    return this.clock.now() < this.downUntil;
  }

  /** Takes the path down for `ms`. */
  cut(ms: number): void {
    this.downUntil = Math.max(this.downUntil, this.clock.now() + ms);
  }

  /**
   * Carries one packet under `f`: calls `arrive` zero, one or two times; a lost packet calls
   * `onReset` instead, after the delay, for the share `f.reset` of losses.
   */
  carry(f: Faults, arrive: () => void, onReset?: () => void): void {
    this.counts.sent++;
    if (this.isDown || this.rng.chance(f.drop)) {
      this.counts.dropped++;
      if (onReset !== undefined && f.reset !== undefined && f.reset > 0 && this.rng.chance(f.reset)) {
        this.counts.reset++;
        this.clock.schedule(f.delayMin + this.rng.next() * (f.delayMax - f.delayMin), onReset);
      }
      return;
    }
    const copies = this.rng.chance(f.dup) ? 2 : 1;
    if (copies === 2) this.counts.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = f.delayMin + this.rng.next() * (f.delayMax - f.delayMin);
      this.clock.schedule(delay, () => {
        if (this.clock.now() < this.downUntil) return; // lost in the outage
        arrive();
      });
    }
  }

  /** Carries a direct frame in order; lost if the connection is cut before it arrives. */
  frame(up: boolean, arrive: () => void): void {
    if (!this.directUp || this.isDown) return;
    const gen = this.directGen;
    const at = Math.max(this.clock.now() + this.directDelay, up ? this.lastUp : this.lastDown);
    if (up) this.lastUp = at;
    else this.lastDown = at;
    this.clock.at(at, () => {
      if (gen !== this.directGen || !this.directUp) return;
      arrive();
    });
  }

  openDirect(): void {
    this.directGen++;
    this.directUp = true;
    this.lastUp = this.lastDown = this.clock.now();
  }

  closeDirect(): void {
    this.directGen++;
    this.directUp = false;
  }
}
