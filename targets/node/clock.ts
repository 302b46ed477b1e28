/**
 * `hal/Clock` on Node: a monotonic clock (performance.now) and real timers. A pending timer keeps
 * the process running, as a socket does: a device waiting to retry its gateway is still at work.
 */
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../../hal/clock';

export const hostClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  schedule(ms: number, fn: () => void): TimerHandle {
    return setTimeout(fn, Math.max(0, ms));
  },
  cancel(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
