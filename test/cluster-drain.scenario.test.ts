/**
 * Draining a cluster node under traffic (3 nodes on a real NATS server, behind the project's
 * round-robin balancer, ackAfter 'standby'): node 2 hands every session to the others (release, the
 * directory claimed by compare-and-set, adopt) while the devices stream both ways through the
 * balancer. Every session stays open with its id, every echo arrives once and in order, node 2 ends
 * with none and no new session is placed on it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { sleep, within } from './support/within';

const ok = natsAvailable('cluster-drain.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats();
});
test.after(async () => {
  await nats?.stop();
});

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

for (const mode of ['relay', 'direct'] as const)
  test(`drain node 2 under traffic (${mode} mode): 0 lost, 0 duplicated, 0 out of order, every session still open`, async () => {
    if (!ok) return;
    const gws: Gateway[] = [];
    const dev: ReturnType<typeof connect>[] = [];
    let lb: Balancer | null = null;
    try {
      await within(90_000, 'the drain', async () => {
        const sessions = new Map<string, string[]>();
        for (const node of ['n1', 'n2', 'n3']) {
          const gw = await Gateway.start({
            http: '127.0.0.1:0',
            devices: null,
            ackAfter: 'standby',
            cluster: { servers: nats.urls, node, placement: 'hash', mode, prefix: `hfdrain${mode}`, bucket: `hf_drain_${mode}`, heartbeatMs: 100, misses: 10 },
          });
          gw.on('session', (ch: GatewayChannel) => {
            const seen = sessions.get(ch.deviceId) ?? [];
            seen.push(`${node}:${ch.sessionId}`);
            sessions.set(ch.deviceId, seen);
            ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`)));
          });
          gws.push(gw);
        }
        await waitUntil(5000, () => gws.every((g) => g.clusterStatus()?.live.length === 3));
        lb = await Balancer.start(gws.map((g) => g.http?.address as string));
        const N = 60;
        const PER = 60;
        const got: string[][] = [];
        const closed: string[] = [];
        for (let d = 0; d < N; d++) {
          const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `dr-${d}`, key: null, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
          got.push([]);
          ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
          ch.on('close', (e?: { code?: string }) => closed.push(`dr-${d} ${e?.code}`));
          dev.push(ch);
        }
        let sent = 0;
        const sendUpTo = async (upto: number): Promise<void> => {
          for (; sent < upto; sent++) {
            for (let d = 0; d < N; d++) dev[d].send(Buffer.from(`d${d}-${sent}`));
            await sleep(15);
          }
        };
        await sendUpTo(PER / 3);
        await waitUntil(10_000, () => got.every((g) => g.length >= 5));
        const on2 = gws[1].sessionCount;
        assert.ok(on2 > 0, 'node 2 has sessions to drain');
        const draining = gws[1].drainCluster();
        await sendUpTo((2 * PER) / 3);
        const r = await draining;
        assert.is(r.failed, 0, 'no handoff failed');
        assert.ok(r.moved >= on2, `moved ${r.moved} (node 2 had ${on2})`);
        assert.is(gws[1].sessionCount, 0, 'node 2 holds no session');
        await sendUpTo(PER);
        await waitUntil(30_000, () => got.every((g) => g.length >= PER));
        for (let d = 0; d < N; d++)
          assert.equal(
            got[d],
            Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`),
            `device ${d}: every echo once, in order`,
          );
        assert.equal(closed, [], 'every session still open');
        // A session moved keeps its id: every device's sessions (opened, then adopted) have one id.
        for (const [id, seen] of sessions) assert.is(new Set(seen.map((s) => s.split(':')[1])).size, 1, `${id} kept its session id: ${seen.join(' ')}`);
        assert.is(gws[1].sessionCount, 0, 'nothing placed on the drained node since');
        console.log(`  drain (${mode}): ${r.moved} sessions moved in ${r.ms} ms under traffic`);
      });
    } finally {
      for (const ch of dev) ch.destroy();
      await sleep(50);
      await (lb as Balancer | null)?.close();
      for (const g of gws) await g.close();
    }
  });

test.run();
