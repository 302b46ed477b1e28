/**
 * `update` answered across the restart it causes: the pending-update record
 * (firmware/manage/update-record.ts) as bytes and as a table of outcomes, and the executor over the
 * sim target's stand-in launcher — staged, restarted without an answer, then answered by the next
 * executor over the same storage (ok once a session opened, HF_ERR_ROLLED_BACK, HF_ERR_INTERRUPTED),
 * one update at a time, the record removed once answered, and a repeat answered from the journal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Answer, Command } from '../firmware/manage/command';
import { Executor } from '../firmware/manage/executor';
import { decodePendingUpdate, encodePendingUpdate, type PendingUpdate, resolveUpdate, UPDATE_KEY } from '../firmware/manage/update-record';
import { encodeValue } from '../firmware/cbor-value';
import type { UpdateStatus } from '../hal/management';
import { SimClock } from '../targets/sim/clock';
import { SimGpio } from '../targets/sim/gpio';
import { SimManagement } from '../targets/sim/manage';
import { MemoryStorage } from '../targets/sim/storage';
import { SimSystem } from '../targets/sim/system';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(64);
const OTHER = 'c'.repeat(64);

const rec: PendingUpdate = { id: 'u1', sha256: NEW, previous: OLD };

test('pending-update record: round trip, and what is not one is null', () => {
  assert.equal(decodePendingUpdate(encodePendingUpdate(rec)), rec);
  assert.equal(decodePendingUpdate(encodePendingUpdate({ ...rec, previous: null })), { ...rec, previous: null });
  const bad = [
    new Uint8Array([0xff]),
    new Uint8Array(0),
    encodeValue({ v: 2, id: 'u1', sha256: NEW, previous: OLD }),
    encodeValue({ v: 1, id: 7, sha256: NEW, previous: OLD }),
    encodeValue({ v: 1, id: 'u1', sha256: 'B'.repeat(64), previous: OLD }),
    encodeValue({ v: 1, id: 'u1', sha256: NEW, previous: 'x' }),
    encodeValue([1, 'u1']),
  ];
  for (const b of bad) assert.is(decodePendingUpdate(b), null, Buffer.from(b).toString('hex'));
});

test('resolveUpdate: the outcome from what the launcher says', () => {
  const st = (running: string, trial: boolean, last: UpdateStatus['last'] = null): UpdateStatus => ({ running, trial, last });
  const table: [string, UpdateStatus | null, string][] = [
    ['no launcher any more', null, 'interrupted'],
    ['the new bundle runs, trial over', st(NEW, false, { sha256: NEW, result: 'confirmed', reason: '' }), 'answer ok'],
    ['the new bundle runs on trial', st(NEW, true), 'await-session ok'],
    ['rolled back', st(OLD, false, { sha256: NEW, result: 'rolled-back', reason: 'it ended (exit code 3)' }), 'answer HF_ERR_ROLLED_BACK'],
    ['the old bundle runs, never tried', st(OLD, false), 'interrupted'],
    ['the old bundle runs, another was rolled back', st(OLD, false, { sha256: OTHER, result: 'rolled-back', reason: 'x' }), 'interrupted'],
    ['the old bundle runs, the new one was confirmed once (then flashed over)', st(OLD, false, { sha256: NEW, result: 'confirmed', reason: '' }), 'interrupted'],
  ];
  for (const [what, status, want] of table) {
    const r = resolveUpdate(rec, status);
    const got = r.kind === 'interrupted' ? 'interrupted' : `${r.kind} ${'ok' in r.answer ? 'ok' : r.answer.error.code}`;
    assert.is(got, want, what);
    if (r.kind !== 'interrupted' && 'ok' in r.answer) assert.equal(r.answer.ok, { sha256: NEW, previous: OLD }, what);
  }
  const rb = resolveUpdate(rec, st(OLD, false, { sha256: NEW, result: 'rolled-back', reason: 'it ended (exit code 3)' }));
  assert.ok(rb.kind === 'answer' && 'error' in rb.answer);
  const msg = rb.kind === 'answer' && 'error' in rb.answer ? rb.answer.error.message : '';
  assert.ok(msg.includes('bbbbbbbbbbbb') && msg.includes('aaaaaaaaaaaa') && msg.includes('exit code 3'), msg);
});

/** A board whose launcher says `status`; `storage` survives "restarts" (a new executor over it). */
function board(status: UpdateStatus | undefined, storage = new MemoryStorage()): { m: SimManagement; storage: MemoryStorage } {
  const clock = new SimClock();
  return { m: new SimManagement({ system: new SimSystem(clock), gpio: new SimGpio(), launcher: status }), storage };
}

const upd = (id: string, sha256 = NEW): Command => ({ id, op: 'update', args: { bundle: new Uint8Array([1, 2, 3]), sha256 }, deadlineMs: 60_000 });
const errCode = (a: Answer): string => ('error' in a ? a.error.code : 'ok');
/** Resolves to the answer, or 'pending' if there is none after a few turns of the event loop. */
const soon = (p: Promise<Answer>): Promise<Answer | 'pending'> => Promise.race([p, new Promise<'pending'>((res) => setTimeout(() => res('pending'), 20))]);

/** The old process: runs update `id`, which stages the bundle and restarts without answering. */
async function stage(storage: MemoryStorage, id: string): Promise<SimManagement> {
  const { m } = board({ running: OLD, trial: false, last: null }, storage);
  const ex = new Executor(m, storage, { restartDelayMs: 5 });
  const accepted: string[] = [];
  const p = ex.execute(upd(id), (x) => accepted.push(x));
  assert.is(await soon(p), 'pending', 'no answer before the restart');
  assert.equal(accepted, [id]);
  assert.equal(
    m.staged.map((s) => s.sha256),
    [NEW],
  );
  assert.equal(m.restarts, [5]);
  assert.equal(decodePendingUpdate(storage.read(UPDATE_KEY) as Uint8Array), { id, sha256: NEW, previous: OLD });
  assert.is(errCode((await soon(ex.execute(upd('u-other', OTHER)))) as Answer), 'HF_ERR_BUSY', 'one update at a time');
  assert.is(await soon(ex.execute(upd(id))), 'pending', 'a re-send waits for the same run');
  return m;
}

test('update, new bundle kept: on trial the answer waits for a session, then ok {sha256, previous}', async () => {
  const storage = new MemoryStorage();
  await stage(storage, 'u1');
  // The launcher started the new bundle on trial.
  const { m } = board({ running: NEW, trial: true, last: null }, storage);
  const ex = new Executor(m, storage);
  assert.equal(ex.interrupted, [], 'not answered HF_ERR_INTERRUPTED');
  assert.is(ex.awaitingSession, 'u1');
  const early = ex.execute(upd('u1'));
  assert.is(await soon(early), 'pending', 'no answer before the trial ends');
  assert.is(errCode((await soon(ex.execute(upd('u2', OTHER)))) as Answer), 'HF_ERR_BUSY');
  ex.sessionOpened();
  assert.is(m.confirms, 1, 'the launcher was told');
  assert.equal(await early, { id: 'u1', ok: { sha256: NEW, previous: OLD } });
  assert.is(storage.read(UPDATE_KEY), null, 'record removed once answered');
  ex.sessionOpened();
  assert.is(m.confirms, 1, 'once');
  // The launcher kept it; the next start (a reconnect, a restart) answers from the journal.
  const again = new Executor(board({ running: NEW, trial: false, last: { sha256: NEW, result: 'confirmed', reason: '' } }, storage).m, storage);
  assert.equal(await again.execute(upd('u1')), { id: 'u1', ok: { sha256: NEW, previous: OLD } });
});

test('update, power cut after the confirmation, before the answer was recorded: ok from the launcher', async () => {
  const storage = new MemoryStorage();
  await stage(storage, 'u1');
  const ex = new Executor(board({ running: NEW, trial: false, last: { sha256: NEW, result: 'confirmed', reason: '' } }, storage).m, storage);
  assert.equal(await ex.execute(upd('u1')), { id: 'u1', ok: { sha256: NEW, previous: OLD } });
  assert.is(storage.read(UPDATE_KEY), null);
});

test('update, rolled back: the old bundle answers HF_ERR_ROLLED_BACK with the reason, once', async () => {
  const storage = new MemoryStorage();
  await stage(storage, 'u1');
  const status: UpdateStatus = { running: OLD, trial: false, last: { sha256: NEW, result: 'rolled-back', reason: 'the new bundle did not open a session within 1500 ms' } };
  const ex = new Executor(board(status, storage).m, storage);
  assert.equal(ex.interrupted, []);
  const a = await ex.execute(upd('u1'));
  assert.is(errCode(a), 'HF_ERR_ROLLED_BACK');
  assert.ok('error' in a && a.error.message.includes('1500 ms'), JSON.stringify(a));
  assert.is(storage.read(UPDATE_KEY), null);
  const after = board(status, storage).m;
  assert.equal(await new Executor(after, storage).execute(upd('u1')), a, 'the same answer from the journal');
  assert.equal(after.staged, [], 'nothing staged again');
});

test('update that never got to a trial: HF_ERR_INTERRUPTED, not run again', async () => {
  const storage = new MemoryStorage();
  await stage(storage, 'u1');
  const { m } = board({ running: OLD, trial: false, last: null }, storage);
  const ex = new Executor(m, storage);
  assert.equal(ex.interrupted, ['u1']);
  assert.is(errCode(await ex.execute(upd('u1'))), 'HF_ERR_INTERRUPTED');
  assert.equal(m.staged, []);
  assert.is(storage.read(UPDATE_KEY), null);
});

test('update without a launcher: HF_ERR_UNSUPPORTED, nothing recorded beside the journal', async () => {
  const { m, storage } = board(undefined);
  const a = await new Executor(m, storage).execute(upd('u1'));
  assert.is(errCode(a), 'HF_ERR_UNSUPPORTED');
  assert.is(storage.read(UPDATE_KEY), null);
  assert.equal(m.restarts, []);
});

test('a staging that fails is the answer, and the record goes', async () => {
  const { m, storage } = board({ running: OLD, trial: false, last: null });
  m.update = () => Promise.reject(Object.assign(new Error('disk full'), {}));
  const a = await new Executor(m, storage).execute(upd('u1'));
  assert.is(errCode(a), 'HF_ERR_OP_FAILED');
  assert.is(storage.read(UPDATE_KEY), null);
  assert.equal(m.restarts, []);
});

test('a bundle put on trial by hand (no pending update): sessionOpened still ends the trial', () => {
  const { m, storage } = board({ running: NEW, trial: true, last: null });
  const ex = new Executor(m, storage);
  assert.is(ex.awaitingSession, null);
  ex.sessionOpened();
  assert.is(m.confirms, 1);
});

test.run();
