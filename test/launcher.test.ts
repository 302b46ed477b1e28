/**
 * The launcher (targets/host/device/launcher.ts) on what it finds in its directory when it starts:
 * the first --bundle, the same file again, a new flash (also during a trial or over a staged update:
 * the flashed bundle wins, `previous` is the last proved one), a trial left by a power cut (rolled back, or
 * kept when its confirmation had been written), a stale or bad request, nothing to run, a state file
 * it did not write. Children are tiny scripts; each launcher is stopped (its child by PID) at the end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Launcher } from '../targets/host/device/launcher';
import { bundlePath, confirmedPath, type LauncherState, readState, requestPath, writeState } from '../targets/host/device/launcher-files';
import { silentLog } from '../targets/node/log';
import { code } from './support/errors';

let T = '';
const running: Launcher[] = [];
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const A = 'setInterval(() => {}, 1000); // a\n';
const B = 'setInterval(() => {}, 1000); // b\n';

test.before(() => {
  T = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-launcher-')));
});
test.after(async () => {
  for (const l of running) await l.stop();
  if (T !== '') fs.rmSync(T, { recursive: true, force: true });
});

let n = 0;
function fresh(): string {
  const d = path.join(T, `d${++n}`);
  fs.mkdirSync(d);
  return d;
}

function launcher(dir: string, bundle: string | null = null): Launcher {
  const l = new Launcher({ dir, args: [], bundle, updateConfirmMs: 60_000, killGraceMs: 500, log: silentLog });
  running.push(l);
  return l;
}

/** Puts a bundle into `dir`'s store as update would. */
function store(dir: string, text: string): string {
  const f = bundlePath(dir, sha(text));
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return sha(text);
}

test('--bundle: taken in the first time, not again when unchanged, and a new flash becomes current', async () => {
  const dir = fresh();
  const file = path.join(dir, 'holdfast-device.js');
  fs.writeFileSync(file, A);
  const l1 = launcher(path.join(dir, 'L'), file);
  l1.start();
  assert.is(l1.phase, 'running');
  assert.ok(l1.pid !== null);
  const s1 = readState(path.join(dir, 'L')) as LauncherState;
  assert.equal([s1.phase, s1.current, s1.previous, s1.installed], ['stable', sha(A), null, sha(A)]);
  await l1.stop();
  await l1.stop();
  assert.is(l1.phase, 'stopped');
  // An update since (B current), then a restart with the same --bundle file: B stays.
  const L = path.join(dir, 'L');
  store(L, B);
  writeState(L, { ...s1, current: sha(B), previous: sha(A) });
  const l2 = launcher(L, file);
  l2.start();
  assert.is((readState(L) as LauncherState).current, sha(B), 'the same file is not taken in again');
  await l2.stop();
  // A new flash: the file changed.
  const C = 'setInterval(() => {}, 1000); // c\n';
  fs.writeFileSync(file, C);
  const l3 = launcher(L, file);
  l3.start();
  const s3 = readState(L) as LauncherState;
  assert.equal([s3.current, s3.previous, s3.installed], [sha(C), sha(B), sha(C)]);
  assert.equal(fs.readdirSync(path.join(L, 'bundles')).sort(), [`${sha(B)}.js`, `${sha(C)}.js`].sort(), 'what is neither current nor previous is removed');
  await l3.stop();
});

test('a trial found on start (power cut during it) is rolled back, and its request removed', async () => {
  const L = fresh();
  store(L, A);
  store(L, B);
  writeState(L, { v: 1, phase: 'trial', current: sha(B), previous: sha(A), installed: sha(A), last: null });
  fs.writeFileSync(requestPath(L), JSON.stringify({ sha256: sha(B) })); // cut before the request was removed
  const l = launcher(L);
  l.start();
  const s = readState(L) as LauncherState;
  assert.equal([s.phase, s.current, s.last?.result, s.last?.sha256], ['stable', sha(A), 'rolled-back', sha(B)]);
  assert.ok(s.last?.reason.includes('during the trial'), s.last?.reason);
  assert.is(fs.existsSync(requestPath(L)), false, 'not tried again');
  assert.is(l.phase, 'running');
  await l.stop();
});

test('a trial found on start whose confirmation was written is kept', async () => {
  const L = fresh();
  store(L, A);
  store(L, B);
  writeState(L, { v: 1, phase: 'trial', current: sha(B), previous: sha(A), installed: sha(A), last: null });
  fs.writeFileSync(confirmedPath(L), `${sha(B)}\n`);
  const l = launcher(L);
  l.start();
  const s = readState(L) as LauncherState;
  assert.equal([s.phase, s.current, s.previous, s.last?.result], ['stable', sha(B), sha(A), 'confirmed']);
  assert.is(fs.existsSync(confirmedPath(L)), false);
  await l.stop();
});

test('a request staged before a power cut is tried on start; one whose bytes do not match is dropped', async () => {
  const L = fresh();
  store(L, A);
  store(L, B);
  writeState(L, { v: 1, phase: 'stable', current: sha(A), previous: null, installed: sha(A), last: null });
  fs.writeFileSync(requestPath(L), JSON.stringify({ sha256: sha(B) }));
  const l = launcher(L);
  l.start();
  assert.is(l.phase, 'trial');
  assert.equal([(readState(L) as LauncherState).current, (readState(L) as LauncherState).previous], [sha(B), sha(A)]);
  assert.is(fs.existsSync(requestPath(L)), false);
  await l.stop();

  const M = fresh();
  store(M, A);
  const fake = 'f'.repeat(64);
  fs.writeFileSync(bundlePath(M, fake), B);
  writeState(M, { v: 1, phase: 'stable', current: sha(A), previous: null, installed: sha(A), last: null });
  fs.writeFileSync(requestPath(M), JSON.stringify({ sha256: fake }));
  const m = launcher(M);
  m.start();
  assert.is(m.phase, 'running', 'not tried');
  assert.is((readState(M) as LauncherState).current, sha(A));
  assert.is(fs.existsSync(requestPath(M)), false);
  await m.stop();
});

test('a new flash during a trial or over a staged update: the flashed bundle is current, previous the last proved one, the request dropped', async () => {
  const C = 'setInterval(() => {}, 1000); // c\n';
  const dir = fresh();
  const file = path.join(dir, 'holdfast-device.js');
  // A trial of B (over A) cut by a power failure, then a flash of C.
  const L = path.join(dir, 'L');
  store(L, A);
  store(L, B);
  writeState(L, { v: 1, phase: 'trial', current: sha(B), previous: sha(A), installed: sha(A), last: null });
  fs.writeFileSync(file, C);
  const l = launcher(L, file);
  l.start();
  const s = readState(L) as LauncherState;
  assert.equal([s.phase, s.current, s.previous, s.installed], ['stable', sha(C), sha(A), sha(C)], 'B never proved itself: A is what a rollback puts back');
  assert.is(l.phase, 'running');
  await l.stop();
  // An update to B staged (request.json) when the flash of D stopped the device: D runs, not B.
  const D = 'setInterval(() => {}, 1000); // d\n';
  store(L, B);
  fs.writeFileSync(requestPath(L), JSON.stringify({ sha256: sha(B) }));
  fs.writeFileSync(file, D);
  const m = launcher(L, file);
  m.start();
  const t = readState(L) as LauncherState;
  assert.equal([m.phase, t.phase, t.current, t.previous], ['running', 'stable', sha(D), sha(C)]);
  assert.is(fs.existsSync(requestPath(L)), false, 'the staged update was dropped');
  assert.equal(fs.readdirSync(path.join(L, 'bundles')).sort(), [`${sha(C)}.js`, `${sha(D)}.js`].sort());
  await m.stop();
});

test('nothing to run, a bad state file, bad options: refused with codes', () => {
  assert.is(
    code(() => launcher(fresh()).start()),
    'HF_ERR_OPTION',
  );
  const L = fresh();
  fs.writeFileSync(path.join(L, 'state.json'), '{"v": 1, "phase": "maybe"}');
  assert.is(
    code(() => launcher(L).start()),
    'HF_ERR_STATE',
  );
  assert.is(
    code(() => new Launcher({ dir: '', args: [], log: silentLog })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new Launcher({ dir: L, args: [], updateConfirmMs: 0, log: silentLog })),
    'HF_ERR_OPTION',
  );
});

test.run();
