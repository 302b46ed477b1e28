/**
 * The management API and the web console, on a listener of their own (`--console HOST:PORT`; not the
 * devices' listener). JSON in and out; every refusal is `{"error": {"code", "message"}}` with the
 * status of its code (targets/host/net/http-status.ts) and the code in `x-holdfast-error`.
 *
 *   POST /api/login               {name, password}             -> {name, role, csrf, expiresAt} + cookie
 *   POST /api/logout                                           -> {}
 *   GET  /api/me                                               -> {name, role, via, csrf}
 *   GET  /api/gateway                                          -> {pair: PairStatus | null}     viewer
 *                                 (this node's role, epoch, peer, takeovers, replication; null: no pair)
 *   GET  /api/devices?selector=S                               -> {devices: [...]}              viewer
 *   PUT  /api/devices/ID/labels   {labels: {k: v}}             -> {device}                      admin
 *   POST /api/jobs                {op, args, selector, timeoutMs?, expiresInMs?} -> 201 {job}  operator
 *   GET  /api/jobs?limit=N&before=MS                           -> {jobs: [...]}                 viewer
 *   GET  /api/jobs/ID                                          -> {job, targets: [...]}         viewer
 *   POST /api/jobs/ID/cancel                                   -> {job}                         operator
 *   GET  /api/audit?limit=N&before=SEQ                         -> {entries, head}               viewer
 *   GET  /api/audit/verify                                     -> verify()'s verdict            viewer
 *   GET  /api/operators                                        -> {operators: [...]}            admin
 *   POST /api/operators           {name, role, password}       -> 201 {operator}                admin
 *   PUT  /api/operators/NAME      {role?, disabled?}           -> {operator}                    admin (not themselves)
 *   POST /api/tokens              {name, role?}                -> 201 {token, info}             viewer (own, at most own role)
 *   GET  /api/events                                           -> text/event-stream             viewer
 *                                 (hello, device, job, targets: docs/ARCHITECTURE.md "The event stream")
 *   GET  /, /console.js, /operators.js, /console.css           -> the console (no login needed to load it)
 *
 * Who may do what: api-auth.ts. A refused attempt to change something (a role too low, no CSRF token,
 * a bad cookie on a POST, bad job input) is audited as `request.refused` with its code; nothing else
 * changes. Bodies over `maxBodyBytes` (default 25165824: a 16 MiB update as base64) or not JSON:
 * HF_ERR_BODY.
 */
import * as http from 'node:http';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../../firmware/errors';
import type { Log } from '../../../../hal/log';
import { type Address, listenOn } from '../../net/address';
import { ERROR_HEADER, statusFor } from '../../net/http-status';
import { type Caller, checkCsrf, identify, needRole, SESSION_COOKIE, cookie, sessionCookie } from './api-auth';
import { type ConsoleFile, loadConsole } from './console-files';
import { isRole, type Role, roleAllows } from './operators';
import type { ManageService } from './service';
import type { PairStatus } from '../pair/pair';
import { SseHub, type SseOptions } from './sse';

export interface ConsoleOptions {
  /** Largest request body, bytes (default 25165824). */
  maxBodyBytes?: number;
  /** Mark the session cookie Secure (when the console is reached over HTTPS, e.g. behind a TLS proxy; default false). */
  secureCookie?: boolean;
  sse?: SseOptions;
  /** The console's files (default: found by console-files.ts); null serves the API alone. */
  files?: Map<string, ConsoleFile> | null;
}

export const CONSOLE_DEFAULTS = { maxBodyBytes: 25_165_824, secureCookie: false } as const;

/** What `GET /api/gateway` reads of the gateway (a Gateway has it). */
export interface GatewayStatusSource {
  pairStatus(): PairStatus | null;
}

type Handler = (c: Caller, req: http.IncomingMessage, m: RegExpExecArray, q: URLSearchParams) => Promise<unknown> | unknown;

interface Route {
  method: string;
  path: RegExp;
  need: Role;
  handler: Handler;
}

export class ManageApi {
  private readonly server: http.Server;
  private readonly service: ManageService;
  private readonly log: Log;
  private readonly maxBodyBytes: number;
  private readonly secure: boolean;
  private readonly files: Map<string, ConsoleFile> | null;
  private readonly sse: SseHub;
  private readonly routes: Route[];
  address = '';
  /** The gateway `GET /api/gateway` reports on (set once it started; null: `pair` is null). */
  gateway: GatewayStatusSource | null = null;

  constructor(service: ManageService, log: Log, opts: ConsoleOptions = {}) {
    this.service = service;
    this.log = log;
    this.maxBodyBytes = opts.maxBodyBytes ?? CONSOLE_DEFAULTS.maxBodyBytes;
    this.secure = opts.secureCookie ?? CONSOLE_DEFAULTS.secureCookie;
    this.files = opts.files === undefined ? loadConsole() : opts.files;
    this.sse = new SseHub(opts.sse);
    this.routes = this.table();
    service.on('device', (d) => this.sse.send('device', d, `device:${d.id}`));
    service.on('target', (t) => this.sse.target(t));
    service.on('job', (j) => this.sse.send('job', j));
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => this.fail(req, res, e));
    });
    this.server.headersTimeout = 20_000;
    this.server.requestTimeout = 120_000;
  }

  /** Starts listening on `want`; resolves with the bound "host:port". */
  async listen(want: Address): Promise<string> {
    this.address = await listenOn(this.server, want, 'console');
    return this.address;
  }

  get url(): string {
    return `http://${this.address}/`;
  }

  /** Event streams open now, and how many were dropped for not reading (sse.ts). */
  get streams(): { open: number; dropped: number } {
    return { open: this.sse.size, dropped: this.sse.dropped };
  }

  close(): Promise<void> {
    this.sse.close();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }

  private table(): Route[] {
    const s = this.service;
    const store = s.store;
    const r = (method: string, path: RegExp, need: Role, handler: Handler): Route => ({ method, path, need, handler });
    return [
      r('GET', /^\/api\/me$/, 'viewer', (c) => ({ name: c.name, role: c.role, via: c.via, csrf: c.csrf })),
      r('POST', /^\/api\/logout$/, 'viewer', (c) => {
        if (c.sessionId !== null) store.logins.logout(c.sessionId);
        this.sse.recheck();
        return { status: 200, body: {}, headers: { 'Set-Cookie': sessionCookie(null, 0, this.secure) } };
      }),
      r('GET', /^\/api\/gateway$/, 'viewer', () => ({ pair: this.gateway?.pairStatus() ?? null })),
      r('GET', /^\/api\/devices$/, 'viewer', (_c, _r, _m, q) => ({ devices: s.devices(q.get('selector') ?? undefined) })),
      r('PUT', /^\/api\/devices\/([^/]+)\/labels$/, 'admin', async (c, req, m) => {
        const id = decodeURIComponent(m[1]);
        const b = await this.body(req);
        if (store.devices.get(id) === null) throw hfError(ErrorCode.NOT_FOUND, `no device ${JSON.stringify(id.slice(0, 128))}`);
        store.devices.setLabels(id, b.labels as Record<string, string>);
        store.audit.append({ actor: c.name, action: 'device.labels', target: id, detail: { labels: b.labels as Record<string, unknown>, via: c.via } });
        return { device: s.devices(`id=${id}`)[0] ?? null };
      }),
      r('POST', /^\/api\/jobs$/, 'operator', async (c, req) => {
        const b = await this.body(req);
        return { status: 201, body: { job: s.createJob({ op: b.op, args: b.args, selector: b.selector, timeoutMs: b.timeoutMs, expiresInMs: b.expiresInMs }, c.name) } };
      }),
      r('GET', /^\/api\/jobs$/, 'viewer', (_c, _r, _m, q) => ({
        jobs: store.jobs.jobs({ limit: intParam(q, 'limit', 100, 1, 1000), before: intParam(q, 'before', Number.MAX_SAFE_INTEGER, 0, Number.MAX_SAFE_INTEGER) }),
      })),
      r('GET', /^\/api\/jobs\/([^/]+)$/, 'viewer', (_c, _r, m) => s.job(decodeURIComponent(m[1]))),
      r('POST', /^\/api\/jobs\/([^/]+)\/cancel$/, 'operator', (c, _r, m) => ({ job: s.cancel(decodeURIComponent(m[1]), c.name) })),
      r('GET', /^\/api\/audit$/, 'viewer', (_c, _r, _m, q) => ({
        entries: store.audit.latest(intParam(q, 'limit', 100, 1, 1000), intParam(q, 'before', Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER)),
        head: store.audit.head(),
      })),
      r('GET', /^\/api\/audit\/verify$/, 'viewer', () => store.audit.verify()),
      r('GET', /^\/api\/operators$/, 'admin', () => ({ operators: store.operators.list() })),
      r('POST', /^\/api\/operators$/, 'admin', async (c, req) => {
        const b = await this.body(req);
        if (typeof b.name !== 'string' || typeof b.password !== 'string' || !isRole(b.role))
          throw hfError(ErrorCode.BAD_ARGS, 'an operator needs {"name": text, "role": "viewer" | "operator" | "admin", "password": text}');
        const role = b.role;
        const op = await store.operators.add(b.name, role, b.password, (o) => store.audit.append({ actor: c.name, action: 'operator.add', target: o.name, detail: { role, via: c.via } }));
        return { status: 201, body: { operator: op } };
      }),
      r('PUT', /^\/api\/operators\/([^/]+)$/, 'admin', async (c, req, m) => {
        const name = decodeURIComponent(m[1]);
        const b = await this.body(req);
        if (b.role !== undefined && !isRole(b.role)) throw hfError(ErrorCode.BAD_ARGS, `role must be viewer, operator or admin, got ${JSON.stringify(b.role)}`);
        if (b.disabled !== undefined && typeof b.disabled !== 'boolean') throw hfError(ErrorCode.BAD_ARGS, `disabled must be true or false, got ${JSON.stringify(b.disabled)}`);
        if (b.role === undefined && b.disabled === undefined) throw hfError(ErrorCode.BAD_ARGS, 'a change needs "role", "disabled" or both');
        if (name === c.name) throw hfError(ErrorCode.BAD_ARGS, 'an admin cannot change their own role or disable themselves here (use holdfast operator)');
        const disabled = b.disabled as boolean | undefined;
        store.jobs.batch(() => {
          if (isRole(b.role)) store.operators.setRole(name, b.role);
          if (disabled === true) store.operators.disable(name);
          if (disabled === false) store.operators.enable(name);
          store.audit.append({
            actor: c.name,
            action: 'operator.change',
            target: name,
            detail: { ...(b.role === undefined ? {} : { role: b.role as string }), ...(disabled === undefined ? {} : { disabled }), via: c.via },
          });
        });
        if (disabled === true) this.sse.recheck();
        return { operator: store.operators.get(name) };
      }),
      r('POST', /^\/api\/tokens$/, 'viewer', async (c, req) => {
        const b = await this.body(req);
        const role = b.role === undefined ? c.role : b.role;
        if (!isRole(role)) throw hfError(ErrorCode.BAD_ARGS, `role must be viewer, operator or admin, got ${JSON.stringify(role)}`);
        if (!roleAllows(c.role, role)) throw hfError(ErrorCode.ROLE, `${c.name} is a ${c.role}: a token cannot have more (${role})`);
        if (typeof b.name !== 'string') throw hfError(ErrorCode.BAD_ARGS, 'name must be text');
        const t = store.tokens.create(c.name, b.name, role);
        store.audit.append({ actor: c.name, action: 'token.create', target: c.name, detail: { name: b.name, role, id: t.info.id, via: c.via } });
        return { status: 201, body: t };
      }),
    ];
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console');
    const path = url.pathname;
    if (!path.startsWith('/api/')) return this.serveFile(req, res, path);
    if (path === '/api/login' && req.method === 'POST') return this.login(req, res);
    if (path === '/api/events' && req.method === 'GET') {
      const c = identify(this.service.store, req);
      const store = this.service.store;
      const auth = req.headers.authorization;
      const valid = (): boolean => {
        try {
          if (c.sessionId !== null) store.sessions.check(c.sessionId);
          else if (typeof auth === 'string') identify(store, { headers: { authorization: auth } } as http.IncomingMessage);
          return true;
        } catch {
          return false;
        }
      };
      this.sse.add(res, { name: c.name, role: c.role, online: this.service.onlineCount }, valid);
      req.resume();
      return;
    }
    const candidates = this.routes.filter((r) => r.path.test(path));
    const route = candidates.find((r) => r.method === req.method);
    if (route === undefined) {
      req.resume();
      if (candidates.length > 0) throw hfError(ErrorCode.NOT_FOUND, `${req.method} is not a method of ${path} (${candidates.map((r) => r.method).join(', ')})`);
      throw hfError(ErrorCode.NOT_FOUND, `no API route ${path}`);
    }
    const acting = req.method !== 'GET' && req.method !== 'HEAD';
    let c: Caller | null = null;
    try {
      c = identify(this.service.store, req);
      checkCsrf(this.service.store, req, c);
      needRole(c, route.need, `${req.method} ${path}`);
      const out = await route.handler(c, req, route.path.exec(path) as RegExpExecArray, url.searchParams);
      const withStatus =
        out !== null && typeof out === 'object' && 'status' in out && 'body' in out ? (out as { status: number; body: unknown; headers?: Record<string, string> }) : { status: 200, body: out };
      for (const [k, v] of Object.entries(withStatus.headers ?? {})) res.setHeader(k, v);
      this.json(res, withStatus.status, withStatus.body);
    } catch (e) {
      req.resume();
      if (acting) this.refused(c, req, path, e);
      throw e;
    }
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const b = await this.body(req);
    if (typeof b.name !== 'string' || typeof b.password !== 'string') throw hfError(ErrorCode.BODY, 'login needs {"name": text, "password": text}');
    const remote = req.socket.remoteAddress ?? 'unknown';
    const old = cookie(req, SESSION_COOKIE);
    if (old !== null && old !== '') this.service.store.sessions.end(old);
    const li = await this.service.store.logins.login(b.name, b.password, remote);
    const maxAgeS = (li.expiresAt - Date.now()) / 1000;
    res.setHeader('Set-Cookie', sessionCookie(li.id, maxAgeS, this.secure));
    this.json(res, 200, { name: li.operator.name, role: li.operator.role, csrf: li.csrf, expiresAt: li.expiresAt });
  }

  /** Audits a refused attempt to change something (see the file comment). */
  private refused(c: Caller | null, req: http.IncomingMessage, path: string, e: unknown): void {
    const code = isHfError(e) ? e.code : ErrorCode.OP_FAILED;
    try {
      this.service.store.audit.append({
        actor: c?.name ?? 'anonymous',
        action: 'request.refused',
        target: path.slice(0, 256),
        detail: { method: String(req.method), code, message: String((e as Error).message).slice(0, 300), remote: req.socket.remoteAddress ?? 'unknown', ...(c ? { via: c.via } : {}) },
      });
    } catch (err) {
      this.log.warn('cannot audit a refused request', { reason: (err as Error).message });
    }
  }

  private serveFile(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    req.resume();
    const f = this.files?.get(path);
    if (f === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) throw hfError(ErrorCode.NOT_FOUND, `no page ${path}`);
    res.writeHead(200, {
      'Content-Type': f.type,
      'Content-Length': f.body.length,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : f.body);
  }

  /** The request's JSON object body (HF_ERR_BODY when it is not one, or too large). */
  private body(req: http.IncomingMessage): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\b/i.test(type)) {
        req.resume();
        return reject(hfError(ErrorCode.BODY, `the body must be application/json, got ${JSON.stringify(type.slice(0, 100))}`));
      }
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > this.maxBodyBytes) {
        req.resume();
        return reject(hfError(ErrorCode.BODY, `a body of ${declared} bytes: at most ${this.maxBodyBytes}`));
      }
      const parts: Buffer[] = [];
      let size = 0;
      req.on('data', (d: Buffer) => {
        size += d.length;
        if (size <= this.maxBodyBytes) parts.push(d);
      });
      req.on('error', reject);
      req.on('end', () => {
        if (size > this.maxBodyBytes) return reject(hfError(ErrorCode.BODY, `a body of more than ${this.maxBodyBytes} bytes`));
        let v: unknown;
        try {
          v = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch (e) {
          return reject(hfError(ErrorCode.BODY, `the body is not JSON (${(e as Error).message})`));
        }
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return reject(hfError(ErrorCode.BODY, 'the body must be a JSON object'));
        resolve(v as Record<string, unknown>);
      });
    });
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': text.length, 'Cache-Control': 'no-store' });
    res.end(text);
  }

  private fail(req: http.IncomingMessage, res: http.ServerResponse, e: unknown): void {
    const err: HfError = isHfError(e) ? e : hfError(ErrorCode.OP_FAILED, String((e as Error)?.message ?? e));
    const status = isHfError(e) ? statusFor(err.code) : 500;
    if (status >= 500) this.log.warn('console request failed', { method: req.method, path: req.url, code: err.code, reason: err.message });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = Buffer.from(JSON.stringify({ error: { code: err.code, message: err.message } }));
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': text.length, 'Cache-Control': 'no-store', [ERROR_HEADER]: err.code });
    res.end(text);
  }
}

function intParam(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const v = q.get(name);
  if (v === null) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw hfError(ErrorCode.BAD_ARGS, `${name} must be a whole number in ${min}..${max}, got ${JSON.stringify(v.slice(0, 40))}`);
  return n;
}
