/**
 * A node joining a cluster under traffic takes its share (a real NATS server, hash placement, keyed
 * devices behind the project's round-robin balancer over the first two nodes, ackAfter 'standby'):
 * 60 devices stream both ways through nodes 1 and 2, node 3 joins, and nodes 1 and 2 hand it the
 * sessions hash placement puts on it now (release, the directory claimed by compare-and-set, adopt),
 * at most `perSecond` a second each. Node 3 ends up serving exactly those, every session keeps its
 * id, every echo arrives once and in order, no session ends. Then rebalances cut short: node 1
 * starts draining while it hands sessions to a node that joined, and the drain takes over; the
 * joined node leaves, and what was not begun stays.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Gateway, GatewayChannel } from '../targets/host/gateway/gateway';
import type { ClusterOptions } from '../targets/host/gateway/cluster/cluster-options';
import { placeOn } from '../targets/host/gateway/placement/policies';
import type { Log } from '../hal/log';
import { Balancer } from './support/balancer';
import { allLive, type Devices, deviceKeys, echoDevices, echoNode, stopAll, waitUntil } from './support/cluster-traffic';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { within } from './support/within';

const ok = natsAvailable('cluster-rebalance.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats();
});
test.after(async () => {
  await nats?.stop();
});

interface Line {
  at: number;
  level: string;
  event: string;
  fields: Record<string, unknown>;
}

/** A log that keeps every line (with the time it was written), and prints warnings and errors while `loud`. */
function keptLog(node: string, lines: Line[], loud: () => boolean): Log {
  const put =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}): void => {
      lines.push({ at: performance.now(), level, event, fields });
      if (loud() && (level === 'warn' || level === 'error')) console.log(`  [${node} ${level}] ${event} ${JSON.stringify(fields)}`);
    };
  return { debug: put('debug'), info: put('info'), warn: put('warn'), error: put('error') };
}

const DEVICES = 60;

/**
 * Nodes of one scenario: the same cluster options but the name, each with its log and its sessions
 * noted. Their warnings are printed until `quiet()` (the teardown: nodes stopping one by one warn of
 * each other).
 */
function nodes(prefix: string, rebalance: ClusterOptions['rebalance'], mode: 'relay' | 'direct') {
  const logs = new Map<string, Line[]>();
  let loud = true;
  /** device -> "node:session" of each session it had, in order. */
  const sessions = new Map<string, string[]>();
  const start = async (node: string): Promise<Gateway> => {
    const lines: Line[] = [];
    logs.set(node, lines);
    return echoNode(
      { servers: nats.urls, node, placement: 'hash', mode, prefix, bucket: `${prefix}_sessions`, heartbeatMs: 100, misses: 10, rebalance },
      { devices: deviceKeys(DEVICES, `${prefix}-`), log: keptLog(node, lines, () => loud) },
      (ch: GatewayChannel) => {
        const seen = sessions.get(ch.deviceId) ?? [];
        seen.push(`${node}:${ch.sessionId}`);
        sessions.set(ch.deviceId, seen);
      },
    );
  };
  const lines = (node: string, event: string): Line[] => (logs.get(node) ?? []).filter((l) => l.event === event);
  return {
    start,
    sessions,
    lines,
    quiet: () => {
      loud = false;
    },
  };
}

/**
 * A session moved keeps its id: wherever a device's sessions go from one node to another, the id is
 * the one it had. (On a loaded machine a device may open a second session on the same node first,
 * its first welcome late: the later one is the session.)
 */
function keptIds(sessions: Map<string, string[]>): void {
  for (const [id, seen] of sessions)
    for (let i = 1; i < seen.length; i++) {
      const [from, sid] = seen[i - 1].split(':');
      const [to, now] = seen[i].split(':');
      if (from !== to) assert.is(now, sid, `${id} kept its session id: ${seen.join(' ')}`);
    }
}

for (const mode of ['relay', 'direct'] as const)
  test(`a 3rd node joins under traffic (${mode} mode): it takes its share, rate-limited; 0 lost, 0 duplicated, 0 out of order`, async () => {
    if (!ok) return;
    const perSecond = 8;
    const prefix = `hfrb${mode}`;
    const gws: Gateway[] = [];
    let devs: Devices | null = null;
    let lb: Balancer | null = null;
    const n = nodes(prefix, { perSecond, delayMs: 500 }, mode);
    try {
      await within(50_000, 'the rebalance', async () => {
        gws.push(await n.start('n1'), await n.start('n2'));
        await allLive(gws, 2);
        lb = await Balancer.start(gws.map((g) => g.http?.address as string));
        const d = echoDevices(DEVICES, `http://${lb.address}/v1/link`, `${prefix}-`, { keyed: true });
        devs = d;
        await d.sendUpTo(20);
        await d.echoed(5, 15_000);
        await waitUntil(10_000, () => gws[0].sessionCount + gws[1].sessionCount === DEVICES);
        assert.is(gws[0].sessionCount + gws[1].sessionCount, DEVICES, 'every device has its session on node 1 or 2');
        // Node 3's share: the devices hash placement puts on it among the three.
        const share = Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`).filter(
          (id) =>
            placeOn({ policy: 'hash' }, { device: id }, [
              { name: 'n1', sessions: 0 },
              { name: 'n2', sessions: 0 },
              { name: 'n3', sessions: 0 },
            ]) === 'n3',
        );
        assert.ok(share.length >= DEVICES * 0.2, `node 3's share is at least 20%: ${share.length}`);
        const traffic = d.sendUpTo(45);
        gws.push(await n.start('n3'));
        await allLive(gws, 3);
        await waitUntil(20_000, () => n.lines('n1', 'rebalanced').length + n.lines('n2', 'rebalanced').length === 2);
        await traffic;
        const done = [...n.lines('n1', 'rebalanced'), ...n.lines('n2', 'rebalanced')].map((l) => l.fields);
        assert.is(done.length, 2, 'nodes 1 and 2 each rebalanced once');
        for (const f of done) {
          assert.is(f.to, 'n3');
          assert.is(f.failed, 0, `no handoff failed: ${JSON.stringify(f)}`);
          assert.is(f.left, 0, `none left: ${JSON.stringify(f)}`);
        }
        assert.is(
          done.reduce((s, f) => s + (f.moved as number), 0),
          share.length,
          'exactly node 3 share moved',
        );
        assert.is(gws[2].sessionCount, share.length, 'node 3 serves its share');
        assert.is(gws[0].sessionCount + gws[1].sessionCount, DEVICES - share.length, 'nodes 1 and 2 the rest');
        for (const id of share) assert.ok(n.sessions.get(id)?.at(-1)?.startsWith('n3:'), `${id} is served by node 3: ${n.sessions.get(id)?.join(' ')}`);
        // The rate: the k-th handoff of a node begins (k - 1) / perSecond after its first at the
        // earliest, so its last release comes at least that long after its 'rebalancing' line (its
        // log's own times; a release's own time varies, so releases are not compared with each other).
        for (const node of ['n1', 'n2']) {
          const began = n.lines(node, 'rebalancing')[0].at;
          const released = n.lines(node, 'session released').map((l) => l.at);
          const moved = n.lines(node, 'rebalanced')[0].fields.moved as number;
          assert.is(released.length, moved, `${node}: one release per session moved`);
          const span = released[released.length - 1] - began;
          const least = ((moved - 1) * 1000) / perSecond;
          assert.ok(span >= least - 5, `${node}: ${moved} handoffs, the last released ${span.toFixed(0)} ms after the start, at least ${least} ms at ${perSecond}/s`);
          const ms = n.lines(node, 'rebalanced')[0].fields.ms as number;
          assert.ok(ms < least + 8000, `${node}: the handoffs kept up with the rate: ${ms} ms for ${moved}`);
          console.log(`  rebalance (${mode}) ${node}: ${moved} sessions to n3 in ${ms} ms (${perSecond}/s: at least ${least} ms)`);
        }
        await d.sendUpTo(60);
        await d.echoed(60, 30_000);
        d.check(60);
        keptIds(n.sessions);
        // A node that joined moves nothing twice: nothing more went anywhere since.
        assert.is(gws[2].sessionCount, share.length, 'node 3 still serves its share');
      });
    } finally {
      n.quiet();
      await stopAll(devs, lb, gws);
    }
  });

/**
 * Two nodes, DEVICES keyed devices through a balancer (`first` messages each sent), then node 3
 * joins: returns once node 1's rebalance to it picked at least 4 and released 2. `keep` gets the
 * devices and the balancer as soon as they exist (the caller's teardown); returns the devices and
 * how many node 1 picked.
 */
async function rebalanceUnderWay(n: ReturnType<typeof nodes>, gws: Gateway[], prefix: string, first: number, keep: (d: Devices, lb: Balancer) => void): Promise<{ d: Devices; picked: number }> {
  gws.push(await n.start('n1'), await n.start('n2'));
  await allLive(gws, 2);
  const lb = await Balancer.start(gws.map((g) => g.http?.address as string));
  const d = echoDevices(DEVICES, `http://${lb.address}/v1/link`, `${prefix}-`, { keyed: true });
  keep(d, lb);
  await d.sendUpTo(first);
  await d.echoed(3, 15_000);
  await waitUntil(10_000, () => gws[0].sessionCount + gws[1].sessionCount === DEVICES);
  gws.push(await n.start('n3'));
  await allLive(gws, 3);
  await waitUntil(10_000, () => n.lines('n1', 'rebalancing').length === 1 && n.lines('n1', 'session released').length >= 2);
  const picked = n.lines('n1', 'rebalancing')[0]?.fields.sessions as number;
  assert.ok(picked >= 4, `node 1 picked ${picked} for node 3`);
  return { d, picked };
}

test('a rebalance stops when its node starts draining; the drain hands everything on, 0 lost', async () => {
  if (!ok) return;
  const prefix = 'hfrbdrain';
  const gws: Gateway[] = [];
  let devs: Devices | null = null;
  let lb: Balancer | null = null;
  // Slow on purpose: the drain comes while the rebalance has most of its handoffs to go.
  const n = nodes(prefix, { perSecond: 2, delayMs: 300 }, 'relay');
  try {
    await within(50_000, 'the rebalance cut short', async () => {
      const { d } = await rebalanceUnderWay(n, gws, prefix, 10, (x, y) => {
        devs = x;
        lb = y;
      });
      const draining = gws[0].drainCluster();
      await d.sendUpTo(30);
      const r = await draining;
      const stopped = n.lines('n1', 'rebalanced')[0]?.fields;
      assert.is(stopped?.stopped, 'draining', `node 1's rebalance stopped for the drain: ${JSON.stringify(stopped)}`);
      assert.ok((stopped?.left as number) > 0, `it had handoffs to go: ${JSON.stringify(stopped)}`);
      assert.is(r.failed, 0, 'no handoff of the drain failed');
      assert.is(gws[0].sessionCount, 0, 'node 1 holds no session');
      await d.sendUpTo(40);
      await d.echoed(40, 30_000);
      d.check(40);
      keptIds(n.sessions);
    });
  } finally {
    n.quiet();
    await stopAll(devs, lb, gws);
  }
});

test('a rebalance stops when the joined node leaves: what it had not begun stays', async () => {
  if (!ok) return;
  const prefix = 'hfrbleave';
  const gws: Gateway[] = [];
  let devs: Devices | null = null;
  let lb: Balancer | null = null;
  const n = nodes(prefix, { perSecond: 2, delayMs: 300 }, 'relay');
  try {
    await within(40_000, 'the rebalance to a node that left', async () => {
      const { picked } = await rebalanceUnderWay(n, gws, prefix, 3, (x, y) => {
        devs = x;
        lb = y;
      });
      // Node 3 leaves (what it was handed ends there, the devices carry on elsewhere): what is checked
      // here is node 1's rebalance, not the traffic.
      n.quiet();
      await gws[2].close();
      await waitUntil(10_000, () => n.lines('n1', 'rebalanced').length === 1);
      const f = n.lines('n1', 'rebalanced')[0]?.fields;
      assert.is(f?.stopped, 'joined node gone', `node 1's rebalance stopped: ${JSON.stringify(f)}`);
      assert.ok((f?.left as number) > 0, `it had handoffs to go: ${JSON.stringify(f)}`);
      assert.is((f.moved as number) + (f.failed as number) + (f.skipped as number) + (f.left as number), picked, `every picked session accounted for: ${JSON.stringify(f)}`);
      assert.ok(n.lines('n1', 'session released').length <= picked - (f.left as number), 'nothing released after the stop');
    });
  } finally {
    n.quiet();
    await stopAll(devs, lb, gws);
  }
});

test.run();
