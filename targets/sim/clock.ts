/**
 * A virtual clock: time moves only when the simulation runs the next due event, so hours of protocol
 * time take milliseconds. Events at the same time run in the order they were scheduled.
 */
import type { Clock, TimerHandle } from '../../hal/clock';

interface Ev {
  at: number;
  order: number;
  fn: (() => void) | null;
}

export class SimClock implements Clock {
  private t: number;
  private order = 0;
  private heap: Ev[] = [];
  /** Events run so far. */
  steps = 0;

  constructor(start = 1000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  wall(): number {
    return 1_700_000_000_000 + this.t;
  }

  schedule(ms: number, fn: () => void): TimerHandle {
    const ev: Ev = { at: this.t + Math.max(0, ms), order: this.order++, fn };
    this.push(ev);
    return ev;
  }

  /** Schedules at an absolute time (not before now). */
  at(time: number, fn: () => void): TimerHandle {
    return this.schedule(time - this.t, fn);
  }

  cancel(handle: TimerHandle): void {
    if (handle !== null && typeof handle === 'object') (handle as Ev).fn = null;
  }

  /** Time of the next pending event, or Infinity. */
  peek(): number {
    while (this.heap.length > 0 && this.heap[0].fn === null) this.pop();
    return this.heap.length > 0 ? this.heap[0].at : Infinity;
  }

  /** Runs the next event; false if there is none or it is after `limit`. */
  step(limit = Infinity): boolean {
    const at = this.peek();
    if (at === Infinity || at > limit) return false;
    const ev = this.pop();
    this.t = Math.max(this.t, ev.at);
    this.steps++;
    const fn = ev.fn as () => void;
    ev.fn = null;
    fn();
    return true;
  }

  /** Runs events until `time` (then sets the clock to it) or until `stop()` returns true. */
  runUntil(time: number, stop?: () => boolean, maxSteps = 5_000_000): void {
    let n = 0;
    let same = 0;
    let last = this.t;
    while (!stop?.() && this.step(time)) {
      if (++n > maxSteps) throw new Error(`simulation did not settle after ${maxSteps} events at t=${this.t}`);
      same = this.t === last ? same + 1 : 0;
      last = this.t;
      if (same > 20_000) throw new Error(`simulation spins: 20000 events at t=${this.t} without time moving`);
    }
    if (!stop?.() && time !== Infinity && this.t < time) this.t = time;
  }

  private less(a: Ev, b: Ev): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private push(ev: Ev): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Ev {
    const h = this.heap;
    const top = h[0];
    const last = h.pop() as Ev;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
