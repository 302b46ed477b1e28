/**
 * A cluster of gateways on a cluster of three NATS servers (Debian's nats-server, routes between
 * them, JetStream clustered; the directory's bucket and the replication stream with 3 replicas):
 * one NATS server killed under traffic, the nodes on it reconnect to the others, and every echo
 * arrives once and in order with no session ended and no takeover.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Gateway } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { allLive, type Devices, echoDevices, echoNode, stopAll } from './support/cluster-traffic';
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

/** Starts a node, retrying while JetStream's cluster elects its leaders (a fresh cluster takes seconds). */
async function startNode(node: string, servers: string): Promise<Gateway> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      return await echoNode({ servers, node, placement: 'hash', mode: 'relay', prefix: 'hf3', bucket: 'hf_3', replicas: 3, heartbeatMs: 100, misses: 10 });
    } catch (e) {
      if (Date.now() > until) throw e;
      await sleep(500);
    }
  }
}

test('one of three NATS servers killed under traffic: nothing lost or repeated, no takeover', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  let devs: Devices | null = null;
  let lb: Balancer | null = null;
  try {
    await within(120_000, 'the NATS server loss', async () => {
      // Each node prefers a different server; all know all three.
      const urls = nats.servers.map((s) => s.url);
      for (let i = 0; i < 3; i++) gws.push(await startNode(`n${i + 1}`, [urls[i], ...urls.filter((_, j) => j !== i)].join(',')));
      await allLive(gws, 3);
      lb = await Balancer.start(gws.map((g) => g.http?.address as string));
      const d = echoDevices(15, `http://${lb.address}/v1/link`, 't-');
      devs = d;
      await d.sendUpTo(30);
      await d.echoed(5, 10_000);
      const t0 = performance.now();
      await nats.servers[0].kill('SIGKILL');
      await d.sendUpTo(60);
      await d.echoed(60, 60_000);
      d.check(60);
      assert.equal(
        gws.map((g) => g.clusterStatus()?.takeovers),
        [0, 0, 0],
        'nobody took over',
      );
      console.log(`  one NATS server of three killed: every device's echoes complete ${(performance.now() - t0).toFixed(0)} ms after`);
    });
  } finally {
    await stopAll(devs, lb, gws);
  }
});

test.run();
