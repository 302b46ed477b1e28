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
 * Every refusal and failure is an answer with a stable code; `execute` never rejects for the
 * command's sake (only a failing medium under the journal, HF_ERR_STORAGE, escapes).
 */
import { ErrorCode, hfError, isHfError } from '../errors';
import { checkMs } from '../check';
import type { Management, RunResult } from '../../hal/management';
import type { Storage } from '../../hal/storage';
import { type Answer, type Command, errorOf } from './command';
import { type AnswerBody, CommandJournal, type CommandJournalOptions } from './command-journal';
import { type ManageLimits, type Op, type ResolvedManageLimits, resolveManageLimits, validateOp } from './ops';
import { checkExec, checkPath, type ManagePolicy, policyFromConfig } from './policy';

export interface ExecutorOptions {
  limits?: ManageLimits;
  journal?: CommandJournalOptions;
  /** How long after answering `restart` the device restarts, ms (default 1000). */
  restartDelayMs?: number;
}

export const EXECUTOR_DEFAULTS = { restartDelayMs: 1000 };

export class Executor {
  readonly limits: ResolvedManageLimits;
  readonly restartDelayMs: number;
  private readonly mgmt: Management;
  private readonly journal: CommandJournal;
  private readonly running = new Map<string, Promise<Answer>>();

  /** Opens the journal in `storage` (answering what a restart interrupted). */
  constructor(mgmt: Management, storage: Storage, opts: ExecutorOptions = {}) {
    this.limits = resolveManageLimits(opts.limits);
    this.restartDelayMs = checkMs('restartDelayMs', opts.restartDelayMs ?? EXECUTOR_DEFAULTS.restartDelayMs, 0, 600000);
    this.mgmt = mgmt;
    this.journal = new CommandJournal(storage, opts.journal);
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
    } catch (e) {
      return this.finish(cmd, errorBody(e));
    }
    this.journal.started(cmd.id, cmd.op);
    onAccepted?.(cmd.id);
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
        await m.update(op.args.bundle, op.args.sha256);
        return {};
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
