/**
 * The gateway's database (targets/host/gateway/manage/db.ts): created from nothing with its directory
 * (0700) and file (0600), WAL and foreign keys on, every migration applied once and recorded; opened
 * again it is left as it is; a file from a newer holdfast is refused with HF_ERR_SCHEMA; a migration
 * that fails changes nothing; a missing file with `create: false` is HF_ERR_OPTION. better-sqlite3 is
 * loaded only when a store is opened (the CLI and the gateway load without it), and a machine
 * without it gets HF_ERR_UNSUPPORTED saying what to install. Statements are prepared once per database
 * and text (`stmt`), and their cache is bounded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { DB_FILE, migrate, openStore, STATEMENT_CACHE_MAX, schemaVersion, stmt } from '../targets/host/gateway/manage/db';
import { MIGRATIONS } from '../targets/host/gateway/manage/migrations';
import { ManageStore } from '../targets/host/gateway/manage/store';
import { failure } from './support/errors';
import { ROOT } from './support/host';

let tmp = '';
test.before.each(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-db-'));
});
test.after.each(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tables = (db: ReturnType<typeof openStore>): string[] => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);

test('from nothing: directory 0700, file 0600, WAL, foreign keys, every table, each migration recorded once', () => {
  const dir = path.join(tmp, 'data', 'gw');
  const db = openStore(dir);
  assert.is(fs.statSync(dir).mode & 0o777, 0o700);
  assert.is(fs.statSync(path.join(dir, DB_FILE)).mode & 0o777, 0o600);
  assert.is(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.is(db.pragma('foreign_keys', { simple: true }), 1);
  assert.is(db.pragma('busy_timeout', { simple: true }), 5000);
  for (const t of ['audit', 'audit_head', 'api_tokens', 'devices', 'job_targets', 'jobs', 'operators', 'schema_migrations', 'sessions']) assert.ok(tables(db).includes(t), t);
  assert.is(schemaVersion(db), MIGRATIONS.length);
  const rows = db.prepare('SELECT version, about FROM schema_migrations ORDER BY version').all();
  assert.equal(
    rows,
    MIGRATIONS.map((m) => ({ version: m.version, about: m.about })),
  );
  db.close();
});

test('opened again: nothing applied twice, the data kept', () => {
  const db = openStore(tmp);
  db.prepare("INSERT INTO devices (id) VALUES ('pi-1')").run();
  db.close();
  const again = openStore(tmp, { busyTimeoutMs: 250 });
  assert.is(again.pragma('busy_timeout', { simple: true }), 250);
  assert.is((again.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n, MIGRATIONS.length);
  assert.equal(again.prepare('SELECT id FROM devices').all(), [{ id: 'pi-1' }]);
  again.close();
});

test('a database newer than the code is refused (HF_ERR_SCHEMA) and left as it is', () => {
  const db = openStore(tmp);
  const next = MIGRATIONS.length + 1;
  db.prepare('INSERT INTO schema_migrations (version, about, applied_at) VALUES (?, ?, ?)').run(next, 'from a newer holdfast', new Date().toISOString());
  db.close();
  const f = failure(() => openStore(tmp));
  assert.is(f.code, 'HF_ERR_SCHEMA');
  assert.match(f.message, `schema version ${next}, this holdfast knows versions up to ${MIGRATIONS.length}`);
  assert.match(f.message, DB_FILE);
  const raw = new Database(path.join(tmp, DB_FILE), { readonly: true });
  assert.is(schemaVersion(raw), next, 'still the newer version');
  raw.close();
});

test('migrations: applied in order, each in a transaction; a failing one changes nothing; numbering checked', () => {
  const db = openStore(tmp);
  const base = MIGRATIONS.length;
  const more = [
    ...MIGRATIONS,
    { version: base + 1, about: 'a', sql: 'CREATE TABLE a (x INTEGER) STRICT;' },
    { version: base + 2, about: 'b', sql: 'CREATE TABLE b (x INTEGER) STRICT; CREATE TABLE a (y INTEGER);' },
  ];
  assert.is(failure(() => migrate(db, more)).message, 'table a already exists');
  assert.is(schemaVersion(db), base + 1, 'the first new one stayed');
  assert.not.ok(tables(db).includes('b'), 'the failing one left nothing behind');
  assert.is(failure(() => migrate(db, [{ version: 2, about: 'x', sql: '' }])).code, 'HF_ERR_OPTION');
  db.close();
});

test('create: false and no file: HF_ERR_OPTION naming the directory, nothing created', () => {
  const dir = path.join(tmp, 'none');
  const f = failure(() => openStore(dir, { create: false }));
  assert.is(f.code, 'HF_ERR_OPTION');
  assert.match(f.message, `--data ${dir}: no ${DB_FILE}`);
  assert.not.ok(fs.existsSync(dir));
});

test('a data directory that cannot be made: HF_ERR_STORAGE', () => {
  const file = path.join(tmp, 'plain-file');
  fs.writeFileSync(file, 'x');
  assert.is(failure(() => openStore(path.join(file, 'sub'))).code, 'HF_ERR_STORAGE');
});

test('ManageStore: every part over one database; bad options refused with the file closed; close twice is fine', async () => {
  const s = ManageStore.open(tmp, { operators: { password: { cost: 1024 } }, now: () => 5000 });
  await s.operators.add('ada', 'admin', 'correct horse');
  const { id } = await s.logins.login('ada', 'correct horse', '127.0.0.1');
  assert.is(s.sessions.check(id).operator, 'ada');
  s.jobs.create({ id: 'j', op: 'info', args: {}, selector: 'pi-1', createdBy: 'ada', createdAt: 5000, expiresAt: 6000, devices: ['pi-1'] });
  assert.is(s.devices.list().length, 1);
  assert.is(s.audit.head().seq, 1);
  s.close();
  s.close();
  assert.is(failure(() => ManageStore.open(tmp, { sessions: { ttlMs: 0 } })).code, 'HF_ERR_OPTION');
  const again = ManageStore.open(tmp);
  assert.is(again.operators.list().length, 1);
  again.close();
});

/** Runs, in a child with the TypeScript loader: load the CLI and db.ts, then open a store; `hide` makes better-sqlite3 unloadable. */
function lazy(hide: boolean): { before: boolean; after: boolean; code: string | null; message: string | null } {
  const script = `
const Module = require('node:module');
if (${hide}) {
  const load = Module._load;
  Module._load = function (request, ...rest) {
    if (request === 'better-sqlite3') throw Object.assign(new Error("Cannot find module 'better-sqlite3'"), { code: 'MODULE_NOT_FOUND' });
    return load.call(this, request, ...rest);
  };
}
const loaded = () => Object.keys(require.cache).some((k) => k.includes('better-sqlite3'));
require('./tools/cli/main.ts');
const { openStore } = require('./targets/host/gateway/manage/db.ts');
const before = loaded();
let code = null, message = null;
try { openStore(${JSON.stringify(tmp)}).close(); } catch (e) { code = e.code; message = e.message; }
console.log(JSON.stringify({ before, after: loaded(), code, message }));
`;
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('stmt: one prepared statement per database and SQL text, reused; another database gets its own; the cache is bounded', () => {
  const a = openStore(path.join(tmp, 'a'));
  const b = openStore(path.join(tmp, 'b'));
  try {
    const sql = 'SELECT COUNT(*) AS n FROM devices';
    const s1 = stmt(a, sql);
    assert.is(stmt(a, sql), s1, 'the same statement the second time');
    assert.is.not(stmt(b, sql), s1, "another database's own");
    a.prepare("INSERT INTO devices (id) VALUES ('d1')").run();
    assert.equal(stmt(a, sql).get(), { n: 1 }, 'a reused statement reads what was written since');
    for (let i = 0; i < STATEMENT_CACHE_MAX; i++) stmt(a, `SELECT ${i} AS n`);
    const over = `SELECT ${STATEMENT_CACHE_MAX} + 1 AS n`;
    assert.is.not(stmt(a, over), stmt(a, over), 'past the bound a statement is prepared for its one call');
    assert.equal(stmt(a, over).get(), { n: STATEMENT_CACHE_MAX + 1 });
  } finally {
    a.close();
    b.close();
  }
});

test('better-sqlite3 is loaded when a store is opened, not when the CLI or the store module is', () => {
  assert.equal(lazy(false), { before: false, after: true, code: null, message: null });
});

test('without better-sqlite3: HF_ERR_UNSUPPORTED saying what to install', () => {
  const r = lazy(true);
  assert.is(r.before, false);
  assert.is(r.code, 'HF_ERR_UNSUPPORTED');
  assert.match(r.message ?? '', "the gateway's store needs better-sqlite3 12.x (npm install better-sqlite3@12): Cannot find module 'better-sqlite3'");
});

test.run();
