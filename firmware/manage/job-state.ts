/**
 * The state of one job on one device: a pure state machine with one clear outcome. Events come in as
 * calls with the current time; the gateway's driver calls `onTimer(now)` at `nextDeadline()`.
 *
 *   queued --sent--> sent --accepted--> running --ok--> succeeded
 *     ^               |                   |     --error--> failed
 *     +--disconnected / recovered --------+     --no answer by timeoutAt--> timed-out
 *   queued --expiresAt--> expired          any pending --cancel--> cancelled
 *
 * - Times are wall-clock milliseconds (the state is stored, and must mean the same after a gateway
 *   restart, when a monotonic clock starts again).
 * - `sent`: the command went to the device (it was online); the device then has `timeoutMs` to
 *   answer. A re-send carries the SAME command id, so a device that already ran it answers from its
 *   record instead of running it again (executor.ts).
 * - `disconnected` (the device's session ended) and `recovered` (the gateway restarted) put a sent or
 *   running command back to queued, to be sent again under that id when the device is reachable.
 * - An answer counts whenever it comes (sent, running, or queued again after a send): it is the
 *   device's record of what happened. An error answer with HF_ERR_CMD_TIMEOUT (the program ran out of
 *   time on the device) ends in timed-out; every other error in failed.
 * - The job's expiry ends a job still queued (expired); the command timeout ends one sent or running
 *   (timed-out). A deadline at or before `now` is applied before the event itself, so an answer that
 *   comes after the timeout does not change the outcome, whichever the driver noticed first.
 * - Final states are final: every later event is ignored and says so (`'ignored-final'`); an event
 *   that does not apply in a pending state is `'ignored'` and changes nothing; one that came after a
 *   deadline is `'deadline'` (the deadline's outcome is the change to record).
 * - `mayHaveRun` tells a cancelled, expired or timed-out outcome apart: false when the command was
 *   never sent (it certainly did not run), true when the device may have run it (its record says).
 */
import { checkMs } from '../check';
import { ErrorCode, hfError } from '../errors';

export const JobState = {
  QUEUED: 'queued',
  SENT: 'sent',
  RUNNING: 'running',
  SUCCEEDED: 'succeeded',
  FAILED: 'failed',
  TIMED_OUT: 'timed-out',
  CANCELLED: 'cancelled',
  EXPIRED: 'expired',
} as const;
export type JobStateValue = (typeof JobState)[keyof typeof JobState];

export const FINAL_STATES: readonly JobStateValue[] = [JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED, JobState.EXPIRED];
const PENDING_STATES: readonly JobStateValue[] = [JobState.QUEUED, JobState.SENT, JobState.RUNNING];

export function isFinal(s: JobStateValue): boolean {
  return FINAL_STATES.includes(s);
}

/** What an event did: changed the state, did not apply in this state, or came after the outcome. */
/**
 * What an event did: `applied`; `deadline` (a deadline at or before its time was applied instead: the
 * state changed to expired or timed-out, the event itself did not count); `ignored` (no change);
 * `ignored-final` (the job was already final). The driver records the state after applied and deadline.
 */
export type EventResult = 'applied' | 'deadline' | 'ignored' | 'ignored-final';

/** True when the event changed the state (it must be recorded). */
export function changed(r: EventResult): boolean {
  return r === 'applied' || r === 'deadline';
}

export interface DeviceJobOptions {
  /** How long the device has to answer once the command was sent, ms (default 60000). */
  timeoutMs?: number;
}

export const DEVICE_JOB_DEFAULTS: Required<DeviceJobOptions> = { timeoutMs: 60000 };

/** The outcome of a finished job on one device. */
export interface JobOutcome {
  state: JobStateValue;
  /** Wall-clock ms when it finished. */
  at: number;
  /** succeeded: the device's result. */
  result: Record<string, unknown> | null;
  /** Every other final state: a code (the device's, or HF_ERR_CMD_TIMEOUT, HF_ERR_CANCELLED, HF_ERR_EXPIRED) and a message. */
  error: { code: string; message: string } | null;
  /** False only when the command never left the gateway (see the file comment). */
  mayHaveRun: boolean;
}

/** Everything a DeviceJob is, as plain data (to store, and to restore after a restart). */
export interface DeviceJobSnapshot {
  state: JobStateValue;
  timeoutMs: number;
  expiresAt: number;
  /** Times the command was sent. */
  sends: number;
  /** When it was last sent (wall-clock ms), or null. */
  sentAt: number | null;
  outcome: JobOutcome | null;
}

export class DeviceJob {
  private s: DeviceJobSnapshot;

  /** A job queued now for a device, to expire at `expiresAt` (wall-clock ms). */
  constructor(now: number, expiresAt: number, opts: DeviceJobOptions = {}) {
    for (const k of Object.keys(opts)) if (!Object.hasOwn(DEVICE_JOB_DEFAULTS, k)) throw hfError(ErrorCode.OPTION, `unknown job option ${k}`);
    const timeoutMs = checkMs('timeoutMs', opts.timeoutMs ?? DEVICE_JOB_DEFAULTS.timeoutMs, 1, 0xffffffff);
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw hfError(ErrorCode.OPTION, `expiresAt must be a time in ms, got ${String(expiresAt)}`);
    checkTime(now);
    this.s = { state: JobState.QUEUED, timeoutMs, expiresAt, sends: 0, sentAt: null, outcome: null };
    this.due(now);
  }

  /** A job as it was snapshotted (its deadlines are applied at the next event or timer). */
  static restore(snap: DeviceJobSnapshot): DeviceJob {
    const j = Object.create(DeviceJob.prototype) as DeviceJob;
    if (![...PENDING_STATES, ...FINAL_STATES].includes(snap.state)) throw hfError(ErrorCode.STATE, `job snapshot: unknown state ${JSON.stringify(snap.state)}`);
    j.s = { ...snap, outcome: snap.outcome === null ? null : { ...snap.outcome } };
    return j;
  }

  snapshot(): DeviceJobSnapshot {
    return { ...this.s, outcome: this.s.outcome === null ? null : { ...this.s.outcome } };
  }

  get state(): JobStateValue {
    return this.s.state;
  }

  get final(): boolean {
    return isFinal(this.s.state);
  }

  get outcome(): JobOutcome | null {
    return this.s.outcome === null ? null : { ...this.s.outcome };
  }

  /** Times the command was sent (re-sends under the same id included). */
  get sends(): number {
    return this.s.sends;
  }

  /** True while the command waits to be sent (the driver sends it when the device is reachable). */
  get wantsSend(): boolean {
    return this.s.state === JobState.QUEUED;
  }

  /** The `deadlineMs` a command sent now carries: the time the device has to answer. */
  deadlineMs(): number {
    return Math.max(1, Math.min(this.s.timeoutMs, 0xffffffff));
  }

  /** The earliest time this job needs `onTimer`, Infinity for none. */
  nextDeadline(): number {
    switch (this.s.state) {
      case JobState.QUEUED:
        return this.s.expiresAt;
      case JobState.SENT:
      case JobState.RUNNING:
        return (this.s.sentAt as number) + this.s.timeoutMs;
      default:
        return Infinity;
    }
  }

  onTimer(now: number): EventResult {
    checkTime(now);
    if (this.final) return 'ignored-final';
    return this.due(now) ? 'applied' : 'ignored';
  }

  /** The command went to the device. */
  sent(now: number): EventResult {
    return this.event(now, [JobState.QUEUED], () => {
      this.s.state = JobState.SENT;
      this.s.sends++;
      this.s.sentAt = now;
    });
  }

  /** The device said it started the command. */
  accepted(now: number): EventResult {
    return this.event(now, this.answerable([JobState.SENT]), () => {
      this.s.state = JobState.RUNNING;
    });
  }

  /** The device answered with a result. */
  succeeded(now: number, result: Record<string, unknown>): EventResult {
    return this.event(now, this.answerable([JobState.SENT, JobState.RUNNING]), () => {
      this.finish(now, JobState.SUCCEEDED, result, null);
    });
  }

  /** The device answered with an error. */
  failed(now: number, error: { code: string; message: string }): EventResult {
    return this.event(now, this.answerable([JobState.SENT, JobState.RUNNING]), () => {
      this.finish(now, error.code === ErrorCode.CMD_TIMEOUT ? JobState.TIMED_OUT : JobState.FAILED, null, { code: error.code, message: error.message });
    });
  }

  /** An operator cancelled the job. */
  cancel(now: number, by = 'an operator'): EventResult {
    return this.event(now, PENDING_STATES, () => {
      const sent = this.s.sends > 0;
      this.finish(now, JobState.CANCELLED, null, {
        code: ErrorCode.CANCELLED,
        message: `cancelled by ${by}${sent ? ' after the command was sent: the device may have run it' : ' before the command was sent'}`,
      });
    });
  }

  /** The device's session ended: a command sent and unanswered goes back to the queue. */
  disconnected(now: number): EventResult {
    return this.requeue(now);
  }

  /** The gateway restarted and loaded this job: a command sent and unanswered goes back to the queue. */
  recovered(now: number): EventResult {
    return this.requeue(now);
  }

  private requeue(now: number): EventResult {
    return this.event(now, [JobState.SENT, JobState.RUNNING], () => {
      this.s.state = JobState.QUEUED;
    });
  }

  /** `states`, plus queued when the command was sent before (an answer may come after a re-queue). */
  private answerable(states: JobStateValue[]): JobStateValue[] {
    return this.s.sends > 0 ? [...states, JobState.QUEUED] : states;
  }

  /** Applies due deadlines, then `apply` if the state is one of `from`. */
  private event(now: number, from: readonly JobStateValue[], apply: () => void): EventResult {
    checkTime(now);
    if (this.final) return 'ignored-final';
    if (this.due(now)) return 'deadline';
    if (!from.includes(this.s.state)) return 'ignored';
    apply();
    return 'applied';
  }

  /** Applies a deadline that has passed; true if one did. */
  private due(now: number): boolean {
    if (now < this.nextDeadline()) return false;
    if (this.s.state === JobState.QUEUED) {
      const sent = this.s.sends > 0;
      this.finish(now, JobState.EXPIRED, null, {
        code: ErrorCode.EXPIRED,
        message: sent ? 'the job expired while the device was unreachable, after the command was sent: the device may have run it' : 'the job expired before the command could be sent',
      });
    } else {
      this.finish(now, JobState.TIMED_OUT, null, { code: ErrorCode.CMD_TIMEOUT, message: `no answer within ${this.s.timeoutMs} ms of sending` });
    }
    return true;
  }

  private finish(now: number, state: JobStateValue, result: Record<string, unknown> | null, error: { code: string; message: string } | null): void {
    const mayHaveRun = state === JobState.SUCCEEDED || state === JobState.FAILED || this.s.sends > 0;
    this.s.state = state;
    this.s.outcome = { state, at: now, result, error, mayHaveRun };
  }
}

function checkTime(now: number): void {
  if (typeof now !== 'number' || !Number.isFinite(now)) throw hfError(ErrorCode.OPTION, `now must be a time in ms, got ${String(now)}`);
}
