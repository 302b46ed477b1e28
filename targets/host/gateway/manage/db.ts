/**
 * The gateway's one database: `holdfast.db` (SQLite, through better-sqlite3) under a data directory,
 * with numbered migrations. Devices, jobs and their per-device outcomes, operators, API tokens,
 * console sessions and the audit log live in it (the tables are in `migrations.ts`).
 *
 * better-sqlite3 is a native addon the device never needs: it is loaded here, when a store is first
 * opened, and not at import time, so a gateway without `--data` runs without it.
 *
 * Opening: the directory is created (mode 0700) when missing, the file (mode 0600) likewise; then WAL
 * mode (readers do not wait for the writer), foreign keys on, a busy timeout (another process, such
 * as `holdfast operator add` beside a running gateway, may hold the write lock for a moment), and
 * every migration the file lacks, each in a transaction of its own. A file whose schema is newer
 * than this code is refused (HF_ERR_SCHEMA) and left as it is.
 *
 * `synchronous = NORMAL` in WAL mode: a committed transaction survives the process being killed
 * (kill -9, a crash) at any point; only a power cut or an OS crash can lose the last ones before
 * the next checkpoint. FULL would sync the log on every commit.
 *
 * Statements are prepared once per database and SQL text (`stmt`) and reused: a statement prepared
 * per call keeps its compiled program and its scratch tables in the C heap until the garbage
 * collector finalizes it, so a job to 10,000 devices (several transitions each) left some 70 MB of
 * them alive at once, and the C heap stayed that large after the burst.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { checkMs } from '../../../../firmware/check';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { MIGRATIONS, type Migration } from './migrations';

export type Db = BetterSqlite3.Database;

/** The database file's name inside the data directory. */
export const DB_FILE = 'holdfast.db';

export interface StoreOptions {
  /** How long a statement waits for another connection's write lock before failing, ms (default 5000). */
  busyTimeoutMs?: number;
  /** Create the directory and the file when missing (default true); false: a missing one is HF_ERR_OPTION. */
  create?: boolean;
}

export const STORE_DEFAULTS = { busyTimeoutMs: 5000 } as const;

/** Distinct SQL texts kept prepared per database; past it a statement is prepared for its one call (the texts are constants in this code, so it is never reached). */
export const STATEMENT_CACHE_MAX = 256;

const prepared = new WeakMap<Db, Map<string, BetterSqlite3.Statement>>();

/**
 * `db.prepare(sql)`, prepared once per database and text and then reused. Not for `.iterate()`,
 * which keeps its statement busy until the iteration ends: prepare those per call.
 */
export function stmt(db: Db, sql: string): BetterSqlite3.Statement {
  let m = prepared.get(db);
  if (m === undefined) {
    m = new Map();
    prepared.set(db, m);
  }
  let s = m.get(sql);
  if (s === undefined) {
    s = db.prepare(sql);
    if (m.size < STATEMENT_CACHE_MAX) m.set(sql, s);
  }
  return s;
}

let driver: typeof BetterSqlite3 | null = null;

/** better-sqlite3, loaded on first use; missing or built for another Node: HF_ERR_UNSUPPORTED. */
function sqlite(): typeof BetterSqlite3 {
  if (driver === null) {
    try {
      driver = require('better-sqlite3') as typeof BetterSqlite3;
    } catch (e) {
      throw hfError(ErrorCode.UNSUPPORTED, `the gateway's store needs better-sqlite3 12.x (npm install better-sqlite3@12): ${(e as Error).message.split('\n')[0]}`, e);
    }
  }
  return driver;
}

/** Opens (and migrates) `DIR/holdfast.db`. Close it with `db.close()`. */
export function openStore(dir: string, opts: StoreOptions = {}): Db {
  const busyTimeoutMs = checkMs('busyTimeoutMs', opts.busyTimeoutMs ?? STORE_DEFAULTS.busyTimeoutMs, 0, 600_000);
  const file = path.join(dir, DB_FILE);
  const Database = sqlite();
  try {
    if (opts.create === false) {
      if (!fs.existsSync(file)) throw hfError(ErrorCode.OPTION, `--data ${dir}: no ${DB_FILE} there`);
    } else {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      // SQLite would create the file with the umask's mode; its -wal and -shm files copy this one's.
      fs.closeSync(fs.openSync(file, 'a', 0o600));
    }
  } catch (e) {
    if (isHfError(e)) throw e;
    throw hfError(ErrorCode.STORAGE, `--data ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
  let db: Db;
  try {
    db = new Database(file, { timeout: busyTimeoutMs, fileMustExist: true });
  } catch (e) {
    throw hfError(ErrorCode.STORAGE, `${file}: ${(e as Error).message}`, e);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    migrate(db, MIGRATIONS, file);
  } catch (e) {
    db.close();
    if (isHfError(e)) throw e;
    throw hfError(ErrorCode.STORAGE, `${file}: ${(e as Error).message}`, e);
  }
  return db;
}

/** The schema version `db` is at (0: an empty file). */
export function schemaVersion(db: Db): number {
  const t = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (t === undefined) return 0;
  const r = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return r.v ?? 0;
}

/**
 * Applies the migrations `db` lacks, in order, each in one transaction with its row in
 * `schema_migrations` (a failing one changes nothing). Returns the version reached. `migrations`
 * must be numbered 1, 2, 3, ... A database at a version past the last one is refused
 * (HF_ERR_SCHEMA): it was written by a newer holdfast. `file` names it in messages.
 */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS, file = 'the database'): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw hfError(ErrorCode.OPTION, `migration ${i + 1} is numbered ${m.version}`);
  });
  const last = migrations.length;
  // One migration per write transaction, the version read inside it: two processes opening the same
  // new file at once apply each migration once.
  const step = db.transaction((): boolean => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, about TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT');
    const at = schemaVersion(db);
    if (at > last) {
      throw hfError(ErrorCode.SCHEMA, `${file} is at schema version ${at}, this holdfast knows versions up to ${last}: it was written by a newer holdfast (run that one, or restore a backup)`);
    }
    if (at === last) return true;
    const m = migrations[at];
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, about, applied_at) VALUES (?, ?, ?)').run(m.version, m.about, new Date().toISOString());
    return false;
  });
  while (!step.immediate());
  return last;
}
