/**
 * Processes a bench starts (gateways, load, ctl) and the ports they listen on: each started with its
 * output kept, ready when a line matches, stopped by its PID (SIGTERM, then SIGKILL after 10 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export { freePort } from '../test/support/host';

/** Starts `node args`, keeps its output (the last MiB), resolves when it matches `re`; rejects after `limitMs` or on exit. */
export function start(args: string[], re: RegExp, limitMs: number): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not ready within ${limitMs} ms: ${args.join(' ')}\n${out.slice(-2000)}`)), limitMs);
    const take = (d: Buffer): void => {
      out += d.toString();
      if (out.length > 1 << 20) out = out.slice(-(1 << 19));
      if (re.test(out)) {
        clearTimeout(t);
        resolve({ child, out: () => out });
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited (${code}) before ready: ${args.join(' ')}\n${out.slice(-2000)}`));
    });
  });
}

/** Stops `child` by its PID with `signal`, SIGKILL after 10 s; resolves once it exited. */
export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, signal);
  const t = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 10_000);
  return gone.finally(() => clearTimeout(t));
}
