/**
 * Gateway.releaseSession / adoptSession (the handoff primitive a workers' reload and a cluster use)
 * between two gateways in this process, devices reaching them through a small switchable TCP relay
 * (what the workers' main process, or a cluster's routing, does): 12 devices over HTTP and direct
 * TCP with numbered streams both ways, every session moved mid-stream from A to B. Every message
 * reaches an application exactly once and in order (A's before B's), every echo comes back once and
 * in order, the sessions keep their ids, A's channels close with HF_ERR_MOVED, A serves none of
 * them afterwards, and bad bytes are HF_ERR_HANDOFF.
 */
import * as net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, type HfError, isHfError } from '../firmware/errors';
import type { LinkOptions } from '../firmware/options';
import { type DeviceChannel, connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { Cleanup } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'k-gateway-handoff';
const LINK: LinkOptions = { outSlots: 64, outBytes: 16384, inSlots: 64, inBytes: 16384, maxMessage: 1024, maxBundleBytes: 16384 };

async function waitUntil(ms: number, cond: () => boolean): Promise<boolean> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(20);
  return cond();
}

/** A TCP relay on 127.0.0.1 to `target()` (read per connection), so the gateway behind it can change. */
async function relay(c: Cleanup, target: () => string): Promise<string> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const [host, port] = target().split(':');
    const up = net.connect(Number(port), host);
    for (const s of [down, up]) {
      socks.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        socks.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.add(() => new Promise((r) => server.close(r)));
  c.add(() => {
    for (const s of socks) s.destroy();
  });
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A gateway whose application records what it got (device, session, index) and sends every message back. */
async function gateway(c: Cleanup, name: string, got: { gw: string; device: string; session: string; index: number }[], channels: GatewayChannel[]): Promise<Gateway> {
  const devices = Object.fromEntries([...Array(12).keys()].map((i) => [`gh-${i}`, KEY]));
  const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: '127.0.0.1:0', devices, link: LINK });
  c.add(() => gw.close());
  gw.on('session', (ch) => {
    channels.push(ch);
    ch.on('error', () => {});
    ch.on('message', (m: Buffer) => {
      got.push({ gw: name, device: ch.deviceId, session: ch.sessionId, index: m.readUInt32BE(0) });
      ch.send(m);
    });
  });
  return gw;
}

test('12 devices over HTTP and TCP, every session moved mid-stream: once, in order, both ways, same ids; the old side serves none', async () => {
  const c = new Cleanup();
  const chans: DeviceChannel[] = [];
  try {
    await within(45_000, 'the handoff', async () => {
      const got: { gw: string; device: string; session: string; index: number }[] = [];
      const onA: GatewayChannel[] = [];
      const onB: GatewayChannel[] = [];
      const a = await gateway(c, 'A', got, onA);
      const b = await gateway(c, 'B', got, onB);
      let to = a;
      const httpRelay = await relay(c, () => to.http?.address as string);
      const tcpRelay = await relay(c, () => to.tcp?.address as string);
      const closedOnA: (HfError | undefined)[] = [];
      const sent = new Map<string, number>();
      const echoed = new Map<string, number[]>();
      for (let i = 0; i < 12; i++) {
        const id = `gh-${i}`;
        const ch = connect({ gateway: `http://${httpRelay}`, ...(i % 2 === 1 ? { tcp: tcpRelay } : {}), id, key: KEY, link: LINK });
        chans.push(ch);
        ch.on('error', () => {});
        sent.set(id, 0);
        echoed.set(id, []);
        ch.on('message', (m: Buffer) => echoed.get(id)?.push(m.readUInt32BE(0)));
      }
      let limit = Number.POSITIVE_INFINITY;
      const pacer = setInterval(() => {
        for (const ch of chans) {
          const n = sent.get(ch.deviceId) ?? 0;
          const b = Buffer.alloc(8);
          b.writeUInt32BE(n, 0);
          if (n < limit && n - (echoed.get(ch.deviceId)?.length ?? 0) < 16 && ch.send(b)) sent.set(ch.deviceId, n + 1);
        }
      }, 10);
      c.add(() => clearInterval(pacer));
      assert.ok(await waitUntil(20_000, () => onA.length === 12 && chans.every((ch) => (echoed.get(ch.deviceId)?.length ?? 0) >= 10)), 'traffic on A');
      assert.ok(await waitUntil(20_000, () => chans.filter((ch) => ch.transport === 'tcp').length === 6), 'the TCP devices on TCP');
      for (const ch of onA) ch.on('close', (e) => closedOnA.push(e));
      // Every session from A to B, while the devices go on sending.
      const sids = onA.map((ch) => ch.sessionId);
      for (const sid of sids) {
        const bytes = await a.releaseSession(sid);
        assert.is(b.adoptSession(bytes), sid, 'the same session id on B');
      }
      to = b;
      assert.is(a.sessionCount, 0);
      assert.is(b.sessionCount, 12);
      const movedAt = got.length;
      assert.ok(await waitUntil(20_000, () => chans.every((ch) => (echoed.get(ch.deviceId)?.length ?? 0) >= 30)), 'traffic on B');
      limit = 0;
      for (const ch of chans) limit = Math.max(limit, sent.get(ch.deviceId) ?? 0);
      assert.ok(await waitUntil(20_000, () => chans.every((ch) => (echoed.get(ch.deviceId)?.length ?? 0) === sent.get(ch.deviceId))), 'every echo back');
      await sleep(200);
      for (const ch of chans) {
        const id = ch.deviceId;
        const n = sent.get(id) ?? 0;
        const mine = got.filter((g) => g.device === id);
        const fromA = mine.filter((g) => g.gw === 'A').map((g) => g.index);
        const fromB = mine.filter((g) => g.gw === 'B').map((g) => g.index);
        assert.equal([...fromA, ...fromB], [...Array(n).keys()], `${id}: every message once, in order, A's before B's`);
        assert.ok(fromB.length > 0, `${id}: B served it`);
        assert.equal(echoed.get(id), [...Array(n).keys()], `${id}: every echo once, in order`);
        assert.is(new Set(mine.map((g) => g.session)).size, 1, `${id}: one session`);
        assert.is(mine[0].session, ch.sessionId, `${id}: the device's session id`);
        assert.not.ok(ch.closed, `${id}: still open`);
      }
      assert.ok(
        got.slice(movedAt).every((g) => g.gw === 'B'),
        'A handed nothing to its application after the release',
      );
      assert.is(closedOnA.length, 12);
      for (const e of closedOnA) assert.is(e?.code, ErrorCode.MOVED);
      assert.is(onB.length, 12);
      // Bad bytes, a session already there, a session that is not here.
      for (const bad of [new Uint8Array(0), Buffer.from('a1616101', 'hex')]) {
        let code = '';
        try {
          b.adoptSession(bad);
        } catch (e) {
          code = isHfError(e) ? e.code : String(e);
        }
        assert.is(code, ErrorCode.HANDOFF);
      }
      const again = await b.releaseSession(sids[0]);
      assert.is(a.adoptSession(again), sids[0], 'and back to A');
      let dup = '';
      try {
        a.adoptSession(again);
      } catch (e) {
        dup = isHfError(e) ? e.code : String(e);
      }
      assert.is(dup, ErrorCode.HANDOFF, 'the same bytes twice: already served');
      let unknown = '';
      await b.releaseSession(sids[0]).catch((e) => {
        unknown = isHfError(e) ? e.code : String(e);
      });
      assert.is(unknown, ErrorCode.UNKNOWN_SESSION);
      assert.is(b.sessionCount, 11);
    });
  } finally {
    for (const ch of chans) ch.destroy();
    await c.run();
  }
});

test.run();
