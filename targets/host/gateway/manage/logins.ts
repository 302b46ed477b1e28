/**
 * A console login as the API runs it, in one place: the failed-login limiter first, then the
 * password, then a session; each login and each failed one written to the audit log (with the remote
 * address). Attempts the limiter refuses are not checked and not audited one by one (a flood of them
 * would fill the log); they are HF_ERR_RATE_LIMITED to the client.
 */
import { ErrorCode, isHfError } from '../../../../firmware/errors';
import type { AuditLog } from './audit';
import type { LoginLimiter } from './login-limiter';
import type { Operator, Operators } from './operators';
import type { Sessions } from './sessions';

export interface LoginParts {
  operators: Operators;
  sessions: Sessions;
  limiter: LoginLimiter;
  audit: AuditLog;
}

/** What a successful login gives: the session id (the cookie), its CSRF token and expiry. */
export interface LoggedIn {
  operator: Operator;
  id: string;
  csrf: string;
  expiresAt: number;
}

export class Logins {
  private readonly p: LoginParts;

  constructor(parts: LoginParts) {
    this.p = parts;
  }

  /**
   * Logs `name` in from `remote`. Too many failures: HF_ERR_RATE_LIMITED; unknown name or wrong
   * password: HF_ERR_LOGIN (counted and audited as `login.failed`); else a new session (audited as
   * `login`).
   */
  async login(name: string, password: string, remote: string): Promise<LoggedIn> {
    const { operators, sessions, limiter, audit } = this.p;
    const who = typeof name === 'string' ? name.slice(0, 256) : '';
    limiter.check(who, remote);
    let op: Operator;
    try {
      op = await operators.authenticate(name, password);
    } catch (e) {
      if (isHfError(e) && e.code === ErrorCode.LOGIN) {
        limiter.failed(who, remote);
        audit.append({ actor: 'anonymous', action: 'login.failed', target: who, detail: { remote } });
      }
      throw e;
    }
    limiter.succeeded(who);
    const s = sessions.create(op.name, remote);
    audit.append({ actor: op.name, action: 'login', target: op.name, detail: { remote } });
    return { operator: op, ...s };
  }

  /** Ends the session with this id (audited as `logout`); false if it was not a live one. */
  logout(id: string): boolean {
    const { sessions, audit } = this.p;
    let operator: string;
    try {
      operator = sessions.check(id).operator;
    } catch {
      return false;
    }
    sessions.end(id);
    audit.append({ actor: operator, action: 'logout', target: operator });
    return true;
  }
}
