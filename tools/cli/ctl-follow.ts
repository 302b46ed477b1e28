/**
 * How `holdfast ctl run --wait` follows its job. The event stream (ctl-events.ts) is opened before
 * the job is made, so no outcome is missed between the POST and the stream's hello: `targets` events
 * that arrive before the job's id is known are kept (at most `maxEarlyTargets` final states; more, and
 * the job is read once after the POST instead). Each device's final state is passed to `onFinal` once,
 * as it lands. When every target is final, one `GET /api/jobs/ID` confirms the recorded outcomes (a
 * result too large for the stream is printed from it). If the stream cannot be opened or breaks, the
 * job is polled instead: first after `firstMs`, the interval doubling up to `maxMs`. Past `waitMs`:
 * HF_ERR_TIMEOUT naming what is still pending (the job goes on).
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import { isFinal, type Job, type Target } from '../../targets/host/gateway/manage/jobs-store';
import { EventStream, type EventStreamOptions } from './ctl-events';
import type { ConsoleClient } from './ctl-http';
import type { TargetEvent } from '../../targets/host/gateway/manage/service';

export interface FollowOptions {
  /** Polling (the fallback): the first wait, ms (default 100). */
  firstMs?: number;
  /** Polling: the longest interval, ms (default 1000). */
  maxMs?: number;
  /** Final states kept from before the job's id is known (default 100000). */
  maxEarlyTargets?: number;
}

export const FOLLOW_DEFAULTS = { firstMs: 100, maxMs: 1000, maxEarlyTargets: 100_000 } as const;

/** A target as a `targets` event carries it (the batch names the job). */
type Change = Omit<TargetEvent, 'jobId'>;

type OnFinal = (op: string, t: Target) => void;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class JobFollower {
  private readonly c: ConsoleClient;
  private readonly o: Required<FollowOptions>;
  private stream: EventStream | null = null;
  /** Why the stream is not there (it could not be opened, or it broke), once it is not. */
  streamError: Error | null = null;
  /** Final states per job, from before the job's id is known. */
  private early = new Map<string, Change[]>();
  private earlyCount = 0;
  private earlyOverflow = false;
  private jobId: string | null = null;
  private onChange: ((t: Change) => void) | null = null;
  private wake: (() => void) | null = null;

  private constructor(c: ConsoleClient, o: FollowOptions) {
    this.c = c;
    this.o = { ...FOLLOW_DEFAULTS, ...o };
  }

  /** Opens the event stream (a failure is kept in `streamError`: the job is then polled). */
  static async start(c: ConsoleClient, stream: EventStreamOptions, o: FollowOptions = {}): Promise<JobFollower> {
    const f = new JobFollower(c, o);
    try {
      f.stream = await EventStream.open(
        stream,
        (name, data) => f.event(name, data),
        (err) => {
          f.streamError = err;
          f.stream = null;
          f.wake?.();
        },
      );
    } catch (e) {
      f.streamError = e as Error;
    }
    return f;
  }

  /** Whether the job is being followed on the event stream (not polled). */
  get streaming(): boolean {
    return this.stream !== null;
  }

  private event(name: string, data: unknown): void {
    if (name !== 'targets') return;
    const b = data as { job?: unknown; targets?: unknown };
    if (typeof b.job !== 'string' || !Array.isArray(b.targets)) return;
    if (this.jobId === null) {
      if (this.earlyOverflow) return;
      const finals = (b.targets as Change[]).filter((t) => isFinal(t.state));
      this.earlyCount += finals.length;
      if (this.earlyCount > this.o.maxEarlyTargets) {
        this.earlyOverflow = true;
        this.early.clear();
        return;
      }
      const kept = this.early.get(b.job);
      if (kept === undefined) this.early.set(b.job, finals);
      else kept.push(...finals);
      return;
    }
    if (b.job !== this.jobId || this.onChange === null) return;
    for (const t of b.targets as Change[]) this.onChange(t);
    this.wake?.();
  }

  /** Follows `job` (as the POST answered it) until every target is final; resolves with the recorded job. */
  async follow(job: Job, waitMs: number | undefined, onFinal: OnFinal): Promise<{ job: Job; targets: Target[] }> {
    const until = waitMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + waitMs;
    const total = Object.values(job.states).reduce((a, n) => a + (n ?? 0), 0);
    const shown = new Set<string>();
    this.jobId = job.id;
    this.onChange = (t) => {
      if (!isFinal(t.state) || shown.has(t.deviceId) || t.resultOmitted === true) return;
      shown.add(t.deviceId);
      onFinal(job.op, toTarget(job.id, t));
    };
    for (const t of this.early.get(job.id) ?? []) this.onChange(t);
    this.early = new Map();
    try {
      if (this.earlyOverflow) await this.poll(job.id, until, waitMs, shown, onFinal, 0, true);
      while (this.stream !== null && shown.size < total && Date.now() < until) {
        const t = until === Number.POSITIVE_INFINITY ? null : setTimeout(() => this.wake?.(), until - Date.now());
        await new Promise<void>((r) => {
          this.wake = r;
        });
        this.wake = null;
        if (t !== null) clearTimeout(t);
      }
      return await this.poll(job.id, until, waitMs, shown, onFinal, this.o.firstMs, false);
    } finally {
      this.close();
    }
  }

  /** Reads the job until every target is final (`once`: one read, pending or not); `onFinal` for each not shown yet. */
  private async poll(id: string, until: number, waitMs: number | undefined, shown: Set<string>, onFinal: OnFinal, firstMs: number, once: boolean): Promise<{ job: Job; targets: Target[] }> {
    let delay = firstMs;
    for (;;) {
      const r = await this.c.get<{ job: Job; targets: Target[] }>(`api/jobs/${encodeURIComponent(id)}`);
      for (const t of r.targets)
        if (isFinal(t.state) && !shown.has(t.deviceId)) {
          shown.add(t.deviceId);
          onFinal(r.job.op, t);
        }
      const pending = r.targets.filter((t) => !isFinal(t.state));
      if (pending.length === 0 || once) return r;
      if (Date.now() >= until) {
        const names = pending.slice(0, 10).map((t) => `${t.deviceId} ${t.state}`);
        throw hfError(
          ErrorCode.TIMEOUT,
          `job ${id}: still waiting for ${pending.length} of ${r.targets.length} devices after --wait-ms ${waitMs} (${names.join(', ')}${pending.length > 10 ? ', ...' : ''}); the job goes on: holdfast ctl job ${id}`,
        );
      }
      // Still pending after the stream said otherwise (or without one): poll, the stream left behind.
      this.close();
      await sleep(Math.max(0, Math.min(delay, until - Date.now())));
      delay = Math.min(Math.max(delay, 1) * 2, this.o.maxMs);
    }
  }

  /** Closes the stream; calling it again does nothing. */
  close(): void {
    this.stream?.close();
    this.stream = null;
  }
}

function toTarget(jobId: string, t: Change): Target {
  return {
    jobId,
    deviceId: t.deviceId,
    state: t.state,
    result: t.result ?? null,
    errorCode: t.errorCode ?? null,
    errorMessage: t.errorMessage ?? null,
    sends: t.sends,
    updatedAt: t.at,
  };
}
