/** tools/chaos-proxy: each kill phase cuts where it says, modes, killAll, replay by seed, the CLI. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Prng } from '../targets/sim/prng';
import { ChaosProxy, type ChaosProxyOptions, type KillInfo, type KillPhase, httpMessageLength, startChaosProxy } from '../tools/chaos-proxy';
import { sleep, within } from './support/within';
import { code } from './support/errors';

const BODY = 10_000;
const ANSWER = 20_000;

/** What the target server saw. */
interface Seen {
  connections: number;
  /** Body lengths of requests that arrived whole. */
  complete: number[];
  /** Body bytes of requests whose head arrived but not all of the body. */
  partial: number[];
}

interface Server {
  port: number;
  seen: Seen;
  close(): Promise<void>;
}

/** POST /x answers ANSWER bytes; POST /echo echoes the body; GET /hold/MS answers after MS. */
function startServer(): Promise<Server> {
  const seen: Seen = { connections: 0, complete: [], partial: [] };
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
      if (req.url === '/echo') parts.push(d);
    });
    req.on('close', () => {
      if (!req.complete) seen.partial.push(n);
    });
    req.on('end', () => {
      seen.complete.push(n);
      const hold = /^\/hold\/(\d+)$/.exec(req.url ?? '');
      const body = req.url === '/echo' ? Buffer.concat(parts) : Buffer.alloc(hold ? 2 : ANSWER, 'r');
      setTimeout(
        () => {
          if (!res.destroyed) res.writeHead(200, { 'content-length': body.length }).end(body);
        },
        hold ? Number(hold[1]) : 0,
      );
    });
  });
  server.on('connection', (s: net.Socket) => {
    seen.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s: net.Socket) => s.destroy());
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        seen,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function post(url: string, bodyLen: number, keepAlive = false): Buffer {
  const head = `POST ${url} HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodyLen}\r\nConnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.alloc(bodyLen, 'q')]);
}

interface Outcome {
  got: Buffer;
  error: string | null;
}

/** One raw connection: writes `data`, collects every byte until the socket closes. */
function exchange(port: number, data: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let error: string | null = null;
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ got: Buffer.concat(parts), error }));
  });
}

/** A raw keep-alive connection that sends one request at a time and reads one whole answer. */
class RawClient {
  private readonly s: net.Socket;
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  error: string | null = null;
  closed = false;

  constructor(port: number) {
    this.s = net.connect(port, '127.0.0.1');
    this.s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    this.s.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message));
    this.s.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  /** Sends a request; resolves with the answer's length, or null if the connection closed first. */
  request(data: Buffer): Promise<number | null> {
    this.s.write(data);
    return new Promise((resolve) => {
      const check = () => {
        const len = httpMessageLength(this.buf, false);
        if (len !== null && this.buf.length >= len) {
          this.buf = this.buf.subarray(len);
          this.waiter = null;
          resolve(len);
        } else if (this.closed) {
          this.waiter = null;
          resolve(null);
        }
      };
      this.waiter = check;
      check();
    });
  }

  /** True if no byte arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    const before = this.buf.length;
    await sleep(ms);
    return this.buf.length === before && !this.closed;
  }

  waitClosed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.s.once('close', () => resolve());
    });
  }

  destroy(): void {
    this.s.destroy();
  }
}

async function withProxy(opts: Omit<ChaosProxyOptions, 'target'>, fn: (p: ChaosProxy, srv: Server, kills: KillInfo[]) => Promise<void>): Promise<void> {
  const srv = await startServer();
  const kills: KillInfo[] = [];
  const p = await startChaosProxy({ ...opts, target: { port: srv.port }, onKill: (k) => kills.push(k) });
  try {
    await fn(p, srv, kills);
  } finally {
    await p.close();
    await srv.close();
  }
}

test('before-request: the target gets part of the request (never all), the client no answer', () =>
  within(10_000, 'before-request', () =>
    withProxy({ killRate: 1, phases: ['before-request'], seed: 5 }, async (p, srv, kills) => {
      const req = post('/x', BODY);
      for (let i = 0; i < 8; i++) {
        const o = await exchange(p.port, req);
        assert.is(o.got.length, 0, `connection ${i + 1}: client got ${o.got.length} bytes`);
        assert.ok(o.error, `connection ${i + 1}: the client saw no error`);
      }
      await sleep(50);
      assert.equal(srv.seen.complete, [], 'no request arrived whole');
      assert.is(kills.length, 8);
      for (const k of kills) {
        assert.is(k.phase, 'before-request');
        assert.ok(k.forwarded >= 1 && k.forwarded < req.length, `forwarded ${k.forwarded} of ${req.length}`);
      }
      for (const n of srv.seen.partial) assert.ok(n < BODY, `server saw ${n} body bytes`);
      // The cut lands anywhere in the request, not only in the first chunk: some in the body.
      assert.ok(srv.seen.partial.length > 0, `every cut was in the head: ${kills.map((k) => k.forwarded)}`);
      assert.is(p.stats.kills['before-request'], 8);
    }),
  ));

test('after-request: the target gets the whole request, the client not one byte of the answer', () =>
  within(10_000, 'after-request', () =>
    withProxy({ killRate: 1, phases: ['after-request'] }, async (p, srv, kills) => {
      for (let i = 0; i < 4; i++) {
        const o = await exchange(p.port, post('/x', BODY));
        assert.is(o.got.length, 0, `client got ${o.got.length} bytes`);
        assert.is(o.error, 'ECONNRESET');
      }
      assert.equal(srv.seen.complete, [BODY, BODY, BODY, BODY]);
      assert.equal(
        kills.map((k) => [k.phase, k.request, k.forwarded]),
        Array(4).fill(['after-request', 1, post('/x', BODY).length]),
      );
    }),
  ));

test('mid-response: the client gets some of the answer (never all), then a reset', () =>
  within(10_000, 'mid-response', () =>
    withProxy({ killRate: 1, phases: ['mid-response'], seed: 9 }, async (p, srv, kills) => {
      const lens: number[] = [];
      for (let i = 0; i < 6; i++) {
        const o = await exchange(p.port, post('/x', BODY));
        const total = httpMessageLength(o.got, false);
        assert.ok(o.got.length > 0, 'no answer byte arrived');
        assert.ok(total === null || o.got.length < total, `the answer arrived whole (${o.got.length} bytes)`);
        // A RST that arrives together with data reads as a plain end of stream in Node (libuv takes
        // POLLHUP after a partial read as EOF), so the client sees either.
        assert.ok(o.error === null || o.error === 'ECONNRESET', String(o.error));
        assert.is(o.got.length, kills[i].forwarded, 'client got exactly the forwarded bytes');
        lens.push(o.got.length);
      }
      assert.equal(srv.seen.complete.length, 6);
      assert.ok(Math.max(...lens) > 200, `cuts all in the head: ${lens}`);
      assert.ok(Math.max(...lens) < ANSWER + 200);
    }),
  ));

test('pass mode forwards a 1 MB body both ways intact', () =>
  within(10_000, '1 MB echo', () =>
    withProxy({}, async (p) => {
      const body = Buffer.alloc(1 << 20);
      new Prng(42).fill(body);
      const agent = new http.Agent({ keepAlive: false });
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: '/echo', agent, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve(Buffer.concat(parts)));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
      agent.destroy();
      assert.is(echoed.length, body.length);
      assert.ok(echoed.equals(body), 'bytes differ');
      const s = p.stats;
      assert.ok(s.bytesUp > body.length && s.bytesDown > body.length, JSON.stringify(s));
      assert.is(s.kills['before-request'] + s.kills['after-request'] + s.kills['mid-response'], 0);
    }),
  ));

test('cutBelow: each connection is cut once it carried its budget, both directions counted', () =>
  within(10_000, 'byte budgets', () =>
    withProxy({ cutBelow: 4096, seed: 7 }, async (p, _srv, kills) => {
      // Each request is 2,000 bytes up and its answer 20,000 down: every connection dies in its
      // first exchange, at its own budget, below 4096 bytes in all.
      const carried: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await exchange(p.port, post('/x', 2000 - 120));
        carried.push(r.got.length);
        assert.ok(r.got.length < 4096, `connection ${i + 1} got ${r.got.length} bytes`);
      }
      await sleep(50);
      const s = p.stats;
      assert.is(s.kills.budget, 20, JSON.stringify(s));
      assert.is(kills.length, 20);
      for (const k of kills) assert.is(k.phase, 'budget');
      assert.ok(s.bytesUp + s.bytesDown < 20 * 4096, JSON.stringify(s));
      assert.ok(new Set(carried).size > 5, `budgets drawn per connection: ${carried.join(',')}`);
      assert.throws(() => new ChaosProxy({ target: { port: 1 }, cutBelow: 1 }), /cutBelow/);
    }),
  ));

test('delayMs adds latency each way', () =>
  within(10_000, 'delay', () =>
    withProxy({ delayMs: 60 }, async (p) => {
      const t0 = Date.now();
      const o = await exchange(p.port, post('/x', 10));
      const ms = Date.now() - t0;
      assert.is(httpMessageLength(o.got, false), o.got.length, 'the answer is whole');
      assert.ok(ms >= 115, `round trip ${ms} ms`);
    }),
  ));

test('refuse: connects fail with ECONNREFUSED; back to pass on the same port', () =>
  within(10_000, 'refuse', () =>
    withProxy({}, async (p, srv) => {
      const port = p.port;
      await p.setMode('refuse');
      assert.is(p.mode, 'refuse');
      const o = await exchange(port, post('/x', 10));
      assert.is(o.error, 'ECONNREFUSED');
      assert.is(srv.seen.connections, 0);
      await p.setMode('pass');
      assert.is(p.port, port);
      const ok = await exchange(port, post('/x', 10));
      assert.is(ok.error, null);
      assert.is(httpMessageLength(ok.got, false), ok.got.length);
      // Calls not awaited one by one still take effect in order.
      const all = [p.setMode('refuse'), p.setMode('blackhole'), p.setMode('refuse'), p.setMode('pass')];
      await Promise.all(all);
      assert.is(p.mode, 'pass');
      const again = await exchange(port, post('/x', 10));
      assert.is(httpMessageLength(again.got, false), again.got.length);
    }),
  ));

test('refuse leaves open connections alone', () =>
  within(10_000, 'refuse, open connection', () =>
    withProxy({}, async (p) => {
      const c = new RawClient(p.port);
      assert.ok(await c.request(post('/x', 10, true)));
      await p.setMode('refuse');
      assert.ok(await c.request(post('/x', 10, true)), 'the open connection still works');
      c.destroy();
    }),
  ));

test('blackhole: new connections are accepted and never answered; open ones freeze and thaw', () =>
  within(10_000, 'blackhole', () =>
    withProxy({}, async (p, srv) => {
      const open = new RawClient(p.port);
      assert.ok(await open.request(post('/x', 10, true)));
      await p.setMode('blackhole');
      const fresh = new RawClient(p.port);
      const freshAnswer = fresh.request(post('/x', 100, true));
      const frozenAnswer = open.request(post('/x', 10, true));
      assert.ok(await fresh.silentFor(300), 'the new connection got an answer');
      assert.ok(await open.silentFor(0), 'the open connection moved');
      assert.is(srv.seen.connections, 1, 'the black hole reached the target');
      assert.ok(p.stats.discarded >= post('/x', 100).length);
      assert.is(p.stats.open, 2);
      await p.setMode('pass');
      assert.ok(await frozenAnswer, 'the frozen connection went on');
      assert.ok(await fresh.silentFor(200), 'a black-hole connection stays one');
      fresh.destroy();
      open.destroy();
      void freshAnswer;
    }),
  ));

test('killAll cuts every open connection with a reset', () =>
  within(10_000, 'killAll', () =>
    withProxy({}, async (p) => {
      const a = new RawClient(p.port);
      const b = new RawClient(p.port);
      assert.ok(await a.request(post('/x', 10, true)));
      assert.ok(await b.request(post('/x', 10, true)));
      assert.is(p.killAll(), 2);
      await Promise.all([a.waitClosed(), b.waitClosed()]);
      assert.is(a.error, 'ECONNRESET');
      assert.is(b.error, 'ECONNRESET');
      assert.is(p.stats.kills.killAll, 2);
      await sleep(20);
      assert.is(p.stats.open, 0);
    }),
  ));

test('keep-alive: each request on a connection is its own draw', () =>
  within(10_000, 'keep-alive', () =>
    withProxy({ killRate: 0.4, seed: 3 }, async (p, _srv, kills) => {
      let conns = 0;
      let served = 0;
      for (let c = 0; c < 6; c++) {
        const client = new RawClient(p.port);
        conns++;
        let n = 0;
        while (n < 20 && (await client.request(post('/x', 100, true))) !== null) n++;
        served += n;
        client.destroy();
        if (n < 20) {
          const k = kills[kills.length - 1];
          assert.is(k.conn, conns);
          assert.is(k.request, n + 1, 'the kill names the request after the last one served');
        }
      }
      assert.ok(
        kills.some((k) => k.request > 1),
        `no kill after the first request: ${JSON.stringify(kills)}`,
      );
      assert.is(p.stats.requests, served + kills.length);
    }),
  ));

test('the same seed gives the same kill sequence; another seed another', () =>
  within(20_000, 'replay', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const out: string[] = [];
      await withProxy({ killRate: 0.5, seed }, async (p, _srv, kills) => {
        for (let i = 0; i < 24; i++) {
          const before = kills.length;
          const o = await exchange(p.port, post('/x', 3000));
          out.push(kills.length > before ? `${kills[before].phase}@${kills[before].forwarded}` : `ok ${o.got.length}`);
        }
      });
      return out;
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    assert.equal(a, b);
    assert.not.equal(a, c);
    const killed = a.filter((x) => !x.startsWith('ok')).length;
    assert.ok(killed > 3 && killed < 21, `${killed} of 24 killed at rate 0.5`);
    for (const phase of ['before-request', 'after-request', 'mid-response'] as KillPhase[])
      assert.ok(
        a.some((x) => x.startsWith(phase)),
        `no ${phase} in ${a}`,
      );
  }));

test('options are checked: loopback only, rates, phases; close is idempotent, later calls throw', async () => {
  const t = { port: 9 };
  assert.is(
    code(() => new ChaosProxy({ target: { host: '10.0.0.1', port: 80 } })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ChaosProxy({ target: t, host: '0.0.0.0' })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ChaosProxy({ target: t, killRate: 1.5 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ChaosProxy({ target: t, phases: [] })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ChaosProxy({ target: t, phases: ['during-lunch' as KillPhase] })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ChaosProxy({ target: t, delayMs: -1 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new ChaosProxy({ target: { port: 0 } })),
    'HF_ERR_OPTION',
  );
  assert.match(String(code(() => new ChaosProxy({ target: { host: '192.168.1.1', port: 80 } }))), 'HF_ERR_OPTION');
  const p = await startChaosProxy({ target: t });
  await p.close();
  await p.close();
  assert.is(
    code(() => p.killAll()),
    'HF_ERR_CLOSED',
  );
  let err = '';
  await p.setMode('refuse').catch((e) => (err = e.code));
  assert.is(err, 'HF_ERR_CLOSED');
});

test('a target that refuses: the client is reset and it is counted', () =>
  within(5_000, 'dead target', async () => {
    const srv = await startServer();
    const port = srv.port;
    await srv.close();
    const p = await startChaosProxy({ target: { port } });
    try {
      const o = await exchange(p.port, post('/x', 10));
      assert.is(o.got.length, 0);
      assert.ok(o.error, 'no error at the client');
      assert.is(p.stats.upstreamErrors, 1);
    } finally {
      await p.close();
    }
  }));

test('httpMessageLength reads Content-Length from a whole head, else null', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  assert.is(httpMessageLength(b('POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n'), true), 38 + 5);
  assert.is(httpMessageLength(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), true), 27);
  assert.is(httpMessageLength(b('GET / HTTP/1.1\r\nHost: a\r\n'), true), null);
  assert.is(httpMessageLength(b('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'), true), null);
  assert.is(httpMessageLength(b('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), false), 40);
  assert.is(httpMessageLength(b('HTTP/1.1 200 OK\r\n\r\n'), false), null);
  assert.is(httpMessageLength(b('HTTP/1.1 204 No Content\r\n\r\n'), false), 27);
  assert.is(httpMessageLength(b('\x00\x01binary\r\n\r\n'), true), null);
});

test('CLI: prints the bound address, forwards, exits on SIGTERM', () =>
  within(20_000, 'CLI', async () => {
    const srv = await startServer();
    const file = path.join(__dirname, '..', 'tools', 'chaos-proxy.ts');
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', file, '--listen', '127.0.0.1:0', '--target', `127.0.0.1:${srv.port}`, '--kill-rate', '0', '--seed', '1', '--max-seconds', '30'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d;
          const m = /^listening 127\.0\.0\.1:(\d+) -> /m.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (c) => reject(new Error(`exited ${c} before listening: ${out}`)));
      });
      const o = await exchange(port, post('/x', 10));
      assert.is(httpMessageLength(o.got, false), o.got.length);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      child.kill('SIGTERM');
      assert.is(await exited, 0);
      assert.match(err, '"connections":1');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await srv.close();
    }
  }));

test.run();
