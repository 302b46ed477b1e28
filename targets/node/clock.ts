/** `hal/Clock` on Node: a monotonic clock (performance.now) and real timers that never hold the process open. */
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../../hal/clock';

export const hostClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  schedule(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  cancel(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
