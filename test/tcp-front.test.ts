/**
 * The gateway's direct TCP front against strangers (targets/host/gateway/tcp-front.ts, TcpLimits):
 *  - a first frame announcing more than preAuthFrameBytes is refused at once (HF_ERR_LIMIT), one
 *    at the limit is read; after a frame was accepted the session's own maxBundleBytes applies;
 *  - a silent connection, and one that trickles, are closed by their deadlines (HF_ERR_TIMEOUT);
 *    a session's connection that goes silent is closed after connectionIdleMs;
 *  - the per-address and overall caps on unauthenticated connections and the per-address hello
 *    rate refuse with HF_ERR_BUSY, other addresses unaffected;
 *  - with TLS, a connection still in its handshake counts among the strangers and has the deadline;
 *  - every bound is checked (HF_ERR_OPTION naming it).
 * Small option values keep it fast; every socket is closed at the end.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientLink } from '../firmware/client-link';
import { decodeControl } from '../firmware/control';
import { BundleReader } from '../firmware/wire';
import { Gateway, type GatewayOptions } from '../targets/host/gateway/gateway';
import { TCP_LIMIT_DEFAULTS, type TcpLimits } from '../targets/host/gateway/tcp-front';
import { FrameReader, epochFrame, frame } from '../targets/host/net/frames';
import { nodeCrypto } from '../targets/node/crypto';
import { makeCert } from '../tools/throwaway-cert';
import { Cleanup } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'front-key';

/** The code inside an error bundle ('none' for a bundle of a session: welcome, keep-alive). */
function codeOf(body: Buffer): string {
  const v = new BundleReader().read(body);
  if (v.hasSid || v.ctlStarts.length === 0) return 'none';
  const c = decodeControl(v.buf, v.ctlStarts[0], v.ctlEnds[0]);
  return c !== null && c.kind === 4 ? c.code : 'none';
}

/** A raw connection: the codes of the frames it got back, and when it was closed (ms after connecting). */
interface Raw {
  socket: net.Socket;
  codes: string[];
  frames: number;
  closedAfter: Promise<number>;
}

function raw(c: Cleanup, address: string, localAddress?: string): Promise<Raw> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const at = performance.now();
    const socket = net.connect({ host, port, localAddress });
    c.add(() => socket.destroy());
    const r: Raw = { socket, codes: [], frames: 0, closedAfter: new Promise((done) => socket.on('close', () => done(performance.now() - at))) };
    const fr = new FrameReader(1 << 20);
    socket.on('data', (d: Buffer) =>
      fr.push(d, (b) => {
        r.frames++;
        r.codes.push(codeOf(b));
      }),
    );
    socket.on('error', () => {});
    socket.once('connect', () => resolve(r));
    socket.once('error', reject);
  });
}

/** A valid hello of device pi-1 (a new session each time: the counter grows). */
let helloN = 10;
function hello(): Buffer {
  let out: Buffer | null = null;
  const link = new ClientLink(
    {
      id: 'pi-1',
      random: (b) => randomFillSync(b),
      helloCounter: helloN++,
      key: new TextEncoder().encode(KEY),
      crypto: nodeCrypto,
      options: { outSlots: 4, outBytes: 1024, inSlots: 4, inBytes: 1024 },
    },
    { transmit: (b, len) => (out ??= Buffer.from(b.subarray(0, len))), deliver: () => true },
  );
  link.start(0);
  assert.ok(out !== null, 'the link sent its hello');
  return out;
}

async function gateway(c: Cleanup, tcpLimits: TcpLimits, more: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const gw = await Gateway.start({ http: null, tcp: '127.0.0.1:0', devices: { 'pi-1': KEY }, tcpLimits, ...more });
  c.add(() => gw.close());
  return gw;
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  await within(ms, what, async () => {
    while (!ok()) await sleep(5);
  });
}

test('a first frame announcing more than preAuthFrameBytes: HF_ERR_LIMIT at once, closed; at the limit it is read', async () => {
  const c = new Cleanup();
  try {
    await within(10_000, 'oversized first frame', async () => {
      const gw = await gateway(c, { preAuthFrameBytes: 1024 });
      const tcp = gw.tcp!;
      // Only the header of a 1025-byte frame: refused without waiting for (or buffering) the body.
      const over = await raw(c, tcp.address);
      over.socket.write(Buffer.from('00000401', 'hex'));
      const closed = await within(2000, 'the refused connection closes', () => over.closedAfter);
      assert.equal(over.codes, ['HF_ERR_LIMIT'], 'one error frame, HF_ERR_LIMIT');
      assert.ok(closed < 1500, `closed after ${closed} ms`);
      // 131,072 announced, as the attack did: the same.
      const big = await raw(c, tcp.address);
      big.socket.write(Buffer.concat([Buffer.from('00020000', 'hex'), Buffer.alloc(60_000, 0x41)]));
      await within(2000, 'the big one closes', () => big.closedAfter);
      assert.equal(big.codes, ['HF_ERR_LIMIT']);
      // Exactly 1024: read whole and judged as a bundle (junk: HF_ERR_CBOR or HF_ERR_BUNDLE), not a limit.
      const at = await raw(c, tcp.address);
      at.socket.write(frame(Buffer.alloc(1024, 0xff), 1024));
      await within(2000, 'the junk one closes', () => at.closedAfter);
      assert.is(at.codes.length, 1);
      assert.ok(at.codes[0] !== 'HF_ERR_LIMIT' && at.codes[0].startsWith('HF_ERR_'), at.codes[0]);
      // After an accepted hello, frames up to the session's maxBundleBytes are read: a 4000-byte
      // junk frame is refused as a bundle, and the connection stays.
      const dev = await raw(c, tcp.address);
      dev.socket.write(frame(hello(), hello().length));
      await until('the welcome', () => dev.frames >= 1);
      assert.is(dev.codes[0], 'none', 'a welcome, not an error');
      dev.socket.write(frame(Buffer.alloc(4000, 0xff), 4000));
      await until('the refusal', () => dev.codes.some((x) => x !== 'none'));
      const refused = dev.codes.filter((x) => x !== 'none');
      assert.ok(refused.length === 1 && refused[0] !== 'HF_ERR_LIMIT', refused.join(','));
      await sleep(100);
      assert.ok(!dev.socket.destroyed, 'an authenticated connection stays after a refused frame');
      await until('no strangers left', () => tcp.preAuthConnections === 0);
      assert.is(tcp.connections, 1);
    });
  } finally {
    await c.run();
  }
});

test('deadlines: a silent connection and a trickling one are closed (HF_ERR_TIMEOUT); a silent session connection after connectionIdleMs', async () => {
  const c = new Cleanup();
  try {
    await within(10_000, 'deadlines', async () => {
      const gw = await gateway(c, { preAuthDeadlineMs: 600, preAuthIdleMs: 250, connectionIdleMs: 400 }, { link: { keepaliveMs: 150 } });
      const tcp = gw.tcp!;
      const silent = await raw(c, tcp.address);
      const trickle = await raw(c, tcp.address);
      // One byte every 50 ms of a 1000-byte frame: never idle 250 ms, so only the 600 ms deadline ends it.
      trickle.socket.write(Buffer.from('000003e8', 'hex'));
      const drip = setInterval(() => trickle.socket.write(Buffer.from([0x41])), 50);
      c.add(() => clearInterval(drip));
      const session = await raw(c, tcp.address);
      const h = hello();
      session.socket.write(frame(h, h.length));
      const [s, t] = await Promise.all([silent.closedAfter, trickle.closedAfter]);
      clearInterval(drip);
      assert.equal(silent.codes, ['HF_ERR_TIMEOUT'], 'the silent one');
      assert.ok(s >= 200 && s < 600, `silent: closed after ${Math.round(s)} ms (preAuthIdleMs 250)`);
      assert.equal(trickle.codes, ['HF_ERR_TIMEOUT'], 'the trickling one');
      assert.ok(t >= 550 && t < 1200, `trickling: closed after ${Math.round(t)} ms (preAuthDeadlineMs 600)`);
      // The session's connection hears welcome and keep-alives, sends nothing: closed after ~400 ms
      // of nothing received (the gateway's own keep-alives do not keep it open).
      const q = await session.closedAfter;
      assert.ok(session.frames >= 2, `welcome and keep-alives (${session.frames} frames)`);
      assert.ok(!session.codes.includes('HF_ERR_TIMEOUT') && session.codes[0] === 'none', session.codes.join(','));
      assert.ok(q >= 350 && q < 1500, `session connection closed after ${Math.round(q)} ms (connectionIdleMs 400)`);
      // The client may see its end before the gateway's socket has emitted 'close' (and been counted out).
      await until('the gateway counts the closed connections out', () => tcp.connections === 0, 1000);
      assert.is(tcp.connections, 0);
      assert.is(tcp.preAuthConnections, 0);
    });
  } finally {
    await c.run();
  }
});

test('per-address and overall caps on unauthenticated connections: HF_ERR_BUSY, other addresses unaffected', async () => {
  const c = new Cleanup();
  try {
    await within(10_000, 'caps', async () => {
      const gw = await gateway(c, { maxPreAuthPerAddress: 3, maxPreAuth: 5 });
      const tcp = gw.tcp!;
      const mine = await Promise.all([1, 2, 3].map(() => raw(c, tcp.address, '127.0.0.1')));
      await until('three strangers', () => tcp.preAuthConnections === 3);
      const fourth = await raw(c, tcp.address, '127.0.0.1');
      await within(2000, 'the fourth is refused', () => fourth.closedAfter);
      assert.equal(fourth.codes, ['HF_ERR_BUSY'], 'maxPreAuthPerAddress');
      const other = await Promise.all([1, 2].map(() => raw(c, tcp.address, '127.0.0.2')));
      await until('five strangers', () => tcp.preAuthConnections === 5);
      for (const o of other) assert.ok(!o.socket.destroyed, 'another address is not limited by the first one');
      const sixth = await raw(c, tcp.address, '127.0.0.3');
      await within(2000, 'the sixth is refused', () => sixth.closedAfter);
      assert.equal(sixth.codes, ['HF_ERR_BUSY'], 'maxPreAuth');
      // One that authenticates frees its place among the strangers.
      const h = hello();
      mine[0].socket.write(frame(h, h.length));
      await until('four strangers', () => tcp.preAuthConnections === 4);
      const again = await raw(c, tcp.address, '127.0.0.1');
      await until('five strangers again', () => tcp.preAuthConnections === 5);
      assert.ok(!again.socket.destroyed);
      assert.is(tcp.connections, 6);
    });
  } finally {
    await c.run();
  }
});

test('hello rate per address (token bucket): beyond helloBurst first frames are refused, HF_ERR_BUSY', async () => {
  const c = new Cleanup();
  try {
    await within(10_000, 'hello rate', async () => {
      const gw = await gateway(c, { helloBurst: 2, helloRate: 0.01 });
      const tcp = gw.tcp!;
      const codes: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await raw(c, tcp.address, '127.0.0.1');
        r.socket.write(frame(Buffer.from([0x80]), 1)); // a first frame (junk: refused after its token is taken)
        await within(2000, `first frame ${i}`, () => r.closedAfter);
        codes.push(r.codes.join(','));
      }
      assert.is(codes[0], 'HF_ERR_BUNDLE');
      assert.is(codes[1], 'HF_ERR_BUNDLE');
      assert.is(codes[2], 'HF_ERR_BUSY', 'the third within the burst window');
      // Another address has a bucket of its own: its hello opens a session.
      const other = await raw(c, tcp.address, '127.0.0.2');
      const h = hello();
      other.socket.write(frame(h, h.length));
      await until('the welcome', () => other.frames >= 1);
      assert.is(other.codes[0], 'none');
      assert.is(gw.sessionCount, 1);
    });
  } finally {
    await c.run();
  }
});

test('TLS: connections in their handshake are strangers too (per-address cap, deadline); a device completing it gets in', async () => {
  const c = new Cleanup();
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-front-'));
    c.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { cert, key } = makeCert(dir);
    await within(10_000, 'tls handshakes', async () => {
      const gw = await gateway(c, { maxPreAuthPerAddress: 2, preAuthDeadlineMs: 500 }, { tls: { cert, key } });
      const tcp = gw.tcp!;
      // Two that connect and never start TLS: both held as strangers, the third refused at once.
      const [a, b] = await Promise.all([raw(c, tcp.address, '127.0.0.1'), raw(c, tcp.address, '127.0.0.1')]);
      await until('two in their handshake', () => tcp.preAuthConnections === 2);
      const third = await raw(c, tcp.address, '127.0.0.1');
      const t3 = await within(2000, 'the third is refused', () => third.closedAfter);
      assert.ok(t3 < 400, `refused after ${Math.round(t3)} ms`);
      // Another address completes TLS and opens a session.
      const under = net.connect({ host: '127.0.0.1', port: Number(tcp.address.split(':')[1]), localAddress: '127.0.0.2' });
      c.add(() => under.destroy());
      const s = tls.connect({ socket: under, host: '127.0.0.1', ca: cert });
      c.add(() => s.destroy());
      s.on('error', () => {});
      await new Promise<void>((resolve) => s.once('secureConnect', () => resolve()));
      let frames = 0;
      const fr = new FrameReader(1 << 20);
      s.on('data', (d: Buffer) => fr.push(d, () => frames++));
      const h = hello();
      s.write(frame(h, h.length));
      await until('the welcome over tls', () => frames >= 1);
      // The silent two are closed by the deadline.
      const [ta, tb] = await Promise.all([a.closedAfter, b.closedAfter]);
      assert.ok(ta >= 450 && ta < 1500 && tb >= 450 && tb < 1500, `closed after ${Math.round(ta)}, ${Math.round(tb)} ms`);
      await until('no strangers', () => tcp.preAuthConnections === 0);
      assert.is(gw.sessionCount, 1);
      assert.ok(!s.destroyed, 'the session stays');
    });
  } finally {
    await c.run();
  }
});

test('every TCP bound is checked: HF_ERR_OPTION naming it', async () => {
  const bad: [TcpLimits | string, string, Partial<GatewayOptions>?][] = [
    [{ preAuthFrameBytes: 100 }, 'preAuthFrameBytes'],
    [{ preAuthFrameBytes: 1.5e3 + 0.5 }, 'preAuthFrameBytes'],
    [{ preAuthDeadlineMs: 0 }, 'preAuthDeadlineMs'],
    [{ preAuthIdleMs: -1 }, 'preAuthIdleMs'],
    [{ connectionIdleMs: 15000 }, 'connectionIdleMs'],
    [{ connectionIdleMs: 500 }, 'connectionIdleMs', { link: { keepaliveMs: 500 } }],
    [{ maxPreAuth: 10001 }, 'maxPreAuth'],
    [{ maxPreAuth: 101 }, 'maxPreAuth', { maxConnections: 100 }],
    [{ maxPreAuthPerAddress: 0 }, 'maxPreAuthPerAddress'],
    [{ helloRate: 0 }, 'helloRate'],
    [{ helloRate: Number.NaN }, 'helloRate'],
    [{ helloBurst: 0 }, 'helloBurst'],
    [{}, 'maxConnections', { maxConnections: 0 }],
    ['fast', 'tcpLimits'],
  ];
  for (const [limits, name, more] of bad) {
    let err: { code?: string; message?: string } | null = null;
    try {
      const gw = await Gateway.start({ http: null, tcp: '127.0.0.1:0', devices: {}, tcpLimits: limits as TcpLimits, ...more });
      await gw.close();
    } catch (e) {
      err = e as { code?: string; message?: string };
    }
    assert.ok(err !== null, `${JSON.stringify(limits)} was taken`);
    assert.is(err.code, 'HF_ERR_OPTION', JSON.stringify(limits));
    assert.ok(err.message?.includes(name), `${err.message} names ${name}`);
  }
  // The defaults themselves, and the extremes of the ranges, are taken.
  for (const limits of [TCP_LIMIT_DEFAULTS, { preAuthFrameBytes: 512, helloRate: 0.001, connectionIdleMs: 15001 }]) {
    const gw = await Gateway.start({ http: null, tcp: '127.0.0.1:0', devices: {}, tcpLimits: limits });
    await gw.close();
  }
});

test("a pair's node tells its epoch (an epoch frame) before its first frame on a connection; a gateway without a pair never does", async () => {
  const c = new Cleanup();
  try {
    for (const paired of [true, false]) {
      const gw = await gateway(c, {}, paired ? { pair: { key: 'tcp-front-pair-key-0123', node: 'a', listen: '127.0.0.1:0' } } : {});
      const [host, port] = (gw.tcp?.address ?? '').split(':');
      const socket = net.connect({ host, port: Number(port) });
      c.add(() => socket.destroy());
      const bytes: Buffer[] = [];
      socket.on('data', (d: Buffer) => bytes.push(d));
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.write(frame(hello(), hello().length));
      await until('an answer', () => Buffer.concat(bytes).length >= 16);
      const got = Buffer.concat(bytes);
      if (paired) {
        assert.is(got.subarray(0, 8).toString('hex'), epochFrame(1).toString('hex'), 'the epoch frame comes first');
        const r = new FrameReader(1 << 20);
        const epochs: number[] = [];
        let frames = 0;
        r.takeEpochs((e) => epochs.push(e));
        r.push(got, () => frames++);
        assert.equal(epochs, [1], 'told once');
        assert.ok(frames >= 1, 'then the answer');
      } else {
        assert.ok(got.readUInt32BE(0) > 0, 'a frame, no epoch frame');
      }
      socket.destroy();
    }
  } finally {
    await c.run();
  }
});

test.run();
