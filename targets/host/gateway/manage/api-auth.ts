/**
 * Who is asking the management API, and may they. Two ways in:
 *
 * - the console: a login sets the cookie `hf_session` (HttpOnly, SameSite=Strict, Path=/; Secure when
 *   the console is served over TLS); every state-changing request (anything but GET and HEAD) must
 *   also carry the session's CSRF token in the `x-csrf-token` header (the page has it from the login
 *   answer or `GET /api/me`; another site's page can send the cookie but cannot read the token);
 * - scripts (`holdfast ctl`): `Authorization: Bearer hft_...`, an API token (tokens.ts), no cookie and
 *   so no CSRF token needed.
 *
 * No credentials, a forged or expired cookie, an unknown or revoked token: HF_ERR_LOGIN (401). A missing
 * or wrong CSRF token: HF_ERR_CSRF (403). A role below what the route needs: HF_ERR_ROLE (403).
 */
import type { IncomingMessage } from 'node:http';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { type Role, requireRole } from './operators';
import type { ManageStore } from './store';

export const SESSION_COOKIE = 'hf_session';
export const CSRF_HEADER = 'x-csrf-token';

/** Someone the API let in. */
export interface Caller {
  name: string;
  role: Role;
  /** `session` (the console) or `token:NAME`. */
  via: string;
  /** The console session's CSRF token (sessions only). */
  csrf: string | null;
  /** The session's cookie value, to end it at logout (sessions only). */
  sessionId: string | null;
}

/** The value of cookie `name` in the request, or null. */
export function cookie(req: IncomingMessage, name: string): string | null {
  const h = req.headers.cookie;
  if (typeof h !== 'string') return null;
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

/** The Set-Cookie header value of a new console session (or of its removal, `id` null). */
export function sessionCookie(id: string | null, maxAgeS: number, secure: boolean): string {
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
  if (id === null) return [`${SESSION_COOKIE}=`, 'Max-Age=0', ...attrs].join('; ');
  return [`${SESSION_COOKIE}=${id}`, `Max-Age=${Math.max(1, Math.floor(maxAgeS))}`, ...attrs].join('; ');
}

/** Who sent `req` (see the file comment); throws HF_ERR_LOGIN. */
export function identify(store: ManageStore, req: IncomingMessage): Caller {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 0) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (m === null) throw hfError(ErrorCode.LOGIN, 'Authorization must be "Bearer <API token>"');
    const t = store.tokens.authenticate(m[1]);
    return { name: t.operator, role: t.role, via: `token:${t.token.name}`, csrf: null, sessionId: null };
  }
  const id = cookie(req, SESSION_COOKIE);
  if (id === null || id === '') throw hfError(ErrorCode.LOGIN, 'not logged in: log in, or give an API token (Authorization: Bearer ...)');
  const s = store.sessions.check(id);
  return { name: s.operator, role: s.role, via: 'session', csrf: s.csrf, sessionId: id };
}

/** HF_ERR_CSRF for a console session's state-changing request without its token (tokens need none). */
export function checkCsrf(store: ManageStore, req: IncomingMessage, c: Caller): void {
  if (c.sessionId === null || req.method === 'GET' || req.method === 'HEAD') return;
  const given = req.headers[CSRF_HEADER];
  store.sessions.checkCsrf(store.sessions.check(c.sessionId), Array.isArray(given) ? given[0] : given);
}

/** HF_ERR_ROLE unless `c` has at least `need`. */
export function needRole(c: Caller, need: Role, act: string): void {
  requireRole(c, need, act);
}
