/**
 * A primary/standby pair in one process (the control connection in memory: memory-peers.ts), behind
 * a relay the test switches as a load balancer would: with ackAfter 'standby' a takeover mid-stream
 * loses and repeats nothing, the standby refuses devices until then, and answers carry the epoch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel, type GatewayOptions } from '../targets/host/gateway/gateway';
import { PairRole } from '../targets/host/gateway/pair/pair';
import { MemoryPeers } from './support/memory-peers';
import { SwitchRelay } from './support/switch-relay';
import { sleep, within } from './support/within';

const KEY = 'pair-key-0123456789';

/** Every gateway's application echoes what it gets, prefixed, then confirms it (ackAfter 'app'; a no-op otherwise). */
function echo(gw: Gateway, seen: string[]): void {
  gw.on('session', (ch: GatewayChannel) =>
    ch.on('message', (m: Uint8Array, done) => {
      const s = Buffer.from(m).toString();
      seen.push(s);
      ch.send(Buffer.from(`echo:${s}`));
      done();
    }),
  );
}

/** A pair's primary in memory (peer listener mem:a), ackAfter 'standby'. */
async function startPrimary(peers: MemoryPeers, more: Partial<GatewayOptions> = {}): Promise<Gateway> {
  let gw: Gateway | null = null;
  gw = await Gateway.start({
    http: '127.0.0.1:0',
    devices: null,
    ackAfter: 'standby',
    ...more,
    pair: { key: KEY, node: 'a', listen: 'mem:a', connect: peers.connect, listenPeers: peers.listenFor(() => gw?.pair?.epoch ?? 1) },
  });
  return gw;
}

/** Its standby (attaching to mem:a, retrying every 20 ms until it is there), ackAfter 'standby'. */
async function startStandby(peers: MemoryPeers, more: Partial<GatewayOptions> = {}): Promise<Gateway> {
  let gw: Gateway | null = null;
  gw = await Gateway.start({
    http: '127.0.0.1:0',
    devices: null,
    ackAfter: 'standby',
    ...more,
    pair: { key: KEY, node: 'b', listen: 'mem:b', standbyOf: 'mem:a', retryMs: 20, connect: peers.connect, listenPeers: peers.listenFor(() => gw?.pair?.epoch ?? 0) },
  });
  return gw;
}

/**
 * `n` devices on `gateway`, each keeping the messages it gets in `got[d]`; `sendSome(upto)` sends
 * "d<d>-<i>" from each until `i` reaches `upto`; `sent()` is how far they got.
 */
function devices(n: number, gateway: string | string[], deadAfterMs: number, dev: ReturnType<typeof connect>[]) {
  const got: string[][] = [];
  for (let d = 0; d < n; d++) {
    const ch = connect({ gateway, id: `dev-${d}`, key: null, link: { deadAfterMs } });
    got.push([]);
    ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
    dev.push(ch);
  }
  let sent = 0;
  const sendSome = async (upto: number): Promise<void> => {
    for (; sent < upto; sent++) {
      for (let d = 0; d < n; d++) dev[d].send(Buffer.from(`d${d}-${sent}`));
      if (sent % 10 === 0) await sleep(5);
    }
  };
  return { got, sendSome, sent: () => sent };
}

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

for (const ackAfter of ['standby', 'app', 'received'] as const)
  test(`takeover mid-stream with ackAfter ${ackAfter}: the device sees every echo once, in order`, async () => {
    const peers = new MemoryPeers();
    let primary: Gateway | null = null;
    let standby: Gateway | null = null;
    let relay: SwitchRelay | null = null;
    const dev: ReturnType<typeof connect>[] = [];
    try {
      await within(30_000, 'the takeover', async () => {
        primary = await startPrimary(peers, { ackAfter });
        standby = await startStandby(peers, { ackAfter });
        const seenA: string[] = [];
        const seenB: string[] = [];
        echo(primary, seenA);
        echo(standby, seenB);
        await waitUntil(2000, () => standby?.pair?.synced === true);
        assert.ok(standby.pair?.synced, 'the standby synced');

        // The standby refuses devices with HF_ERR_STANDBY (503), and leaves their sessions alone.
        const r = await fetch(`${standby.http?.url}`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: new Uint8Array([0xa0]) });
        assert.is(r.status, 503);
        assert.is(r.headers.get('x-holdfast-error'), 'HF_ERR_STANDBY');

        relay = await SwitchRelay.start(`http://${primary.http?.address}`);
        const N = 4;
        const PER = 120;
        const { got, sendSome } = devices(N, relay.url, 20_000, dev);
        await sendSome(PER / 2);
        await waitUntil(3000, () => got.every((g) => g.length >= 20));
        // The primary dies: its standby's connection closes, the balancer sends to the standby.
        const t0 = performance.now();
        peers.kill('mem:a');
        relay.switchTo(`http://${standby.http?.address}`);
        await waitUntil(2000, () => standby?.pair?.role === PairRole.PRIMARY);
        assert.is(standby.pair?.role, PairRole.PRIMARY, 'the standby took over');
        assert.is(standby.pair?.epoch, 2);
        await sendSome(PER);
        await waitUntil(15_000, () => got.every((g) => g.length >= PER));
        const takeoverMs = performance.now() - t0;
        for (let d = 0; d < N; d++) {
          const want = Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`);
          assert.equal(got[d], want, `device ${d}: every echo once, in order`);
        }
        assert.ok(seenB.length > 0, 'the new primary served');
        assert.ok(takeoverMs < 15_000);
      });
    } finally {
      for (const ch of dev) ch.destroy();
      await sleep(50);
      await (relay as SwitchRelay | null)?.close();
      await (standby as Gateway | null)?.close();
      await (primary as Gateway | null)?.close();
    }
  });

test('a device on direct TCP to a primary with its standby attached: every echo comes back on the connection', async () => {
  const peers = new MemoryPeers();
  let primary: Gateway | null = null;
  let standby: Gateway | null = null;
  let ch: ReturnType<typeof connect> | null = null;
  try {
    await within(20_000, 'the echoes on TCP', async () => {
      const p = await startPrimary(peers, { tcp: '127.0.0.1:0' });
      primary = p;
      standby = await startStandby(peers);
      echo(p, []);
      await waitUntil(2000, () => standby?.pair?.synced === true);
      const got: string[] = [];
      const c = connect({ gateway: p.http?.url as string, tcp: p.tcp?.address, id: 'tcp-dev', key: null, link: { deadAfterMs: 10_000 } });
      ch = c;
      c.on('message', (m: Uint8Array) => got.push(Buffer.from(m).toString()));
      await new Promise((r) => c.once('open', r));
      for (let i = 0; i < 50; i++) c.send(Buffer.from(`t-${i}`));
      await waitUntil(10_000, () => got.length >= 50);
      // Frames to a TCP device wait for the standby like answers do, and go out on its connection.
      assert.is(c.transport, 'tcp');
      assert.equal(
        got,
        Array.from({ length: 50 }, (_, i) => `echo:t-${i}`),
      );
    });
  } finally {
    (ch as ReturnType<typeof connect> | null)?.destroy();
    await sleep(50);
    await (standby as Gateway | null)?.close();
    await (primary as Gateway | null)?.close();
  }
});

test("ackAfter standby: a message counts as consumed only once the application's handler returned", async () => {
  // A record made between the link's delivery and the handler (an answer's, on the same turn) must
  // not tell the standby the message was consumed: if the primary died then, the reply the handler
  // was about to send would be lost with it. The handler sees the session's state still holding it.
  const peers = new MemoryPeers();
  let primary: Gateway | null = null;
  let standby: Gateway | null = null;
  let dev: ReturnType<typeof connect> | null = null;
  try {
    await within(20_000, 'the exchange', async () => {
      primary = await startPrimary(peers);
      standby = await startStandby(peers);
      await waitUntil(2000, () => standby?.pair?.synced === true);
      const during: string[] = [];
      primary.on('session', (ch: GatewayChannel) => {
        assert.is(ch.ackAfter, 'standby');
        ch.on('message', (m: Uint8Array, done, seq) => {
          // The link's in-ring still holds this message as not consumed (its held position is not past it).
          const inr = (ch as unknown as { link: { ep: { inr: { held: number } } } }).link.ep.inr;
          if ((inr.held - seq) >>> 0 !== 0 && (seq - inr.held) >>> 0 >= 0x80000000) during.push(`${seq}: held ${inr.held}`);
          done(); // a no-op: the channel confirms once the handler returned
          ch.ack(seq);
          ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`));
        });
      });
      const got: string[] = [];
      dev = connect({ gateway: `http://${primary.http?.address}`, id: 'dev-1', key: null, link: { deadAfterMs: 10_000 } });
      dev.on('message', (m: Uint8Array) => got.push(Buffer.from(m).toString()));
      for (let i = 0; i < 40; i++) {
        dev.send(Buffer.from(String(i)));
        if (i % 8 === 0) await sleep(5);
      }
      await waitUntil(10_000, () => got.length >= 40 && dev?.unacknowledged === 0);
      assert.equal(
        got,
        Array.from({ length: 40 }, (_, i) => `echo:${i}`),
      );
      assert.equal(during, [], 'no message was consumed before its handler ran');
      assert.is(dev.unacknowledged, 0, 'every message acknowledged (confirmed by the channel)');
    });
  } finally {
    (dev as ReturnType<typeof connect> | null)?.destroy();
    await sleep(50);
    await (standby as Gateway | null)?.close();
    await (primary as Gateway | null)?.close();
  }
});

test('a partition (the control connection cut, both nodes alive): the old primary answers nothing more, the devices move, nothing is lost or handed over twice unmarked', async () => {
  const peers = new MemoryPeers();
  let a: Gateway | null = null;
  let b: Gateway | null = null;
  const relays: SwitchRelay[] = [];
  const dev: ReturnType<typeof connect>[] = [];
  try {
    await within(40_000, 'the partition', async () => {
      a = await startPrimary(peers);
      b = await startStandby(peers);
      // What each node's application got: "message again".
      const seen = { a: [] as string[], b: [] as string[] };
      for (const [name, gw] of [
        ['a', a],
        ['b', b],
      ] as const) {
        gw.on('session', (ch: GatewayChannel) =>
          ch.on('message', (m: Uint8Array, _done, _seq, again) => {
            const text = Buffer.from(m).toString();
            seen[name].push(`${text}${again ? ' again' : ''}`);
            ch.send(Buffer.from(`echo:${text}`));
          }),
        );
      }
      await waitUntil(2000, () => b?.pair?.synced === true);
      assert.ok(b.pair?.synced, 'the standby synced');
      // A relay in front of each node counts its answers.
      relays.push(await SwitchRelay.start(`http://${a.http?.address}`), await SwitchRelay.start(`http://${b.http?.address}`));
      const N = 4;
      const PER = 100;
      const { got, sendSome, sent } = devices(
        N,
        relays.map((r) => r.url),
        30_000,
        dev,
      );
      await sendSome(PER / 2);
      await waitUntil(5000, () => got.every((g) => g.length >= 20));
      const cutAt = sent();
      const t0 = performance.now();
      peers.cut();
      await waitUntil(2000, () => b?.pair?.role === PairRole.PRIMARY);
      assert.is(b.pair?.role, PairRole.PRIMARY, 'the standby took over');
      assert.is(b.pair?.epoch, 2);
      assert.is(a.pair?.role, PairRole.PRIMARY, 'the old primary lives on, as primary of epoch 1');
      assert.is(a.pair?.epoch, 1);
      const answeredByA = relays[0].answers.get('200') ?? 0;
      await sendSome(PER);
      await waitUntil(25_000, () => got.every((g) => g.length >= PER));
      process.stdout.write(`  partition: every echo ${(performance.now() - t0).toFixed(0)} ms after the cut\n`);
      for (let d = 0; d < N; d++) {
        assert.equal(
          got[d],
          Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`),
          `device ${d}: every echo once, in order`,
        );
      }
      // One node answers per epoch: the cut-off primary answered nothing after the takeover (it holds
      // every answer for a standby that never confirms); its application got nothing sent after the cut.
      assert.is(relays[0].answers.get('200') ?? 0, answeredByA, 'the old primary answered after the takeover');
      assert.ok((a.pairStatus()?.heldAnswers ?? 0) > 0, 'the old primary holds the answers it could not release');
      for (const s of seen.a) assert.ok(Number(s.split('-')[1].split(' ')[0]) < cutAt, `the old primary's application got ${s}, sent after the cut`);
      // What both applications got, the new primary got marked again; together they got everything.
      const onA = new Set(seen.a.map((s) => s.split(' ')[0]));
      for (const s of seen.b) if (onA.has(s.split(' ')[0])) assert.ok(s.endsWith(' again'), `${s} reached both applications, unmarked on the new primary`);
      const all = new Set([...onA, ...seen.b.map((s) => s.split(' ')[0])]);
      assert.is(all.size, N * PER, 'every message reached an application');
      assert.ok(dev.every((ch) => ch.unacknowledged === 0));
    });
  } finally {
    for (const ch of dev) ch.destroy();
    await sleep(50);
    for (const r of relays) await r.close();
    await (b as Gateway | null)?.close();
    await (a as Gateway | null)?.close();
  }
});

test('a device told only the primary learns the standby from the welcome and moves to it when the primary dies', async () => {
  const peers = new MemoryPeers();
  let a: Gateway | null = null;
  let b: Gateway | null = null;
  let dev: ReturnType<typeof connect> | null = null;
  try {
    await within(20_000, 'the move to a learned gateway', async () => {
      b = await startStandby(peers);
      const urlB = `http://${b.http?.address}/v1/link`;
      a = await startPrimary(peers, { advertise: [{ url: urlB }] });
      const seen: string[] = [];
      echo(a, seen);
      echo(b, seen);
      await waitUntil(3000, () => b?.pair?.synced === true);
      const got: string[] = [];
      const moves: string[] = [];
      dev = connect({ gateway: `http://${a.http?.address}`, id: 'dev-1', key: null, link: { deadAfterMs: 20_000 } });
      dev.on('message', (m: Uint8Array) => got.push(Buffer.from(m).toString()));
      dev.on('gateway', (to: string) => moves.push(to));
      const PER = 60;
      let sent = 0;
      const sendSome = async (upto: number): Promise<void> => {
        for (; sent < upto; sent++) {
          dev?.send(Buffer.from(String(sent)));
          if (sent % 10 === 0) await sleep(5);
        }
      };
      await sendSome(PER / 2);
      await waitUntil(5000, () => got.length >= 10);
      await a.close(); // the primary is gone: its listener and its control connection
      a = null;
      await waitUntil(3000, () => b?.pair?.role === PairRole.PRIMARY);
      assert.is(b.pair?.role, PairRole.PRIMARY);
      await sendSome(PER);
      await waitUntil(15_000, () => got.length >= PER);
      assert.equal(
        got,
        Array.from({ length: PER }, (_, i) => `echo:${i}`),
        'every echo once, in order',
      );
      assert.equal(moves, [urlB], 'moved once, to the gateway the welcome named');
    });
  } finally {
    (dev as ReturnType<typeof connect> | null)?.destroy();
    await sleep(50);
    await (b as Gateway | null)?.close();
    await (a as Gateway | null)?.close();
  }
});

test('advertise is checked: a URL that is not http(s), a bad tcp address, more than 8 (HF_ERR_OPTION)', async () => {
  for (const advertise of [[{ url: 'ftp://x/' }], [{ url: 'nope' }], [{ url: 'http://a/', tcp: 'no-port' }], Array.from({ length: 9 }, () => ({ url: 'http://a/' }))]) {
    let code = '';
    try {
      const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null, advertise });
      await gw.close();
    } catch (e) {
      code = (e as { code?: string }).code ?? String(e);
    }
    assert.is(code, 'HF_ERR_OPTION', JSON.stringify(advertise).slice(0, 80));
  }
});

test.run();
