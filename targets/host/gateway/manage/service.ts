/**
 * The gateway's management service: which devices are online (each session's management channel,
 * device-link.ts), the jobs still pending in memory (one DeviceJob state machine per job and device,
 * firmware/manage/job-state.ts), and the store (store.ts) that keeps all of it across restarts. The
 * API (api.ts) and the console call it; it emits what changed for the event stream.
 *
 * - A job is validated (ops.ts, the same validator the device runs), its selector matched over the
 *   known devices (selector.ts), recorded with a queued target per device and audited, in one
 *   transaction, before anything is sent. The command id is the job id: every device executes it at
 *   most once (its journal), so sending it again after a reconnect or a gateway restart is safe.
 * - Online devices get their pending commands at once, in job order; a device that comes online gets
 *   what is pending for it. A session that ends puts what was sent and unanswered back to queued.
 * - Every change of a target is written in a batch at the end of the turn (one transaction: many
 *   devices answering at once cost one commit), then emitted. A final outcome is recorded once (the
 *   store refuses to overwrite one) and audited as `job.outcome`.
 * - On start: targets of jobs cancelled or expired while the gateway was down are finished; targets
 *   sent or running are queued again (recovered) and re-sent under the same id when their device is
 *   back, so nothing is lost and nothing runs twice.
 * - Deadlines (the job's expiry, the command's timeout) are swept every `sweepMs`.
 *
 *   'device' (DeviceView)                    online, offline, or what it reported changed
 *   'target' (TargetEvent)                   a (job, device) changed state (written already)
 *   'job' (Job)                              a job was made or cancelled
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { type Answer, encodeCommand, type Reply } from '../../../../firmware/manage/command';
import { changed, DeviceJob, type EventResult, type JobOutcome } from '../../../../firmware/manage/job-state';
import { type ManageLimits, type ResolvedManageLimits, resolveManageLimits, validateOp } from '../../../../firmware/manage/ops';
import type { Log } from '../../../../hal/log';
import type { Mux } from '../../app/mux';
import { DeviceLink, type DeviceLinkOptions } from './device-link';
import type { Device } from './devices-store';
import type { Job, Target, TargetState } from './jobs-store';
import { parseSelector, type Selector } from './selector';
import type { ManageStore } from './store';
import { argsToWire, toJsonValue } from './wire-values';

export interface ManageServiceOptions {
  /** How often deadlines (expiry, command timeout) are checked, ms (default 250). */
  sweepMs?: number;
  /** A job's expiry when the request names none, ms from its creation (default 86400000: a day). */
  expiresInMs?: number;
  /** Longest expiry a job may ask for, ms (default 2592000000: 30 days). */
  maxExpiresInMs?: number;
  /** How long a device has to answer a command once sent, when the job names none, ms (default 60000). */
  timeoutMs?: number;
  /** The same for `update`, whose answer comes after a restart, the launcher's confirm time and a reconnect, ms (default 300000). */
  updateTimeoutMs?: number;
  /** Most devices one job may be for (default 100000). */
  maxTargets?: number;
  /** Ask a device that comes online for its `info` when what it reported is older than this, ms (default 600000; 0: never). */
  infoMaxAgeMs?: number;
  /** After a management stream was lost, wait this long before sending on a new one, ms (default 1000). */
  resendDelayMs?: number;
  /** Results larger than this, bytes of JSON, are left out of events: the job's record has them (default 8192). */
  maxEventResultBytes?: number;
  /** The bounds arguments are checked against (the devices' defaults unless given). */
  limits?: ManageLimits;
  link?: DeviceLinkOptions;
}

export const MANAGE_SERVICE_DEFAULTS = {
  sweepMs: 250,
  expiresInMs: 86_400_000,
  maxExpiresInMs: 2_592_000_000,
  timeoutMs: 60_000,
  updateTimeoutMs: 300_000,
  maxTargets: 100_000,
  infoMaxAgeMs: 600_000,
  resendDelayMs: 1000,
  maxEventResultBytes: 8192,
} as const;

/** What the service needs of a session (a GatewayChannel has it). */
export interface ManagedSession {
  readonly deviceId: string;
  readonly sessionId: string;
  readonly transport: string;
  once(event: 'close', fn: () => void): unknown;
}

/** A device as the API shows it. */
export interface DeviceView extends Device {
  online: boolean;
  /** "tcp" or "http" while online, else null. */
  transport: string | null;
  /** False once the device refused the management channel (it has no management resource). */
  managed: boolean;
}

export interface TargetEvent {
  jobId: string;
  deviceId: string;
  state: TargetState;
  at: number;
  sends: number;
  result?: unknown;
  /** True when the result was too large for the event (read the job). */
  resultOmitted?: boolean;
  errorCode?: string;
  errorMessage?: string;
}

/** A job request as the API takes it (untrusted until `createJob` checked it). */
export interface JobRequest {
  op: unknown;
  args?: unknown;
  selector: unknown;
  timeoutMs?: unknown;
  expiresInMs?: unknown;
}

interface Online {
  session: ManagedSession;
  link: DeviceLink;
  /** Job ids given to the link while its stream was opening (sent once it opens). */
  opening: string[];
  resendTimer: NodeJS.Timeout | null;
}

interface Active {
  job: Job;
  /** The command item, encoded once for every device (the id is the job's). */
  item: Uint8Array;
  targets: Map<string, DeviceJob>;
}

interface Write {
  jobId: string;
  deviceId: string;
  dj: DeviceJob;
  actor: string;
}

const INFO_PREFIX = 'hf-info-';

export class ManageService extends EventEmitter {
  readonly store: ManageStore;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly o: { [K in keyof typeof MANAGE_SERVICE_DEFAULTS]: number };
  private readonly limits: ResolvedManageLimits;
  private readonly linkOpts: DeviceLinkOptions;
  private readonly online = new Map<string, Online>();
  private readonly unmanaged = new Set<string>();
  private readonly active = new Map<string, Active>();
  /** Per device, the ids of active jobs it is a target of, oldest first. */
  private readonly byDevice = new Map<string, Set<string>>();
  /** Targets changed since the last flush, one entry each (by job and device): the flush writes each one's state then. */
  private writes = new Map<string, Write>();
  private flushQueued = false;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(store: ManageStore, log: Log, opts: ManageServiceOptions = {}, now: () => number = Date.now) {
    super();
    this.store = store;
    this.log = log;
    this.now = now;
    const o: Record<string, number> = { ...MANAGE_SERVICE_DEFAULTS };
    for (const k of Object.keys(MANAGE_SERVICE_DEFAULTS)) {
      const v = (opts as Record<string, unknown>)[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw hfError(ErrorCode.OPTION, `manage option ${k} must be a whole number >= 0, got ${String(v)}`);
      o[k] = v;
    }
    if (o.sweepMs < 10) throw hfError(ErrorCode.OPTION, `manage option sweepMs must be at least 10, got ${o.sweepMs}`);
    this.o = o as { [K in keyof typeof MANAGE_SERVICE_DEFAULTS]: number };
    this.limits = resolveManageLimits(opts.limits);
    this.linkOpts = opts.link ?? {};
    this.recover();
    this.sweeper = setInterval(() => this.sweep(), this.o.sweepMs);
    this.sweeper.unref();
  }

  // --- sessions ---------------------------------------------------------------------------------

  /** A session opened: the device is online, and its management channel runs over `mux`. */
  attach(session: ManagedSession, mux: Mux): void {
    if (this.closed) return;
    const id = session.deviceId;
    const prev = this.online.get(id);
    if (prev !== undefined) this.detach(id, prev);
    const link = new DeviceLink(mux, this.linkOpts);
    const on: Online = { session, link, opening: [], resendTimer: null };
    this.online.set(id, on);
    this.unmanaged.delete(id);
    link.on('reply', (r: Reply) => this.onReply(id, r));
    link.on('ready', () => {
      const at = this.now();
      for (const jobId of on.opening.splice(0)) this.markSent(jobId, id, at);
    });
    link.on('lost', (err: Error) => {
      if (this.online.get(id) !== on) return;
      on.opening = [];
      this.requeue(id);
      this.log.info('management channel lost; pending commands go again', { device: id, code: isHfError(err) ? err.code : undefined });
      if (on.resendTimer === null)
        on.resendTimer = setTimeout(() => {
          on.resendTimer = null;
          if (this.online.get(id) === on) this.dispatch(id);
        }, this.o.resendDelayMs);
    });
    link.on('unmanaged', () => {
      if (this.online.get(id) !== on) return;
      on.opening = [];
      this.unmanaged.add(id);
      this.log.info('device has no management resource', { device: id });
      this.emitDevice(id);
    });
    session.once('close', () => {
      if (this.online.get(id) === on) this.detach(id, on);
    });
    const at = this.now();
    this.store.devices.seen(id, at);
    this.emitDevice(id);
    this.dispatch(id);
    this.refreshInfo(id, on);
  }

  private detach(id: string, on: Online): void {
    this.online.delete(id);
    if (on.resendTimer !== null) clearTimeout(on.resendTimer);
    this.requeue(id);
    if (!this.closed) {
      this.store.devices.seen(id, this.now());
      this.emitDevice(id);
    }
  }

  /** Sent and unanswered commands of `id` go back to queued (its session or stream ended). */
  private requeue(id: string): void {
    const at = this.now();
    for (const jobId of this.byDevice.get(id) ?? []) {
      const a = this.active.get(jobId);
      const dj = a?.targets.get(id);
      if (dj !== undefined && changed(dj.disconnected(at))) this.queueWrite(jobId, id, dj, 'gateway');
    }
  }

  /** Sends `id` every pending command it has not been sent. */
  private dispatch(id: string): void {
    const on = this.online.get(id);
    if (on === undefined || this.unmanaged.has(id)) return;
    const at = this.now();
    for (const jobId of this.byDevice.get(id) ?? []) {
      const a = this.active.get(jobId);
      const dj = a?.targets.get(id);
      if (a === undefined || dj === undefined || !dj.wantsSend || on.opening.includes(jobId)) continue;
      if (changed(dj.onTimer(at))) {
        this.queueWrite(jobId, id, dj, 'gateway');
        continue;
      }
      if (on.link.send(a.item)) this.markSent(jobId, id, at);
      else if (on.link.state === 'opening') on.opening.push(jobId);
    }
  }

  private markSent(jobId: string, id: string, at: number): void {
    const dj = this.active.get(jobId)?.targets.get(id);
    if (dj !== undefined && changed(dj.sent(at))) this.queueWrite(jobId, id, dj, 'gateway');
  }

  private refreshInfo(id: string, on: Online): void {
    if (this.o.infoMaxAgeMs === 0) return;
    const d = this.store.devices.get(id);
    const at = Number((d?.info as { reportedAt?: unknown } | undefined)?.reportedAt ?? 0);
    if (this.now() - at < this.o.infoMaxAgeMs) return;
    const cmdId = `${INFO_PREFIX}${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    on.link.send(encodeCommand({ id: cmdId, op: 'info', args: {}, deadlineMs: 10_000 }));
  }

  // --- replies ----------------------------------------------------------------------------------

  private onReply(id: string, r: Reply): void {
    const at = this.now();
    if (r.id.startsWith(INFO_PREFIX)) {
      if ('ok' in r) this.reported(id, r.ok, at);
      return;
    }
    const a = this.active.get(r.id);
    const dj = a?.targets.get(id);
    if (a === undefined || dj === undefined) return; // finished already, or not ours: the record stands
    let res: EventResult;
    if ('accepted' in r) res = dj.accepted(at);
    else if ('ok' in r) res = dj.succeeded(at, toJsonValue(r.ok) as Record<string, unknown>);
    else res = dj.failed(at, (r as Extract<Answer, { error: unknown }>).error);
    if (!changed(res)) return;
    this.queueWrite(r.id, id, dj, `device:${id}`);
    if (res !== 'applied') return;
    if ('ok' in r && a.job.op === 'info') this.reported(id, toJsonValue(r.ok) as Record<string, unknown>, at);
  }

  private reported(id: string, info: Record<string, unknown>, at: number): void {
    this.store.devices.seen(id, at, { ...(toJsonValue(info) as Record<string, unknown>), reportedAt: at });
    this.emitDevice(id);
  }

  // --- jobs -------------------------------------------------------------------------------------

  /** Makes a job (see the file comment); bad input is refused with its code and nothing is stored. */
  createJob(req: JobRequest, actor: string): Job {
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'the management service is closed');
    const op = validateOp(req.op, req.args ?? {}, this.limits);
    const selector = parseSelector(req.selector);
    const timeoutMs = optMs('timeoutMs', req.timeoutMs, op.op === 'update' ? this.o.updateTimeoutMs : this.o.timeoutMs, 1, 0xffffffff);
    const expiresInMs = optMs('expiresInMs', req.expiresInMs, this.o.expiresInMs, 1, this.o.maxExpiresInMs);
    const devices = this.select(selector).map((d) => d.id);
    if (devices.length === 0) throw hfError(ErrorCode.NO_MATCH, `selector ${JSON.stringify(selector.text.slice(0, 200))} matches no device: no job was made`);
    if (devices.length > this.o.maxTargets) throw hfError(ErrorCode.LIMIT, `selector matches ${devices.length} devices, over maxTargets ${this.o.maxTargets}`);
    const args = (req.args ?? {}) as Record<string, unknown>;
    const at = this.now();
    const jobId = `j-${at.toString(36)}-${randomBytes(5).toString('hex')}`;
    const item = encodeCommand({ id: jobId, op: op.op, args: argsToWire(op.op, args), deadlineMs: timeoutMs });
    const job = this.store.jobs.batch(() => {
      const j = this.store.jobs.create({ id: jobId, op: op.op, args, selector: selector.text, createdBy: actor, createdAt: at, expiresAt: at + expiresInMs, timeoutMs, devices });
      this.store.audit.append({ actor, action: 'job.create', target: jobId, detail: { op: op.op, selector: selector.text, devices: auditDevices(devices), timeoutMs, expiresAt: at + expiresInMs } });
      return j;
    });
    const targets = new Map<string, DeviceJob>();
    for (const d of devices) {
      targets.set(d, new DeviceJob(at, job.expiresAt, { timeoutMs }));
      this.index(d, jobId);
    }
    this.active.set(jobId, { job, item, targets });
    this.log.info('job made', { job: jobId, op: op.op, by: actor, devices: devices.length });
    this.emit('job', job);
    for (const d of devices) this.dispatch(d);
    return job;
  }

  /** Cancels what is still pending of the job (audited); a job already over: returns it unchanged. No such job: HF_ERR_NOT_FOUND. */
  cancel(jobId: string, actor: string): Job {
    const at = this.now();
    const first = this.store.jobs.cancel(jobId, at);
    if (first) this.store.audit.append({ actor, action: 'job.cancel', target: jobId });
    const a = this.active.get(jobId);
    if (a !== undefined) for (const [d, dj] of a.targets) if (changed(dj.cancel(at, actor))) this.queueWrite(jobId, d, dj, actor);
    this.flush();
    const job = this.store.jobs.job(jobId) as Job;
    if (first) this.emit('job', job);
    return job;
  }

  /** The job and every target of it. No such job: HF_ERR_NOT_FOUND. */
  job(jobId: string): { job: Job; targets: Target[] } {
    this.flush();
    const job = this.store.jobs.job(jobId);
    if (job === null) throw hfError(ErrorCode.NOT_FOUND, `no job ${JSON.stringify(String(jobId).slice(0, 128))}`);
    return { job, targets: this.store.jobs.targets(jobId) };
  }

  /** Every known device with its online state, by id; only those `selector` matches when given. */
  devices(selector?: string): DeviceView[] {
    if (selector === undefined) return this.store.devices.list().map((d) => this.view(d));
    return this.select(parseSelector(selector));
  }

  /** The devices `sel` matches, by id; a selector naming ids reads only those rows, not the fleet. */
  private select(sel: Selector): DeviceView[] {
    const rows = sel.ids === null ? this.store.devices.list() : sel.ids.map((id) => this.store.devices.get(id)).filter((d): d is Device => d !== null);
    const out: DeviceView[] = [];
    for (const d of rows) {
      const v = this.view(d);
      if (sel.matches(v)) out.push(v);
    }
    if (sel.ids !== null) out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  /** Ids online now. */
  get onlineCount(): number {
    return this.online.size;
  }

  /** Jobs with targets still pending in memory. */
  get activeCount(): number {
    return this.active.size;
  }

  private view(d: Device): DeviceView {
    const on = this.online.get(d.id);
    return { ...d, online: on !== undefined, transport: on === undefined ? null : on.session.transport, managed: !this.unmanaged.has(d.id) };
  }

  private emitDevice(id: string): void {
    if (this.listenerCount('device') === 0) return;
    const d = this.store.devices.get(id);
    if (d !== null) this.emit('device', this.view(d));
  }

  // --- deadlines, recovery, writes --------------------------------------------------------------

  private sweep(): void {
    const at = this.now();
    for (const [jobId, a] of this.active)
      for (const [d, dj] of a.targets) {
        if (dj.final || dj.nextDeadline() > at) continue;
        if (changed(dj.onTimer(at))) this.queueWrite(jobId, d, dj, 'gateway');
      }
  }

  /** Loads what a previous run left pending (see the file comment). */
  private recover(): void {
    const at = this.now();
    const jobs = this.store.jobs;
    const stale = jobs.stale(at);
    if (stale.length > 0)
      jobs.batch(() => {
        for (const t of stale) {
          const cancelled = t.cancelledAt !== null;
          const state: TargetState = cancelled ? 'cancelled' : 'expired';
          const sent = t.sends > 0;
          const code = cancelled ? ErrorCode.CANCELLED : ErrorCode.EXPIRED;
          const message = `${cancelled ? 'cancelled' : 'expired'} while the gateway was down${sent ? ', after the command was sent: the device may have run it' : ', before the command was sent'}`;
          if (jobs.transition(t.jobId, t.deviceId, state, { at, errorCode: code, errorMessage: message }))
            this.store.audit.append({ actor: 'gateway', action: 'job.outcome', target: t.jobId, detail: { device: t.deviceId, state, code } });
        }
      });
    const pending = jobs.pending(at);
    for (const t of pending) {
      let a = this.active.get(t.jobId);
      if (a === undefined) {
        const job = jobs.job(t.jobId) as Job;
        const item = encodeCommand({ id: t.jobId, op: t.op, args: argsToWire(t.op, (t.args ?? {}) as Record<string, unknown>), deadlineMs: t.timeoutMs });
        a = { job, item, targets: new Map() };
        this.active.set(t.jobId, a);
      }
      const dj = DeviceJob.restore({ state: t.state, timeoutMs: t.timeoutMs, expiresAt: t.expiresAt, sends: t.sends, sentAt: t.state === 'queued' ? null : t.updatedAt, outcome: null });
      if (changed(dj.recovered(at))) this.queueWrite(t.jobId, t.deviceId, dj, 'gateway');
      a.targets.set(t.deviceId, dj);
      this.index(t.deviceId, t.jobId);
    }
    if (pending.length > 0) this.log.info('pending jobs loaded', { jobs: this.active.size, targets: pending.length });
    this.flush();
  }

  /** Records that `jobId` has a target on `deviceId`. */
  private index(deviceId: string, jobId: string): void {
    const s = this.byDevice.get(deviceId);
    if (s === undefined) this.byDevice.set(deviceId, new Set([jobId]));
    else s.add(jobId);
  }

  private queueWrite(jobId: string, deviceId: string, dj: DeviceJob, actor: string): void {
    this.writes.set(`${jobId}\n${deviceId}`, { jobId, deviceId, dj, actor });
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes every queued change in one transaction, then emits them and forgets finished jobs. */
  flush(): void {
    this.flushQueued = false;
    if (this.writes.size === 0 || this.store.db.open === false) return;
    const writes = [...this.writes.values()];
    this.writes.clear();
    const events: TargetEvent[] = [];
    this.store.jobs.batch(() => {
      for (const w of writes) {
        const s = w.dj.snapshot();
        const out: JobOutcome | null = s.outcome;
        const recorded = this.store.jobs.transition(w.jobId, w.deviceId, s.state, {
          at: out?.at ?? this.now(),
          result: out?.result ?? undefined,
          errorCode: out?.error?.code,
          errorMessage: out?.error?.message,
          sends: s.sends,
        });
        if (!recorded) continue;
        if (out !== null)
          this.store.audit.append({
            actor: w.actor,
            action: 'job.outcome',
            target: w.jobId,
            detail: { device: w.deviceId, state: out.state, ...(out.error === null ? {} : { code: out.error.code }), mayHaveRun: out.mayHaveRun },
          });
        events.push(this.event(w.jobId, w.deviceId, s.state, out, s.sends));
      }
    });
    for (const w of writes) if (w.dj.final) this.forget(w.jobId, w.deviceId);
    for (const e of events) this.emit('target', e);
  }

  private event(jobId: string, deviceId: string, state: TargetState, out: JobOutcome | null, sends: number): TargetEvent {
    const e: TargetEvent = { jobId, deviceId, state, at: out?.at ?? this.now(), sends };
    if (out?.error) {
      e.errorCode = out.error.code;
      e.errorMessage = out.error.message;
    }
    if (out?.result) {
      const size = JSON.stringify(out.result).length;
      if (size <= this.o.maxEventResultBytes) e.result = out.result;
      else e.resultOmitted = true;
    }
    return e;
  }

  private forget(jobId: string, deviceId: string): void {
    const a = this.active.get(jobId);
    if (a === undefined) return;
    a.targets.delete(deviceId);
    this.byDevice.get(deviceId)?.delete(jobId);
    if (this.byDevice.get(deviceId)?.size === 0) this.byDevice.delete(deviceId);
    if (a.targets.size === 0) this.active.delete(jobId);
  }

  /** Stops the sweeper and writes what is queued; the store stays open (its owner closes it). */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.sweeper);
    for (const on of this.online.values()) if (on.resendTimer !== null) clearTimeout(on.resendTimer);
    this.online.clear();
  }
}

/** Up to 100 device ids as they are; more as their count and the sha256 of the sorted ids, one per line (the entry still names exactly which). */
function auditDevices(ids: string[]): string[] | { count: number; sha256: string } {
  if (ids.length <= 100) return ids;
  return {
    count: ids.length,
    sha256: createHash('sha256')
      .update([...ids].sort().join('\n'), 'utf8')
      .digest('hex'),
  };
}

function optMs(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw hfError(ErrorCode.BAD_ARGS, `${name} must be a whole number of ms in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}
