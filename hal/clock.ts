/** Time. Milliseconds on a monotonic clock (may be fractional); never goes back. */
export interface Clock {
  now(): number;
  /** Calls `fn` once, `ms` from now; returns a handle for `cancel`. */
  schedule(ms: number, fn: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
  /** Wall-clock milliseconds since 1970 (for hello counters and logs; may jump). */
  wall(): number;
}

/** Opaque timer handle. */
export type TimerHandle = unknown;
