/**
 * The pair's control connection (targets/host/gateway/pair/peer-conn.ts) on 127.0.0.1, port 0:
 *  - the handshake either way round: roles, nodes and epochs learned, epochs followed through heartbeats;
 *  - a wrong key refused on both sides (HF_ERR_AUTH, no 'ready'), a reflected hello or proof refused,
 *    two sides of one role refused (HF_ERR_PEER), a silent peer timed out (HF_ERR_TIMEOUT);
 *  - a peer that goes quiet is dead within heartbeatMs × (misses + 3); a destroyed socket within 100 ms;
 *  - a malformed frame or message after the handshake is HF_ERR_PEER, told to the peer;
 *  - maxPeers and `accept` refuse with their codes; a 10 MiB snapshot arrives intact (with 'drain');
 *  - close() is idempotent and gives 'dead' HF_ERR_CLOSED once; options are checked.
 * Raw sockets stand in for a peer where the test needs one that misbehaves; every socket, server and
 * connection is closed at the end.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, hfError, isHfError } from '../firmware/errors';
import { PeerConnection, PeerListener, type PeerListenerOptions, type PeerOptions, peerProof } from '../targets/host/gateway/pair/peer-conn';
import { PeerFrameDecoder, encodePeerFrame } from '../targets/host/gateway/pair/peer-frames';
import type { PeerHello, PeerMessage } from '../targets/host/gateway/pair/peer-link';
import { makeCert } from '../tools/throwaway-cert';
import { Cleanup, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'pair-key-0123456789abcdef';
const FAST = { heartbeatMs: 20, heartbeatMisses: 4, handshakeMs: 1000 };

async function listener(c: Cleanup, opts: Partial<PeerListenerOptions> = {}): Promise<PeerListener> {
  const l = await PeerListener.listen('127.0.0.1:0', { key: KEY, node: 'gw-a', epoch: 5, ...FAST, ...opts });
  c.add(() => l.close());
  return l;
}

async function connect(c: Cleanup, address: string, opts: Partial<PeerOptions> = {}): Promise<PeerConnection> {
  const conn = await PeerConnection.connect(address, { key: KEY, node: 'gw-b', epoch: 4, ...FAST, ...opts });
  c.add(() => conn.close());
  return conn;
}

/** The code of a rejection (or of a thrown error). */
async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(isHfError(e), String(e));
    return e.code;
  }
  return 'none';
}

/** A raw end of a connection: what it received, decoded, and a way to send anything. */
class Raw {
  readonly got: PeerMessage[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new PeerFrameDecoder();
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      for (const v of this.decoder.push(d)) this.got.push(v as PeerMessage);
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }
  send(v: unknown): void {
    this.socket.write(encodePeerFrame(v));
  }
  async next<T extends PeerMessage['t']>(t: T, ms = 2000): Promise<Extract<PeerMessage, { t: T }>> {
    return within(ms, `a ${t} message`, async () => {
      for (;;) {
        const m = this.got.find((x) => x.t === t);
        if (m !== undefined) return m as Extract<PeerMessage, { t: T }>;
        await sleep(2);
      }
    });
  }
}

function rawClient(c: Cleanup, address: string): Promise<Raw> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    c.add(() => socket.destroy());
    socket.once('connect', () => resolve(new Raw(socket)));
    socket.once('error', reject);
  });
}

/** A raw server: resolves its address, and each connection as a Raw. */
async function rawServer(c: Cleanup): Promise<{ address: string; next: () => Promise<Raw> }> {
  const waiting: Raw[] = [];
  const server = net.createServer((s) => {
    c.add(() => s.destroy());
    waiting.push(new Raw(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  c.add(() => new Promise((resolve) => server.close(resolve)));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    address,
    next: () =>
      within(2000, 'a raw connection', async () => {
        while (waiting.length === 0) await sleep(2);
        return waiting.shift() as Raw;
      }),
  };
}

/** Plays the primary by hand for a connecting PeerConnection: hello, then its proof. */
async function handshakeAsPrimary(raw: Raw, epoch = 11): Promise<void> {
  const nonce = randomBytes(32);
  raw.send({ t: 'hello', role: 'primary', node: 'raw-primary', nonce, epoch });
  const theirs = await raw.next('hello');
  await raw.next('proof');
  raw.send({ t: 'proof', proof: peerProof(KEY, 'primary', nonce, theirs.nonce, epoch) });
}

test('the handshake either way round: roles, nodes and epochs learned; epochs follow heartbeats; messages flow', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'handshakes', async () => {
      const l = await listener(c);
      const peers: PeerConnection[] = [];
      l.on('peer', (p) => peers.push(p));
      const b = await connect(c, l.address);
      assert.ok(/^127\.0\.0\.1:\d+$/.test(l.address), l.address);
      assert.is(b.peerRole, 'primary');
      assert.is(b.peerNode, 'gw-a');
      assert.is(b.peerEpoch, 5);
      await within(1000, 'the peer event', async () => {
        while (peers.length === 0) await sleep(2);
      });
      const a = peers[0];
      assert.is(a.peerRole, 'standby');
      assert.is(a.peerNode, 'gw-b');
      assert.is(a.peerEpoch, 4);
      assert.is(l.peers, 1);
      a.setEpoch(6);
      await within(1000, 'the new epoch by heartbeat', async () => {
        while (b.peerEpoch !== 6) await sleep(5);
      });
      const got: PeerMessage[] = [];
      a.on('message', (m) => got.push(m));
      const m: PeerMessage = { t: 'delta', sid: Uint8Array.of(1, 2), n: 3, d: [4, [1, 2]] };
      assert.ok(b.send(m));
      await within(1000, 'the delta', async () => {
        while (got.length === 0) await sleep(2);
      });
      assert.equal(got, [m]);
      // Heartbeats flowed both ways and none of them surfaced as a message.
      await sleep(100);
      assert.ok(a.ready && b.ready);
      assert.equal(got.length, 1);

      // The other way round: the listener is the standby, the connecting side the primary.
      const l2 = await listener(c, { role: 'standby', node: 'gw-s', epoch: 2 });
      const p = await connect(c, l2.address, { role: 'primary', node: 'gw-p', epoch: 9 });
      assert.is(p.peerRole, 'standby');
      assert.is(p.peerNode, 'gw-s');
      assert.is(p.peerEpoch, 2);

      // A listener whose node was promoted tells the new epoch in the hellos it answers from then on.
      p.close();
      await within(1000, 'the first peer gone', async () => {
        while (l2.peers > 0) await sleep(2);
      });
      l2.setEpoch(7);
      const q = await connect(c, l2.address, { role: 'primary', node: 'gw-q', epoch: 9 });
      assert.is(q.peerEpoch, 7);
      assert.is(await codeOf(() => l2.setEpoch(-1)), ErrorCode.OPTION);
    });
  } finally {
    await c.run();
  }
});

test('a wrong key: HF_ERR_AUTH on both sides, no ready', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'wrong key', async () => {
      const l = await listener(c);
      let peer = 0;
      const refused: string[] = [];
      l.on('peer', () => peer++);
      l.on('refused', (code) => refused.push(code));
      assert.is(await codeOf(connect(c, l.address, { key: 'another-key-0123456789' })), 'HF_ERR_AUTH');
      await within(1000, 'the listener side refused', async () => {
        while (refused.length === 0) await sleep(2);
      });
      assert.equal(refused, ['HF_ERR_AUTH']);
      assert.is(peer, 0);
      // Against a primary with the wrong key, the connecting side refuses the proof itself.
      const srv = await rawServer(c);
      const p = connect(c, srv.address);
      const raw = await srv.next();
      const nonce = randomBytes(32);
      raw.send({ t: 'hello', role: 'primary', node: 'x', nonce, epoch: 1 });
      const theirs = await raw.next('hello');
      raw.send({ t: 'proof', proof: peerProof('another-key-0123456789', 'primary', nonce, theirs.nonce, 1) });
      assert.is(await codeOf(p), 'HF_ERR_AUTH');
      assert.is((await raw.next('err')).code, 'HF_ERR_AUTH');
    });
  } finally {
    await c.run();
  }
});

test('a reflected hello or proof is refused', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'reflection', async () => {
      const l = await listener(c);
      const refused: string[] = [];
      l.on('refused', (code) => refused.push(code));
      // The listener's own hello back: same role.
      const r1 = await rawClient(c, l.address);
      r1.send(await r1.next('hello'));
      assert.is((await r1.next('err')).code, 'HF_ERR_PEER');
      // Its nonce back under the other role.
      const r2 = await rawClient(c, l.address);
      const h2 = await r2.next('hello');
      r2.send({ ...h2, role: 'standby' });
      assert.is((await r2.next('err')).code, 'HF_ERR_AUTH');
      // The listener never proves before its peer did, so there is no proof of it to reflect.
      const r3 = await rawClient(c, l.address);
      await r3.next('hello');
      r3.send({ t: 'hello', role: 'standby', node: 'r3', nonce: randomBytes(32), epoch: 1 });
      await sleep(50);
      assert.not.ok(
        r3.got.some((m) => m.t === 'proof'),
        'no proof from the listener yet',
      );
      r3.socket.destroy();
      // A connecting side's own proof reflected at it, with a hello of the other role.
      const srv = await rawServer(c);
      const p = connect(c, srv.address);
      const raw = await srv.next();
      const theirs = await raw.next('hello');
      raw.send({ t: 'hello', role: 'primary', node: 'mirror', nonce: randomBytes(32), epoch: theirs.epoch });
      raw.send(await raw.next('proof'));
      assert.is(await codeOf(p), 'HF_ERR_AUTH');
      // Its own hello reflected at it.
      const p2 = connect(c, srv.address);
      const raw2 = await srv.next();
      raw2.send(await raw2.next('hello'));
      assert.is(await codeOf(p2), 'HF_ERR_PEER');
      await within(1000, 'refusals counted', async () => {
        while (refused.length < 3) await sleep(2);
      });
      assert.equal(refused, ['HF_ERR_PEER', 'HF_ERR_AUTH', 'HF_ERR_CLOSED']);
    });
  } finally {
    await c.run();
  }
});

test('what the peer sent in the chunk of its proof, its end included, reaches listeners added once connect resolved', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'early messages', async () => {
      const srv = await rawServer(c);
      const p = connect(c, srv.address);
      const raw = await srv.next();
      const nonce = randomBytes(32);
      raw.send({ t: 'hello', role: 'primary', node: 'raw-primary', nonce, epoch: 11 });
      const theirs = await raw.next('hello');
      await raw.next('proof');
      // The proof, two records and the end in one write: one chunk for the connecting side.
      const proof = encodePeerFrame({ t: 'proof', proof: peerProof(KEY, 'primary', nonce, theirs.nonce, 11) });
      raw.socket.end(Buffer.concat([proof, encodePeerFrame({ t: 'gone', n: 1, sid: new Uint8Array([1]) }), encodePeerFrame({ t: 'synced', n: 2 })]));
      const conn = await p;
      // Listeners added after the promise settled (a later microtask than 'ready').
      await Promise.resolve();
      const got: string[] = [];
      conn.on('message', (m) => got.push(`${m.t} ${(m as { n: number }).n}`));
      const dead = new Promise<string>((resolve) => conn.on('dead', (code) => resolve(code)));
      assert.is(await dead, ErrorCode.CLOSED);
      assert.equal(got, ['gone 1', 'synced 2']);
    });
  } finally {
    await c.run();
  }
});

test('two sides of one role: HF_ERR_PEER', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'same role', async () => {
      const l = await listener(c);
      assert.is(await codeOf(connect(c, l.address, { role: 'primary' })), 'HF_ERR_PEER');
      const l2 = await listener(c, { role: 'standby' });
      assert.is(await codeOf(connect(c, l2.address)), 'HF_ERR_PEER');
    });
  } finally {
    await c.run();
  }
});

test('a silent peer: HF_ERR_TIMEOUT after handshakeMs, either side', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'handshake timeout', async () => {
      const srv = await rawServer(c);
      const at = performance.now();
      assert.is(await codeOf(connect(c, srv.address, { handshakeMs: 150 })), 'HF_ERR_TIMEOUT');
      const took = performance.now() - at;
      assert.ok(took >= 140 && took < 1000, `${took} ms`);
      const l = await listener(c, { handshakeMs: 150 });
      const refused: string[] = [];
      l.on('refused', (code) => refused.push(code));
      const raw = await rawClient(c, l.address);
      await within(1000, 'the listener gives up', () => raw.closed);
      assert.equal(refused, ['HF_ERR_TIMEOUT']);
      assert.is((await raw.next('err')).code, 'HF_ERR_TIMEOUT');
    });
  } finally {
    await c.run();
  }
});

test('a peer that goes quiet after the handshake is dead within heartbeatMs × (misses + 3); heartbeats were sent to it', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'heartbeat death', async () => {
      const srv = await rawServer(c);
      const p = connect(c, srv.address);
      const raw = await srv.next();
      await handshakeAsPrimary(raw, 11);
      const b = await p;
      const at = performance.now();
      assert.is(b.peerEpoch, 11);
      const dead = await within(2000, 'dead', () => new Promise<[string, string, number]>((resolve) => b.once('dead', (code, msg) => resolve([code, msg, performance.now() - at]))));
      assert.is(dead[0], 'HF_ERR_TIMEOUT');
      assert.ok(dead[1].includes('heartbeatMisses'), dead[1]);
      assert.ok(dead[2] >= 70 && dead[2] < 20 * (4 + 3), `dead after ${dead[2]} ms`);
      assert.ok(raw.got.filter((m) => m.t === 'hb').length >= 2, 'heartbeats sent while the peer was quiet');
      await within(1000, 'the socket closed', () => raw.closed);
      assert.not.ok(b.ready);
    });
  } finally {
    await c.run();
  }
});

test("'dead' HF_ERR_CLOSED within 100 ms of the peer's socket being destroyed", async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'closed', async () => {
      const srv = await rawServer(c);
      const p = connect(c, srv.address, { heartbeatMs: 1000 });
      const raw = await srv.next();
      await handshakeAsPrimary(raw);
      const b = await p;
      const dead = new Promise<[string, number]>((resolve) => b.once('dead', (code) => resolve([code, performance.now()])));
      const at = performance.now();
      raw.socket.destroy();
      const [code, when] = await within(1000, 'dead', () => dead);
      assert.is(code, 'HF_ERR_CLOSED');
      assert.ok(when - at < 100, `${when - at} ms`);
      // Between two PeerConnections, the same.
      const l = await listener(c, { heartbeatMs: 1000 });
      const got = new Promise<PeerConnection>((resolve) => l.once('peer', resolve));
      const b2 = await connect(c, l.address, { heartbeatMs: 1000 });
      const a2 = await got;
      const dead2 = new Promise<[string, string, number]>((resolve) => b2.once('dead', (code, msg) => resolve([code, msg, performance.now()])));
      const at2 = performance.now();
      a2.close();
      const [code2, msg2, when2] = await within(1000, 'dead', () => dead2);
      assert.is(code2, 'HF_ERR_CLOSED');
      assert.ok(msg2.includes('closed by the peer'), msg2);
      assert.ok(when2 - at2 < 100, `${when2 - at2} ms`);
    });
  } finally {
    await c.run();
  }
});

test('a malformed frame or message after the handshake: HF_ERR_PEER, told to the peer', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'malformed', async () => {
      const srv = await rawServer(c);
      for (const bad of [
        Buffer.from('00000001ff', 'hex'),
        encodePeerFrame({ t: 'delta', sid: Uint8Array.of(1), n: 0, d: {} }),
        encodePeerFrame({ t: 'proof', proof: new Uint8Array(32) }),
        Buffer.from('ffffffff', 'hex'),
      ]) {
        const p = connect(c, srv.address, { maxFrameBytes: 1 << 20 });
        const raw = await srv.next();
        await handshakeAsPrimary(raw);
        const b = await p;
        const dead = new Promise<[string, string]>((resolve) => b.once('dead', (code, msg) => resolve([code, msg])));
        raw.socket.write(bad);
        const [code, msg] = await within(1000, 'dead', () => dead);
        assert.is(code, 'HF_ERR_PEER', msg);
        const err = await raw.next('err');
        assert.is(err.code, 'HF_ERR_PEER');
        await within(1000, 'closed', () => raw.closed);
      }
    });
  } finally {
    await c.run();
  }
});

test('maxPeers: one more live peer is refused with HF_ERR_BUSY; after one leaves there is room again', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'maxPeers', async () => {
      const l = await listener(c, { maxPeers: 1 });
      const first = await connect(c, l.address);
      assert.is(await codeOf(connect(c, l.address, { node: 'gw-c' })), 'HF_ERR_BUSY');
      assert.is(l.peers, 1);
      first.close();
      await within(1000, 'the peer counted out', async () => {
        while (l.peers !== 0) await sleep(2);
      });
      const again = await connect(c, l.address, { node: 'gw-d' });
      assert.is(again.peerNode, 'gw-a');
    });
  } finally {
    await c.run();
  }
});

test('accept: the owner refuses a peer by its hello, with its own code', async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'accept', async () => {
      const seen: PeerHello[] = [];
      const l = await listener(c, {
        accept: (h) => {
          seen.push(h);
          return h.epoch < 5 ? hfError(ErrorCode.EPOCH, `epoch ${h.epoch} is older than 5`) : null;
        },
      });
      let peers = 0;
      l.on('peer', () => peers++);
      assert.is(await codeOf(connect(c, l.address, { epoch: 4 })), 'HF_ERR_EPOCH');
      assert.is(peers, 0);
      const ok = await connect(c, l.address, { epoch: 7 });
      assert.ok(ok.ready);
      assert.equal(
        seen.map((h) => [h.role, h.node, h.epoch]),
        [
          ['standby', 'gw-b', 4],
          ['standby', 'gw-b', 7],
        ],
      );
    });
  } finally {
    await c.run();
  }
});

test("a 10 MiB snapshot arrives intact; send returns false over highWaterBytes and 'drain' follows", async () => {
  const c = new Cleanup();
  try {
    await within(10_000, 'big snapshot', async () => {
      // The default heartbeats (50 ms × 4): encoding 10 MiB can take this process most of 100 ms.
      const defaults = { heartbeatMs: undefined, heartbeatMisses: undefined };
      const l = await listener(c, defaults);
      const got = new Promise<PeerConnection>((resolve) => l.once('peer', resolve));
      const b = await connect(c, l.address, defaults);
      const a = await got;
      const bytes = randomBytes(10 * 1024 * 1024);
      const arrived = new Promise<PeerMessage>((resolve) => a.once('message', resolve));
      const drained = new Promise<void>((resolve) => b.once('drain', () => resolve()));
      assert.is(b.send({ t: 'snap', sid: Uint8Array.of(7), n: 0, bytes }), false, 'over the 8 MiB default');
      const m = await within(5000, 'the snapshot', () => arrived);
      await within(5000, 'drain', () => drained);
      assert.is(m.t, 'snap');
      if (m.t === 'snap') {
        assert.is(m.bytes.length, bytes.length);
        assert.ok(Buffer.from(m.bytes).equals(bytes), 'the same bytes');
      }
      assert.ok(a.ready && b.ready, 'no heartbeat death while it was in transit');
    });
  } finally {
    await c.run();
  }
});

test("close(): 'dead' HF_ERR_CLOSED 'closed here' once, a second close does nothing, send after it throws", async () => {
  const c = new Cleanup();
  try {
    await within(5000, 'close', async () => {
      const l = await listener(c);
      const b = await connect(c, l.address);
      const deaths: [string, string][] = [];
      b.on('dead', (code, msg) => deaths.push([code, msg]));
      b.close();
      assert.equal(deaths, [], 'not from inside close()');
      b.close();
      await sleep(50);
      assert.equal(deaths, [['HF_ERR_CLOSED', 'closed here']]);
      assert.is(await codeOf(() => b.send({ t: 'hb', epoch: 1 })), 'HF_ERR_CLOSED');
    });
  } finally {
    await c.run();
  }
});

test('options are checked (HF_ERR_OPTION naming the value); an unreachable address is HF_ERR_CONNECT', async () => {
  const c = new Cleanup();
  try {
    const base = { key: KEY, node: 'n', epoch: 1 };
    const cases: [Partial<PeerListenerOptions>, string][] = [
      [{ key: 'short-key' }, 'key'],
      [{ key: new Uint8Array(15) }, 'key'],
      [{ key: 5 as unknown as string }, 'key'],
      [{ node: '' }, 'node'],
      [{ epoch: -1 }, 'epoch'],
      [{ epoch: undefined }, 'epoch'],
      [{ role: 'leader' as 'primary' }, 'role'],
      [{ heartbeatMs: 0 }, 'heartbeatMs'],
      [{ heartbeatMisses: 1.5 }, 'heartbeatMisses'],
      [{ handshakeMs: -1 }, 'handshakeMs'],
      [{ maxFrameBytes: 0 }, 'maxFrameBytes'],
      [{ highWaterBytes: 0 }, 'highWaterBytes'],
      [{ maxPeers: 0 }, 'maxPeers'],
    ];
    for (const [o, name] of cases) {
      const starts: (() => Promise<unknown>)[] = [() => PeerListener.listen('127.0.0.1:0', { ...base, ...o } as PeerListenerOptions)];
      if (name !== 'maxPeers') starts.push(() => PeerConnection.connect('127.0.0.1:1', { ...base, ...o } as PeerOptions));
      for (const start of starts) {
        try {
          await start();
          assert.unreachable(`${name} accepted`);
        } catch (e) {
          assert.ok(isHfError(e) && e.code === 'HF_ERR_OPTION', `${name}: ${String(e)}`);
          assert.ok(e.message.includes(name), e.message);
        }
      }
    }
    assert.is(await codeOf(PeerConnection.connect('nowhere', base)), 'HF_ERR_OPTION');
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((resolve) => srv.close(resolve));
    assert.is(await codeOf(PeerConnection.connect(`127.0.0.1:${port}`, base)), 'HF_ERR_CONNECT');
  } finally {
    await c.run();
  }
});

test('over TLS (the tls option pair): the same handshake; an untrusted certificate is HF_ERR_TLS', async () => {
  const c = new Cleanup();
  try {
    const { cert, key } = makeCert(tmpDir(c, 'holdfast-peer-'));
    await within(10_000, 'tls', async () => {
      const l = await listener(c, { tls: { server: { cert, key } } });
      const b = await connect(c, l.address, { tls: { client: { ca: cert } } });
      assert.is(b.peerNode, 'gw-a');
      assert.is(await codeOf(connect(c, l.address, { tls: { client: {} } })), 'HF_ERR_TLS');
    });
  } finally {
    await c.run();
  }
});

test.run();
