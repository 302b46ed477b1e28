/**
 * Draining a cluster node under traffic (3 nodes on a real NATS server, behind the project's
 * round-robin balancer, ackAfter 'standby'): node 2 hands every session to the others (release, the
 * directory claimed by compare-and-set, adopt) while the devices stream both ways through the
 * balancer. Every session stays open with its id, every echo arrives once and in order, node 2 ends
 * with none and no new session is placed on it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Gateway, GatewayChannel } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { allLive, type Devices, deviceKeys, echoDevices, echoNode, stopAll } from './support/cluster-traffic';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { within } from './support/within';

const ok = natsAvailable('cluster-drain.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats();
});
test.after(async () => {
  await nats?.stop();
});

for (const mode of ['relay', 'direct'] as const)
  test(`drain node 2 under traffic (${mode} mode): 0 lost, 0 duplicated, 0 out of order, every session still open`, async () => {
    if (!ok) return;
    const gws: Gateway[] = [];
    let devs: Devices | null = null;
    let lb: Balancer | null = null;
    try {
      await within(90_000, 'the drain', async () => {
        const sessions = new Map<string, string[]>();
        for (const node of ['n1', 'n2', 'n3'])
          gws.push(
            await echoNode(
              { servers: nats.urls, node, placement: 'hash', mode, prefix: `hfdrain${mode}`, bucket: `hf_drain_${mode}`, heartbeatMs: 100, misses: 10 },
              { devices: deviceKeys(60, 'dr-') },
              (ch: GatewayChannel) => {
                const seen = sessions.get(ch.deviceId) ?? [];
                seen.push(`${node}:${ch.sessionId}`);
                sessions.set(ch.deviceId, seen);
              },
            ),
          );
        await allLive(gws, 3);
        lb = await Balancer.start(gws.map((g) => g.http?.address as string));
        // Devices with keys, as in the field: a refusal anyone could have written ends no session.
        const d = echoDevices(60, `http://${lb.address}/v1/link`, 'dr-', { keyed: true });
        devs = d;
        await d.sendUpTo(20);
        await d.echoed(5, 10_000);
        const on2 = gws[1].sessionCount;
        assert.ok(on2 > 0, 'node 2 has sessions to drain');
        const draining = gws[1].drainCluster();
        await d.sendUpTo(40);
        const r = await draining;
        assert.is(r.failed, 0, 'no handoff failed');
        assert.ok(r.moved >= on2, `moved ${r.moved} (node 2 had ${on2})`);
        assert.is(gws[1].sessionCount, 0, 'node 2 holds no session');
        await d.sendUpTo(60);
        await d.echoed(60, 30_000);
        d.check(60);
        // A session moved keeps its id: a device whose session was on node 2 is served elsewhere under
        // that id. (On a loaded machine a device may have opened a second session first, its first
        // welcome late: the later one is the session.)
        for (const [id, seen] of sessions) {
          const on2 = seen.filter((x) => x.startsWith('n2:'));
          if (on2.length === 0) continue;
          const last = seen[seen.length - 1];
          assert.ok(!last.startsWith('n2:') && last.split(':')[1] === on2[on2.length - 1].split(':')[1], `${id} kept its session id: ${seen.join(' ')}`);
        }
        assert.is(gws[1].sessionCount, 0, 'nothing placed on the drained node since');
        console.log(`  drain (${mode}): ${r.moved} sessions moved in ${r.ms} ms under traffic`);
      });
    } finally {
      await stopAll(devs, lb, gws);
    }
  });

test.run();
