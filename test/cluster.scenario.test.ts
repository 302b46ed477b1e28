/**
 * Three gateway nodes in a cluster on a real NATS server (Debian's nats-server, started here),
 * behind the project's round-robin TCP balancer: devices with labels are placed by the label policy
 * on the node of their site, whatever node their first request reached; every message arrives once,
 * in order, both ways. In 'relay' mode the devices only ever reach the balancer, and the nodes relay
 * each request of a session they do not serve to the one that does; in 'direct' mode the owner's
 * moved item brings each device to it, and its requests stop being relayed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { sleep, within } from './support/within';

const ok = natsAvailable('cluster.scenario');
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

function relayedOf(gw: Gateway): number {
  const m = /^holdfast_gateway_relayed_requests_total (\d+)$/m.exec(gw.metricsText());
  return m === null ? -1 : Number(m[1]);
}

for (const mode of ['relay', 'direct'] as const)
  test(`${mode} mode: 300 devices placed by label through a balancer, every echo once and in order`, async () => {
    if (!ok) return;
    const gws: Gateway[] = [];
    const dev: ReturnType<typeof connect>[] = [];
    let lb: Balancer | null = null;
    try {
      await within(60_000, `the ${mode} cluster`, async () => {
        const opened = new Map<string, string>();
        for (const n of [1, 2, 3]) {
          const node = `n${n}`;
          const gw = await Gateway.start({
            http: '127.0.0.1:0',
            devices: null,
            cluster: { servers: nats.urls, node, labels: { site: `s${n}` }, placement: 'label', heartbeatMs: 100, misses: 10, mode, prefix: `hf${mode}`, bucket: `hf_${mode}` },
          });
          gw.on('session', (ch: GatewayChannel) => {
            opened.set(ch.deviceId, node);
            ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`)));
          });
          gws.push(gw);
        }
        await waitUntil(3000, () => gws.every((g) => g.clusterStatus()?.live.length === 3));
        assert.ok(
          gws.every((g) => g.clusterStatus()?.live.length === 3),
          'every node sees three',
        );
        lb = await Balancer.start(gws.map((g) => g.http?.address as string));
        const N = 300;
        const PER = 12;
        const got: string[][] = [];
        const moves: string[] = [];
        for (let d = 0; d < N; d++) {
          const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `dev-${d}`, key: null, labels: { site: `s${1 + (d % 3)}` }, link: { deadAfterMs: 20_000 } });
          got.push([]);
          ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
          ch.on('gateway', (to: string) => moves.push(`dev-${d}>${to}`));
          dev.push(ch);
        }
        for (let i = 0; i < PER; i++) {
          for (let d = 0; d < N; d++) dev[d].send(Buffer.from(`d${d}-${i}`));
          await sleep(50);
        }
        await waitUntil(30_000, () => got.every((g) => g.length >= PER));
        for (let d = 0; d < N; d++) {
          assert.equal(
            got[d],
            Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`),
            `device ${d}: every echo once, in order`,
          );
          assert.is(opened.get(`dev-${d}`), `n${1 + (d % 3)}`, `dev-${d} is served on the node of its site`);
        }
        const relayed = gws.map(relayedOf);
        assert.ok(relayed.reduce((a, b) => a + b, 0) > 0, `requests were relayed: ${relayed.join(' ')}`);
        if (mode === 'relay') assert.is(moves.length, 0, 'relay mode: the devices stay with the balancer');
        else {
          assert.ok(moves.length > 0 && moves.length <= N, `direct mode: devices moved to their owners (${moves.length})`);
          // Once moved, a device's requests go to its owner: no more relaying.
          const before = gws.map(relayedOf);
          for (let d = 0; d < N; d++) dev[d].send(Buffer.from(`d${d}-${PER}`));
          await waitUntil(10_000, () => got.every((g) => g.length >= PER + 1));
          const after = gws.map(relayedOf);
          const more = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
          // Counted as relayed answers are written: polls relayed before a move are still answered
          // (at the owner's next message or hold limit) after it.
          assert.ok(more < N / 4, `after the moves few requests are relayed (${more} of ${N} devices)`);
        }
      });
    } finally {
      for (const ch of dev) ch.destroy();
      await sleep(50);
      await (lb as Balancer | null)?.close();
      for (const g of gws) await g.close();
    }
  });

test.run();
