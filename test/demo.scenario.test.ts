/**
 * `npm start` does what README says: a gateway and a device on loopback, a fallback to HTTP while
 * direct TCP is blocked, the move to TCP when it opens, messages and a forwarded port working the
 * whole time; and it stops cleanly on Ctrl-C (SIGINT to its process group, as a terminal sends it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { ROOT } from './support/host';
import { within } from './support/within';

function npmStart(args: string[]): { out: () => string; exit: Promise<number | null>; pid: number } {
  const child = spawn('npm', ['start', '--silent', '--', ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { out: () => out, exit, pid: child.pid as number };
}

test('npm start: HTTP while TCP is blocked, then TCP; messages and the forwarded port work; stops by itself', async () => {
  const run = npmStart(['--seconds', '7']);
  try {
    const code = await within(40_000, 'npm start --seconds 7', () => run.exit);
    const out = run.out();
    assert.is(code, 0, out);
    assert.match(out, /device: now on http \(tcp failed: ECONNREFUSED\)/);
    assert.match(out, /device: now on tcp/);
    assert.match(out, /^.*http {2}readings sent \d+, acks back \d+, forwarded port echoed "ping through the tunnel"/m);
    assert.match(out, /^.*tcp {3}readings sent \d+, acks back \d+, forwarded port echoed "ping through the tunnel"/m);
    assert.match(out, /stopped: (\d+) readings sent, \1 acknowledged by the gateway: every one, once/);
  } finally {
    try {
      process.kill(-run.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

test('npm start stops cleanly on Ctrl-C', async () => {
  const run = npmStart([]);
  try {
    await within(30_000, 'session open', async () => {
      while (!/device: session open/.test(run.out())) await new Promise((r) => setTimeout(r, 50));
    });
    process.kill(-run.pid, 'SIGINT');
    const code = await within(15_000, 'exit after Ctrl-C', () => run.exit);
    const out = run.out();
    assert.match(out, /stopping \(Ctrl-C\)/);
    assert.match(out, /stopped: \d+ readings sent/);
    assert.ok(code === 0 || code === 130 || code === null, `exit status ${code}\n${out}`);
  } finally {
    try {
      process.kill(-run.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

test.run();
