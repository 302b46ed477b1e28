/**
 * The device side of management: takes a command (command.ts), executes it at most once on the
 * board's `hal/Management`, and gives its answer.
 *
 *   1. An id the journal knows is answered from its record, and nothing runs (an id still running in
 *      this process, re-sent after a reconnect, gets the answer of that same run). An id used again
 *      for another operation is refused (HF_ERR_COMMAND), and that is not recorded.
 *   2. The operation and its arguments are validated (ops.ts); then the device's config is asked
 *      what it allows (policy.ts: exec allow-list, shell, directories). A refusal is the answer.
 *   3. The id is recorded as started (on storage before anything runs), `onAccepted` is told, the
 *      operation runs, and its answer is recorded before it is returned.
 *   4. A restart while running: the next executor over the same storage answers the id
 *      HF_ERR_INTERRUPTED (command-journal.ts). `restart` itself is answered and recorded first, then
 *      the board is asked to restart after `restartDelayMs`.
 *   5. `update` is answered across the restart it causes: a pending-update record is written beside
 *      the journal (update-record.ts), the board stages the bundle for its launcher, and the program
 *      restarts after `restartDelayMs` without answering. The next executor answers the id from the
 *      record and the launcher's word: ok {sha256, previous} once the new bundle has opened a session
 *      (`sessionOpened`, which also ends its trial), HF_ERR_ROLLED_BACK when the old one is back.
 *      One update at a time: another while one is in progress is HF_ERR_BUSY.
 * Every refusal and failure is an answer with a stable code; `execute` never rejects for the
 * command's sake (only a failing medium under the journal, HF_ERR_STORAGE, escapes).
 */
import { ErrorCode, hfError, isHfError } from '../errors';
import { checkMs } from '../check';
import type { Management, RunResult, UpdateStatus } from '../../hal/management';
import type { Storage } from '../../hal/storage';
import { type Answer, type Command, errorOf } from './command';
import { type AnswerBody, CommandJournal, type CommandJournalOptions } from './command-journal';
import { type ManageLimits, type Op, type ResolvedManageLimits, resolveManageLimits, validateOp } from './ops';
import { checkExec, checkPath, type ManagePolicy, policyFromConfig } from './policy';
import { decodePendingUpdate, encodePendingUpdate, type PendingUpdate, resolveUpdate, UPDATE_KEY } from './update-record';

export interface ExecutorOptions {
  limits?: ManageLimits;
  journal?: CommandJournalOptions;
  /** How long after answering `restart` (or staging an `update`) the device restarts, ms (default 1000). */
  restartDelayMs?: number;
  /** Storage key of the pending-update record (default "update"). */
  updateKey?: string;
}

export const EXECUTOR_DEFAULTS = { restartDelayMs: 1000 };

export class Executor {
  readonly limits: ResolvedManageLimits;
  readonly restartDelayMs: number;
  private readonly mgmt: Management;
  private readonly journal: CommandJournal;
  private readonly running = new Map<string, Promise<Answer>>();
  private readonly storage: Storage;
  private readonly updateKey: string;
  /** The launcher's word when this executor opened (trial cleared once confirmed), or null without one. */
  private status: UpdateStatus | null;
  /** The update whose bundle this is, answered once a session opens. */
  private awaiting: { id: string; answer: AnswerBody; resolve: (a: Answer) => void } | null = null;
  /** The update staged by this process, which restarts for it. */
  private updating: string | null = null;

  /** Opens the journal in `storage` (answering what a restart interrupted, and an update's outcome). */
  constructor(mgmt: Management, storage: Storage, opts: ExecutorOptions = {}) {
    this.limits = resolveManageLimits(opts.limits);
    this.restartDelayMs = checkMs('restartDelayMs', opts.restartDelayMs ?? EXECUTOR_DEFAULTS.restartDelayMs, 0, 600000);
    this.mgmt = mgmt;
    this.storage = storage;
    this.updateKey = opts.updateKey ?? UPDATE_KEY;
    this.status = mgmt.updateStatus();
    const rec = storage.read(this.updateKey);
    const pending: PendingUpdate | null = rec === null ? null : decodePendingUpdate(rec);
    let wait: { id: string; answer: AnswerBody } | null = null;
    this.journal = new CommandJournal(storage, opts.journal, (id, op) => {
      if (pending === null || id !== pending.id || op !== 'update') return null;
      const r = resolveUpdate(pending, this.status);
      if (r.kind === 'interrupted') return null;
      if (r.kind === 'answer') return r.answer;
      wait = { id, answer: r.answer };
      return 'running';
    });
    const w = wait as { id: string; answer: AnswerBody } | null;
    if (w === null) {
      if (rec !== null) storage.remove(this.updateKey);
      return;
    }
    this.running.set(w.id, new Promise<Answer>((resolve) => (this.awaiting = { ...w, resolve })));
  }

  /** The id of the update whose new bundle runs on trial here, answered once a session opens; or null. */
  get awaitingSession(): string | null {
    return this.awaiting?.id ?? null;
  }

  /**
   * The device's session with the gateway is open: while the bundle runs on trial, tells the launcher
   * it is good (the trial ends: no rollback) and answers the update that installed it. Does nothing
   * otherwise. Throws what `confirmUpdate` throws (the trial then goes on; call again on the next open).
   */
  sessionOpened(): void {
    if (this.status === null || !this.status.trial) return;
    this.mgmt.confirmUpdate();
    this.status = { ...this.status, trial: false };
    const a = this.awaiting;
    if (a === null) return;
    this.awaiting = null;
    const kept = this.journal.done(a.id, 'update', a.answer);
    this.storage.remove(this.updateKey);
    this.running.delete(a.id);
    a.resolve(withId(a.id, kept));
  }

  /** Ids that were running when the device last stopped. */
  get interrupted(): readonly string[] {
    return this.journal.interrupted;
  }

  /** The answer to `cmd`, running it only if its id is new (see the file comment). */
  execute(cmd: Command, onAccepted?: (id: string) => void): Promise<Answer> {
    const known = this.journal.get(cmd.id);
    if (known !== undefined) {
      if (known.op !== cmd.op) return Promise.resolve(fail(cmd.id, ErrorCode.COMMAND, `command id ${cmd.id} was used before for ${known.op}, not ${JSON.stringify(cmd.op.slice(0, 64))}`));
      if (known.answer !== null) return Promise.resolve(withId(cmd.id, known.answer));
      const same = this.running.get(cmd.id);
      if (same !== undefined) return same;
    }
    const p = this.run(cmd, onAccepted);
    this.running.set(cmd.id, p);
    const forget = () => this.running.delete(cmd.id);
    p.then(forget, forget);
    return p;
  }

  private async run(cmd: Command, onAccepted?: (id: string) => void): Promise<Answer> {
    let op: Op;
    let policy: ManagePolicy | null = null;
    try {
      op = validateOp(cmd.op, cmd.args, this.limits);
      if (op.op === 'exec' || op.op === 'file.get' || op.op === 'file.put') policy = this.policy();
      if (op.op === 'exec') checkExec(policy as ManagePolicy, op.args);
      if (op.op === 'file.get' || op.op === 'file.put') op.args.path = checkPath(policy as ManagePolicy, op.op, op.args.path);
      if (op.op === 'config.set') policyFromConfig(op.args.config);
      const busy = this.updating ?? this.awaiting?.id ?? null;
      if (op.op === 'update' && busy !== null) throw hfError(ErrorCode.BUSY, `update: the update of command ${busy} is in progress; send this one when it is answered`);
    } catch (e) {
      return this.finish(cmd, errorBody(e));
    }
    this.journal.started(cmd.id, cmd.op);
    onAccepted?.(cmd.id);
    if (op.op === 'update') return this.update(cmd, op.args.bundle, op.args.sha256);
    let body: AnswerBody;
    try {
      body = { ok: await this.perform(op, policy, cmd.deadlineMs) };
    } catch (e) {
      body = errorBody(e);
    }
    const answer = this.finish(cmd, body);
    if (op.op === 'restart' && 'ok' in body) this.mgmt.restart(this.restartDelayMs);
    return answer;
  }

  /** Records the update as pending, stages it and restarts; the answer comes after the restart (file comment, 5). */
  private async update(cmd: Command, bundle: Uint8Array, sha256: string): Promise<Answer> {
    const status = this.mgmt.updateStatus();
    if (status !== null) this.storage.write(this.updateKey, encodePendingUpdate({ id: cmd.id, sha256, previous: status.running }));
    try {
      await this.mgmt.update(bundle, sha256);
    } catch (e) {
      if (status !== null) this.storage.remove(this.updateKey);
      return this.finish(cmd, errorBody(e));
    }
    this.updating = cmd.id;
    this.mgmt.restart(this.restartDelayMs);
    // Never settles in this process: the one that comes up after the restart answers the id.
    return new Promise<Answer>(() => {});
  }

  private finish(cmd: Command, body: AnswerBody): Answer {
    this.journal.done(cmd.id, cmd.op, body);
    return withId(cmd.id, body);
  }

  /** The device config's policy; a config that cannot say is HF_ERR_NOT_ALLOWED (fail closed). */
  private policy(): ManagePolicy {
    let config: Record<string, unknown>;
    try {
      config = this.mgmt.readConfig();
    } catch (e) {
      throw hfError(ErrorCode.NOT_ALLOWED, `the device config cannot be read, so nothing is allowed (${(e as Error).message})`, e);
    }
    try {
      return policyFromConfig(config);
    } catch (e) {
      throw hfError(ErrorCode.NOT_ALLOWED, `${(e as Error).message}, so nothing is allowed`, e);
    }
  }

  private async perform(op: Op, policy: ManagePolicy | null, deadlineMs: number): Promise<Record<string, unknown>> {
    const m = this.mgmt;
    switch (op.op) {
      case 'info':
        return m.info(op.args.disk);
      case 'gpio.read':
        return { value: m.gpioRead(op.args.chip, op.args.line) };
      case 'gpio.write':
        m.gpioWrite(op.args.chip, op.args.line, op.args.value);
        return {};
      case 'config.get':
        return { config: m.readConfig() };
      case 'config.set':
        m.writeConfig(op.args.config);
        return {};
      case 'exec': {
        const timeoutMs = Math.min(op.args.timeoutMs, deadlineMs);
        const argv = op.args.argv ?? [op.args.shell as string];
        const r = await m.run({ argv, shell: op.args.shell !== null, timeoutMs, maxOutputBytes: this.limits.maxExecOutputBytes });
        if (r.timedOut) throw hfError(ErrorCode.CMD_TIMEOUT, `${JSON.stringify(argv[0].slice(0, 200))} was killed after ${timeoutMs} ms${outputNote(r)}`);
        return { exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated, durationMs: r.durationMs };
      }
      case 'file.get':
        return { data: m.readFile(op.args.path, (policy as ManagePolicy).files, this.limits.maxFileBytes) };
      case 'file.put':
        m.writeFile(op.args.path, op.args.data, op.args.mode, (policy as ManagePolicy).files);
        return { bytes: op.args.data.length };
      case 'restart':
        return { delayMs: this.restartDelayMs };
      case 'update':
        throw hfError(ErrorCode.STATE, 'update runs through Executor.update');
    }
  }
}

function withId(id: string, body: AnswerBody): Answer {
  return 'ok' in body ? { id, ok: body.ok } : { id, error: body.error };
}

function fail(id: string, code: string, message: string): Answer {
  return { id, error: errorOf(code, message) };
}

/** An HfError's code and message; anything else is HF_ERR_OP_FAILED. */
function errorBody(e: unknown): AnswerBody {
  if (isHfError(e)) return { error: errorOf(e.code, e.message) };
  return { error: errorOf(ErrorCode.OP_FAILED, String((e as Error)?.message ?? e)) };
}

function outputNote(r: RunResult): string {
  const tail = new TextDecoder().decode(r.stderr.length > 0 ? r.stderr.subarray(Math.max(0, r.stderr.length - 200)) : r.stdout.subarray(Math.max(0, r.stdout.length - 200)));
  return tail === '' ? '' : ` (last output: ${JSON.stringify(tail)})`;
}
