/**
 * tools/cli/ctl-http.ts against plain HTTP servers on 127.0.0.1 that are not the console: the console
 * URL and its checks, the token as a Bearer header, a holdfast error body as an ApiRefusal with its
 * code and status, a proxy's error page (HF_ERR_HTTP), a success that is not JSON, an answer over the
 * size bound, no answer in time (HF_ERR_TIMEOUT), nothing listening (HF_ERR_CONNECT), a kept
 * connection the server closed before reading the request (sent again once), and a login's session
 * cookie and CSRF token.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiRefusal, ConsoleClient, consoleUrl, sessionHeaders } from '../tools/cli/ctl-http';
import { isHfError } from '../firmware/errors';
import { code } from './support/errors';

const codeOf = (e: unknown): string => (isHfError(e) ? e.code : `not an HfError: ${String(e)}`);

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;

/** A server on 127.0.0.1 answering with `h`; resolves with its base URL and a close function. */
async function serve(h: Handler): Promise<{ url: URL; close: () => Promise<void> }> {
  const s = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => h(req, body, res));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  return {
    url: consoleUrl(`127.0.0.1:${port}/prefix`, '--console'),
    close: () =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

const json = (res: http.ServerResponse, status: number, v: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(v));
};

async function refusal(p: Promise<unknown>): Promise<ApiRefusal> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, ApiRefusal);
    return e as ApiRefusal;
  }
  throw new Error('expected a refusal');
}

async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

test('consoleUrl: a bare host:port is http, a path prefix gets its slash; other schemes, credentials, queries refused', () => {
  assert.is(consoleUrl('127.0.0.1:8090', '--console').href, 'http://127.0.0.1:8090/');
  assert.is(consoleUrl('https://gw.example/holdfast', '--console').href, 'https://gw.example/holdfast/');
  assert.is(
    code(() => consoleUrl('ftp://x', '--console')),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => consoleUrl('http://ada:pw@x', '--console')),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => consoleUrl('http://x/?a=1', '--console')),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => consoleUrl('http://[bad', '--console')),
    'HF_ERR_OPTION',
  );
});

test('a request: under the prefix, the token as Bearer, a JSON body; the answer parsed', async () => {
  let seen: { url?: string; auth?: string; type?: string; body?: string } = {};
  const s = await serve((req, body, res) => {
    seen = { url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body };
    json(res, 201, { job: { id: 'j-1' } });
  });
  try {
    const c = new ConsoleClient({ url: s.url, token: 'hft_abc' });
    assert.equal(await c.post('api/jobs', { op: 'info' }), { job: { id: 'j-1' } });
    assert.equal(seen, { url: '/prefix/api/jobs', auth: 'Bearer hft_abc', type: 'application/json', body: '{"op":"info"}' });
  } finally {
    await s.close();
  }
});

test('a holdfast error body: an ApiRefusal with its code, message and status', async () => {
  const s = await serve((_req, _b, res) => json(res, 403, { error: { code: 'HF_ERR_ROLE', message: 'vic is a viewer' } }));
  try {
    const e = await refusal(new ConsoleClient({ url: s.url, token: 'hft_x' }).get('api/jobs'));
    assert.equal([e.code, e.message, e.status], ['HF_ERR_ROLE', 'vic is a viewer', 403]);
  } finally {
    await s.close();
  }
});

test("a proxy's error page: HF_ERR_HTTP naming the status; a success that is not JSON: HF_ERR_HTTP", async () => {
  const s = await serve((req, _b, res) => {
    res.writeHead(req.url?.endsWith('page') ? 502 : 200, { 'content-type': 'text/html' });
    res.end('<html>Bad Gateway</html>');
  });
  try {
    const c = new ConsoleClient({ url: s.url, token: 'hft_x' });
    const e = await refusal(c.get('api/page'));
    assert.is(e.code, 'HF_ERR_HTTP');
    assert.is(e.status, 502);
    assert.match(e.message, /HTTP 502 without a holdfast error/);
    assert.is(codeOf(await rejected(c.get('api/ok'))), 'HF_ERR_HTTP');
  } finally {
    await s.close();
  }
});

test('an answer over maxBodyBytes: HF_ERR_HTTP; no answer within timeoutMs: HF_ERR_TIMEOUT', async () => {
  const s = await serve((req, _b, res) => {
    if (req.url?.endsWith('big')) json(res, 200, { data: 'x'.repeat(5000) });
    // else: never answers
  });
  try {
    const big = await rejected(new ConsoleClient({ url: s.url, token: 'hft_x', maxBodyBytes: 1000 }).get('api/big'));
    assert.is(codeOf(big), 'HF_ERR_HTTP');
    assert.match(big.message, /more than 1000 bytes/);
    const slow = await rejected(new ConsoleClient({ url: s.url, token: 'hft_x', timeoutMs: 50 }).get('api/slow'));
    assert.is(codeOf(slow), 'HF_ERR_TIMEOUT');
    assert.match(slow.message, /no answer within 50 ms/);
  } finally {
    await s.close();
  }
});

test('nothing listening: HF_ERR_CONNECT naming the console and the system code', async () => {
  const s = await serve(() => {});
  const url = s.url;
  await s.close();
  const e = await rejected(new ConsoleClient({ url, token: 'hft_x' }).get('api/devices'));
  assert.is(codeOf(e), 'HF_ERR_CONNECT');
  assert.ok(e.message.startsWith(`cannot reach the console at ${url.href}: ECONNREFUSED`), e.message);
});

test("login: no Bearer header; the session's cookie and CSRF token, sent back by sessionHeaders", async () => {
  const auth: (string | undefined)[] = [];
  const s = await serve((req, _b, res) => {
    auth.push(req.headers.authorization);
    if (req.url?.endsWith('login')) json(res, 200, { name: 'ada', role: 'admin', csrf: 'C5RF' }, { 'set-cookie': 'hf_session=S1D; Max-Age=60; Path=/; HttpOnly; SameSite=Strict' });
    else json(res, 200, { cookie: req.headers.cookie, csrf: req.headers['x-csrf-token'] });
  });
  try {
    const c = new ConsoleClient({ url: s.url, token: null });
    const session = await c.login('ada', 'pw');
    assert.equal(session, { cookie: 'hf_session=S1D', csrf: 'C5RF' });
    assert.equal(await c.post('api/tokens', { name: 't' }, sessionHeaders(session)), { cookie: 'hf_session=S1D', csrf: 'C5RF' });
    assert.equal(auth, [undefined, undefined]);
  } finally {
    await s.close();
  }
});

test('a request on a kept connection the server reset unread is sent once more on a new one', async () => {
  const served = new WeakSet<object>();
  let resets = 0;
  let answered = 0;
  // The server answers the first request of each connection and resets the connection of any later
  // one unread, as a server closing an idle keep-alive connection does when a request crosses it.
  const s = await serve((req, body, res) => {
    if (served.has(req.socket)) {
      resets++;
      req.socket.resetAndDestroy();
      return;
    }
    served.add(req.socket);
    answered++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ok: true, body }));
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const c = new ConsoleClient({ url: s.url, token: 'hft_x', agent });
    assert.equal(await c.get('api/one'), { ok: true, body: '' });
    assert.equal(await c.post('api/two', { n: 2 }), { ok: true, body: '{"n":2}' }, 'the POST went again on a new connection');
    assert.is(resets, 1);
    assert.is(answered, 2, 'each request handled once');
  } finally {
    agent.destroy();
    await s.close();
  }
});

test.run();
