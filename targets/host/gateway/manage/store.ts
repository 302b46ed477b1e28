/**
 * The gateway's management store as one object: the database of `DIR/holdfast.db` opened (and
 * migrated) once, and each part over it. What the management API, the console and the job driver
 * take; `close()` closes the database (twice is fine).
 */
import { AuditLog, type AuditOptions } from './audit';
import { type Db, openStore, type StoreOptions } from './db';
import { DeviceStore } from './devices-store';
import { JobStore } from './jobs-store';
import { type LoginLimitOptions, LoginLimiter } from './login-limiter';
import { Logins } from './logins';
import { type OperatorOptions, Operators } from './operators';
import { type SessionOptions, Sessions } from './sessions';
import { ApiTokens } from './tokens';

export interface ManageStoreOptions extends StoreOptions {
  audit?: AuditOptions;
  operators?: OperatorOptions;
  sessions?: SessionOptions;
  loginLimit?: LoginLimitOptions;
  /** Wall time, ms since the epoch (injected for tests). */
  now?: () => number;
}

export class ManageStore {
  readonly db: Db;
  readonly devices: DeviceStore;
  readonly jobs: JobStore;
  readonly operators: Operators;
  readonly tokens: ApiTokens;
  readonly sessions: Sessions;
  readonly audit: AuditLog;
  readonly logins: Logins;
  private closed = false;

  private constructor(db: Db, o: ManageStoreOptions) {
    const now = o.now ?? Date.now;
    this.db = db;
    this.devices = new DeviceStore(db);
    this.jobs = new JobStore(db);
    this.operators = new Operators(db, o.operators, now);
    this.tokens = new ApiTokens(db, now);
    this.sessions = new Sessions(db, o.sessions, now);
    this.audit = new AuditLog(db, o.audit, now);
    this.logins = new Logins({ operators: this.operators, sessions: this.sessions, limiter: new LoginLimiter(o.loginLimit, now), audit: this.audit });
  }

  /** Opens `DIR/holdfast.db` (see openStore for what that checks and creates). */
  static open(dir: string, opts: ManageStoreOptions = {}): ManageStore {
    const db = openStore(dir, opts);
    try {
      return new ManageStore(db, opts);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
