/**
 * Port forwarding end to end: a TCP client -> device listener -> mux -> loopback session -> gateway
 * -> TCP target, all on 127.0.0.1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { isHfError } from '../firmware/errors';
import { type ForwardSpec, type PortForwarder, forwardPorts, serveForwards } from '../targets/host/app/forward';
import { type Defer, collect, muxes, nextEvent, random, sha256, until, within } from './support/bounded';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return isHfError(e) ? e.code : String(e);
  }
}

/** A TCP server on 127.0.0.1 (any port); `defer` closes it and its connections. */
async function target(defer: Defer, onSocket: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  defer(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** A port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Device forwards `specs`, the gateway serves `allow`; returns the forwarder. */
async function tunnel(defer: Defer, specs: ForwardSpec[], allow: string[], mux = {}): Promise<PortForwarder> {
  const { dev, gw } = await muxes(defer, { mux });
  const served = serveForwards(gw, { allow });
  defer(() => served.close());
  const f = await forwardPorts(dev, specs);
  defer(() => f.close());
  return f;
}

function connect(defer: Defer, port: number): net.Socket {
  const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  c.on('error', () => {});
  defer(() => c.destroy());
  return c;
}

const echo = (s: net.Socket): void => {
  s.pipe(s);
};

test(
  '5 MB from a device client reaches the gateway-side sink intact',
  within(8000, async (defer) => {
    let sinkHash: Promise<string> = Promise.resolve('');
    const port = await target(defer, (s) => {
      sinkHash = collect(s).then((b) => {
        s.end(`${b.length}`);
        return sha256(b);
      });
    });
    const f = await tunnel(defer, [{ localPort: 0, host: '127.0.0.1', port }], [`127.0.0.1:${port}`]);
    const c = connect(defer, f.ports[0]);
    const data = random(5 << 20);
    const reply = collect(c);
    c.end(data);
    assert.is((await reply).toString(), String(data.length));
    assert.is(await sinkHash, sha256(data));
  }),
);

test(
  '5 MB from a gateway-side source reaches the device client intact',
  within(8000, async (defer) => {
    const data = random(5 << 20);
    const port = await target(defer, (s) => {
      s.resume();
      s.end(data);
    });
    const f = await tunnel(defer, [{ localPort: 0, host: '127.0.0.1', port }], [`127.0.0.1:${port}`]);
    const c = connect(defer, f.ports[0]);
    const got = collect(c);
    c.end();
    assert.is(sha256(await got), sha256(data));
  }),
);

test(
  '20 concurrent forwarded connections each arrive intact',
  within(8000, async (defer) => {
    const port = await target(defer, echo);
    const f = await tunnel(defer, [{ localPort: 0, host: '127.0.0.1', port }], [`127.0.0.1:${port}`]);
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c = connect(defer, f.ports[0]);
        const data = random(50_000 + i * 10_000);
        const back = collect(c);
        c.end(data);
        assert.is(sha256(await back), sha256(data), `connection ${i}`);
      }),
    );
    await until(() => f.connections === 0);
  }),
);

test(
  'half-close: the client ends its write side and still reads the reply',
  within(5000, async (defer) => {
    const port = await target(defer, (s) => {
      collect(s).then((q) => s.end(`read ${q.length} bytes, then answered`));
    });
    const f = await tunnel(defer, [{ localPort: 0, host: '127.0.0.1', port }], [`127.0.0.1:${port}`]);
    const c = connect(defer, f.ports[0]);
    const reply = collect(c);
    c.end(random(123_456));
    assert.is((await reply).toString(), 'read 123456 bytes, then answered');
    await nextEvent(c, 'close');
  }),
);

test(
  'a target not on the allow list is refused with HF_ERR_FORBIDDEN; other traffic keeps flowing',
  within(8000, async (defer) => {
    const port = await target(defer, echo);
    const other = await target(defer, echo); // listening, but not allowed
    const f = await tunnel(
      defer,
      [
        { localPort: 0, host: '127.0.0.1', port },
        { localPort: 0, host: '127.0.0.1', port: other },
        { localPort: 0, host: 'localhost', port }, // same port, different spelling: not allowed either
      ],
      [`127.0.0.1:${port}`],
    );
    const errors: { code?: string; target: string }[] = [];
    f.on('streamError', (e: Error & { code?: string }, spec: ForwardSpec) => errors.push({ code: e.code, target: `${spec.host}:${spec.port}` }));
    const good = connect(defer, f.ports[0]);
    const data = random(3 << 20);
    const back = collect(good);
    good.write(data.subarray(0, 1 << 20));
    for (const p of [f.ports[1], f.ports[2]]) {
      const bad = connect(defer, p);
      bad.write('let me in');
      await nextEvent(bad, 'close');
    }
    good.end(data.subarray(1 << 20));
    assert.is(sha256(await back), sha256(data));
    assert.equal(errors, [
      { code: 'HF_ERR_FORBIDDEN', target: `127.0.0.1:${other}` },
      { code: 'HF_ERR_FORBIDDEN', target: `localhost:${port}` },
    ]);
  }),
);

test(
  'an allowed target with nothing listening is HF_ERR_CONNECT and the client socket closes',
  within(5000, async (defer) => {
    const port = await deadPort();
    const f = await tunnel(defer, [{ localPort: 0, host: '127.0.0.1', port }], [`127.0.0.1:${port}`]);
    const err = nextEvent<Error & { code?: string }>(f, 'streamError');
    const c = connect(defer, f.ports[0]);
    const closed = nextEvent(c, 'close');
    const e = await err;
    assert.is(e.code, 'HF_ERR_CONNECT');
    assert.match(e.message, `127.0.0.1:${port}`);
    await closed;
  }),
);

test(
  'closing the forwarder and the server ends every connection; twice is fine',
  within(5000, async (defer) => {
    const port = await target(defer, echo);
    const { dev, gw } = await muxes(defer);
    const served = serveForwards(gw, { allow: [`127.0.0.1:${port}`] });
    defer(() => served.close());
    const f = await forwardPorts(dev, [{ localPort: 0, host: '127.0.0.1', port }]);
    defer(() => f.close());
    const clients = [connect(defer, f.ports[0]), connect(defer, f.ports[0])];
    for (const c of clients) c.write('hello');
    await until(() => served.connections === 2 && f.connections === 2);
    const closed = clients.map((c) => nextEvent(c, 'close'));
    served.close();
    served.close();
    await Promise.all(closed);
    await until(() => dev.size === 0 && gw.size === 0 && f.connections === 0);
    await Promise.all([f.close(), f.close()]);
    assert.match(await codeOf(new Promise((resolve, reject) => net.connect(f.ports[0], '127.0.0.1').on('connect', resolve).on('error', reject))), 'ECONNREFUSED');
    // a served stream after close() is refused (nobody listens for streams any more)
    const late = dev.open('127.0.0.1', port);
    late.on('error', () => {});
    assert.is((await nextEvent<Error & { code: string }>(late, 'error')).code, 'HF_ERR_FORBIDDEN');
  }),
);

test(
  'bad specs and allow entries are HF_ERR_OPTION',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer);
    assert.is(await codeOf(forwardPorts(dev, [])), 'HF_ERR_OPTION');
    assert.is(await codeOf(forwardPorts(dev, [{ localPort: 70000, host: '127.0.0.1', port: 1 }])), 'HF_ERR_OPTION');
    assert.is(await codeOf(forwardPorts(dev, [{ localPort: 0, host: 'a b', port: 1 }])), 'HF_ERR_OPTION');
    assert.is(await codeOf(forwardPorts(dev, [{ localPort: 0, host: 'h', port: 1 }], { bindHost: 'localhost' })), 'HF_ERR_OPTION');
    assert.is(await codeOf(Promise.resolve().then(() => serveForwards(gw, { allow: ['127.0.0.1'] }))), 'HF_ERR_OPTION');
    assert.is(await codeOf(Promise.resolve().then(() => serveForwards(gw, { allow: ['h:1'], connectTimeoutMs: -1 }))), 'HF_ERR_OPTION');
  }),
);

test.run();
