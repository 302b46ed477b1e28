/**
 * The processes a row of bench:forward starts (socat, sshd, ssh, the holdfast gateway and device):
 * their output kept (the last 64 KiB), waits on log lines, and stopping by PID. Every process
 * started is remembered, so an exit of the runner (normal, a signal, its own time limit) kills
 * whatever is still running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freeLowPort } from '../../tools/low-port';

const KEEP = 64 * 1024;
const running = new Set<Proc>();

export class Proc {
  readonly child: ChildProcess;
  private text = '';
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly exited: Promise<string>;
  private gone = false;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this);
    const take = (d: Buffer): void => {
      this.text += d.toString();
      if (this.text.length > 2 * KEEP) this.text = this.text.slice(-KEEP);
      if (this.waiters.length === 0) return;
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(this.text);
        if (m !== null) w.resolve(m);
        return m === null;
      });
    };
    this.child.stdout?.on('data', take);
    this.child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.gone = true;
        running.delete(this);
        resolve(`could not start: ${e.message}`);
      });
      this.child.on('exit', (code, sig) => {
        this.gone = true;
        running.delete(this);
        resolve(sig !== null ? `killed by ${sig}` : `exit ${code}`);
      });
    });
  }

  get log(): string {
    return this.text;
  }

  /** The last `n` characters of the output, for error messages. */
  tail(n = 1500): string {
    return this.text.slice(-n);
  }

  /** Resolves when the output so far matches `re`; rejects after `ms` or when the process exits first. */
  waitFor(re: RegExp, ms: number): Promise<RegExpExecArray> {
    const m = re.exec(this.text);
    if (m !== null) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no ${re} within ${ms} ms:\n${this.tail()}`)), ms);
      this.waiters.push({
        re,
        resolve: (x) => {
          clearTimeout(t);
          resolve(x);
        },
      });
      void this.exited.then((how) => {
        clearTimeout(t);
        reject(new Error(`${this.name} ended (${how}) before ${re}:\n${this.tail()}`));
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.gone || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.gone) return;
    this.signal('SIGTERM');
    let t: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => {
      t = setTimeout(() => r('late'), graceMs);
    });
    if ((await Promise.race([this.exited, late])) === 'late') {
      this.signal('SIGKILL');
      await this.exited;
    }
    clearTimeout(t);
  }
}

/** Kills every process still running (by PID, SIGKILL): for the runner's exit paths. */
export function killAll(): void {
  for (const p of running) p.signal('SIGKILL');
}

/** A free port on 127.0.0.1 below the outgoing-connection range (tools/low-port.ts). */
export const freePort = (): Promise<number> => freeLowPort();

/** Resolves once 127.0.0.1:`port` accepts a connection (closed at once); rejects after `ms`. */
export async function listening(port: number, ms: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms${proc ? `:\n${proc.tail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether `name` is an executable file in a directory of PATH. */
export function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => {
    if (d === '') return false;
    try {
      fs.accessSync(path.join(d, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Writes `text` to `file` with mode 0600 (files of secrets: the gateway refuses anything wider). */
export function privateFile(file: string, text: string): string {
  fs.writeFileSync(file, text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}
