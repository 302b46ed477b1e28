/**
 * Console login sessions: a random id (32 bytes, base64url) for the session cookie, an expiry, and a
 * CSRF token of its own that every state-changing request must carry besides the cookie. The store
 * keeps the id's sha256, not the id, so a copy of the database holds no live session. A session ends
 * when it expires, when it is ended (logout), or when its operator is disabled.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { checkMs } from '../../../../firmware/check';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { type Db, stmt } from './db';
import type { Role } from './operators';

export interface SessionOptions {
  /** How long a session lasts after login, ms (default 43200000: 12 h). */
  ttlMs?: number;
}

export const SESSION_DEFAULTS: Required<SessionOptions> = { ttlMs: 43_200_000 };

/** A live session, as `check` finds it. */
export interface ConsoleSession {
  operator: string;
  /** The operator's role now (not at login). */
  role: Role;
  /** The token the page sends back on state-changing requests. */
  csrf: string;
  remote: string | null;
  /** ms since the epoch. */
  createdAt: number;
  expiresAt: number;
}

const digest = (id: string): string => createHash('sha256').update(id, 'utf8').digest('hex');

export class Sessions {
  private readonly db: Db;
  private readonly ttlMs: number;
  private readonly now: () => number;

  /** `now`: wall time, ms since the epoch. */
  constructor(db: Db, opts: SessionOptions = {}, now: () => number = Date.now) {
    this.db = db;
    this.ttlMs = checkMs('ttlMs', opts.ttlMs ?? SESSION_DEFAULTS.ttlMs, 1000, 30 * 86_400_000);
    this.now = now;
  }

  /** A new session for `operator`, from `remote` (an address, for the record). No such operator (or disabled): HF_ERR_NOT_FOUND. */
  create(operator: string, remote: string | null = null): { id: string; csrf: string; expiresAt: number } {
    if (stmt(this.db, 'SELECT 1 FROM operators WHERE name = ? AND disabled_at IS NULL').get(operator) === undefined) throw hfError(ErrorCode.NOT_FOUND, `no operator ${operator}`);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const at = this.now();
    const expiresAt = at + this.ttlMs;
    stmt(this.db, 'INSERT INTO sessions (sha256, operator, csrf, remote, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(digest(id), operator, csrf, remote, at, expiresAt);
    return { id, csrf, expiresAt };
  }

  /** The live session with this id. Unknown, expired, or its operator disabled: HF_ERR_LOGIN. */
  check(id: string): ConsoleSession {
    const bad = (why: string): Error => hfError(ErrorCode.LOGIN, `session ${why}: log in again`);
    if (typeof id !== 'string' || id.length === 0 || id.length > 100) throw bad('unknown');
    const r = stmt(this.db, 'SELECT s.*, o.role, o.disabled_at FROM sessions s JOIN operators o ON o.name = s.operator WHERE s.sha256 = ?').get(digest(id)) as
      | { operator: string; csrf: string; remote: string | null; created_at: number; expires_at: number; role: Role; disabled_at: number | null }
      | undefined;
    if (r === undefined || r.disabled_at !== null) throw bad('unknown');
    if (this.now() >= r.expires_at) throw bad('expired');
    return { operator: r.operator, role: r.role, csrf: r.csrf, remote: r.remote, createdAt: r.created_at, expiresAt: r.expires_at };
  }

  /** HF_ERR_CSRF unless `given` (from the request's header or form) is the session's CSRF token. */
  checkCsrf(session: ConsoleSession, given: string | undefined | null): void {
    if (typeof given !== 'string' || given.length === 0) throw hfError(ErrorCode.CSRF, 'no CSRF token in the request');
    const a = Buffer.from(given, 'utf8');
    const b = Buffer.from(session.csrf, 'utf8');
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw hfError(ErrorCode.CSRF, "the request's CSRF token is not this session's");
  }

  /** Ends the session (logout); false if there was none. */
  end(id: string): boolean {
    return stmt(this.db, 'DELETE FROM sessions WHERE sha256 = ?').run(digest(id)).changes === 1;
  }

  /** Removes expired sessions; returns how many. */
  purge(): number {
    return stmt(this.db, 'DELETE FROM sessions WHERE expires_at <= ?').run(this.now()).changes;
  }
}
