/**
 * The runner drives the server and client processes over Node's IPC channel: one request
 * `{id, op, args}`, one answer `{id, ok, value | error}`. Every call has a time limit; a child that
 * does not answer in time is killed (by its PID) and the call fails. A child exits by itself when the
 * runner goes away (IPC disconnect) or after its own lifetime limit.
 */
import { type ChildProcess, fork } from 'node:child_process';

interface Request {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
  /** Exceptions nobody caught in this process so far, and the first one's message. */
  uncaught?: { count: number; first: string };
}

/** Operations by name; each takes the arguments it declares (they arrive as structured clones). */
export type Handlers = Record<string, (args: never) => unknown | Promise<unknown>>;

/**
 * Child side: answers the runner's requests with `handlers`; exits after `maxSeconds` at most.
 * An exception nobody catches (a library throwing from a socket callback) would end the process and
 * the measurement with it: it is counted, reported with every answer, and the process goes on.
 */
export function serve(handlers: Handlers, maxSeconds: number): void {
  if (typeof process.send !== 'function') {
    process.stderr.write('this is a bench child process: run it through bench/run.js (npm run bench:peers)\n');
    process.exit(2);
  }
  const life = setTimeout(() => {
    process.stderr.write(`bench child: lifetime limit of ${maxSeconds} s reached, exiting\n`);
    process.exit(3);
  }, maxSeconds * 1000);
  life.unref();
  process.on('disconnect', () => process.exit(0));
  let uncaught: Answer['uncaught'];
  process.on('uncaughtException', (e: Error) => {
    if (uncaught === undefined) uncaught = { count: 0, first: `${e?.name ?? 'Error'}: ${errorText(e)}${stackTop(e)}` };
    uncaught.count++;
  });
  process.on('message', (m: Request) => {
    const reply = (a: Answer): void => {
      if (process.connected) process.send!({ ...a, uncaught });
    };
    const fn = handlers[m.op];
    if (fn === undefined) {
      reply({ id: m.id, ok: false, error: `unknown op ${m.op}` });
      return;
    }
    Promise.resolve()
      .then(() => fn((m.args ?? {}) as never)) // each handler declares its own arguments
      .then(
        (value) => reply({ id: m.id, ok: true, value }),
        (e: Error) => reply({ id: m.id, ok: false, error: errorText(e) }),
      );
  });
}

/** Runner side: one child process. */
export class Child {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | null = null;
  stderr = '';
  /** Exceptions the child did not catch (reported with its answers). */
  uncaught: Answer['uncaught'];

  constructor(
    readonly name: string,
    file: string,
    args: string[] = [],
    /** Node flags beyond --expose-gc (e.g. --cpu-prof). */
    execArgv: string[] = [],
  ) {
    this.proc = fork(file, args, { execArgv: ['--expose-gc', ...execArgv], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    this.proc.stderr!.on('data', (d: Buffer) => {
      // Keep the tail for error reports.
      this.stderr = (this.stderr + d.toString()).slice(-16000);
      if (process.env.BENCH_DEBUG) process.stderr.write(`[${this.name}] ${d.toString()}`);
    });
    this.proc.on('message', (a: Answer) => {
      if (a.uncaught !== undefined) this.uncaught = a.uncaught;
      const w = this.waiting.get(a.id);
      if (w === undefined) return;
      this.waiting.delete(a.id);
      if (a.ok) w.resolve(a.value);
      else w.reject(new Error(`${this.name} ${a.error}`));
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = `${this.name} exited (${signal ?? code})${this.stderr ? `: ${errorLine(this.stderr)}` : ''}`;
      for (const w of this.waiting.values()) w.reject(new Error(this.exited));
      this.waiting.clear();
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Calls `op`; fails after `timeoutMs` (and kills the child, whose state is unknown from then on). */
  call<T>(op: string, args: Record<string, unknown>, timeoutMs: number): Promise<T> {
    if (this.exited !== null) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.kill();
        reject(new Error(`${this.name} ${op}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, op, args } satisfies Request);
    });
  }

  /** Asks the child to stop, then kills it (its own PID) if it has not exited within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exited !== null) return;
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.call('stop', {}, graceMs).catch(() => {});
    const t = setTimeout(() => this.kill(), graceMs);
    await gone;
    clearTimeout(t);
  }

  kill(): void {
    if (this.exited === null && this.proc.pid !== undefined) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** The most telling line of a crashed child's stderr: the first "SomethingError: ..." line, else the last line. */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  const e = lines.find((l) => /^\w*Error\b|^Uncaught|^\w+: /.test(l.trim()));
  return (e ?? lines[lines.length - 1]).trim();
}

/**
 * An error for a report: its message, after its code when it has one the message does not show
 * already (holdfast's HF_ERR_... codes are a field of the error, not part of its message).
 */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
}

/** " at <first frame>" of an error's stack, for reports. */
function stackTop(e: Error): string {
  const frame = (e?.stack ?? '').split('\n').find((l) => l.trim().startsWith('at '));
  return frame === undefined ? '' : ` (${frame.trim()})`;
}
