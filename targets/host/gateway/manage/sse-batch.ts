/**
 * Target changes on their way to the event stream, coalesced per job: the service's 'target' events
 * (one per written change) are collected for `batchMs` after the first of them (0: until the end of
 * the turn, `setImmediate`) and handed on together, one batch per job. A target that changed twice
 * in the window is in its batch once, with its latest state. Memory is bounded by the targets of the
 * jobs changing (one entry per job and device, however often it changes).
 */
import type { TargetEvent } from './service';

/** A target's change as the stream carries it: a TargetEvent without its job (the batch names it). */
export type TargetChange = Omit<TargetEvent, 'jobId'>;

/** The timer the batcher waits on (injected, so tests run it on fake time). */
export interface BatchTimer {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Node's timers: `setImmediate` for 0 ms, else `setTimeout` (unref'd). */
export const NODE_TIMER: BatchTimer = {
  set(fn, ms) {
    if (ms === 0) return { immediate: setImmediate(fn) };
    const t = setTimeout(fn, ms);
    t.unref();
    return { timeout: t };
  },
  clear(handle) {
    const h = handle as { immediate?: NodeJS.Immediate; timeout?: NodeJS.Timeout };
    if (h.immediate !== undefined) clearImmediate(h.immediate);
    if (h.timeout !== undefined) clearTimeout(h.timeout);
  },
};

export class TargetBatcher {
  private readonly batchMs: number;
  private readonly timer: BatchTimer;
  private readonly flushTo: (job: string, changes: TargetChange[]) => void;
  /** Per job, the latest change of each of its targets since the last flush. */
  private pending = new Map<string, Map<string, TargetChange>>();
  private handle: unknown = null;

  /** `flushTo` gets each job's batch (in the order its targets first changed), never from inside `add`. */
  constructor(batchMs: number, flushTo: (job: string, changes: TargetChange[]) => void, timer: BatchTimer = NODE_TIMER) {
    this.batchMs = batchMs;
    this.flushTo = flushTo;
    this.timer = timer;
  }

  /** Targets waiting for the next flush, all jobs together. */
  get size(): number {
    let n = 0;
    for (const m of this.pending.values()) n += m.size;
    return n;
  }

  add(e: TargetEvent): void {
    const { jobId, ...change } = e;
    let m = this.pending.get(jobId);
    if (m === undefined) {
      m = new Map();
      this.pending.set(jobId, m);
    }
    m.set(e.deviceId, change);
    if (this.handle === null) this.handle = this.timer.set(() => this.flush(), this.batchMs);
  }

  /** Hands on what is pending now (the timer's doing; callable to flush early). */
  flush(): void {
    if (this.handle !== null) this.timer.clear(this.handle);
    this.handle = null;
    const batches = this.pending;
    this.pending = new Map();
    for (const [job, m] of batches) this.flushTo(job, [...m.values()]);
  }

  /** Forgets what is pending and stops the timer. */
  close(): void {
    if (this.handle !== null) this.timer.clear(this.handle);
    this.handle = null;
    this.pending.clear();
  }
}
