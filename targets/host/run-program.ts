/**
 * Runs a program for `exec` (hal/management.ts `run`): by argv with no shell (`spawn` with
 * `shell: false`), or a command line of /bin/sh when asked (the device's config must allow it; that
 * is checked before). The program gets its own process group, so that on its time limit the whole
 * group is killed (SIGKILL): a shell's children die with it. stdout and stderr are read to the end;
 * the first `maxOutputBytes` of each are kept and the rest dropped (`truncated`), so a chatty program
 * runs to its end rather than blocking on a full pipe. stdin is /dev/null. The program gets this
 * process's environment without the HOLDFAST_* variables (a key given as HOLDFAST_KEY stays here).
 * A program that does not exist is HF_ERR_NOT_FOUND; one that cannot start for another reason
 * (permissions, resources) is HF_ERR_OP_FAILED with the system's code.
 */
import { spawn } from 'node:child_process';
import { ErrorCode, hfError } from '../../firmware/errors';
import type { RunRequest, RunResult } from '../../hal/management';

/** After the kill, how long to wait for the pipes to close before answering anyway, ms. */
const CLOSE_GRACE_MS = 2000;

export function runProgram(req: RunRequest): Promise<RunResult> {
  const [file, args] = req.shell ? ['/bin/sh', ['-c', req.argv[0]]] : [req.argv[0], req.argv.slice(1)];
  const t0 = performance.now();
  return new Promise<RunResult>((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(file, args, { shell: false, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(), detached: process.platform !== 'win32', windowsHide: true });
    } catch (e) {
      reject(startError(file, e));
      return;
    }
    const out = new Capture(req.maxOutputBytes);
    const err = new Capture(req.maxOutputBytes);
    child.stdout?.on('data', (b: Buffer) => out.add(b));
    child.stderr?.on('data', (b: Buffer) => err.add(b));
    let timedOut = false;
    let settled = false;
    let grace: NodeJS.Timeout | null = null;
    const kill = () => {
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
      // A descendant that left the group could hold the pipes open: answer anyway after a grace.
      grace = setTimeout(() => finish(null, 'SIGKILL'), CLOSE_GRACE_MS);
    }, req.timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (grace !== null) clearTimeout(grace);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        exitCode: code,
        signal,
        timedOut,
        stdout: out.bytes(),
        stderr: err.bytes(),
        truncated: out.dropped > 0 || err.dropped > 0,
        durationMs: Math.round(performance.now() - t0),
      });
    };
    child.once('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (grace !== null) clearTimeout(grace);
      reject(startError(file, e));
    });
    child.once('close', (code, signal) => finish(code, signal));
  });
}

/** This process's environment without the HOLDFAST_* variables. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_')) env[k] = v;
  return env;
}

function startError(file: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return hfError(ErrorCode.NOT_FOUND, `program ${JSON.stringify(file)} does not exist`, e);
  return hfError(ErrorCode.OP_FAILED, `program ${JSON.stringify(file)} cannot start: ${code ?? (e as Error).message}`, e);
}

/** The first `max` bytes of a stream, and how many more there were. */
class Capture {
  private readonly parts: Buffer[] = [];
  private kept = 0;
  dropped = 0;

  constructor(private readonly max: number) {}

  add(b: Buffer): void {
    const room = this.max - this.kept;
    if (room >= b.length) {
      this.parts.push(b);
      this.kept += b.length;
    } else {
      if (room > 0) this.parts.push(b.subarray(0, room));
      this.kept += Math.max(0, room);
      this.dropped += b.length - Math.max(0, room);
    }
  }

  bytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}
