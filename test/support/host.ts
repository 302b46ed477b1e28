/**
 * Helpers for integration tests on the host target: loopback TCP sources and sinks with sha256,
 * `bin/holdfast` child processes with their logs, and cleanup of everything a test started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'bin', 'holdfast');

/** Things to close at the end of a test, newest first. */
export class Cleanup {
  private readonly fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    while (this.fns.length > 0) {
      const fn = this.fns.pop() as () => unknown;
      try {
        await fn();
      } catch {
        // best effort: the rest still gets closed
      }
    }
  }
}

export function tmpDir(cleanup: Cleanup, prefix = 'holdfast-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanup.add(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A TCP server on 127.0.0.1 that hashes everything each connection sends and answers with its hex digest. */
export async function hashServer(cleanup: Cleanup): Promise<{ port: number; digests: string[]; bytes: number[] }> {
  const digests: string[] = [];
  const bytes: number[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    s.on('end', () => {
      const hex = h.digest('hex');
      digests.push(hex);
      bytes.push(n);
      s.end(hex);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(() => new Promise((r) => server.close(r)));
  cleanup.add(() => {
    for (const s of socks) s.destroy();
  });
  return { port: (server.address() as net.AddressInfo).port, digests, bytes };
}

/** A TCP server on 127.0.0.1 that sends `data` to each connection and then ends it. */
export async function sourceServer(cleanup: Cleanup, data: Buffer): Promise<{ port: number }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.end(data);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as net.AddressInfo).port };
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function randomData(n: number): Buffer {
  return randomBytes(n);
}

/** Connects to 127.0.0.1:port, writes `data`, half-closes, and resolves with everything read back. */
export function pushThrough(port: number, data: Buffer, chunk = 65536): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
    s.on('connect', () => {
      let at = 0;
      const more = (): void => {
        while (at < data.length) {
          const part = data.subarray(at, at + chunk);
          at += part.length;
          if (!s.write(part)) {
            s.once('drain', more);
            return;
          }
        }
        s.end();
      };
      more();
    });
  });
}

/** Connects to 127.0.0.1:port, half-closes at once, and resolves with everything read until the peer ends. */
export function readAll(port: number): Promise<Buffer> {
  return pushThrough(port, Buffer.alloc(0));
}

/** A free TCP port on 127.0.0.1 (closed again: a port nothing listens on, until someone takes it). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A child process whose stderr (logs) and stdout are kept, with waits on log lines. */
export class Proc {
  readonly child: ChildProcess;
  log = '';
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly exited: Promise<number | null>;

  constructor(cmd: string, args: string[], cleanup: Cleanup, env: Record<string, string | undefined> = {}) {
    this.child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (d: Buffer): void => {
      this.log += d.toString();
      this.waiters = this.waiters.filter((w) => {
        const m = w.re.exec(this.log.slice(w.from));
        if (m !== null) w.resolve(m);
        return m === null;
      });
    };
    this.child.stdout?.on('data', take);
    this.child.stderr?.on('data', take);
    this.exited = new Promise((r) => this.child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
    cleanup.add(() => this.kill('SIGKILL'));
  }

  /** Resolves when the log (from now, or from offset `from`) matches `re`; rejects after `ms`. */
  waitFor(re: RegExp, ms = 15000, from = this.log.length): Promise<RegExpExecArray> {
    const m = re.exec(this.log.slice(from));
    if (m !== null) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${re} in the log within ${ms} ms:\n${this.log.slice(-3000)}`)), ms);
      this.waiters.push({
        re,
        from,
        resolve: (x) => {
          clearTimeout(t);
          resolve(x);
        },
      });
    });
  }

  kill(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, sig);
      } catch {
        // already gone
      }
    }
  }
}

/** Runs `bin/holdfast` with `args`. */
export function holdfast(args: string[], cleanup: Cleanup, env: Record<string, string | undefined> = {}): Proc {
  return new Proc(process.execPath, [CLI, ...args], cleanup, env);
}

/** Writes a devices file (mode 0600, as the gateway requires of a file of keys) and returns its path. */
export function devicesFile(dir: string, devices: Record<string, string>): string {
  const f = path.join(dir, 'devices.json');
  fs.writeFileSync(f, JSON.stringify(devices), { mode: 0o600 });
  fs.chmodSync(f, 0o600); // (the mode above applies only to a new file)
  return f;
}

/** True while process `pid` exists (signal 0 reaches it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
