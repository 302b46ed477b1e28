/**
 * Jobs and per-device outcomes in the store (targets/host/gateway/manage/jobs-store.ts): a job and its
 * targets made in one transaction; what a device still has to do (pending, not cancelled, not
 * expired); a final outcome recorded exactly once (later transitions refused, the first one kept,
 * also through a second connection and after reopening); the state list and the schema's CHECK agree.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Db, openStore } from '../targets/host/gateway/manage/db';
import { FINAL_STATES, isFinal, JobStore, type NewJob, PENDING_STATES, TARGET_STATES } from '../targets/host/gateway/manage/jobs-store';
import { failure } from './support/errors';

let tmp = '';
let db: Db;
let jobs: JobStore;
test.before.each(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-jobs-'));
  db = openStore(tmp);
  jobs = new JobStore(db);
});
test.after.each(() => {
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const T0 = 1_000_000;
const job = (id: string, devices: string[], more: Partial<NewJob> = {}): NewJob => ({
  id,
  op: 'info',
  args: { verbose: true },
  selector: 'site=berlin',
  createdBy: 'ada',
  createdAt: T0,
  expiresAt: T0 + 60_000,
  devices,
  ...more,
});

test('the states: one list, pending and final split it, the schema takes exactly these', () => {
  assert.equal([...PENDING_STATES, ...FINAL_STATES], [...TARGET_STATES]);
  assert.ok(isFinal('succeeded') && isFinal('expired') && !isFinal('running'));
  jobs.create(job('j0', ['pi-1']));
  for (const s of TARGET_STATES) db.prepare("UPDATE job_targets SET state = ? WHERE job_id = 'j0'").run(s);
  assert.throws(() => db.prepare("UPDATE job_targets SET state = 'done' WHERE job_id = 'j0'").run(), /CHECK constraint failed/);
});

test('create: the job and a queued target per device, in one transaction', () => {
  const j = jobs.create(job('j1', ['pi-1', 'pi-2', 'pi-3']));
  assert.equal(j, {
    id: 'j1',
    op: 'info',
    args: { verbose: true },
    selector: 'site=berlin',
    createdBy: 'ada',
    createdAt: T0,
    expiresAt: T0 + 60_000,
    timeoutMs: 60_000,
    cancelledAt: null,
    states: { queued: 3 },
  });
  assert.equal(
    jobs.targets('j1').map((t) => [t.deviceId, t.state, t.updatedAt]),
    [
      ['pi-1', 'queued', T0],
      ['pi-2', 'queued', T0],
      ['pi-3', 'queued', T0],
    ],
  );
  assert.equal(
    (db.prepare('SELECT id FROM devices ORDER BY id').all() as { id: string }[]).map((r) => r.id),
    ['pi-1', 'pi-2', 'pi-3'],
    'the devices were added',
  );
  assert.is(failure(() => jobs.create(job('j1', ['pi-4']))).code, 'HF_ERR_OPTION', 'an id taken');
  assert.is(failure(() => jobs.create(job('j2', []))).code, 'HF_ERR_OPTION', 'no devices');
  assert.is(failure(() => jobs.create(job('j3', ['pi-1', 'pi-1']))).message, 'job j3: a device named twice');
  assert.is(failure(() => jobs.create(job('j4', ['pi-1'], { expiresAt: T0 }))).code, 'HF_ERR_OPTION');
  assert.is(failure(() => jobs.create(job('j5', ['pi-1'], { args: { n: 1n } }))).code, 'HF_ERR_OPTION', 'arguments that are not JSON');
  assert.equal(
    jobs.jobs().map((x) => x.id),
    ['j1'],
    'nothing of the refused ones was kept',
  );
  assert.is(jobs.targets('j3').length, 0);
});

test('pending: queued, sent and running targets of live jobs, oldest first; not final, cancelled or expired ones', () => {
  jobs.create(job('a', ['pi-1', 'pi-2']));
  jobs.create(job('b', ['pi-1'], { createdAt: T0 + 1, op: 'gpio.read', args: { line: 4 } }));
  jobs.create(job('c', ['pi-1'], { createdAt: T0 + 2 }));
  jobs.create(job('d', ['pi-1'], { createdAt: T0 + 3, expiresAt: T0 + 10 }));
  jobs.create(job('e', ['pi-1'], { createdAt: T0 + 4 }));
  jobs.transition('a', 'pi-1', 'sent', { at: T0 + 5 });
  jobs.transition('c', 'pi-1', 'succeeded', { at: T0 + 5, result: {} });
  assert.ok(jobs.cancel('e', T0 + 6));
  assert.not.ok(jobs.cancel('e', T0 + 7), 'cancelled once');
  const p = jobs.pendingFor('pi-1', T0 + 100);
  assert.equal(
    p.map((t) => [t.jobId, t.state]),
    [
      ['a', 'sent'],
      ['b', 'queued'],
    ],
  );
  assert.equal(p[1].op, 'gpio.read');
  assert.equal(p[1].args, { line: 4 });
  assert.equal(
    jobs.pendingFor('pi-1', T0 + 9).map((t) => t.jobId),
    ['a', 'b', 'd'],
    'd before its expiry',
  );
  assert.equal(
    jobs.pendingFor('pi-2', T0 + 100).map((t) => t.jobId),
    ['a'],
  );
  assert.equal(jobs.pendingFor('pi-9', T0), []);
  assert.is(failure(() => jobs.cancel('nope', T0)).code, 'HF_ERR_NOT_FOUND');
});

test('a final outcome is recorded exactly once: every later transition refused, the first kept', () => {
  jobs.create(job('j', ['pi-1', 'pi-2']));
  assert.ok(jobs.transition('j', 'pi-1', 'sent', { at: T0 + 1 }));
  assert.ok(jobs.transition('j', 'pi-1', 'running', { at: T0 + 2 }));
  assert.ok(jobs.transition('j', 'pi-1', 'succeeded', { at: T0 + 3, result: { temp: 41.2 } }));
  for (const s of TARGET_STATES) assert.not.ok(jobs.transition('j', 'pi-1', s, { at: T0 + 9, result: { temp: 0 }, errorCode: 'HF_ERR_TIMEOUT' }), `${s} after succeeded`);
  assert.equal(jobs.target('j', 'pi-1'), { jobId: 'j', deviceId: 'pi-1', state: 'succeeded', result: { temp: 41.2 }, errorCode: null, errorMessage: null, sends: 0, updatedAt: T0 + 3 });
  assert.ok(jobs.transition('j', 'pi-2', 'failed', { at: T0 + 4, errorCode: 'HF_ERR_FORBIDDEN' }));
  assert.not.ok(jobs.transition('j', 'pi-2', 'succeeded', { at: T0 + 5, result: {} }));
  assert.equal(jobs.target('j', 'pi-2')?.errorCode, 'HF_ERR_FORBIDDEN');
  assert.equal(jobs.job('j')?.states, { succeeded: 1, failed: 1 });
  assert.ok(jobs.transition('j', 'pi-1', 'sent', { at: T0 + 1, sends: 1 }) === false, 'final stays final, sends too');
  assert.is(failure(() => jobs.transition('j', 'pi-9', 'sent', { at: T0 })).code, 'HF_ERR_NOT_FOUND');
  assert.is(failure(() => jobs.transition('j', 'pi-1', 'done' as 'sent', { at: T0 })).code, 'HF_ERR_OPTION');
});

test('final is final across connections and a reopened file (a gateway restarted mid-job)', () => {
  jobs.create(job('j', ['pi-1']));
  jobs.transition('j', 'pi-1', 'sent', { at: T0 + 1 });
  const other = openStore(tmp);
  const jobs2 = new JobStore(other);
  assert.ok(jobs2.transition('j', 'pi-1', 'timed-out', { at: T0 + 2, errorCode: 'HF_ERR_TIMEOUT' }));
  assert.not.ok(jobs.transition('j', 'pi-1', 'succeeded', { at: T0 + 3, result: { late: true } }), 'the late answer through the first connection');
  other.close();
  db.close();
  db = openStore(tmp);
  jobs = new JobStore(db);
  assert.equal(jobs.target('j', 'pi-1')?.state, 'timed-out');
  assert.not.ok(jobs.transition('j', 'pi-1', 'succeeded', { at: T0 + 4 }));
  assert.equal(jobs.pendingFor('pi-1', T0 + 5), []);
});

test('jobs: newest first, limit and before', () => {
  for (let i = 0; i < 5; i++) jobs.create(job(`j${i}`, ['pi-1'], { createdAt: T0 + i }));
  assert.equal(
    jobs.jobs().map((j) => j.id),
    ['j4', 'j3', 'j2', 'j1', 'j0'],
  );
  assert.equal(
    jobs.jobs({ limit: 2, before: T0 + 3 }).map((j) => j.id),
    ['j2', 'j1'],
  );
  assert.is(jobs.job('none'), null);
});

test('pending, stale and batch: what a restarted gateway loads, and what it must finish', () => {
  jobs.create({ ...job('p1', ['pi-1', 'pi-2']), timeoutMs: 5000 });
  jobs.create({ ...job('p2', ['pi-1']), createdAt: T0 + 1, expiresAt: T0 + 10 });
  jobs.create({ ...job('p3', ['pi-3']), createdAt: T0 + 2 });
  jobs.batch(() => {
    jobs.transition('p1', 'pi-1', 'sent', { at: T0 + 3, sends: 1 });
    jobs.transition('p1', 'pi-2', 'failed', { at: T0 + 3, errorCode: 'HF_ERR_OP_FAILED', errorMessage: 'no' });
  });
  jobs.cancel('p3', T0 + 4);
  const pending = jobs.pending(T0 + 20);
  assert.equal(
    pending.map((t) => [t.jobId, t.deviceId, t.state, t.sends, t.timeoutMs]),
    [['p1', 'pi-1', 'sent', 1, 5000]],
  );
  assert.equal(jobs.target('p1', 'pi-2')?.errorMessage, 'no');
  assert.equal(
    jobs
      .stale(T0 + 20)
      .map((t) => [t.jobId, t.deviceId, t.cancelledAt])
      .sort(),
    [
      ['p2', 'pi-1', null],
      ['p3', 'pi-3', T0 + 4],
    ],
  );
  assert.throws(
    () =>
      jobs.batch(() => {
        jobs.transition('p1', 'pi-1', 'running', { at: T0 + 5 });
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.is(jobs.target('p1', 'pi-1')?.state, 'sent', 'a failed batch changes nothing');
  assert.is(failure(() => jobs.create({ ...job('p4', ['pi-1']), timeoutMs: 0 })).code, 'HF_ERR_OPTION');
});

test.run();
