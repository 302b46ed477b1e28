/**
 * API tokens, for scripts and `holdfast ctl`: 32 random bytes (base64url after the prefix `hft_`),
 * shown once when made; the store keeps only their sha256, so a copy of the database holds no token
 * that works. Each has a name, an owner (an operator), a role no higher than the owner's, when it was
 * made and last used, and can be revoked. A token acts with the lower of its own role and its
 * owner's current one, and stops working when its owner is disabled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { type Db, stmt } from './db';
import { isRole, type Role, ROLES, roleAllows } from './operators';

/** What every token starts with (so that a leaked one is recognisable, e.g. by secret scanners). */
export const TOKEN_PREFIX = 'hft_';

export interface ApiToken {
  id: number;
  name: string;
  operator: string;
  role: Role;
  /** ms since the epoch. */
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface Row {
  id: number;
  name: string;
  operator: string;
  role: Role;
  sha256: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** The hex sha256 the store keeps of a token. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class ApiTokens {
  private readonly db: Db;
  private readonly now: () => number;

  /** `now`: wall time, ms since the epoch. */
  constructor(db: Db, now: () => number = Date.now) {
    this.db = db;
    this.now = now;
  }

  /**
   * Makes a token for `operator` (role: theirs unless a lower one is given). Returns the token itself,
   * which is not kept anywhere, and what is kept. No such operator: HF_ERR_NOT_FOUND; a role above
   * the owner's: HF_ERR_ROLE; a bad name: HF_ERR_OPTION.
   */
  create(operator: string, name: string, role?: Role): { token: string; info: ApiToken } {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw hfError(ErrorCode.OPTION, `token name must be 1..128 characters, got ${JSON.stringify(name)}`);
    if (role !== undefined && !isRole(role)) throw hfError(ErrorCode.OPTION, `role ${JSON.stringify(role)}: one of ${ROLES.join(', ')}`);
    const owner = stmt(this.db, 'SELECT role FROM operators WHERE name = ? AND disabled_at IS NULL').get(operator) as { role: Role } | undefined;
    if (owner === undefined) throw hfError(ErrorCode.NOT_FOUND, `no operator ${operator}`);
    const r = role ?? owner.role;
    if (!roleAllows(owner.role, r)) throw hfError(ErrorCode.ROLE, `${operator} is a ${owner.role}: a token cannot have the role ${r}`);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const id = stmt(this.db, 'INSERT INTO api_tokens (name, operator, role, sha256, created_at) VALUES (?, ?, ?, ?, ?)').run(name, operator, r, tokenDigest(token), this.now()).lastInsertRowid;
    return { token, info: this.get(Number(id)) as ApiToken };
  }

  /** The token's record by id, or null. */
  get(id: number): ApiToken | null {
    const r = stmt(this.db, 'SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    return r === undefined ? null : toToken(r);
  }

  /** Every token (of one operator when named), oldest first. */
  list(operator?: string): ApiToken[] {
    const rows = (
      operator === undefined ? stmt(this.db, 'SELECT * FROM api_tokens ORDER BY id').all() : stmt(this.db, 'SELECT * FROM api_tokens WHERE operator = ? ORDER BY id').all(operator)
    ) as Row[];
    return rows.map(toToken);
  }

  /**
   * Who a token presented by a client acts as, with the role it acts with; records it as used.
   * Unknown, revoked, or its owner disabled: HF_ERR_LOGIN.
   */
  authenticate(token: string): { token: ApiToken; operator: string; role: Role } {
    const bad = (): Error => hfError(ErrorCode.LOGIN, 'unknown or revoked API token');
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 100) throw bad();
    const r = stmt(this.db, 'SELECT t.*, o.role AS owner_role FROM api_tokens t JOIN operators o ON o.name = t.operator WHERE t.sha256 = ? AND t.revoked_at IS NULL AND o.disabled_at IS NULL').get(
      tokenDigest(token),
    ) as (Row & { owner_role: Role }) | undefined;
    if (r === undefined) throw bad();
    const at = this.now();
    stmt(this.db, 'UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, r.id);
    const role = roleAllows(r.owner_role, r.role) ? r.role : r.owner_role;
    return { token: { ...toToken(r), lastUsedAt: at }, operator: r.operator, role };
  }

  /** Revokes a token; false if it already was. No such token: HF_ERR_NOT_FOUND. */
  revoke(id: number): boolean {
    if (stmt(this.db, 'UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.now(), id).changes === 1) return true;
    if (this.get(id) === null) throw hfError(ErrorCode.NOT_FOUND, `no API token ${id}`);
    return false;
  }
}

function toToken(r: Row): ApiToken {
  return { id: r.id, name: r.name, operator: r.operator, role: r.role, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at };
}
