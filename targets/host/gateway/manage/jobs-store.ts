/**
 * Jobs and their per-device outcomes, as rows of `holdfast.db`. A job is an operation with its
 * arguments for the devices a selector matched when it was made; each (job, device) pair is a target
 * with a state. Which moves between states are allowed is the job state machine's business (pure,
 * beside the link's); the store guards only what must hold whatever that machine says: a final state
 * is final. Once a target has succeeded, failed, timed out, been cancelled or expired, no later
 * transition changes it, so an outcome is recorded exactly once, even when a device answers twice or
 * a gateway restarted mid-job sends the command again.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { canonicalJson } from './canonical-json';
import { type Db, stmt } from './db';

/** Every state of a job target, in lifecycle order (the CHECK in migrations.ts names the same). */
export const TARGET_STATES = ['queued', 'sent', 'running', 'succeeded', 'failed', 'timed-out', 'cancelled', 'expired'] as const;
export type TargetState = (typeof TARGET_STATES)[number];

/** States a target is still waiting in: the device has yet to give (or the gateway to record) an outcome. */
export const PENDING_STATES: readonly TargetState[] = ['queued', 'sent', 'running'];
/** States that end a target: recorded once, never overwritten. */
export const FINAL_STATES: readonly TargetState[] = ['succeeded', 'failed', 'timed-out', 'cancelled', 'expired'];

export function isFinal(s: TargetState): boolean {
  return FINAL_STATES.includes(s);
}

export function isTargetState(s: unknown): s is TargetState {
  return typeof s === 'string' && (TARGET_STATES as readonly string[]).includes(s);
}

export interface NewJob {
  /** Unique; the command id devices execute at most once. 1..128 characters. */
  id: string;
  op: string;
  /** The operation's arguments (plain JSON: anything else is HF_ERR_OPTION). */
  args: unknown;
  /** The selector as the operator wrote it (kept for people; `devices` is what it matched). */
  selector: string;
  createdBy: string;
  /** ms since the epoch. */
  createdAt: number;
  /** After this (ms since the epoch) a target not yet sent expires. */
  expiresAt: number;
  /** How long a device has to answer once the command was sent, ms (default 60000). */
  timeoutMs?: number;
  /** The devices it is for, each once. Devices not in the store yet are added. */
  devices: readonly string[];
}

/** A job as stored: what it was made with (less the device list), when it was cancelled, its counts. */
export interface Job extends Omit<NewJob, 'devices' | 'timeoutMs'> {
  timeoutMs: number;
  cancelledAt: number | null;
  /** How many targets are in each state (states with none left out). */
  states: Partial<Record<TargetState, number>>;
}

export interface Target {
  jobId: string;
  deviceId: string;
  state: TargetState;
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  /** Times the command was sent to the device (re-sends under the same id included). */
  sends: number;
  updatedAt: number;
}

/** A target a device still has to be given or to answer, with what to send it. */
export interface PendingTarget extends Target {
  op: string;
  args: unknown;
  expiresAt: number;
  timeoutMs: number;
}

export interface Transition {
  /** ms since the epoch. */
  at: number;
  /** The outcome's result (JSON), for a final state. */
  result?: unknown;
  /** An HF_ERR_... code, for `failed` and the like. */
  errorCode?: string;
  /** The error's message, for people. */
  errorMessage?: string;
  /** Times sent so far (kept as it was when absent). */
  sends?: number;
}

interface JobRow {
  id: string;
  op: string;
  args: string;
  selector: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  timeout_ms: number;
  cancelled_at: number | null;
}
interface TargetRow {
  job_id: string;
  device_id: string;
  state: TargetState;
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  sends: number;
  updated_at: number;
}

/** Defaults of a job's bounds. */
export const JOB_DEFAULTS = { timeoutMs: 60000 } as const;

const FINAL_SQL = `(${FINAL_STATES.map((s) => `'${s}'`).join(', ')})`;
const PENDING_SQL = `(${PENDING_STATES.map((s) => `'${s}'`).join(', ')})`;

export class JobStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Records a job and a `queued` target for each of its devices, all in one transaction. A job id taken, or no devices: HF_ERR_OPTION. */
  create(job: NewJob): Job {
    if (typeof job.id !== 'string' || job.id.length === 0 || job.id.length > 128) throw hfError(ErrorCode.OPTION, `job id must be 1..128 characters, got ${JSON.stringify(job.id)}`);
    if (job.devices.length === 0) throw hfError(ErrorCode.OPTION, `job ${job.id}: no devices`);
    if (new Set(job.devices).size !== job.devices.length) throw hfError(ErrorCode.OPTION, `job ${job.id}: a device named twice`);
    if (!(job.expiresAt > job.createdAt)) throw hfError(ErrorCode.OPTION, `job ${job.id}: expiresAt ${job.expiresAt} is not after createdAt ${job.createdAt}`);
    const args = canonicalJson(job.args ?? null);
    const timeoutMs = job.timeoutMs ?? JOB_DEFAULTS.timeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 0xffffffff) throw hfError(ErrorCode.OPTION, `job ${job.id}: timeoutMs must be an integer in 1..2^32-1, got ${String(timeoutMs)}`);
    this.db
      .transaction(() => {
        if (stmt(this.db, 'SELECT 1 FROM jobs WHERE id = ?').get(job.id) !== undefined) throw hfError(ErrorCode.OPTION, `job ${job.id} exists`);
        stmt(this.db, 'INSERT INTO jobs (id, op, args, selector, created_by, created_at, expires_at, timeout_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
          job.id,
          job.op,
          args,
          job.selector,
          job.createdBy,
          job.createdAt,
          job.expiresAt,
          timeoutMs,
        );
        const device = stmt(this.db, 'INSERT OR IGNORE INTO devices (id) VALUES (?)');
        const target = stmt(this.db, "INSERT INTO job_targets (job_id, device_id, state, updated_at) VALUES (?, ?, 'queued', ?)");
        for (const d of job.devices) {
          device.run(d);
          target.run(job.id, d, job.createdAt);
        }
      })
      .immediate();
    return this.job(job.id) as Job;
  }

  /** The job, or null. */
  job(id: string): Job | null {
    const r = stmt(this.db, 'SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return r === undefined ? null : this.toJob(r);
  }

  /** Jobs, newest first: at most `limit` (default 100), made before `before` (ms) when given. */
  jobs(opts: { limit?: number; before?: number } = {}): Job[] {
    const rows = stmt(this.db, 'SELECT * FROM jobs WHERE created_at < ? ORDER BY created_at DESC, id DESC LIMIT ?').all(opts.before ?? Number.MAX_SAFE_INTEGER, opts.limit ?? 100) as JobRow[];
    return rows.map((r) => this.toJob(r));
  }

  /** The job's targets, by device id. */
  targets(jobId: string): Target[] {
    return (stmt(this.db, 'SELECT * FROM job_targets WHERE job_id = ? ORDER BY device_id').all(jobId) as TargetRow[]).map(toTarget);
  }

  /** One target, or null. */
  target(jobId: string, deviceId: string): Target | null {
    const r = stmt(this.db, 'SELECT * FROM job_targets WHERE job_id = ? AND device_id = ?').get(jobId, deviceId) as TargetRow | undefined;
    return r === undefined ? null : toTarget(r);
  }

  /**
   * What `deviceId` still has to do, oldest job first: targets queued, sent or running, of jobs not
   * cancelled and not expired at `now` (ms). What a device gets when its session opens, and what a
   * gateway sends again after a restart (under the same job id).
   */
  pendingFor(deviceId: string, now: number): PendingTarget[] {
    const rows = stmt(
      this.db,
      `SELECT t.*, j.op, j.args, j.expires_at, j.timeout_ms FROM job_targets t JOIN jobs j ON j.id = t.job_id
         WHERE t.device_id = ? AND t.state IN ${PENDING_SQL} AND j.cancelled_at IS NULL AND j.expires_at > ?
         ORDER BY j.created_at, j.id`,
    ).all(deviceId, now) as (TargetRow & { op: string; args: string; expires_at: number; timeout_ms: number })[];
    return rows.map((r) => ({ ...toTarget(r), op: r.op, args: JSON.parse(r.args), expiresAt: r.expires_at, timeoutMs: r.timeout_ms }));
  }

  /** Every pending target of every device (see pendingFor), oldest job first: what a gateway loads when it starts. */
  pending(now: number): PendingTarget[] {
    const rows = stmt(
      this.db,
      `SELECT t.*, j.op, j.args, j.expires_at, j.timeout_ms FROM job_targets t JOIN jobs j ON j.id = t.job_id
         WHERE t.state IN ${PENDING_SQL} AND j.cancelled_at IS NULL AND j.expires_at > ?
         ORDER BY j.created_at, j.id, t.device_id`,
    ).all(now) as (TargetRow & { op: string; args: string; expires_at: number; timeout_ms: number })[];
    return rows.map((r) => ({ ...toTarget(r), op: r.op, args: JSON.parse(r.args), expiresAt: r.expires_at, timeoutMs: r.timeout_ms }));
  }

  /**
   * Targets still pending of jobs that were cancelled or have expired by `now`: what the gateway must
   * finish (cancelled / expired) when it starts, since nothing will send them any more.
   */
  stale(now: number): (Target & { cancelledAt: number | null; expiresAt: number })[] {
    const rows = stmt(
      this.db,
      `SELECT t.*, j.cancelled_at, j.expires_at FROM job_targets t JOIN jobs j ON j.id = t.job_id
         WHERE t.state IN ${PENDING_SQL} AND (j.cancelled_at IS NOT NULL OR j.expires_at <= ?)`,
    ).all(now) as (TargetRow & { cancelled_at: number | null; expires_at: number })[];
    return rows.map((r) => ({ ...toTarget(r), cancelledAt: r.cancelled_at, expiresAt: r.expires_at }));
  }

  /** Runs `fn` in one write transaction (many transitions at the cost of one commit). */
  batch<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * Moves a target to `state`. Returns true when recorded; false when the target is already final
   * (then nothing changes: the first outcome stands). No such target: HF_ERR_NOT_FOUND.
   */
  transition(jobId: string, deviceId: string, state: TargetState, t: Transition): boolean {
    if (!isTargetState(state)) throw hfError(ErrorCode.OPTION, `not a job target state: ${JSON.stringify(state)}`);
    const result = t.result === undefined ? null : canonicalJson(t.result);
    const r = stmt(
      this.db,
      `UPDATE job_targets SET state = ?, result = ?, error_code = ?, error_message = ?, sends = COALESCE(?, sends), updated_at = ? WHERE job_id = ? AND device_id = ? AND state NOT IN ${FINAL_SQL}`,
    ).run(state, result, t.errorCode ?? null, t.errorMessage ?? null, t.sends ?? null, t.at, jobId, deviceId);
    if (r.changes === 1) return true;
    if (this.target(jobId, deviceId) === null) throw hfError(ErrorCode.NOT_FOUND, `job ${jobId} has no target ${deviceId}`);
    return false;
  }

  /** Marks the job cancelled at `at` (ms): its targets are no longer pending. Returns false if it already was. No such job: HF_ERR_NOT_FOUND. */
  cancel(jobId: string, at: number): boolean {
    const r = stmt(this.db, 'UPDATE jobs SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL').run(at, jobId);
    if (r.changes === 1) return true;
    if (this.job(jobId) === null) throw hfError(ErrorCode.NOT_FOUND, `no job ${jobId}`);
    return false;
  }

  private toJob(r: JobRow): Job {
    const states: Partial<Record<TargetState, number>> = {};
    for (const s of stmt(this.db, 'SELECT state, COUNT(*) AS n FROM job_targets WHERE job_id = ? GROUP BY state').all(r.id) as { state: TargetState; n: number }[]) states[s.state] = s.n;
    return {
      id: r.id,
      op: r.op,
      args: JSON.parse(r.args),
      selector: r.selector,
      createdBy: r.created_by,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      timeoutMs: r.timeout_ms,
      cancelledAt: r.cancelled_at,
      states,
    };
  }
}

function toTarget(r: TargetRow): Target {
  return {
    jobId: r.job_id,
    deviceId: r.device_id,
    state: r.state,
    result: r.result === null ? null : JSON.parse(r.result),
    errorCode: r.error_code,
    errorMessage: r.error_message,
    sends: r.sends,
    updatedAt: r.updated_at,
  };
}
