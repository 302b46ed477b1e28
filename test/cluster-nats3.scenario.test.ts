/**
 * A cluster of gateways on a cluster of three NATS servers (Debian's nats-server, routes between
 * them, JetStream clustered; the directory's bucket and the replication stream with 3 replicas):
 * one NATS server killed under traffic, the nodes on it reconnect to the others, and every echo
 * arrives once and in order with no session ended and no takeover.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { sleep, within } from './support/within';

const ok = natsAvailable('cluster-nats3.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats({ servers: 3 });
});
test.after(async () => {
  await nats?.stop();
});

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

/** Starts a node, retrying while JetStream's cluster elects its leaders (a fresh cluster takes seconds). */
async function startNode(node: string, servers: string): Promise<Gateway> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      return await Gateway.start({
        http: '127.0.0.1:0',
        devices: null,
        ackAfter: 'standby',
        cluster: { servers, node, placement: 'hash', mode: 'relay', prefix: 'hf3', bucket: 'hf_3', replicas: 3, heartbeatMs: 100, misses: 10 },
      });
    } catch (e) {
      if (Date.now() > until) throw e;
      await sleep(500);
    }
  }
}

test('one of three NATS servers killed under traffic: nothing lost or repeated, no takeover', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const dev: ReturnType<typeof connect>[] = [];
  let lb: Balancer | null = null;
  try {
    await within(120_000, 'the NATS server loss', async () => {
      // Each node prefers a different server; all know all three.
      const urls = nats.servers.map((s) => s.url);
      for (let i = 0; i < 3; i++) {
        const gw = await startNode(`n${i + 1}`, [urls[i], ...urls.filter((_, j) => j !== i)].join(','));
        gw.on('session', (ch: GatewayChannel) => ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`))));
        gws.push(gw);
      }
      await waitUntil(5000, () => gws.every((g) => g.clusterStatus()?.live.length === 3));
      lb = await Balancer.start(gws.map((g) => g.http?.address as string));
      const N = 15;
      const PER = 60;
      const got: string[][] = [];
      const closed: string[] = [];
      for (let d = 0; d < N; d++) {
        const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `t-${d}`, key: null, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
        got.push([]);
        ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
        ch.on('close', () => closed.push(`t-${d}`));
        dev.push(ch);
      }
      let sent = 0;
      const sendUpTo = async (upto: number): Promise<void> => {
        for (; sent < upto; sent++) {
          for (let d = 0; d < N; d++) dev[d].send(Buffer.from(`d${d}-${sent}`));
          await sleep(15);
        }
      };
      await sendUpTo(PER / 2);
      await waitUntil(10_000, () => got.every((g) => g.length >= 5));
      const t0 = performance.now();
      await nats.servers[0].kill('SIGKILL');
      await sendUpTo(PER);
      await waitUntil(60_000, () => got.every((g) => g.length >= PER));
      const ms = performance.now() - t0;
      for (let d = 0; d < N; d++)
        assert.equal(
          got[d],
          Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`),
          `device ${d}: every echo once, in order`,
        );
      assert.equal(closed, [], 'no session ended');
      assert.equal(
        gws.map((g) => g.clusterStatus()?.takeovers),
        [0, 0, 0],
        'nobody took over',
      );
      console.log(`  one NATS server of three killed: every device's echoes complete ${ms.toFixed(0)} ms after`);
    });
  } finally {
    for (const ch of dev) ch.destroy();
    await sleep(50);
    await (lb as Balancer | null)?.close();
    for (const g of gws) await g.close();
  }
});

test.run();
