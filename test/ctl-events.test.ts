/**
 * tools/cli/ctl-events.ts against plain HTTP servers on 127.0.0.1: the token as Bearer, open resolving
 * at the hello (events before it skipped, comments ignored, an event split across writes), a refusal
 * (HF_ERR_HTTP with the API's code), no hello in time (HF_ERR_TIMEOUT), the stream ended by the server
 * (onEnd, HF_ERR_CLOSED, once), close() not reported, nothing listening (HF_ERR_CONNECT).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHfError } from '../firmware/errors';
import { EventStream } from '../tools/cli/ctl-events';
import { consoleUrl } from '../tools/cli/ctl-http';

const codeOf = (e: unknown): string => (isHfError(e) ? e.code : `not an HfError: ${String(e)}`);

async function serve(h: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: URL; close: () => Promise<void> }> {
  const s = http.createServer(h);
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the hello opens it; events after it reach onEvent, split writes and comments handled; the token as Bearer', async () => {
  let auth = '';
  let path = '';
  const srv = await serve((req, res) => {
    auth = String(req.headers.authorization);
    path = String(req.url);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: device\ndata: {"id":"early"}\n\n');
    res.write('retry: 2000\nevent: hello\ndata: {"name":"olga"}\n\n: keep-alive\n\n');
    res.write('event: targets\ndata: {"job":"j1",');
    setTimeout(() => res.write('"targets":[]}\n\n'), 20);
  });
  try {
    const got: [string, unknown][] = [];
    const ends: string[] = [];
    const s = await EventStream.open(
      { url: srv.url, token: 'hft_x' },
      (n, d) => got.push([n, d]),
      (e) => ends.push(e.code),
    );
    await sleep(80);
    assert.is(auth, 'Bearer hft_x');
    assert.is(path, '/prefix/api/events');
    assert.equal(got, [['targets', { job: 'j1', targets: [] }]]);
    s.close();
    s.close();
    await sleep(20);
    assert.equal(ends, [], 'close() is not reported');
  } finally {
    await srv.close();
  }
});

test('a refusal: HF_ERR_HTTP with the status and the API code; no hello in time: HF_ERR_TIMEOUT', async () => {
  const srv = await serve((req, res) => {
    if (req.headers.authorization === 'Bearer bad') {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"HF_ERR_LOGIN","message":"no"}}');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
  });
  try {
    const refused = await EventStream.open(
      { url: srv.url, token: 'bad' },
      () => {},
      () => {},
    ).catch((e) => e);
    assert.is(codeOf(refused), 'HF_ERR_HTTP');
    assert.match(refused.message, /HTTP 401 HF_ERR_LOGIN/);
    const slow = await EventStream.open(
      { url: srv.url, token: 'ok', helloTimeoutMs: 50 },
      () => {},
      () => {},
    ).catch((e) => e);
    assert.is(codeOf(slow), 'HF_ERR_TIMEOUT');
  } finally {
    await srv.close();
  }
});

test('the server ends the stream: onEnd once with HF_ERR_CLOSED', async () => {
  const srv = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('event: hello\ndata: {}\n\n');
    setTimeout(() => res.end(), 30);
  });
  try {
    const ends: string[] = [];
    await EventStream.open(
      { url: srv.url, token: null },
      () => {},
      (e) => ends.push(e.code),
    );
    await sleep(100);
    assert.equal(ends, ['HF_ERR_CLOSED']);
  } finally {
    await srv.close();
  }
});

test('nothing listening: HF_ERR_CONNECT', async () => {
  const srv = await serve(() => {});
  const url = srv.url;
  await srv.close();
  const e = await EventStream.open(
    { url, token: null },
    () => {},
    () => {},
  ).catch((x) => x);
  assert.is(codeOf(e), 'HF_ERR_CONNECT');
});

test.run();
