/**
 * targets/host/device/http-transport.ts against a plain HTTP server on 127.0.0.1: answers reach
 * `onAnswer` with their request number; a request cut unanswered on a reused keep-alive connection
 * goes once more on a new one with its number, but only while that number is within the resend
 * window of the newest posted: an older one (held long at a gateway that then closed it, as a node
 * handing its session on does) fails as cut instead, because the gateway would refuse it as a replay.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, type HfError } from '../firmware/errors';
import { HttpTransport, RESEND_WINDOW } from '../targets/host/device/http-transport';
import { RN_WINDOW } from '../firmware/wire';

type Handler = (rn: number, req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(h: Handler): Promise<{ url: URL; close: () => Promise<void> }> {
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => h(Number(Buffer.concat(chunks).toString()), req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/v1/link`),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function answer(res: http.ServerResponse, rn: number): void {
  res.writeHead(200, { 'content-type': 'application/cbor' });
  res.end(Buffer.from(`a${rn}`));
}

interface Seen {
  answers: number[];
  failures: [number, HfError][];
}

function transport(url: URL, seen: Seen, resendWindow?: number): HttpTransport {
  return new HttpTransport({
    url,
    proxy: null,
    sockets: 2,
    maxBody: 1 << 16,
    onAnswer: (rn, body) => {
      assert.is(body.toString(), `a${rn}`);
      seen.answers.push(rn);
    },
    onFailed: (rn, err) => seen.failures.push([rn, err]),
    resendWindow,
  });
}

const post = (t: HttpTransport, rn: number): void => t.post(rn, Buffer.from(String(rn)));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('the default resend window leaves room inside the gateway window', () => {
  assert.ok(RESEND_WINDOW > 0 && RESEND_WINDOW < RN_WINDOW);
});

test('a recent request cut on a reused connection goes once more, with its number, on a new one', async () => {
  const arrivals: number[] = [];
  const s = await serve((rn, req, res) => {
    arrivals.push(rn);
    // The second request is the first on a reused connection: cut unanswered, once.
    if (rn === 2 && arrivals.filter((n) => n === 2).length === 1) return req.socket.destroy();
    answer(res, rn);
  });
  const seen: Seen = { answers: [], failures: [] };
  const t = transport(s.url, seen);
  try {
    post(t, 1);
    await until('answer 1', () => seen.answers.length === 1);
    post(t, 2);
    await until('answer 2', () => seen.answers.length === 2);
    assert.equal(seen.answers, [1, 2]);
    assert.equal(seen.failures, []);
    assert.equal(arrivals, [1, 2, 2], 'request 2 arrived twice: the cut one and the one sent again');
  } finally {
    t.close();
    await s.close();
  }
});

test('a request held long and cut after the link moved on past the resend window fails as cut, not sent again', async () => {
  const arrivals: number[] = [];
  let held: http.IncomingMessage | null = null;
  const s = await serve((rn, req, res) => {
    arrivals.push(rn);
    if (rn === 2) {
      held = req; // held, as a gateway holds a request to answer later
      return;
    }
    answer(res, rn);
  });
  const seen: Seen = { answers: [], failures: [] };
  const t = transport(s.url, seen);
  const last = 2 + RESEND_WINDOW + 2;
  try {
    post(t, 1);
    await until('answer 1', () => seen.answers.length === 1);
    post(t, 2); // on the kept connection of request 1
    await until('request 2 held', () => held !== null);
    for (let rn = 3; rn <= last; rn++) {
      post(t, rn);
      await until(`answer ${rn}`, () => seen.answers.includes(rn));
    }
    (held as unknown as http.IncomingMessage).socket.destroy(); // the node handed the session on
    await until('request 2 failed', () => seen.failures.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.is(seen.failures[0][0], 2);
    assert.is(seen.failures[0][1].code, ErrorCode.CONNECT);
    assert.match(seen.failures[0][1].message, /not sent again/);
    assert.is(arrivals.filter((n) => n === 2).length, 1, 'request 2 was not sent again with its old number');
    assert.ok(!seen.answers.includes(2));
  } finally {
    t.close();
    await s.close();
  }
});

test('the same held request within the window is sent again', async () => {
  const arrivals: number[] = [];
  let held: http.IncomingMessage | null = null;
  const s = await serve((rn, req, res) => {
    arrivals.push(rn);
    if (rn === 2 && held === null) {
      held = req;
      return;
    }
    answer(res, rn);
  });
  const seen: Seen = { answers: [], failures: [] };
  const t = transport(s.url, seen, 64);
  try {
    post(t, 1);
    await until('answer 1', () => seen.answers.length === 1);
    post(t, 2);
    await until('request 2 held', () => held !== null);
    for (let rn = 3; rn <= 2 + RESEND_WINDOW + 2; rn++) {
      post(t, rn);
      await until(`answer ${rn}`, () => seen.answers.includes(rn));
    }
    (held as unknown as http.IncomingMessage).socket.destroy();
    await until('answer 2', () => seen.answers.includes(2));
    assert.equal(seen.failures, []);
    assert.is(arrivals.filter((n) => n === 2).length, 2);
  } finally {
    t.close();
    await s.close();
  }
});

test.run();
