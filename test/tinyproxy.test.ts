/** Through a real forward proxy (Debian's tinyproxy): absolute-form POSTs, keep-alive, held requests. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { Prng } from '../targets/sim/prng';
import { startTinyproxy, type Tinyproxy, tinyproxyAvailable } from './support/tinyproxy';
import { within } from './support/within';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  sha256: string;
}

interface Target {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** POST /echo echoes the body; /hold/MS answers after MS; anything else answers 'ok'. */
function startTarget(): Promise<Target> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
      const hold = /^\/hold\/(\d+)$/.exec(req.url ?? '');
      const answer = req.url === '/echo' ? body : Buffer.from('ok');
      const t = setTimeout(
        () => {
          timers.delete(t);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': answer.length }).end(answer);
        },
        hold ? Number(hold[1]) : 0,
      );
      timers.add(t);
    });
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        seen,
        close: () =>
          new Promise<void>((done) => {
            for (const t of timers) clearTimeout(t);
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}

interface Result {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
  socket: net.Socket;
  reused: boolean;
}

/** One request in absolute form (path = the full URL) to the proxy. */
function viaProxy(proxy: Tinyproxy, url: string, body: Buffer | null, agent: http.Agent | false): Promise<Result> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: proxy.port, method: body ? 'POST' : 'GET', path: url, agent, headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {} },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts), headers: res.headers, socket: req.socket!, reused: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', (e: NodeJS.ErrnoException & { reused?: boolean }) => {
      e.reused = req.reusedSocket;
      reject(e);
    });
    req.end(body ?? undefined);
  });
}

async function withBoth(fn: (proxy: Tinyproxy, target: Target) => Promise<void>): Promise<void> {
  if (!tinyproxyAvailable('tinyproxy test')) return;
  const proxy = await startTinyproxy();
  const target = await startTarget();
  try {
    await fn(proxy, target);
  } finally {
    await target.close();
    await proxy.stop();
  }
}

test('a 1 MB application/octet-stream POST in absolute form arrives intact, and comes back intact', () =>
  within(15_000, '1 MB through tinyproxy', () =>
    withBoth(async (proxy, target) => {
      const body = Buffer.alloc(1 << 20);
      new Prng(7).fill(body);
      const url = `http://127.0.0.1:${target.port}/echo`;
      const r = await viaProxy(proxy, url, body, false);
      assert.is(r.status, 200);
      assert.is(target.seen.length, 1);
      const s = target.seen[0];
      assert.is(s.method, 'POST');
      assert.is(s.url, '/echo', 'tinyproxy sends origin form upstream');
      assert.is(s.bytes, body.length);
      assert.is(s.sha256, createHash('sha256').update(body).digest('hex'));
      assert.is(s.headers['content-type'], 'application/octet-stream');
      assert.match(String(s.headers.via), /tinyproxy/, 'tinyproxy adds Via upstream');
      assert.is(s.headers.connection, 'close', 'tinyproxy asks the target to close');
      assert.ok(r.body.equals(body), 'the echo differs');
      assert.match(String(r.headers.via), /tinyproxy/, 'tinyproxy adds Via to the answer');
    }),
  ));

test('keep-alive agent: both requests succeed; tinyproxy closes the client connection after each', () =>
  within(15_000, 'keep-alive', () =>
    withBoth(async (proxy, target) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const url = `http://127.0.0.1:${target.port}/a`;
        const first = await viaProxy(proxy, url, Buffer.from('one'), agent);
        assert.is(first.status, 200);
        assert.is(first.headers.connection, undefined, 'no Connection: close, although it closes');
        // Wait for tinyproxy's close before the next request, so the agent does not pick the dying socket.
        await new Promise<void>((resolve) => (first.socket.destroyed ? resolve() : first.socket.once('close', () => resolve())));
        const second = await viaProxy(proxy, url, Buffer.from('two'), agent);
        assert.is(second.status, 200);
        assert.is(second.reused, false);
        assert.ok(second.socket !== first.socket, 'tinyproxy 1.11 kept a client connection open: update test/support/tinyproxy.ts');
        assert.equal(
          target.seen.map((s) => s.bytes),
          [3, 3],
        );
      } finally {
        agent.destroy();
      }
    }),
  ));

test('keep-alive agent back to back: a request on a socket tinyproxy is closing fails as reusedSocket, a retry succeeds', () =>
  within(15_000, 'back to back', () =>
    withBoth(async (proxy, target) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let retries = 0;
      try {
        for (let i = 0; i < 6; i++) {
          const url = `http://127.0.0.1:${target.port}/r${i}`;
          let r: Result;
          try {
            r = await viaProxy(proxy, url, Buffer.from([i]), agent);
          } catch (e) {
            const err = e as NodeJS.ErrnoException & { reused?: boolean };
            assert.ok(err.reused === true && err.code === 'ECONNRESET', `a failure other than a stale reused socket: ${err.code} reused=${err.reused}`);
            retries++;
            r = await viaProxy(proxy, url, Buffer.from([i]), agent);
          }
          assert.is(r.status, 200);
        }
      } finally {
        agent.destroy();
      }
      assert.is(target.seen.length, 6, 'a failed request reached the target');
      assert.ok(retries <= 5, `retries ${retries}`);
    }),
  ));

test('a request held by the target for 3 s completes through the proxy', () =>
  within(15_000, 'held request', () =>
    withBoth(async (proxy, target) => {
      const t0 = Date.now();
      const r = await viaProxy(proxy, `http://127.0.0.1:${target.port}/hold/3000`, Buffer.from('poll'), false);
      const ms = Date.now() - t0;
      assert.is(r.status, 200);
      assert.is(r.body.toString(), 'ok');
      assert.ok(ms >= 2900 && ms < 10_000, `took ${ms} ms`);
    }),
  ));

test('stop() ends the process and frees the port; a missing binary says how to install it', () =>
  within(10_000, 'stop', async () => {
    if (!tinyproxyAvailable('tinyproxy stop test')) return;
    const proxy = await startTinyproxy({ via: false });
    await proxy.stop();
    await proxy.stop();
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(proxy.port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''));
    });
    assert.is(refused, 'ECONNREFUSED');
    let msg = '';
    await startTinyproxy({ bin: '/nonexistent/tinyproxy' }).catch((e: Error) => (msg = e.message));
    assert.match(msg, 'tinyproxy not installed: apt-get install tinyproxy');
  }));

test.run();
