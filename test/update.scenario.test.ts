/**
 * `update` with automatic rollback, for real: the launcher (tools/cli/launcher-main.ts, bundled here
 * as holdfast-launcher.js) runs a device program (test/support/update-device.ts, bundled: the real
 * executor, HostManagement and journal) in child processes, in a temporary directory, talking to a
 * stand-in gateway on loopback that sends commands and, like the real one after a reconnect, sends
 * an unanswered id again on the next session.
 *
 *   0. a bundle whose bytes do not match the sha256 given: HF_ERR_BAD_ARGS, nothing written
 *   a. a good new bundle: the device restarts into it, it opens a session, the answer is ok
 *      {sha256, previous} and the launcher keeps it
 *   b. a new bundle that never opens a session (sleeps): killed after --update-confirm-ms, the
 *      previous bundle runs again, the answer is HF_ERR_ROLLED_BACK naming the time; one that exits
 *      at once: rolled back at once
 *   c. every id sent again afterwards: the same answers, nothing accepted, no process started
 * Every process is stopped by its PID at the end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { decodeValue } from '../firmware/cbor-value';
import { type Answer, decodeReply, encodeCommand, type Reply } from '../firmware/manage/command';
import { ItemReader, itemHeader } from '../firmware/manage/items';
import { sleep, within } from './support/within';
import { alive } from './support/host';

const CONFIRM_MS = 1500;
const root = path.resolve(__dirname, '..');
let T = '';
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** One session of a device: its hello and the replies that came on it. */
interface Conn {
  sock: net.Socket;
  hello: { hello: string | null; pid: number };
  replies: Reply[];
  closed: boolean;
}

/** The stand-in gateway: every connection, in order. */
class Gateway {
  readonly conns: Conn[] = [];
  /** Every socket, with a hello or not yet (all destroyed on close). */
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;

  async listen(): Promise<number> {
    this.server = net.createServer((sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      const reader = new ItemReader();
      let conn: Conn | null = null;
      sock.on('data', (chunk: Buffer) => {
        for (const b of reader.push(chunk)) {
          if (conn === null) {
            conn = { sock, hello: decodeValue(b) as Conn['hello'], replies: [], closed: false };
            this.conns.push(conn);
          } else conn.replies.push(decodeReply(b));
        }
      });
      sock.on('error', () => {});
      sock.on('close', () => {
        if (conn !== null) conn.closed = true;
      });
    });
    await new Promise<void>((res) => this.server?.listen(0, '127.0.0.1', res));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The latest open session (waiting for one, and for its hello). */
  async session(what: string, ms = 10_000): Promise<Conn> {
    return within(ms, what, async () => {
      for (;;) {
        const c = this.conns[this.conns.length - 1];
        if (c !== undefined && !c.closed) return c;
        await sleep(20);
      }
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((res) => (this.server === null ? res() : this.server.close(() => res())));
  }
}

function send(c: Conn, id: string, op: string, args: Record<string, unknown>): void {
  const b = encodeCommand({ id, op, args, deadlineMs: 60_000 });
  c.sock.write(Buffer.concat([itemHeader(b.length), b]));
}

/** The answer to `id` on `c` (not an accepted notice), waited for. */
function answer(c: Conn, id: string, ms = 10_000): Promise<Answer> {
  return within(ms, `the answer to ${id}`, async () => {
    for (;;) {
      const r = c.replies.find((x) => x.id === id && !('accepted' in x));
      if (r !== undefined) return r as Answer;
      await sleep(10);
    }
  });
}

function closed(c: Conn, what: string): Promise<void> {
  return within(10_000, what, async () => {
    while (!c.closed) await sleep(10);
  });
}

const errOf = (a: Answer): { code: string; message: string } => ('error' in a ? a.error : { code: 'ok', message: JSON.stringify(a.ok) });

let gw: Gateway | null = null;
let launcher: ChildProcess | null = null;
let output = '';

test.before(() => {
  T = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-update-')));
  const common = { bundle: true, platform: 'node' as const, target: 'node18', format: 'cjs' as const, logLevel: 'warning' as const, absWorkingDir: root };
  buildSync({ ...common, entryPoints: [path.join(root, 'tools/cli/launcher-main.ts')], outfile: path.join(T, 'holdfast-launcher.js') });
  buildSync({ ...common, entryPoints: [path.join(root, 'test/support/update-device.ts')], outfile: path.join(T, 'device-a.js') });
  fs.writeFileSync(path.join(T, 'device-b.js'), fs.readFileSync(path.join(T, 'device-a.js'), 'utf8') + '\n// b: the same program, other bytes\n');
  fs.mkdirSync(path.join(T, 'state'));
});

test.after(async () => {
  const pid = launcher?.pid;
  if (pid !== undefined && alive(pid)) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  // A device child the launcher could not stop (it never should), by its PID from its hello.
  for (const c of gw?.conns ?? []) if (alive(c.hello.pid)) process.kill(c.hello.pid, 'SIGKILL');
  await gw?.close();
  if (T !== '') fs.rmSync(T, { recursive: true, force: true });
});

test('update: kept when the new bundle opens a session, rolled back when it does not, each id answered once', async () => {
  gw = new Gateway();
  const port = await gw.listen();
  const dir = path.join(T, 'launcher');
  const bundles = (): string[] => fs.readdirSync(path.join(dir, 'bundles')).sort();
  const state = () => JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
  const A = fs.readFileSync(path.join(T, 'device-a.js'));
  const B = fs.readFileSync(path.join(T, 'device-b.js'));
  const SLEEPS = Buffer.from('setInterval(() => {}, 1000);\n');
  const EXITS = Buffer.from('process.exit(3);\n');
  launcher = spawn(
    process.execPath,
    [
      path.join(T, 'holdfast-launcher.js'),
      '--dir',
      dir,
      '--bundle',
      path.join(T, 'device-a.js'),
      '--update-confirm-ms',
      String(CONFIRM_MS),
      '--kill-grace-ms',
      '1000',
      '--',
      String(port),
      path.join(T, 'state'),
      '50',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  launcher.stdout?.on('data', (d) => (output += d));
  launcher.stderr?.on('data', (d) => (output += d));
  const diag = (): string => `\n--- launcher and device output ---\n${output}`;
  try {
    let c = await gw.session('the first device');
    assert.is(c.hello.hello, sha(A), 'the launcher runs the --bundle file, named by its sha256');

    // 0. The bytes do not hash to the sha256 given: refused, nothing written.
    send(c, 'u0', 'update', { bundle: B, sha256: sha(A) });
    const u0 = errOf(await answer(c, 'u0'));
    assert.is(u0.code, 'HF_ERR_BAD_ARGS');
    assert.ok(u0.message.includes(sha(B)), u0.message);
    assert.equal(bundles(), [`${sha(A)}.js`]);
    assert.is(fs.existsSync(path.join(dir, 'request.json')), false);

    // a. A good bundle: accepted, the device restarts into it, and the new one answers.
    send(c, 'u1', 'update', { bundle: B, sha256: sha(B) });
    await closed(c, 'the device restarting for u1');
    assert.ok(
      c.replies.some((r) => r.id === 'u1' && 'accepted' in r),
      'accepted first' + diag(),
    );
    assert.is(
      c.replies.find((r) => r.id === 'u1' && !('accepted' in r)),
      undefined,
      'no answer from the old bundle',
    );
    c = await gw.session('the new bundle');
    assert.is(c.hello.hello, sha(B), 'the new bundle runs' + diag());
    send(c, 'u1', 'update', { bundle: B, sha256: sha(B) }); // the gateway sends an unanswered id again
    const u1 = await answer(c, 'u1');
    assert.equal(u1, { id: 'u1', ok: { sha256: sha(B), previous: sha(A) } }, diag());
    await within(5000, 'the launcher keeping the new bundle', async () => {
      while (state().phase !== 'stable') await sleep(20);
    });
    assert.equal([state().current, state().previous, state().last.result], [sha(B), sha(A), 'confirmed']);

    // b. A bundle that never opens a session: rolled back after CONFIRM_MS.
    send(c, 'u2', 'update', { bundle: SLEEPS, sha256: sha(SLEEPS) });
    await closed(c, 'the device restarting for u2');
    const t0 = Date.now();
    c = await gw.session('the previous bundle, back after the rollback', CONFIRM_MS + 10_000);
    const took = Date.now() - t0;
    assert.is(c.hello.hello, sha(B), 'the bundle from before runs again' + diag());
    assert.ok(took >= CONFIRM_MS - 100, `rolled back after the confirm time, not before (${took} ms)`);
    send(c, 'u2', 'update', { bundle: SLEEPS, sha256: sha(SLEEPS) });
    const u2 = errOf(await answer(c, 'u2'));
    assert.is(u2.code, 'HF_ERR_ROLLED_BACK', diag());
    assert.ok(u2.message.includes(`within ${CONFIRM_MS} ms`) && u2.message.includes(sha(SLEEPS).slice(0, 12)), u2.message);
    assert.equal([state().current, state().last.result, state().last.sha256], [sha(B), 'rolled-back', sha(SLEEPS)]);

    // b'. A bundle that exits at once: rolled back at once.
    send(c, 'u3', 'update', { bundle: EXITS, sha256: sha(EXITS) });
    await closed(c, 'the device restarting for u3');
    const t1 = Date.now();
    c = await gw.session('the previous bundle, back after the crash', CONFIRM_MS + 10_000);
    assert.ok(Date.now() - t1 < CONFIRM_MS, `no need to wait for the confirm time when the new bundle ended (${Date.now() - t1} ms)`);
    assert.is(c.hello.hello, sha(B));
    send(c, 'u3', 'update', { bundle: EXITS, sha256: sha(EXITS) });
    const u3 = errOf(await answer(c, 'u3'));
    assert.is(u3.code, 'HF_ERR_ROLLED_BACK');
    assert.ok(u3.message.includes('exit code 3'), u3.message);

    // c. Every id again: the same answers from the journal, nothing accepted, nothing started.
    const sessions = gw.conns.length;
    const before = { state: state(), bundles: bundles() };
    const first = { u0, u1, u2, u3 };
    const seen = c.replies.length;
    for (const id of ['u0', 'u1', 'u2', 'u3']) send(c, id, 'update', { bundle: SLEEPS, sha256: sha(SLEEPS) });
    assert.equal(errOf(await answer(c, 'u0')), first.u0);
    await within(5000, 'the answers again', async () => {
      while (c.replies.length < seen + 4) await sleep(10);
    });
    const again = c.replies.slice(seen);
    assert.is(again.filter((r) => 'accepted' in r).length, 0, 'nothing accepted: nothing ran');
    assert.equal(
      again.find((r) => r.id === 'u1'),
      first.u1,
    );
    assert.equal(errOf(again.find((r) => r.id === 'u2') as Answer), first.u2);
    assert.equal(errOf(again.find((r) => r.id === 'u3') as Answer), first.u3);
    await sleep(300);
    assert.is(gw.conns.length, sessions, 'no restart');
    assert.equal({ state: state(), bundles: bundles() }, before, "the launcher's files did not change");
    assert.ok(!c.closed);
  } catch (e) {
    process.stderr.write(diag());
    throw e;
  }

  // Stopped by its PID: the launcher stops its device first.
  const pid = launcher.pid as number;
  const device = gw.conns[gw.conns.length - 1].hello.pid;
  process.kill(pid, 'SIGTERM');
  await within(5000, 'the launcher stopping', async () => {
    while (alive(pid) || alive(device)) await sleep(20);
  });
});

test.run();
