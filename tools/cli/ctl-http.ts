/**
 * `holdfast ctl`'s side of the management API (targets/host/gateway/manage/api.ts): one JSON request
 * at a time over node:http or node:https, with the API token as `Authorization: Bearer hft_...`.
 *
 * - An answer with a status of 400 or more carries `{"error": {"code", "message"}}`: it becomes an
 *   `ApiRefusal` with that code, message and status (the command prints it as one line, exit 1).
 *   An error answer without that body (a proxy's page) is an `ApiRefusal` with code HF_ERR_HTTP.
 * - No connection (refused, unknown host, reset): HfError HF_ERR_CONNECT naming the console's URL and
 *   the system's code; a certificate the system does not trust: HF_ERR_TLS; no answer within
 *   `timeoutMs`: HF_ERR_TIMEOUT; a success that is not JSON, or a body over `maxBodyBytes`: HF_ERR_HTTP.
 * - With a keep-alive agent, a request sent on a kept connection just as the server closed it for
 *   idleness (ECONNRESET or EPIPE before any answer, `req.reusedSocket`) is sent once more on a new
 *   connection: the server never read it (it reads nothing on a connection it is closing).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';

export interface ConsoleClientOptions {
  /** The console's base URL (`http://host:port/`, or `https://...`, a path prefix allowed). */
  url: URL;
  /** The API token (`hft_...`), sent with every request; null for none (a login, `login()`). */
  token: string | null;
  /** Longest wait for one answer, ms (default 30000). */
  timeoutMs?: number;
  /** Largest answer body read, bytes (default 67108864). */
  maxBodyBytes?: number;
  /** The agent requests go through (e.g. a keep-alive one for many requests); default Node's global agent. */
  agent?: http.Agent;
}

export const CONSOLE_CLIENT_DEFAULTS = { timeoutMs: 30_000, maxBodyBytes: 67_108_864 } as const;

/** The API refused a request: the code and message of its error body, and the HTTP status. */
export class ApiRefusal extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = 'ApiRefusal';
    this.code = code;
    this.status = status;
  }
}

/** The console URL `text` (`http(s)://host:port[/prefix]`; a bare `host:port` means http). Bad: HF_ERR_OPTION naming `from`. */
export function consoleUrl(text: string, from: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw hfError(ErrorCode.OPTION, `${from} ${JSON.stringify(text)}: not a URL (e.g. http://127.0.0.1:8090)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw hfError(ErrorCode.OPTION, `${from} ${JSON.stringify(text)}: http:// or https://, not ${u.protocol}`);
  if (u.username !== '' || u.password !== '') throw hfError(ErrorCode.OPTION, `${from}: no user or password in the URL (the API token goes in --token-file or HOLDFAST_TOKEN)`);
  if (u.search !== '' || u.hash !== '') throw hfError(ErrorCode.OPTION, `${from} ${JSON.stringify(text)}: no query or fragment`);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** A console session a login gave: the cookie to send back and the CSRF token its state changes need. */
export interface ConsoleSession {
  /** `hf_session=...`, for the Cookie header. */
  cookie: string;
  csrf: string;
}

/** The headers of a request made in `s` (a state-changing one needs the CSRF token). */
export function sessionHeaders(s: ConsoleSession): Record<string, string> {
  return { cookie: s.cookie, 'x-csrf-token': s.csrf };
}

const TLS_CODE = /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY/;

export class ConsoleClient {
  private readonly base: URL;
  private readonly token: string | null;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly agent: http.Agent | undefined;

  constructor(o: ConsoleClientOptions) {
    this.agent = o.agent;
    this.base = o.url;
    this.token = o.token;
    this.timeoutMs = o.timeoutMs ?? CONSOLE_CLIENT_DEFAULTS.timeoutMs;
    this.maxBodyBytes = o.maxBodyBytes ?? CONSOLE_CLIENT_DEFAULTS.maxBodyBytes;
  }

  /** The console's base URL, for messages. */
  get url(): string {
    return this.base.href;
  }

  /** The base URL and token requests go with: the event stream (ctl-events.ts) opens with the same. */
  get endpoint(): { url: URL; token: string | null } {
    return { url: this.base, token: this.token };
  }

  get<T>(path: string): Promise<T> {
    return this.request('GET', path) as Promise<T>;
  }

  post<T>(path: string, body: unknown = {}, headers: Record<string, string> = {}): Promise<T> {
    return this.request('POST', path, body, headers) as Promise<T>;
  }

  /** Sends one request to `path` (relative to the base URL, e.g. `api/jobs`) and resolves with its JSON answer (see the file comment); `timeoutMs` for this one only. */
  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = this.timeoutMs): Promise<unknown> {
    return (await this.send(method, path, body, headers, timeoutMs)).body;
  }

  /**
   * Logs in as operator `name` (POST /api/login) and resolves with the console session: its cookie
   * and CSRF token, for `request`'s headers (`sessionHeaders`). A wrong password: ApiRefusal HF_ERR_LOGIN.
   */
  async login(name: string, password: string): Promise<ConsoleSession> {
    const r = await this.send('POST', 'api/login', { name, password }, {}, this.timeoutMs);
    const set = r.headers['set-cookie'] ?? [];
    const cookie = set.map((c) => c.split(';')[0]).find((c) => c.startsWith('hf_session='));
    const csrf = (r.body as { csrf?: unknown }).csrf;
    if (cookie === undefined || typeof csrf !== 'string')
      throw hfError(ErrorCode.HTTP, `POST ${this.base.href}api/login: no session cookie or CSRF token in the answer (is ${this.base.href} the console?)`);
    return { cookie, csrf };
  }

  private async send(method: string, path: string, body: unknown, extra: Record<string, string>, timeoutMs: number): Promise<{ body: unknown; headers: http.IncomingHttpHeaders }> {
    try {
      return await this.sendOnce(method, path, body, extra, timeoutMs);
    } catch (e) {
      if (!(e instanceof StaleConnection)) throw e;
      return await this.sendOnce(method, path, body, extra, timeoutMs, false);
    }
  }

  private sendOnce(method: string, path: string, body: unknown, extra: Record<string, string>, timeoutMs: number, retry = true): Promise<{ body: unknown; headers: http.IncomingHttpHeaders }> {
    const u = new URL(path.replace(/^\/+/, ''), this.base);
    const text = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string | number> = { accept: 'application/json', ...(this.token === null ? {} : { authorization: `Bearer ${this.token}` }), ...extra };
    if (text !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = text.length;
    }
    const lib = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, v?: { body: unknown; headers: http.IncomingHttpHeaders }): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err !== null) reject(err);
        else resolve(v as { body: unknown; headers: http.IncomingHttpHeaders });
      };
      let answered = false;
      const req = lib.request(u, { method, headers, ...(this.agent === undefined ? {} : { agent: this.agent }) }, (res) => {
        answered = true;
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > this.maxBodyBytes) {
            finish(hfError(ErrorCode.HTTP, `${method} ${u.pathname}: an answer of more than ${this.maxBodyBytes} bytes`));
            req.destroy();
            return;
          }
          parts.push(d);
        });
        res.on('error', (e) => finish(this.connectError(e)));
        res.on('end', () => {
          try {
            const v = this.answer(method, u, res.statusCode ?? 0, String(res.headers['content-type'] ?? ''), Buffer.concat(parts).toString('utf8'));
            finish(null, { body: v, headers: res.headers });
          } catch (e) {
            finish(e as Error);
          }
        });
      });
      const timer = setTimeout(() => {
        finish(hfError(ErrorCode.TIMEOUT, `${method} ${u.href}: no answer within ${timeoutMs} ms`));
        req.destroy();
      }, timeoutMs);
      req.on('error', (e) => {
        const code = (e as NodeJS.ErrnoException).code;
        if (retry && req.reusedSocket && !answered && (code === 'ECONNRESET' || code === 'EPIPE')) finish(new StaleConnection(e.message));
        else finish(this.connectError(e));
      });
      req.end(text);
    });
  }

  private answer(method: string, u: URL, status: number, type: string, text: string): unknown {
    let v: unknown;
    let json = false;
    if (/^application\/json\b/i.test(type)) {
      try {
        v = JSON.parse(text);
        json = true;
      } catch {
        // said as much below
      }
    }
    if (status >= 400) {
      const err = json ? (v as { error?: { code?: unknown; message?: unknown } } | null)?.error : undefined;
      if (err !== undefined && err !== null && typeof err.code === 'string' && /^HF_ERR_[A-Z0-9_]+$/.test(err.code))
        throw new ApiRefusal(err.code, typeof err.message === 'string' ? err.message : `HTTP ${status}`, status);
      throw new ApiRefusal(ErrorCode.HTTP, `${method} ${u.href}: HTTP ${status} without a holdfast error (is ${this.base.href} the console?): ${JSON.stringify(text.slice(0, 100))}`, status);
    }
    if (!json) throw hfError(ErrorCode.HTTP, `${method} ${u.href}: HTTP ${status} and not JSON (is ${this.base.href} the console?): ${JSON.stringify(text.slice(0, 100))}`);
    return v;
  }

  private connectError(e: Error): Error {
    if (isHfError(e)) return e;
    const code = (e as NodeJS.ErrnoException).code ?? e.message;
    if (TLS_CODE.test(code)) return hfError(ErrorCode.TLS, `${this.base.href}: ${code} (${e.message})`, e);
    return hfError(ErrorCode.CONNECT, `cannot reach the console at ${this.base.href}: ${code} (is the gateway running with --console, and is --console or HOLDFAST_CONSOLE right?)`, e);
  }
}

/** A kept connection the server had closed before it read the request (see the file comment). */
class StaleConnection extends Error {}
