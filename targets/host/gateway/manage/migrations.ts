/**
 * The schema of `holdfast.db`, as numbered migrations (db.ts applies the ones a file lacks). A
 * migration, once released, is never edited: a change is a new migration at the end.
 *
 * Times are milliseconds since the epoch (INTEGER), except the audit log's `at` (an ISO 8601 UTC
 * string, so that the text the hash covers is the text people read). JSON columns hold text that
 * `json_valid` accepts.
 */

export interface Migration {
  /** 1, 2, 3, ...: the position in the list. */
  version: number;
  /** One line, kept in `schema_migrations`. */
  about: string;
  sql: string;
}

/**
 * The states of one device's part in a job. jobs-store.ts names them (TARGET_STATES); they are
 * written out again here on purpose: a released migration must not change when that list does (a
 * new state is a new migration). test/jobs-store.test.ts checks that the two agree.
 */
const TARGET_STATE_CHECK = "state IN ('queued', 'sent', 'running', 'succeeded', 'failed', 'timed-out', 'cancelled', 'expired')";
const ROLE_CHECK = "role IN ('viewer', 'operator', 'admin')";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    about: 'devices, jobs and their targets, operators, API tokens, console sessions, the audit log',
    sql: `
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  labels TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(labels)),
  info TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(info)),
  first_seen INTEGER,
  last_seen INTEGER
) STRICT;

CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  op TEXT NOT NULL,
  args TEXT NOT NULL CHECK (json_valid(args)),
  selector TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  cancelled_at INTEGER
) STRICT;
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE job_targets (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices (id),
  state TEXT NOT NULL CHECK (${TARGET_STATE_CHECK}),
  result TEXT CHECK (result IS NULL OR json_valid(result)),
  error_code TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX job_targets_device ON job_targets (device_id, state);

CREATE TABLE operators (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (${ROLE_CHECK}),
  password TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  disabled_at INTEGER
) STRICT;

CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  operator TEXT NOT NULL REFERENCES operators (name),
  role TEXT NOT NULL CHECK (${ROLE_CHECK}),
  sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
) STRICT;

CREATE TABLE sessions (
  sha256 TEXT PRIMARY KEY,
  operator TEXT NOT NULL REFERENCES operators (name),
  csrf TEXT NOT NULL,
  remote TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL CHECK (json_valid(detail)),
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
) STRICT;
CREATE TABLE audit_head (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
) STRICT;
INSERT INTO audit_head (one, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}');
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`,
  },
  {
    version: 2,
    about: 'job timeouts; per-target sends and error messages',
    sql: `
ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 60000;
ALTER TABLE job_targets ADD COLUMN sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE job_targets ADD COLUMN error_message TEXT;
CREATE INDEX job_targets_pending ON job_targets (state) WHERE state IN ('queued', 'sent', 'running');
`,
  },
];
