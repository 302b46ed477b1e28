/**
 * The gateway on the host target (targets/host/gateway/) against raw HTTP and TCP input:
 *  - every refusal gets its HTTP status and its code (header and body), and a real session running
 *    beside them keeps flowing, undisturbed;
 *  - 2,000 sessions that go silent are reclaimed after the idle limit: table, timers and memory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomFillSync } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { ClientLink } from '../firmware/client-link';
import { decodeControl } from '../firmware/control';
import { BundleReader } from '../firmware/wire';
import { nodeCrypto } from '../targets/node/crypto';
import { connect } from '../targets/host/device/device';
import { frame, FrameReader } from '../targets/host/net/frames';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { serveForwards } from '../targets/host/app/forward';
import { Mux } from '../targets/host/app/mux';
import { Cleanup, hashServer } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'real-key';

interface Reply {
  status: number;
  code: string | undefined;
  type: string;
  body: Buffer;
}

function post(url: string, body: Buffer | string, type = 'application/cbor', method = 'POST', agent?: http.Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, code: res.headers['x-holdfast-error'] as string | undefined, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The code inside a CBOR error bundle. */
function bodyCode(body: Buffer): string {
  const v = new BundleReader().read(body);
  const c = decodeControl(v.buf, v.ctlStarts[0], v.ctlEnds[0]);
  return c !== null && c.kind === 4 ? c.code : 'none';
}

/** A hand-driven client link whose bundles the test carries itself. */
function rawClient(id: string, key: string) {
  const sent: { rn: number; body: Buffer }[] = [];
  // Tiny rings: the test makes thousands of these and only needs their hellos and first bundles.
  const c = new ClientLink(
    {
      id,
      options: { outSlots: 4, outBytes: 1024, inSlots: 4, inBytes: 1024, maxBundleBytes: 4096 },
      random: (b) => randomFillSync(b),
      helloCounter: 5,
      key: new TextEncoder().encode(key),
      crypto: nodeCrypto,
    },
    { transmit: (b, len, rn) => sent.push({ rn, body: Buffer.from(b.subarray(0, len)) }), deliver: () => true },
  );
  return { c, sent };
}

test('refusals: each has its status and code; a real session beside them keeps flowing', async () => {
  const c = new Cleanup();
  try {
    await within(30_000, 'refusals', async () => {
      const sink = await hashServer(c);
      const allowed = `127.0.0.1:${sink.port}`;
      const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: '127.0.0.1:0', devices: { 'pi-1': KEY, 'pi-2': 'second-key' } });
      c.add(() => gw.close());
      const url = gw.http!.url;
      let echoed = 0;
      gw.on('session', (ch: GatewayChannel) => {
        const mux = new Mux(ch, { role: 'gateway' });
        serveForwards(mux, { allow: [allowed] });
        mux.on('message', (m: Buffer) => mux.send(m));
        mux.on('error', () => {});
      });
      // The real device: messages echoed round and round for the whole test.
      const dev = connect({ gateway: `http://${gw.http!.address}`, id: 'pi-1', key: KEY });
      c.add(() => dev.destroy());
      const dmux = new Mux(dev, { role: 'device' });
      dmux.on('error', () => {});
      let failed: Error | undefined;
      dev.on('close', (e?: Error) => (failed = e ?? new Error('closed')));
      dmux.on('message', (m: Buffer) => {
        echoed++;
        dmux.send(m);
      });
      await new Promise((r) => dev.once('open', r));
      dmux.send(Buffer.from('ping'));
      while (echoed < 10) await sleep(5);

      // Wrong key.
      const wrong = rawClient('pi-2', 'not-the-key');
      wrong.c.start(0);
      let r = await post(url, wrong.sent[0].body);
      assert.is(r.status, 403, 'wrong key');
      assert.is(r.code, 'HF_ERR_AUTH');
      assert.is(bodyCode(r.body), 'HF_ERR_AUTH');
      // Unknown device (same answer as a wrong key).
      const stranger = rawClient('pi-9', 'whatever');
      stranger.c.start(0);
      r = await post(url, stranger.sent[0].body);
      assert.is([r.status, r.code].join(' '), '403 HF_ERR_AUTH', 'unknown device');
      // Replayed hello: a good hello is welcomed; once its session was used, the same bytes are refused.
      const good = rawClient('pi-2', 'second-key');
      good.c.start(0);
      const hello = good.sent[0].body;
      r = await post(url, hello);
      assert.is(r.status, 200, 'a good hello');
      good.c.onBundle(1, r.body);
      assert.ok(good.c.sid !== null, 'welcomed');
      const first = good.sent[good.sent.length - 1];
      const agent = new http.Agent({ keepAlive: true });
      c.add(() => agent.destroy());
      const held = post(url, first.body, 'application/cbor', 'POST', agent).catch(() => null); // held by the gateway
      await sleep(50);
      r = await post(url, hello);
      assert.is([r.status, r.code].join(' '), '403 HF_ERR_AUTH', 'replayed hello');
      // Unknown session id.
      const forged = Buffer.from(first.body);
      const v = new BundleReader().read(forged);
      forged.fill(0x5a, v.sidOff, v.sidOff + 16);
      r = await post(url, forged);
      assert.is([r.status, r.code].join(' '), '403 HF_ERR_UNKNOWN_SESSION', 'guessed session id');
      // The real session's id, copied onto a bundle not tagged with its key.
      const copied = Buffer.from(first.body);
      copied.set(Buffer.from(dev.sessionId!, 'hex'), v.sidOff);
      r = await post(url, copied);
      assert.is([r.status, r.code].join(' '), '403 HF_ERR_AUTH', 'copied session id');
      // Malformed CBOR, a bundle of the wrong shape, an oversized body.
      r = await post(url, Buffer.from([0xa5, 0x00]));
      assert.is([r.status, r.code].join(' '), '400 HF_ERR_CBOR', 'truncated CBOR');
      assert.is(bodyCode(r.body), 'HF_ERR_CBOR');
      r = await post(url, Buffer.from([0x80]));
      assert.is([r.status, r.code].join(' '), '400 HF_ERR_BUNDLE', 'not a map');
      r = await post(url, Buffer.alloc(gw.maxBody + 1, 0));
      assert.is([r.status, r.code].join(' '), '413 HF_ERR_LIMIT', 'oversized body');
      // Not the link at all: JSON answers for people.
      r = await post(url, '{}', 'application/json');
      assert.is([r.status, r.code].join(' '), '415 HF_ERR_HTTP', 'wrong content type');
      assert.is(JSON.parse(r.body.toString()).code, 'HF_ERR_HTTP');
      r = await post(url.replace('/v1/link', '/v1/other'), Buffer.from([0xa0]));
      assert.is(r.status, 404, 'wrong path');
      r = await post(url, '', 'application/cbor', 'GET');
      assert.is(r.status, 405, 'GET');
      // A bad frame on TCP: an error frame, then the connection closes.
      const [tcpHost, tcpPort] = [gw.tcp!.address.split(':')[0], Number(gw.tcp!.address.split(':')[1])];
      const tcpCode = await new Promise<string>((resolve, reject) => {
        const s = net.connect(tcpPort, tcpHost);
        const fr = new FrameReader(1 << 20);
        s.on('data', (d: Buffer) => fr.push(d, (b) => resolve(bodyCode(b))));
        s.on('error', reject);
        s.write(frame(Buffer.from([0x80]), 1));
      });
      assert.is(tcpCode, 'HF_ERR_BUNDLE', 'bad frame on TCP');
      // A forward to a target not on the allow list.
      const denied = dmux.open('127.0.0.1', 1);
      const err = await new Promise<Error & { code?: string }>((resolve) => denied.on('error', resolve));
      assert.is(err.code, 'HF_ERR_FORBIDDEN', 'disallowed forward target');
      // ... while an allowed one works on the same session.
      const ok = dmux.open('127.0.0.1', sink.port);
      ok.on('error', () => {});
      const digest = await new Promise<string>((resolve) => {
        let s = '';
        ok.on('data', (d: Buffer) => (s += d.toString()));
        ok.on('end', () => resolve(s));
        ok.end('x');
      });
      assert.is(digest.length, 64, 'allowed forward answered');
      // The real session never noticed.
      const before = echoed;
      while (echoed < before + 20) await sleep(5);
      assert.is(failed, undefined, 'the real session is still up');
      assert.is(dev.transport, 'http');
      void held;
    });
  } finally {
    await c.run();
  }
});

/** A real gc() without --expose-gc. */
function gc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

test('2,000 sessions that go silent are reclaimed after the idle limit', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'reclaim', async () => {
      const N = 2000;
      const devices: Record<string, string> = {};
      for (let i = 0; i < N; i++) devices[`d${i}`] = `key-${i}`;
      // Long enough that the first sessions are still there when the last is made on a busy machine
      // (each reserves its rings, 1344 KiB with the defaults).
      const idleMs = 10_000;
      const gw = await Gateway.start({ http: '127.0.0.1:0', devices, link: { idleMs } });
      c.add(() => gw.close());
      gc();
      const base = process.memoryUsage();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
      c.add(() => agent.destroy());
      let welcomed = 0;
      for (let i = 0; i < N; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, async (_, k) => {
            const raw = rawClient(`d${i + k}`, `key-${i + k}`);
            raw.c.start(0);
            const r = await post(gw.http!.url, raw.sent[0].body, 'application/cbor', 'POST', agent);
            if (r.status === 200) welcomed++;
          }),
        );
      }
      assert.is(welcomed, N, 'every hello welcomed');
      assert.is(gw.sessionCount, N);
      gc();
      const full = process.memoryUsage();
      const perSession = (full.heapUsed + full.arrayBuffers - base.heapUsed - base.arrayBuffers) / N;
      console.log(`  ${N} sessions: ${(perSession / 1024).toFixed(1)} KiB each (heap + array buffers), rss +${((full.rss - base.rss) / 1048576).toFixed(0)} MiB`);
      // Silence: nothing more is sent. The gateway ends every session at the idle limit.
      const t0 = Date.now();
      while (gw.sessionCount > 0 && Date.now() - t0 < idleMs + 5000) await sleep(100);
      assert.is(gw.sessionCount, 0, 'all reclaimed');
      assert.ok(Date.now() - t0 >= idleMs - 1500, 'not before the idle limit');
      assert.is(gw.http!.held, 0, 'no exchange left');
      // What the sessions held comes back (array buffers are released a GC or two after the last
      // reference goes; give it a few).
      const used = (): number => {
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers;
      };
      const peak = full.heapUsed + full.arrayBuffers - base.heapUsed - base.arrayBuffers;
      for (let i = 0; i < 30 && used() > 0.05 * peak; i++) {
        await sleep(100);
        gc();
      }
      console.log(`  after reclaim: ${(used() / 1048576).toFixed(1)} MiB above the start (peak ${(peak / 1048576).toFixed(0)} MiB)`);
      assert.ok(used() < 0.05 * peak, `memory came back: ${(used() / 1048576).toFixed(1)} MiB of ${(peak / 1048576).toFixed(0)} MiB left`);
    });
  } finally {
    await c.run();
  }
});

test.run();
