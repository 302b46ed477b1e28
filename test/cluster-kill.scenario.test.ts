/**
 * kill -9 of a cluster node under two-way traffic (3 nodes on a real NATS server, behind the
 * project's round-robin balancer, ackAfter 'standby': every answer waits until its session's state
 * is in JetStream): the dead node's heir fences its store subject, restores its sessions, and the
 * devices carry on through the balancer. Every echo arrives once and in order; no device's session
 * ends. A node paused (SIGSTOP) past the heartbeat window: its heir takes its sessions over, and the
 * node, resumed, finds its store fenced, drops them without a word and joins again as a new
 * incarnation; nothing lost or repeated. Then the NATS server itself restarted under traffic: answers
 * wait while it is down, nothing is lost or repeated once it is back, and no node takes another's
 * sessions (the silence was NATS's).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Gateway } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
import { allLive, type Devices, echoDevices, echoNode, stopAll, waitUntil } from './support/cluster-traffic';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { sleep, within } from './support/within';

const ok = natsAvailable('cluster-kill.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats();
});
test.after(async () => {
  await nats?.stop();
});

function startChild(o: Record<string, unknown>): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, 'support/cluster-gateway-proc.ts'), JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m !== null) resolve({ child, address: m[1] });
    });
    child.once('exit', (c) => reject(new Error(`node process exited (${c}) before it was ready`)));
  });
}

/**
 * n1 and n2 in this process, n3 a child process (the one the test kills or pauses), 30 devices
 * through the balancer; `disrupt(n3)` runs after the first half of the traffic.
 */
async function withChildNode(prefix: string, disrupt: (n3: ChildProcess, gws: Gateway[], devs: Devices) => Promise<void>, after: (gws: Gateway[]) => void): Promise<void> {
  const gws: Gateway[] = [];
  let devs: Devices | null = null;
  let lb: Balancer | null = null;
  let child: ChildProcess | null = null;
  try {
    await within(90_000, prefix, async () => {
      const common = { servers: nats.urls, mode: 'relay' as const, prefix, bucket: `${prefix}_s`, heartbeatMs: 100, misses: 5 };
      const v = await startChild({ ...common, node: 'n3' });
      child = v.child;
      for (const node of ['n1', 'n2']) gws.push(await echoNode({ ...common, node, placement: 'hash' }));
      await allLive(gws, 3);
      lb = await Balancer.start([...gws.map((g) => g.http?.address as string), v.address]);
      const d = echoDevices(30, `http://${lb.address}/v1/link`, `${prefix}-`);
      devs = d;
      await d.sendUpTo(20);
      await d.echoed(5, 10_000);
      await disrupt(v.child, gws, d);
      await d.sendUpTo(60);
      await d.echoed(60, 40_000);
      d.check(60);
      after(gws);
    });
  } finally {
    (child as ChildProcess | null)?.kill('SIGKILL');
    await stopAll(devs, lb, gws);
  }
}

test('kill -9 of a node under traffic: its sessions go on at its heir, every echo once and in order', async () => {
  if (!ok) return;
  let t0 = 0;
  await withChildNode(
    'hfkill',
    async (n3) => {
      t0 = performance.now();
      n3.kill('SIGKILL');
    },
    (gws) => {
      const heirs = gws.map((g) => g.clusterStatus()?.takeovers ?? 0);
      assert.is(
        heirs.reduce((a, b) => a + b, 0),
        1,
        `one heir took the dead node's sessions over (${heirs.join(' ')})`,
      );
      console.log(`  kill -9 of n3: every device's echoes complete ${(performance.now() - t0).toFixed(0)} ms after the kill; takeovers ${heirs.join(' ')}`);
    },
  );
});

test('a node paused past the heartbeat window (SIGSTOP): its heir takes its sessions, it is fenced, drops them and rejoins; every echo once and in order', async () => {
  if (!ok) return;
  await withChildNode(
    'hfstop',
    async (n3, gws, d) => {
      process.kill(n3.pid as number, 'SIGSTOP');
      await d.sendUpTo(40);
      await waitUntil(5000, () => gws.some((g) => (g.clusterStatus()?.takeovers ?? 0) > 0));
      process.kill(n3.pid as number, 'SIGCONT');
      // Back, it finds its store subject fenced, drops its sessions and joins again, empty.
      await allLive(gws, 3, 10_000);
      assert.equal(d.closed, [], 'no session ended');
    },
    () => {},
  );
});

test('the NATS server restarted under traffic: nothing lost or repeated once it is back, no takeover', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  let devs: Devices | null = null;
  let lb: Balancer | null = null;
  try {
    await within(90_000, 'the NATS restart', async () => {
      const common = { servers: nats.urls, mode: 'relay' as const, prefix: 'hfnats', bucket: 'hf_nats', heartbeatMs: 100, misses: 5 };
      for (const node of ['n1', 'n2', 'n3']) gws.push(await echoNode({ ...common, node, placement: 'hash' }));
      await allLive(gws, 3);
      lb = await Balancer.start(gws.map((g) => g.http?.address as string));
      const d = echoDevices(15, `http://${lb.address}/v1/link`, 'nd-');
      devs = d;
      await d.sendUpTo(20);
      await d.echoed(5, 10_000);
      const t0 = performance.now();
      await nats.servers[0].kill('SIGTERM');
      await d.sendUpTo(40);
      await sleep(500);
      await nats.servers[0].start();
      await d.sendUpTo(60);
      await d.echoed(60, 40_000);
      d.check(60);
      assert.equal(
        gws.map((g) => g.clusterStatus()?.takeovers),
        [0, 0, 0],
        'nobody took over',
      );
      console.log(`  NATS restarted: every device's echoes complete ${(performance.now() - t0).toFixed(0)} ms after the stop`);
    });
  } finally {
    await stopAll(devs, lb, gws);
  }
});

test.run();
