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
import { allLive, type Devices, deviceKeys, echoDevices, echoNode, stopAll, waitUntil } from './support/cluster-traffic';
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

/**
 * Three nodes of one site each (label placement) on NATS, in `mode`, pushed on `gws`, behind a
 * round-robin balancer for HTTP and one for TCP (pushed on `lbs` in that order). `served`: device ->
 * the nodes its sessions opened on; `transports`: device -> its last session's transport when it
 * opened; `channels`: device -> its last session's channel.
 */
async function siteNodes(mode: 'relay' | 'direct', prefix: string, gws: Gateway[], lbs: Balancer[]) {
  const served = new Map<string, string[]>();
  const transports = new Map<string, string>();
  const channels = new Map<string, GatewayChannel>();
  for (const n of [1, 2, 3]) {
    const node = `n${n}`;
    gws.push(
      await echoNode(
        { servers: nats.urls, node, labels: { site: `s${n}` }, placement: 'label', heartbeatMs: 100, misses: 10, mode, prefix, bucket: `${prefix}_sessions` },
        { tcp: '127.0.0.1:0', devices: deviceKeys(90, 'tcp-') },
        (ch: GatewayChannel) => {
          served.set(ch.deviceId, [...(served.get(ch.deviceId) ?? []), node]);
          transports.set(ch.deviceId, ch.transport);
          channels.set(ch.deviceId, ch);
        },
      ),
    );
  }
  await allLive(gws, 3);
  const lbHttp = await Balancer.start(gws.map((g) => g.http?.address as string));
  const lbTcp = await Balancer.start(gws.map((g) => g.tcp?.address as string));
  lbs.push(lbHttp, lbTcp);
  return { served, transports, channels, lbTcp };
}

test('90 devices on direct TCP through a balancer: each served on its site node, every echo once and in order, across reconnects', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const lbs: Balancer[] = [];
  let devs: Devices | null = null;
  try {
    await within(90_000, 'the tcp cluster', async () => {
      const N = 90;
      const { served, transports, lbTcp } = await siteNodes('relay', 'hftcp', gws, lbs);
      devs = echoDevices(N, `http://${lbs[0].address}/v1/link`, 'tcp-', { keyed: true, tcp: lbTcp.address, labels: (d) => ({ site: `s${site(d)}` }), gapMs: 20 });
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
      // Meanwhile each device is on HTTP: its ladder tries TCP again after its reconnect time (1 s).
      lbTcp.cutAll();
      await devs.sendUpTo(40);
      await devs.echoed(40, 30_000);
      const again = (): number => gws.map((g) => counter(g, 'relayed_tcp_connections_total')).reduce((a, b) => a + b, 0) - relayed.reduce((a, b) => a + b, 0);
      await waitUntil(20_000, () => again() >= N / 2);
      assert.ok(again() >= N / 2, `the new connections were handed to their sessions' nodes again (${again()})`);
      await devs.sendUpTo(60);
      await devs.echoed(60, 30_000);
      devs.check(60);
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

test('direct mode: a session handed to another node while its device is on TCP: the device is told where it went and connects there itself, every echo once and in order', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const lbs: Balancer[] = [];
  let devs: Devices | null = null;
  try {
    await within(90_000, 'the tcp cluster in direct mode', async () => {
      const N = 45;
      const { served, channels, lbTcp } = await siteNodes('direct', 'hftcpd', gws, lbs);
      devs = echoDevices(N, `http://${lbs[0].address}/v1/link`, 'tcp-', { keyed: true, tcp: lbTcp.address, labels: (d) => ({ site: `s${site(d)}` }), gapMs: 20 });
      const d = devs as Devices;
      const url = (node: string): string => gws[Number(node.slice(1)) - 1].http?.url as string;
      /** The node serving device k's session now (its last session event). */
      const at = (k: number): string => (served.get(`tcp-${k}`) ?? []).at(-1) ?? '';
      await d.sendUpTo(10);
      await d.echoed(10, 30_000);
      // Each device ends up talking to its site's node itself (told by the node, or there by the balancer's turn).
      await waitUntil(20_000, () => d.gateways.every((g, k) => (g === '' ? site(k) === 1 + (k % 3) : g === url(`n${site(k)}`))));
      // Node 2 drains: its sessions are handed to nodes 1 and 3 while their devices are on TCP to it.
      const mine = Array.from({ length: N }, (_, k) => k).filter((k) => at(k) === 'n2');
      assert.ok(mine.length >= 10, `node 2 serves its site's devices (${mine.length})`);
      const r = await gws[1].drainCluster();
      assert.is(r.failed, 0, 'no handoff failed');
      assert.ok(
        mine.every((k) => at(k) !== 'n2'),
        'every session of node 2 went to another node',
      );
      const pipedIn = (): number[] => gws.map((g) => counter(g, 'tcp_piped_connections'));
      const onTcp = (): boolean => mine.every((k) => channels.get(`tcp-${k}`)?.transport === 'tcp');
      // Each device reconnects through the balancer; one that reached another node than its session's
      // is piped there, told (a moved item on its frames) and connects to its session's node itself.
      await waitUntil(20_000, () => onTcp() && pipedIn().every((n) => n === 0));
      assert.equal(pipedIn(), [0, 0, 0], 'no connection served through a pipe');
      assert.ok(onTcp(), `the handed sessions on direct TCP (${mine.map((k) => channels.get(`tcp-${k}`)?.transport)})`);
      assert.equal(
        mine.filter((k) => d.gateways[k] !== '' && d.gateways[k] !== url(at(k))).map((k) => `${k} ${d.gateways[k]} ${at(k)}`),
        [],
        'a device that was told went to its session node (one never told reached it through the balancer)',
      );
      await d.sendUpTo(30);
      await d.echoed(30, 30_000);
      d.check(30);
      assert.is(gws[1].sessionCount, 0, 'node 2 serves none');
    });
  } finally {
    await stopAll(devs, null, gws);
    for (const lb of lbs) await lb.close();
  }
});

test.run();
