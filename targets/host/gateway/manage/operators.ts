/**
 * Operators: the people who use the console and the API, each with one role.
 *
 *   viewer < operator < admin
 *   viewer: look (devices, jobs, outcomes, the audit log); operator: also run and cancel jobs;
 *   admin: also operators, devices and keys.
 *
 * Passwords are kept as scrypt hashes (passwords.ts). `authenticate` takes as long for an unknown
 * name as for a wrong password (it hashes against a stand-in), and hashes a password again when the
 * parameters were raised since it was stored.
 */
import { randomBytes } from 'node:crypto';
import { checkInt } from '../../../../firmware/check';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { type Db, stmt } from './db';
import { hashPassword, needsRehash, type PasswordOptions, verifyPassword } from './passwords';

/** The roles, weakest first: each allows what the ones before it do. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(x: unknown): x is Role {
  return typeof x === 'string' && (ROLES as readonly string[]).includes(x);
}

/** Whether `have` allows what `need` does. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** HF_ERR_ROLE unless `who`'s role allows `need`; `act` says what was asked ("running a job"). */
export function requireRole(who: { name: string; role: Role }, need: Role, act: string): void {
  if (!roleAllows(who.role, need)) throw hfError(ErrorCode.ROLE, `${who.name} is ${who.role === 'admin' ? 'an' : 'a'} ${who.role}: ${act} needs the role ${need} or above`);
}

export interface Operator {
  name: string;
  role: Role;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch, or null while the operator may log in. */
  disabledAt: number | null;
}

export interface OperatorOptions {
  /** scrypt parameters for new hashes (see passwords.ts). */
  password?: PasswordOptions;
  /** Shortest password taken, characters (default 8). */
  minPasswordLength?: number;
  /** Longest password taken, characters (default 1024). */
  maxPasswordLength?: number;
}

export const OPERATOR_DEFAULTS: Required<Omit<OperatorOptions, 'password'>> = { minPasswordLength: 8, maxPasswordLength: 1024 };

/** Operator names: a letter or digit, then letters, digits, `.`, `_`, `-`, `@`; 1..64 characters. */
export const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

interface Row {
  name: string;
  role: Role;
  password: string;
  created_at: number;
  disabled_at: number | null;
}

export class Operators {
  private readonly db: Db;
  private readonly o: OperatorOptions & typeof OPERATOR_DEFAULTS;
  private readonly now: () => number;
  /** A hash of nothing anyone knows, checked for unknown names so that they take as long. */
  private standIn: Promise<string> | null = null;

  /** `now`: wall time, ms since the epoch. */
  constructor(db: Db, opts: OperatorOptions = {}, now: () => number = Date.now) {
    this.db = db;
    this.o = { ...OPERATOR_DEFAULTS, ...opts };
    checkInt('minPasswordLength', this.o.minPasswordLength, 1, 1024);
    checkInt('maxPasswordLength', this.o.maxPasswordLength, this.o.minPasswordLength, 65536);
    this.now = now;
  }

  /**
   * Adds an operator. `within` runs inside the transaction that adds it (to write the audit entry
   * with it: both or neither). A bad name, role or password, or a name taken: HF_ERR_OPTION.
   */
  async add(name: string, role: Role, password: string, within?: (op: Operator) => void): Promise<Operator> {
    if (typeof name !== 'string' || !OPERATOR_NAME.test(name))
      throw hfError(ErrorCode.OPTION, `operator name ${JSON.stringify(name)}: 1..64 of letters, digits and . _ @ -, starting with a letter or digit`);
    if (!isRole(role)) throw hfError(ErrorCode.OPTION, `role ${JSON.stringify(role)}: one of ${ROLES.join(', ')}`);
    this.checkPassword(password);
    if (this.get(name) !== null) throw hfError(ErrorCode.OPTION, `operator ${name} exists`);
    const hash = await hashPassword(password, this.o.password);
    try {
      return this.db
        .transaction((): Operator => {
          stmt(this.db, 'INSERT INTO operators (name, role, password, created_at) VALUES (?, ?, ?, ?)').run(name, role, hash, this.now());
          const op = this.get(name) as Operator;
          within?.(op);
          return op;
        })
        .immediate();
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw hfError(ErrorCode.OPTION, `operator ${name} exists`, e);
      throw e;
    }
  }

  /** The operator, or null. */
  get(name: string): Operator | null {
    const r = stmt(this.db, 'SELECT * FROM operators WHERE name = ?').get(name) as Row | undefined;
    return r === undefined ? null : toOperator(r);
  }

  /** Every operator, by name. */
  list(): Operator[] {
    return (stmt(this.db, 'SELECT * FROM operators ORDER BY name').all() as Row[]).map(toOperator);
  }

  /** How many operators have `role` and may log in (to keep the last admin from being removed). */
  count(role?: Role): number {
    const sql = role === undefined ? 'SELECT COUNT(*) AS n FROM operators WHERE disabled_at IS NULL' : 'SELECT COUNT(*) AS n FROM operators WHERE disabled_at IS NULL AND role = ?';
    return (stmt(this.db, sql).get(...(role === undefined ? [] : [role])) as { n: number }).n;
  }

  /** Changes the role. No such operator: HF_ERR_NOT_FOUND. */
  setRole(name: string, role: Role): void {
    if (!isRole(role)) throw hfError(ErrorCode.OPTION, `role ${JSON.stringify(role)}: one of ${ROLES.join(', ')}`);
    if (stmt(this.db, 'UPDATE operators SET role = ? WHERE name = ?').run(role, name).changes === 0) throw hfError(ErrorCode.NOT_FOUND, `no operator ${name}`);
  }

  /**
   * Stops the operator logging in, ends their console sessions and revokes their API tokens (so that
   * enabling them again later revives neither). No such operator: HF_ERR_NOT_FOUND.
   */
  disable(name: string): void {
    const at = this.now();
    this.db
      .transaction(() => {
        if (stmt(this.db, 'UPDATE operators SET disabled_at = COALESCE(disabled_at, ?) WHERE name = ?').run(at, name).changes === 0) throw hfError(ErrorCode.NOT_FOUND, `no operator ${name}`);
        stmt(this.db, 'DELETE FROM sessions WHERE operator = ?').run(name);
        stmt(this.db, 'UPDATE api_tokens SET revoked_at = ? WHERE operator = ? AND revoked_at IS NULL').run(at, name);
      })
      .immediate();
  }

  /** Lets a disabled operator log in again (with a new login: what they had was ended by `disable`). No such operator: HF_ERR_NOT_FOUND. */
  enable(name: string): void {
    if (stmt(this.db, 'UPDATE operators SET disabled_at = NULL WHERE name = ?').run(name).changes === 0) throw hfError(ErrorCode.NOT_FOUND, `no operator ${name}`);
  }

  /** Sets a new password. No such operator: HF_ERR_NOT_FOUND; a bad one: HF_ERR_OPTION. */
  async setPassword(name: string, password: string): Promise<void> {
    this.checkPassword(password);
    const hash = await hashPassword(password, this.o.password);
    if (stmt(this.db, 'UPDATE operators SET password = ? WHERE name = ?').run(hash, name).changes === 0) throw hfError(ErrorCode.NOT_FOUND, `no operator ${name}`);
  }

  /**
   * The operator whose name and password these are. Unknown name, wrong password or a disabled
   * operator: HF_ERR_LOGIN, the same message for all three (the caller counts it as a failure).
   */
  async authenticate(name: string, password: string): Promise<Operator> {
    const r = typeof name === 'string' ? (stmt(this.db, 'SELECT * FROM operators WHERE name = ?').get(name) as Row | undefined) : undefined;
    const pw = typeof password === 'string' && password.length <= this.o.maxPasswordLength ? password : '';
    if (r === undefined) {
      this.standIn ??= hashPassword(randomBytes(18).toString('base64'), this.o.password);
      await verifyPassword(await this.standIn, pw);
      throw loginFailed();
    }
    const ok = await verifyPassword(r.password, pw);
    if (!ok || r.disabled_at !== null) throw loginFailed();
    if (needsRehash(r.password, this.o.password)) {
      const hash = await hashPassword(pw, this.o.password);
      stmt(this.db, 'UPDATE operators SET password = ? WHERE name = ? AND password = ?').run(hash, r.name, r.password);
    }
    return toOperator(r);
  }

  private checkPassword(password: string): void {
    if (typeof password !== 'string') throw hfError(ErrorCode.OPTION, 'the password must be a string');
    const n = [...password].length;
    if (n < this.o.minPasswordLength) throw hfError(ErrorCode.OPTION, `the password has ${n} characters, fewer than minPasswordLength ${this.o.minPasswordLength}`);
    if (n > this.o.maxPasswordLength) throw hfError(ErrorCode.OPTION, `the password has ${n} characters, more than maxPasswordLength ${this.o.maxPasswordLength}`);
  }
}

function loginFailed(): Error {
  return hfError(ErrorCode.LOGIN, 'unknown operator or wrong password');
}

function toOperator(r: Row): Operator {
  return { name: r.name, role: r.role, createdAt: r.created_at, disabledAt: r.disabled_at };
}
