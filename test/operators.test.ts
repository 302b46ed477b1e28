/**
 * Operators, passwords, API tokens and console sessions (targets/host/gateway/manage/): roles in
 * order; scrypt hashes with their parameters beside them (right and wrong password, a new salt each
 * time, raised parameters rehash at the next login); tokens shown once and kept only as sha256,
 * revocable, never above their owner; sessions with expiry and a CSRF token of their own; a login
 * through the limiter, each one and each failed one audited.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditLog } from '../targets/host/gateway/manage/audit';
import { type Db, openStore } from '../targets/host/gateway/manage/db';
import { LoginLimiter } from '../targets/host/gateway/manage/login-limiter';
import { Logins } from '../targets/host/gateway/manage/logins';
import { Operators, requireRole, roleAllows, ROLES } from '../targets/host/gateway/manage/operators';
import { hashPassword, needsRehash, verifyPassword } from '../targets/host/gateway/manage/passwords';
import { Sessions } from '../targets/host/gateway/manage/sessions';
import { ApiTokens, TOKEN_PREFIX } from '../targets/host/gateway/manage/tokens';
import { failure } from './support/errors';

/** Small scrypt parameters: the tests are about the logic, not the cost. */
const FAST = { cost: 1024, blockSize: 8, parallelization: 1 };

let tmp = '';
let db: Db;
let clock = 1_000_000;
const now = (): number => clock;
let ops: Operators;
test.before.each(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-operators-'));
  db = openStore(tmp);
  clock = 1_000_000;
  ops = new Operators(db, { password: FAST }, now);
});
test.after.each(() => {
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function rejects(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code?: string }).code ?? String(e), message: (e as Error).message };
  }
  return { code: 'no error', message: '' };
}

test('roles: viewer < operator < admin', () => {
  assert.equal([...ROLES], ['viewer', 'operator', 'admin']);
  assert.ok(roleAllows('admin', 'operator') && roleAllows('operator', 'operator') && roleAllows('operator', 'viewer'));
  assert.not.ok(roleAllows('viewer', 'operator'));
  assert.not.ok(roleAllows('operator', 'admin'));
  requireRole({ name: 'ada', role: 'admin' }, 'admin', 'adding operators');
  assert.equal(
    failure(() => requireRole({ name: 'vic', role: 'viewer' }, 'operator', 'running a job')),
    { code: 'HF_ERR_ROLE', message: 'vic is a viewer: running a job needs the role operator or above' },
  );
});

test('passwords: the right one verifies, a wrong one does not; a new salt each time; the parameters are kept beside the hash', async () => {
  const a = await hashPassword('correct horse', FAST);
  const b = await hashPassword('correct horse', FAST);
  assert.match(a, /^scrypt\$N=1024,r=8,p=1\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/);
  assert.is.not(a, b, 'salted');
  assert.not.ok(a.includes('correct'));
  assert.ok(await verifyPassword(a, 'correct horse'));
  assert.not.ok(await verifyPassword(a, 'correct horsf'));
  assert.not.ok(await verifyPassword(a, ''));
  assert.not.ok(await verifyPassword('plain text', 'plain text'), 'a stored form that is not ours');
  assert.not.ok(await verifyPassword(a.replace('N=1024', 'N=1073741824'), 'correct horse'), 'a stored form asking for too much memory');
  // Hashes made with the old parameters still verify after they are raised, and say they need redoing.
  assert.ok(await verifyPassword(a, 'correct horse'));
  assert.ok(needsRehash(a, { ...FAST, cost: 2048 }));
  assert.not.ok(needsRehash(a, FAST));
  const dflt = await hashPassword('x'.repeat(8));
  assert.match(dflt, /^scrypt\$N=32768,r=8,p=1\$/, 'the defaults');
  assert.is(failure(() => needsRehash(a, { cost: 1000 })).code, 'HF_ERR_OPTION');
});

test('operators: add, list, authenticate; bad names, roles and passwords refused', async () => {
  const ada = await ops.add('ada', 'admin', 'correct horse');
  assert.equal(ada, { name: 'ada', role: 'admin', createdAt: clock, disabledAt: null });
  await ops.add('vic', 'viewer', 'battery staple');
  assert.equal(
    ops.list().map((o) => [o.name, o.role]),
    [
      ['ada', 'admin'],
      ['vic', 'viewer'],
    ],
  );
  assert.is(ops.count('admin'), 1);
  assert.equal((await ops.authenticate('ada', 'correct horse')).name, 'ada');
  const stored = (db.prepare("SELECT password FROM operators WHERE name = 'ada'").get() as { password: string }).password;
  assert.ok(stored.startsWith('scrypt$') && !stored.includes('horse'), 'only the hash is stored');
  for (const [n, p] of [
    ['ada', 'wrong horse'],
    ['nobody', 'correct horse'],
    ['ada', ''],
  ]) {
    assert.equal(await rejects(ops.authenticate(n, p)), { code: 'HF_ERR_LOGIN', message: 'unknown operator or wrong password' }, `${n}/${p}`);
  }
  assert.equal(await rejects(ops.add('ada', 'viewer', 'another one')), { code: 'HF_ERR_OPTION', message: 'operator ada exists' });
  assert.is((await rejects(ops.add('bad name', 'viewer', 'long enough'))).code, 'HF_ERR_OPTION');
  assert.is((await rejects(ops.add('root', 'superuser' as 'admin', 'long enough'))).code, 'HF_ERR_OPTION');
  assert.match((await rejects(ops.add('bob', 'viewer', 'short'))).message, 'fewer than minPasswordLength 8');
  ops.disable('vic');
  assert.is((await rejects(ops.authenticate('vic', 'battery staple'))).code, 'HF_ERR_LOGIN', 'disabled');
  assert.is(failure(() => ops.disable('nobody')).code, 'HF_ERR_NOT_FOUND');
  ops.setRole('ada', 'operator');
  assert.is(ops.get('ada')?.role, 'operator');
});

test('add with `within`: the operator and what `within` writes (the audit entry) in one transaction', async () => {
  const audit = new AuditLog(db, {}, now);
  await ops.add('ada', 'admin', 'correct horse', (o) => audit.append({ actor: 'cli:root', action: 'operator.add', target: o.name, detail: { role: o.role } }));
  assert.equal(
    [...audit.entries()].map((e) => [e.action, e.target, e.detail]),
    [['operator.add', 'ada', { role: 'admin' }]],
  );
  const f = await rejects(
    ops.add('bob', 'viewer', 'battery staple', () => {
      throw new Error('audit failed');
    }),
  );
  assert.is(f.message, 'audit failed');
  assert.is(ops.get('bob'), null, 'no operator without its audit entry');
  assert.is(audit.head().seq, 1);
  assert.is(failure(() => new Operators(db, { minPasswordLength: 0 })).code, 'HF_ERR_OPTION');
});

test('raised scrypt parameters: the next login hashes the password again, and it still verifies', async () => {
  await ops.add('ada', 'admin', 'correct horse');
  const stronger = new Operators(db, { password: { ...FAST, cost: 2048 } }, now);
  await stronger.authenticate('ada', 'correct horse');
  const stored = (db.prepare("SELECT password FROM operators WHERE name = 'ada'").get() as { password: string }).password;
  assert.match(stored, /^scrypt\$N=2048,/);
  assert.ok(await verifyPassword(stored, 'correct horse'));
  await ops.authenticate('ada', 'correct horse');
});

test('API tokens: shown once, only a sha256 stored; revocable; never above the owner; last use recorded', async () => {
  await ops.add('ada', 'admin', 'correct horse');
  await ops.add('olga', 'operator', 'battery staple');
  const tokens = new ApiTokens(db, now);
  const { token, info } = tokens.create('olga', 'ci script');
  assert.ok(token.startsWith(TOKEN_PREFIX));
  assert.is(Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').length, 32);
  assert.equal(info, { id: info.id, name: 'ci script', operator: 'olga', role: 'operator', createdAt: clock, lastUsedAt: null, revokedAt: null });
  const row = db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(info.id) as Record<string, unknown>;
  assert.is(row.sha256, createHash('sha256').update(token).digest('hex'));
  assert.not.ok(JSON.stringify(row).includes(token.slice(TOKEN_PREFIX.length)), 'the token itself is not stored');
  clock += 5000;
  const who = tokens.authenticate(token);
  assert.equal([who.operator, who.role, who.token.lastUsedAt], ['olga', 'operator', clock]);
  assert.is(tokens.get(info.id)?.lastUsedAt, clock);
  assert.is(failure(() => tokens.authenticate(`${token}x`)).code, 'HF_ERR_LOGIN');
  assert.is(failure(() => tokens.authenticate('')).code, 'HF_ERR_LOGIN');
  // A lower role than the owner's; never a higher one; the owner demoted lowers the token too.
  assert.is(tokens.create('ada', 'read only', 'viewer').info.role, 'viewer');
  assert.is(failure(() => tokens.create('olga', 'sneaky', 'admin')).code, 'HF_ERR_ROLE');
  assert.is(failure(() => tokens.create('nobody', 'x')).code, 'HF_ERR_NOT_FOUND');
  ops.setRole('olga', 'viewer');
  assert.is(tokens.authenticate(token).role, 'viewer');
  assert.ok(tokens.revoke(info.id));
  assert.not.ok(tokens.revoke(info.id));
  assert.is(failure(() => tokens.authenticate(token)).code, 'HF_ERR_LOGIN', 'revoked');
  assert.is(failure(() => tokens.revoke(999)).code, 'HF_ERR_NOT_FOUND');
  const adaToken = tokens.create('ada', 'admin script').token;
  ops.disable('ada');
  assert.is(failure(() => tokens.authenticate(adaToken)).code, 'HF_ERR_LOGIN', 'owner disabled');
  assert.equal(
    tokens.list('ada').map((t) => t.name),
    ['read only', 'admin script'],
  );
});

test('console sessions: a random id (its sha256 stored), an expiry, a CSRF token of their own', async () => {
  await ops.add('ada', 'admin', 'correct horse');
  const sessions = new Sessions(db, { ttlMs: 60_000 }, now);
  const s = sessions.create('ada', '127.0.0.1');
  const t = sessions.create('ada');
  assert.is(Buffer.from(s.id, 'base64url').length, 32);
  assert.is.not(s.id, t.id);
  assert.is.not(s.csrf, t.csrf);
  assert.is(s.expiresAt, clock + 60_000);
  const stored = db.prepare('SELECT sha256 FROM sessions').all() as { sha256: string }[];
  assert.ok(stored.some((r) => r.sha256 === createHash('sha256').update(s.id).digest('hex')));
  assert.not.ok(JSON.stringify(db.prepare('SELECT * FROM sessions').all()).includes(s.id), 'the id itself is not stored');
  const live = sessions.check(s.id);
  assert.equal([live.operator, live.role, live.remote, live.csrf], ['ada', 'admin', '127.0.0.1', s.csrf]);
  sessions.checkCsrf(live, s.csrf);
  assert.equal(
    failure(() => sessions.checkCsrf(live, undefined)),
    { code: 'HF_ERR_CSRF', message: 'no CSRF token in the request' },
  );
  assert.is(failure(() => sessions.checkCsrf(live, t.csrf)).code, 'HF_ERR_CSRF', "another session's token");
  assert.is(failure(() => sessions.checkCsrf(live, `${s.csrf}x`)).code, 'HF_ERR_CSRF');
  assert.equal(
    failure(() => sessions.check('forged')),
    { code: 'HF_ERR_LOGIN', message: 'session unknown: log in again' },
  );
  clock += 60_000;
  assert.equal(
    failure(() => sessions.check(s.id)),
    { code: 'HF_ERR_LOGIN', message: 'session expired: log in again' },
  );
  assert.is(sessions.purge(), 2);
  const u = sessions.create('ada');
  assert.ok(sessions.end(u.id));
  assert.is(failure(() => sessions.check(u.id)).code, 'HF_ERR_LOGIN', 'logged out');
  const v = sessions.create('ada');
  ops.disable('ada');
  assert.is(failure(() => sessions.check(v.id)).code, 'HF_ERR_LOGIN', 'operator disabled');
  assert.is(failure(() => sessions.create('ada')).code, 'HF_ERR_NOT_FOUND');
});

test('disable ends the sessions and revokes the tokens; enable lets the operator log in again, with neither revived', async () => {
  await ops.add('ada', 'admin', 'correct horse');
  await ops.add('bo', 'viewer', 'correct horse');
  const sessions = new Sessions(db, {}, now);
  const tokens = new ApiTokens(db, now);
  const s = sessions.create('ada');
  const t = tokens.create('ada', 'ci');
  const kept = sessions.create('bo');
  ops.disable('ada');
  assert.is(failure(() => sessions.check(s.id)).code, 'HF_ERR_LOGIN');
  assert.is(tokens.get(t.info.id)?.revokedAt, clock, 'the token is revoked when its owner is disabled');
  assert.is(sessions.check(kept.id).operator, 'bo', "another operator's session goes on");
  ops.enable('ada');
  assert.is(ops.get('ada')?.disabledAt, null);
  assert.is(failure(() => sessions.check(s.id)).code, 'HF_ERR_LOGIN', 'the old session stays ended');
  assert.is(failure(() => tokens.authenticate(t.token)).code, 'HF_ERR_LOGIN', 'the old token stays revoked');
  assert.is((await ops.authenticate('ada', 'correct horse')).name, 'ada');
  assert.is(failure(() => ops.enable('nobody')).code, 'HF_ERR_NOT_FOUND');
  assert.is(failure(() => ops.disable('nobody')).code, 'HF_ERR_NOT_FOUND');
});

test('a login: limiter, password, session; each login and failed one audited; limited after too many failures', async () => {
  await ops.add('ada', 'admin', 'correct horse');
  const audit = new AuditLog(db, {}, now);
  const sessions = new Sessions(db, {}, now);
  const logins = new Logins({ operators: ops, sessions, limiter: new LoginLimiter({ perName: 2, perAddress: 10, windowMs: 60_000 }, now), audit });
  const ok = await logins.login('ada', 'correct horse', '127.0.0.1');
  assert.is(ok.operator.name, 'ada');
  assert.is(sessions.check(ok.id).csrf, ok.csrf);
  assert.is((await rejects(logins.login('ada', 'wrong', '192.0.2.1'))).code, 'HF_ERR_LOGIN');
  assert.is((await rejects(logins.login('ada', 'wrong again', '192.0.2.1'))).code, 'HF_ERR_LOGIN');
  assert.match((await rejects(logins.login('ada', 'correct horse', '192.0.2.2'))).code, 'HF_ERR_RATE_LIMITED', 'the name is limited, whatever the address');
  assert.ok(logins.logout(ok.id));
  assert.not.ok(logins.logout(ok.id));
  assert.equal(
    [...audit.entries()].map((e) => [e.actor, e.action, e.target, e.detail]),
    [
      ['ada', 'login', 'ada', { remote: '127.0.0.1' }],
      ['anonymous', 'login.failed', 'ada', { remote: '192.0.2.1' }],
      ['anonymous', 'login.failed', 'ada', { remote: '192.0.2.1' }],
      ['ada', 'logout', 'ada', {}],
    ],
  );
  clock += 60_000;
  assert.is((await logins.login('ada', 'correct horse', '192.0.2.2')).operator.name, 'ada', 'after the window');
  assert.ok(audit.verify().ok);
});

test.run();
