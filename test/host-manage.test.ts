/**
 * The host target's Management (targets/host/manage.ts, run-program.ts, manage-files.ts) on this
 * machine: real programs (argv, a shell only when asked, a time limit that kills the whole process
 * group, output capped), real files (inside the allowed directories only, with `..` and symbolic
 * links that climb out refused, written atomically), the config file, restart and update; then the
 * executor over it with file storage, across a restart.
 * Everything happens in one temporary directory, removed at the end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Executor } from '../firmware/manage/executor';
import { HostManagement } from '../targets/host/manage';
import { readFileUnder, writeAtomic, writeFileUnder } from '../targets/host/manage-files';
import { runProgram } from '../targets/host/run-program';
import { platform } from '../targets/host/platform';
import { FileStorage } from '../targets/node/storage';
import { code, failure } from './support/errors';
import { createHash } from 'node:crypto';
import { launcherFromEnv } from '../targets/host/device/launcher-child';

let TMP = '';
const tmp = (...p: string[]): string => path.join(TMP, ...p);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const req = (argv: string[], more: Partial<{ shell: boolean; timeoutMs: number; maxOutputBytes: number }> = {}) => ({ argv, shell: false, timeoutMs: 10_000, maxOutputBytes: 65536, ...more });

test.before(() => {
  TMP = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-manage-')));
  fs.mkdirSync(tmp('allowed', 'sub'), { recursive: true });
  fs.mkdirSync(tmp('outside'));
  fs.writeFileSync(tmp('outside', 'secret'), 'secret');
  fs.symlinkSync(tmp('outside'), tmp('allowed', 'escape'));
  fs.symlinkSync(tmp('outside', 'secret'), tmp('allowed', 'secret-link'));
  fs.writeFileSync(tmp('allowed', 'inside'), 'inside');
  fs.symlinkSync(tmp('allowed', 'inside'), tmp('allowed', 'inside-link'));
});
test.after(() => {
  if (TMP !== '') fs.rmSync(TMP, { recursive: true, force: true });
});

test('run: argv without a shell, exit status, stderr', async () => {
  const r = await runProgram(req(['/bin/echo', 'a b', '$HOME', ';', 'ls']));
  assert.is(text(r.stdout), 'a b $HOME ; ls\n', 'arguments reach the program as they are: no shell');
  assert.equal([r.exitCode, r.signal, r.timedOut, r.truncated], [0, null, false, false]);
  const f = await runProgram(req(['/bin/sh', '-c', 'echo oops >&2; exit 3']));
  assert.equal([f.exitCode, text(f.stderr)], [3, 'oops\n']);
  const sh = await runProgram(req(['echo $((6 * 7))'], { shell: true }));
  assert.is(text(sh.stdout), '42\n');
  process.env.HOLDFAST_KEY = 'k-secret';
  process.env.HF_TEST_VISIBLE = 'seen';
  try {
    const env = text((await runProgram(req(['/usr/bin/env']))).stdout);
    assert.ok(env.includes('HF_TEST_VISIBLE=seen') && !env.includes('k-secret'), 'the environment, without HOLDFAST_*');
  } finally {
    delete process.env.HOLDFAST_KEY;
    delete process.env.HF_TEST_VISIBLE;
  }
});

test('run: a program past its time limit is killed, with its whole process group', async () => {
  const pidFile = tmp('grandchild.pid');
  const t0 = Date.now();
  const r = await runProgram(req([`sleep 30 & echo $! > ${pidFile}; wait`], { shell: true, timeoutMs: 300 }));
  const took = Date.now() - t0;
  assert.is(r.timedOut, true);
  assert.is(r.signal, 'SIGKILL');
  assert.is(r.exitCode, null);
  assert.ok(took >= 290 && took < 5000, `killed after ${took} ms`);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  await new Promise((res) => setTimeout(res, 100));
  let state = 'gone';
  try {
    state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0];
  } catch {
    // no such process
  }
  assert.ok(state === 'gone' || state === 'Z', `the shell's child ${pid} was killed too (state ${state})`);
  const plain = await runProgram(req(['/bin/sleep', '30'], { timeoutMs: 200 }));
  assert.equal([plain.timedOut, plain.signal], [true, 'SIGKILL']);
});

test('run: output beyond maxOutputBytes is read and dropped, the program runs to its end', async () => {
  const r = await runProgram(req(['/bin/sh', '-c', 'head -c 1000000 /dev/zero; echo done >&2'], { maxOutputBytes: 1000 }));
  assert.is(r.stdout.length, 1000);
  assert.is(r.truncated, true);
  assert.is(r.exitCode, 0);
  assert.is(text(r.stderr), 'done\n');
});

test('run: a program that does not exist is HF_ERR_NOT_FOUND; one that cannot start HF_ERR_OP_FAILED', async () => {
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'no error',
      (e) => e.code,
    );
  assert.is(await codeOf(runProgram(req([tmp('no-such-program')]))), 'HF_ERR_NOT_FOUND');
  fs.writeFileSync(tmp('not-executable'), '#!/bin/sh\n', { mode: 0o644 });
  assert.is(await codeOf(runProgram(req([tmp('not-executable')]))), 'HF_ERR_OP_FAILED');
});

test('files: read and write inside the allowed directories', () => {
  const allowed = [tmp('allowed')];
  writeFileUnder(tmp('allowed', 'sub', 'f.txt'), new TextEncoder().encode('hello'), 0o640, allowed);
  assert.is(fs.readFileSync(tmp('allowed', 'sub', 'f.txt'), 'utf8'), 'hello');
  assert.is(fs.statSync(tmp('allowed', 'sub', 'f.txt')).mode & 0o777, 0o640);
  assert.is(text(readFileUnder(tmp('allowed', 'sub', 'f.txt'), allowed, 5)), 'hello');
  assert.is(text(readFileUnder(tmp('allowed', 'inside-link'), allowed, 100)), 'inside', 'a link that stays inside is fine for reading');
  assert.is(
    code(() => readFileUnder(tmp('allowed', 'sub', 'f.txt'), allowed, 4)),
    'HF_ERR_OVERSIZE',
  );
  assert.is(
    code(() => readFileUnder(tmp('allowed', 'none'), allowed, 4)),
    'HF_ERR_NOT_FOUND',
  );
  assert.is(
    code(() => readFileUnder(tmp('allowed', 'sub'), allowed, 4)),
    'HF_ERR_BAD_ARGS',
  );
  assert.is(
    code(() => writeFileUnder(tmp('allowed', 'no', 'dir', 'f'), new Uint8Array(1), 0o644, allowed)),
    'HF_ERR_NOT_FOUND',
  );
});

test('files: outside the allowed directories, and symbolic links that climb out, are HF_ERR_NOT_ALLOWED', () => {
  const allowed = [tmp('allowed')];
  const data = new TextEncoder().encode('x');
  assert.is(
    code(() => writeFileUnder(tmp('outside', 'new'), data, 0o644, allowed)),
    'HF_ERR_NOT_ALLOWED',
  );
  const esc = failure(() => writeFileUnder(tmp('allowed', 'escape', 'planted'), data, 0o644, allowed));
  assert.is(esc.code, 'HF_ERR_NOT_ALLOWED');
  assert.ok(esc.message.includes(`resolves to ${tmp('outside', 'planted')}`), esc.message);
  assert.not.ok(fs.existsSync(tmp('outside', 'planted')));
  assert.is(
    code(() => readFileUnder(tmp('allowed', 'secret-link'), allowed, 100)),
    'HF_ERR_NOT_ALLOWED',
  );
  assert.is(
    code(() => readFileUnder(tmp('allowed', 'escape', 'secret'), allowed, 100)),
    'HF_ERR_NOT_ALLOWED',
  );
  assert.is(
    code(() => writeFileUnder(tmp('allowed', 'secret-link'), data, 0o644, allowed)),
    'HF_ERR_NOT_ALLOWED',
    'a write never follows a link',
  );
  assert.is(
    code(() => writeFileUnder(tmp('allowed', 'inside-link'), data, 0o644, allowed)),
    'HF_ERR_NOT_ALLOWED',
    'not even one that stays inside',
  );
  assert.is(fs.readFileSync(tmp('outside', 'secret'), 'utf8'), 'secret');
  assert.is(
    code(() => writeFileUnder(tmp('allowed', 'x'), data, 0o644, [tmp('missing-dir')])),
    'HF_ERR_NOT_ALLOWED',
    'an allowed directory that does not exist allows nothing',
  );
});

test('files: writes are atomic: a new file renamed over the old, no temporary left', () => {
  const f = tmp('allowed', 'atomic');
  fs.writeFileSync(f, 'old contents');
  const reader = fs.openSync(f, 'r');
  const before = fs.statSync(f).ino;
  writeAtomic(f, new TextEncoder().encode('new'), 0o600);
  assert.is(fs.readFileSync(f, 'utf8'), 'new');
  assert.is.not(fs.statSync(f).ino, before, 'replaced by rename, not written in place');
  const buf = Buffer.alloc(64);
  assert.is(buf.subarray(0, fs.readSync(reader, buf, 0, 64, 0)).toString(), 'old contents', 'a reader of the old file still sees it whole');
  fs.closeSync(reader);
  assert.equal(
    fs.readdirSync(tmp('allowed')).filter((n) => n.endsWith('.tmp')),
    [],
  );
  // A failing write (the target is a directory) leaves no temporary file and the old state.
  fs.mkdirSync(tmp('allowed', 'adir'));
  assert.ok(failure(() => writeAtomic(tmp('allowed', 'adir'), new Uint8Array(1), 0o644)).code.startsWith('HF_ERR_'));
  assert.ok(fs.statSync(tmp('allowed', 'adir')).isDirectory());
  assert.equal(
    fs.readdirSync(tmp('allowed')).filter((n) => n.endsWith('.tmp')),
    [],
  );
});

function host(configPath: string, more: Partial<ConstructorParameters<typeof HostManagement>[0]> = {}): HostManagement {
  return new HostManagement({ configPath, system: platform.system, gpio: platform.gpio, target: 'host', ...more });
}

test('config: read, replaced atomically keeping its mode, a refused config leaves the file as it was', () => {
  const f = tmp('device.json');
  fs.writeFileSync(f, JSON.stringify({ id: 'd1' }), { mode: 0o640 });
  fs.chmodSync(f, 0o640);
  const m = host(f, {
    validateConfig: (c) => {
      if (typeof c.id !== 'string') throw Object.assign(new Error('id must be a string'), { code: 'HF_ERR_BAD_ARGS' });
    },
  });
  assert.equal(m.readConfig(), { id: 'd1' });
  m.writeConfig({ id: 'd2', forward: [] });
  assert.equal(JSON.parse(fs.readFileSync(f, 'utf8')), { id: 'd2', forward: [] });
  assert.is(fs.statSync(f).mode & 0o777, 0o640);
  assert.throws(() => m.writeConfig({ id: 3 }));
  assert.equal(m.readConfig(), { id: 'd2', forward: [] });
  assert.is(
    code(() => host(tmp('none.json')).readConfig()),
    'HF_ERR_NOT_FOUND',
  );
  fs.writeFileSync(tmp('bad.json'), '[1');
  assert.is(
    code(() => host(tmp('bad.json')).readConfig()),
    'HF_ERR_OP_FAILED',
  );
});

test('info, restart after its delay, update unsupported', async () => {
  const m = host(tmp('device.json'), { onRestart: () => restarted.push(Date.now()) });
  const restarted: number[] = [];
  const info = m.info('/');
  assert.equal([info.target, info.node, info.arch], ['host', process.version, process.arch]);
  assert.ok(typeof info.memory === 'object');
  const t0 = Date.now();
  m.restart(50);
  m.restart(50);
  await new Promise((res) => setTimeout(res, 150));
  assert.is(restarted.length, 1, 'once');
  assert.ok(restarted[0] - t0 >= 45);
  const e = await m.update(new Uint8Array(1), '0'.repeat(64)).then(
    () => 'no error',
    (x) => x.code,
  );
  assert.is(e, 'HF_ERR_UNSUPPORTED');
});

test('the executor on the host: allow-list, `..` and symlink escapes refused; at most once across a restart', async () => {
  const cfg = tmp('exec.json');
  fs.writeFileSync(cfg, JSON.stringify({ manage: { exec: ['/bin/echo'], files: [tmp('allowed')] } }));
  const stateDir = tmp('state');
  const storage = new FileStorage(stateDir);
  const m = host(cfg);
  const ex = new Executor(m, storage);
  const echo = await ex.execute({ id: 'e1', op: 'exec', args: { argv: ['/bin/echo', 'hi'] }, deadlineMs: 10_000 });
  assert.ok('ok' in echo && text(echo.ok.stdout as Uint8Array) === 'hi\n', JSON.stringify(echo));
  const cat = await ex.execute({ id: 'e2', op: 'exec', args: { argv: ['/bin/cat', '/etc/passwd'] }, deadlineMs: 10_000 });
  assert.ok('error' in cat && cat.error.code === 'HF_ERR_NOT_ALLOWED', JSON.stringify(cat));
  const data = new TextEncoder().encode('x');
  for (const [id, p] of [
    ['p1', tmp('allowed', '..', 'outside', 'dotdot')],
    ['p2', tmp('allowed', 'escape', 'planted')],
    ['p3', tmp('outside', 'direct')],
  ]) {
    const a = await ex.execute({ id, op: 'file.put', args: { path: p, data }, deadlineMs: 10_000 });
    assert.ok('error' in a && a.error.code === 'HF_ERR_NOT_ALLOWED', `${p}: ${JSON.stringify(a)}`);
  }
  assert.equal(fs.readdirSync(tmp('outside')), ['secret']);
  const put = await ex.execute({ id: 'p4', op: 'file.put', args: { path: tmp('allowed', 'put.txt'), data }, deadlineMs: 10_000 });
  assert.ok('ok' in put, JSON.stringify(put));
  storage.close();
  // The device restarts: a new executor over the same directory answers e1 from its record.
  fs.writeFileSync(cfg, JSON.stringify({ manage: { exec: [], files: [] } }));
  const again = new Executor(m, new FileStorage(stateDir));
  assert.equal(await again.execute({ id: 'e1', op: 'exec', args: { argv: ['/bin/echo', 'hi'] }, deadlineMs: 10_000 }), echo, 'the same answer, not run again (it would now be refused)');
});

test('update: without the launcher HF_ERR_UNSUPPORTED naming it; a wrong sha256 writes nothing; a good one is staged with its request', async () => {
  const reason = (p: Promise<void>) =>
    p.then(
      () => ({ code: 'no error', message: '' }),
      (x) => ({ code: x.code as string, message: x.message as string }),
    );
  const none = await reason(host(tmp('device.json')).update(new Uint8Array(1), '0'.repeat(64)));
  assert.is(none.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(none.message.includes('holdfast-launcher.js'), none.message);
  const dir = tmp('launcher');
  const old = 'a'.repeat(64);
  assert.is(launcherFromEnv({ HOLDFAST_LAUNCHER_DIR: dir }), null, 'both variables, or no launcher');
  const launcher = launcherFromEnv({ HOLDFAST_LAUNCHER_DIR: dir, HOLDFAST_BUNDLE_SHA256: old });
  assert.equal(launcher, { dir, running: old });
  const m = host(tmp('device.json'), { launcher });
  assert.equal(m.updateStatus(), { running: old, trial: false, last: null }, 'no state yet');
  const bundle = new TextEncoder().encode('console.log("v2")\n');
  const sha = createHash('sha256').update(bundle).digest('hex');
  const bad = await reason(m.update(bundle, 'f'.repeat(64)));
  assert.is(bad.code, 'HF_ERR_BAD_ARGS');
  assert.ok(bad.message.includes(sha), bad.message);
  assert.is(fs.existsSync(dir), false, 'nothing written');
  assert.is((await reason(m.update(bundle, sha))).code, 'no error');
  assert.equal(fs.readFileSync(path.join(dir, 'bundles', `${sha}.js`)), Buffer.from(bundle));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'request.json'), 'utf8')), { sha256: sha });
  assert.equal(fs.readdirSync(path.join(dir, 'bundles')), [`${sha}.js`], 'no temporary file left');
  // confirmUpdate writes the confirmation only while the running bundle is on trial.
  m.confirmUpdate();
  assert.is(fs.existsSync(path.join(dir, 'confirmed')), false);
  const state = { v: 1, phase: 'trial', current: old, previous: sha, installed: null, last: null };
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  assert.equal(m.updateStatus(), { running: old, trial: true, last: null });
  m.confirmUpdate();
  assert.is(fs.readFileSync(path.join(dir, 'confirmed'), 'utf8'), `${old}\n`);
  fs.writeFileSync(path.join(dir, 'state.json'), '{"v": 1, "phase": "maybe"}');
  assert.is(
    code(() => m.updateStatus()),
    'HF_ERR_OP_FAILED',
  );
});

test.run();
