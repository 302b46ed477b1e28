/**
 * Direct TCP in a cluster (targets/host/gateway/tcp-front.ts routing, cluster/pipes.ts): three nodes
 * behind round-robin balancers, one for HTTP and one for TCP, on a real NATS server. A device's TCP
 * connection may reach any node; the node reads its first frame, and when the session is another
 * node's (by the label placement for a hello, by the session index after), hands the live connection
 * to that node through a pipe. Every session is served on the node of its site, every echo comes once
 * and in order, and a connection that reconnects through the balancer reaches its session again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Gateway, GatewayChannel } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { allLive, type Devices, deviceKeys, echoDevices, echoNode, stopAll } from './support/cluster-traffic';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { within } from './support/within';

const ok = natsAvailable('cluster-tcp.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats();
});
test.after(async () => {
  await nats?.stop();
});

/** Device d's site: three devices in a row share one, so the balancer's turn (d % 3) matches it for one in three. */
const site = (d: number): number => 1 + (Math.floor(d / 3) % 3);

function counter(gw: Gateway, name: string): number {
  const m = new RegExp(`^holdfast_gateway_${name} (\\d+)$`, 'm').exec(gw.metricsText());
  return m === null ? -1 : Number(m[1]);
}

test('90 devices on direct TCP through a balancer: each served on its site node, every echo once and in order, across reconnects', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const lbs: Balancer[] = [];
  let devs: Devices | null = null;
  try {
    await within(90_000, 'the tcp cluster', async () => {
      const N = 90;
      const served = new Map<string, string[]>();
      const transports = new Map<string, string>();
      for (const n of [1, 2, 3]) {
        const node = `n${n}`;
        gws.push(
          await echoNode(
            { servers: nats.urls, node, labels: { site: `s${n}` }, placement: 'label', heartbeatMs: 100, misses: 10, mode: 'relay', prefix: 'hftcp', bucket: 'hf_tcp' },
            { tcp: '127.0.0.1:0', devices: deviceKeys(N, 'tcp-') },
            (ch: GatewayChannel) => {
              served.set(ch.deviceId, [...(served.get(ch.deviceId) ?? []), node]);
              transports.set(ch.deviceId, ch.transport);
            },
          ),
        );
      }
      await allLive(gws, 3);
      const lbHttp = await Balancer.start(gws.map((g) => g.http?.address as string));
      const lbTcp = await Balancer.start(gws.map((g) => g.tcp?.address as string));
      lbs.push(lbHttp, lbTcp);
      devs = echoDevices(N, `http://${lbHttp.address}/v1/link`, 'tcp-', { keyed: true, tcp: lbTcp.address, labels: (d) => ({ site: `s${site(d)}` }), gapMs: 20 });
      await devs.sendUpTo(20);
      await devs.echoed(20, 30_000);
      assert.ok(
        devs.got.every((g) => g.length === 20),
        `every device got its 20 echoes (${devs.got.map((g) => g.length)})`,
      );
      assert.ok(
        [...transports.values()].every((t) => t === 'tcp'),
        'every session on direct TCP',
      );
      // A device whose TCP hello is slow may say hello on HTTP too (a new session replaces the first): on the same node.
      for (let d = 0; d < N; d++) assert.equal([...new Set(served.get(`tcp-${d}`))], [`n${site(d)}`], `tcp-${d} served on its site's node only`);
      const before = [...served.values()].reduce((a, b) => a + b.length, 0);
      const relayed = gws.map((g) => counter(g, 'relayed_tcp_connections_total'));
      assert.ok(relayed.reduce((a, b) => a + b, 0) >= N / 2, `about two in three connections reached another node first and were handed on (${relayed})`);
      assert.ok(
        gws.every((g) => counter(g, 'relayed_requests_total') <= N),
        'the traffic went on TCP, not relayed HTTP',
      );
      // Every connection cut: each device reconnects through the balancer, to any node, and its
      // session (resumed by id) is handed to its node again.
      lbTcp.cutAll();
      await devs.sendUpTo(40);
      await devs.echoed(40, 30_000);
      devs.check(40);
      const again = gws.map((g) => counter(g, 'relayed_tcp_connections_total')).reduce((a, b) => a + b, 0) - relayed.reduce((a, b) => a + b, 0);
      assert.ok(again >= N / 2, `the new connections were handed to their sessions' nodes again (${again})`);
      assert.is(
        [...served.values()].reduce((a, b) => a + b.length, 0),
        before,
        'every session resumed where it was: no new one',
      );
    });
  } finally {
    await stopAll(devs, null, gws);
    for (const lb of lbs) await lb.close();
  }
});

test.run();
