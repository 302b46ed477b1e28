/**
 * The audit log (targets/host/gateway/manage/audit.ts): entries chained by hash; verify() passes on an
 * intact log and names the first bad entry when the file is tampered with by raw SQL (the way someone
 * with the file would): an entry changed, one removed from the middle, the last one removed, a pair
 * reordered, one inserted past the head, one rewritten with a hash made to fit. UPDATE and DELETE
 * through SQL are refused by the log's triggers. Export lines parse and re-verify with nothing but
 * sha256 and the canonical encoding.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditLog, entryHash, GENESIS } from '../targets/host/gateway/manage/audit';
import { canonicalJson } from '../targets/host/gateway/manage/canonical-json';
import { type Db, openStore } from '../targets/host/gateway/manage/db';
import { failure } from './support/errors';

let tmp = '';
let db: Db;
let log: AuditLog;
let t = Date.UTC(2026, 11, 2, 6, 0, 0);
test.before.each(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-audit-'));
  db = openStore(tmp);
  log = new AuditLog(db, {}, () => (t += 1000));
});
test.after.each(() => {
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Five entries, 1..5. */
function five(): void {
  log.append({ actor: 'cli:root', action: 'operator.add', target: 'ada', detail: { role: 'admin' } });
  log.append({ actor: 'ada', action: 'login', detail: { remote: '127.0.0.1' } });
  log.append({ actor: 'ada', action: 'job.create', target: 'j1', detail: { op: 'info', devices: ['pi-1', 'pi-2'] } });
  log.append({ actor: 'device:pi-1', action: 'job.outcome', target: 'j1', detail: { state: 'succeeded' } });
  log.append({ actor: 'device:pi-2', action: 'job.outcome', target: 'j1', detail: { state: 'failed', code: 'HF_ERR_TIMEOUT' } });
}

/** Raw SQL as someone holding the file would run it: the append-only triggers dropped first. */
function tamper(sql: string, ...params: unknown[]): void {
  db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
  db.prepare(sql).run(...params);
}

function bad(): { seq: number; problem: string; message: string } {
  const v = log.verify();
  assert.not.ok(v.ok, 'verify must fail');
  if (v.ok) throw new Error('unreachable');
  return { seq: v.seq, problem: v.problem, message: v.message };
}

test('an empty log and an intact one verify; the head is the last hash; entries keep what was given', () => {
  assert.equal(log.verify(), { ok: true, count: 0, head: { seq: 0, hash: GENESIS } });
  five();
  const v = log.verify();
  const all = [...log.entries()];
  assert.equal(v, { ok: true, count: 5, head: { seq: 5, hash: all[4].hash } });
  assert.equal(
    all.map((e) => e.seq),
    [1, 2, 3, 4, 5],
  );
  assert.is(all[0].prev, GENESIS);
  for (let i = 1; i < 5; i++) assert.is(all[i].prev, all[i - 1].hash);
  assert.equal(all[2].detail, { op: 'info', devices: ['pi-1', 'pi-2'] });
  assert.is(all[2].target, 'j1');
  assert.is(all[1].target, '');
  assert.match(all[0].at, /^2026-12-02T06:00:\d\d\.000Z$/);
  assert.is(log.check().count, 5);
});

test('the hash: sha256 of the previous hash (32 bytes) and the canonical JSON of the entry', () => {
  const e = log.append({ actor: 'ada', action: 'login', detail: { b: 1, a: [true, null, 'x'] } });
  const want = createHash('sha256')
    .update(Buffer.alloc(32))
    .update(`[1,${JSON.stringify(e.at)},"ada","login","",{"a":[true,null,"x"],"b":1}]`)
    .digest('hex');
  assert.is(e.hash, want);
  assert.is(entryHash(GENESIS, e), want);
  assert.is(canonicalJson({ z: { y: 1, x: 2 }, a: [] }), '{"a":[],"z":{"x":2,"y":1}}');
});

test('UPDATE and DELETE on the log are refused by SQLite itself', () => {
  five();
  assert.throws(() => db.prepare("UPDATE audit SET actor = 'eve' WHERE seq = 2").run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit WHERE seq = 5').run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit_head').run(), /append-only/);
  assert.ok(log.verify().ok);
});

test('a changed entry is named', () => {
  five();
  tamper('UPDATE audit SET detail = \'{"op":"exec","devices":["pi-1","pi-2"]}\' WHERE seq = 3');
  assert.equal(bad(), { seq: 3, problem: 'changed', message: 'entry 3 was changed: its hash does not match its content' });
  const f = failure(() => log.check());
  assert.equal(f, { code: 'HF_ERR_AUDIT', message: 'entry 3 was changed: its hash does not match its content' });
});

test('a detail that is no longer JSON: verify names it, export refuses with HF_ERR_AUDIT', () => {
  five();
  db.exec('DROP TRIGGER audit_no_update; PRAGMA ignore_check_constraints = ON;');
  db.prepare("UPDATE audit SET detail = '{not json' WHERE seq = 2").run();
  assert.equal(bad(), { seq: 2, problem: 'changed', message: 'entry 2 was changed: its hash does not match its content' });
  assert.equal(
    failure(() => log.export(() => {})),
    { code: 'HF_ERR_AUDIT', message: 'entry 2 was changed: its detail is not JSON' },
  );
});

test('a changed actor or time is named too', () => {
  five();
  tamper("UPDATE audit SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 4");
  assert.is(bad().seq, 4);
});

test('an entry removed from the middle is named', () => {
  five();
  tamper('DELETE FROM audit WHERE seq = 3');
  assert.equal(bad(), { seq: 3, problem: 'missing', message: 'entry 3 is missing (removed): the entry after 2 is 4' });
});

test('the first entry removed is named', () => {
  five();
  tamper('DELETE FROM audit WHERE seq = 1');
  assert.equal(bad().seq, 1);
});

test('the last entry removed: the head says there were more', () => {
  five();
  tamper('DELETE FROM audit WHERE seq = 5');
  assert.equal(bad(), { seq: 5, problem: 'truncated', message: 'entries 5..5 are missing (removed from the end): the head says 5 entries, the log has 4' });
  tamper('DELETE FROM audit WHERE seq >= 3');
  assert.equal(bad().seq, 3);
});

test('a reordered pair is named at the first of the two', () => {
  five();
  tamper('UPDATE audit SET seq = -1 WHERE seq = 2');
  tamper('UPDATE audit SET seq = 2 WHERE seq = 3');
  tamper('UPDATE audit SET seq = 3 WHERE seq = -1');
  assert.equal(bad(), { seq: 2, problem: 'changed', message: 'entry 2 was changed: its hash does not match its content' });
});

test('an entry inserted past the head, its hash made to fit, is named', () => {
  five();
  const last = [...log.entries(5)][0];
  const e = { seq: 6, at: last.at, actor: 'ada', action: 'operator.add', target: 'eve', detail: { role: 'admin' } };
  tamper(
    'INSERT INTO audit (seq, at, actor, action, target, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    6,
    e.at,
    e.actor,
    e.action,
    e.target,
    canonicalJson(e.detail),
    last.hash,
    entryHash(last.hash, e),
  );
  assert.equal(bad(), { seq: 6, problem: 'inserted', message: 'entry 6 was not appended through the log: the head says 5 entries, the log has 6' });
});

test('an entry rewritten with a hash made to fit breaks the link to the next one', () => {
  five();
  const [e2] = [...log.entries(2)];
  const forged = { ...e2, actor: 'eve' };
  tamper('UPDATE audit SET actor = ?, hash = ? WHERE seq = 2', 'eve', entryHash(e2.prev, forged));
  assert.equal(bad(), { seq: 3, problem: 'unchained', message: 'entry 3 does not follow entry 2: an entry up to it was rewritten, inserted or reordered' });
});

test('the last entry rewritten with a hash made to fit: the head names another hash', () => {
  five();
  const [e5] = [...log.entries(5)];
  tamper('UPDATE audit SET actor = ?, hash = ? WHERE seq = 5', 'eve', entryHash(e5.prev, { ...e5, actor: 'eve' }));
  assert.equal(bad().seq, 5);
  assert.is(bad().problem, 'changed');
});

test('export: one JSON object a line, in order, that re-verifies with sha256 and the canonical encoding alone', () => {
  five();
  const lines: string[] = [];
  assert.is(
    log.export((l) => lines.push(l)),
    5,
  );
  assert.ok(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n')));
  const entries = lines.map((l) => JSON.parse(l));
  let prev = GENESIS;
  for (const e of entries) {
    assert.equal(Object.keys(e), ['seq', 'at', 'actor', 'action', 'target', 'detail', 'prev', 'hash']);
    assert.is(e.prev, prev);
    const h = createHash('sha256')
      .update(Buffer.from(prev, 'hex'))
      .update(canonicalJson([e.seq, e.at, e.actor, e.action, e.target, e.detail]))
      .digest('hex');
    assert.is(e.hash, h, `entry ${e.seq}`);
    prev = h;
  }
  assert.is(prev, log.head().hash);
  const tail: string[] = [];
  log.export((l) => tail.push(l), 4);
  assert.equal(
    tail.map((l) => JSON.parse(l).seq),
    [4, 5],
  );
});

test('bad input: HF_ERR_OPTION, nothing appended', () => {
  const small = new AuditLog(db, { maxDetailBytes: 16 });
  assert.is(failure(() => log.append({ actor: '', action: 'login' })).code, 'HF_ERR_OPTION');
  assert.is(failure(() => log.append({ actor: 'ada', action: 'Log In' })).code, 'HF_ERR_OPTION');
  assert.is(failure(() => log.append({ actor: 'ada', action: 'login', detail: { at: new Date() } })).code, 'HF_ERR_OPTION');
  assert.is(failure(() => log.append({ actor: 'ada', action: 'login', detail: { n: Number.NaN } })).code, 'HF_ERR_OPTION');
  assert.match(failure(() => small.append({ actor: 'ada', action: 'login', detail: { text: 'more than sixteen bytes' } })).message, 'maxDetailBytes 16');
  assert.equal(log.verify(), { ok: true, count: 0, head: { seq: 0, hash: GENESIS } });
});

test('two connections appending to one file keep one chain', () => {
  const other = openStore(tmp);
  const log2 = new AuditLog(other);
  for (let i = 0; i < 20; i++) (i % 2 === 0 ? log : log2).append({ actor: 'ada', action: 'login', detail: { i } });
  other.close();
  assert.equal(log.verify().ok, true);
  assert.is(log.head().seq, 20);
});

test.run();
