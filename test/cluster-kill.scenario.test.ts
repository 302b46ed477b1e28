/**
 * kill -9 of a cluster node under two-way traffic (3 nodes on a real NATS server, behind the
 * project's round-robin balancer, ackAfter 'standby': every answer waits until its session's state
 * is in JetStream): the dead node's heir fences its store subject, restores its sessions, and the
 * devices carry on through the balancer. Every echo arrives once and in order; no device's session
 * ends. A node paused (SIGSTOP) past the heartbeat window: its heir takes its sessions over, and the
 * node, resumed, finds its store fenced, drops them without a word and joins again as a new
 * incarnation; nothing lost or repeated. Then the NATS server itself restarted under traffic: answers wait while it is down, nothing
 * is lost or repeated once it is back, and no node takes another's sessions (the silence was NATS's).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { Balancer } from './support/balancer';
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

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

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

test('kill -9 of a node under traffic: its sessions go on at its heir, every echo once and in order', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const dev: ReturnType<typeof connect>[] = [];
  let lb: Balancer | null = null;
  let victim: ChildProcess | null = null;
  try {
    await within(90_000, 'the kill', async () => {
      const common = { servers: nats.urls, mode: 'relay' as const, prefix: 'hfkill', bucket: 'hf_kill', heartbeatMs: 100, misses: 5 };
      const v = await startChild({ ...common, node: 'n3' });
      victim = v.child;
      for (const node of ['n1', 'n2']) {
        const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null, ackAfter: 'standby', cluster: { ...common, node, placement: 'hash' } });
        gw.on('session', (ch: GatewayChannel) => ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`))));
        gws.push(gw);
      }
      await waitUntil(5000, () => gws.every((g) => g.clusterStatus()?.live.length === 3));
      assert.ok(
        gws.every((g) => g.clusterStatus()?.live.length === 3),
        'three nodes',
      );
      lb = await Balancer.start([...gws.map((g) => g.http?.address as string), v.address]);
      const N = 30;
      const PER = 60;
      const got: string[][] = [];
      const closed: string[] = [];
      for (let d = 0; d < N; d++) {
        const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `dev-${d}`, key: null, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
        got.push([]);
        ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
        ch.on('close', () => closed.push(`dev-${d}`));
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
      await waitUntil(10_000, () => got.every((g) => g.length >= 10));
      const t0 = performance.now();
      (victim as ChildProcess).kill('SIGKILL');
      await sendUpTo(PER);
      await waitUntil(40_000, () => got.every((g) => g.length >= PER));
      const ms = performance.now() - t0;
      for (let d = 0; d < N; d++)
        assert.equal(
          got[d],
          Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`),
          `device ${d}: every echo once, in order`,
        );
      assert.equal(closed, [], 'no session ended');
      const heirs = gws.map((g) => g.clusterStatus()?.takeovers ?? 0);
      assert.is(
        heirs.reduce((a, b) => a + b, 0),
        1,
        `one heir took the dead node's sessions over (${heirs.join(' ')})`,
      );
      console.log(`  kill -9 of n3: every device's echoes complete ${ms.toFixed(0)} ms after the kill; takeovers ${heirs.join(' ')}`);
    });
  } finally {
    (victim as ChildProcess | null)?.kill('SIGKILL');
    for (const ch of dev) ch.destroy();
    await sleep(50);
    await (lb as Balancer | null)?.close();
    for (const g of gws) await g.close();
  }
});

test('a node paused past the heartbeat window (SIGSTOP): its heir takes its sessions, it is fenced, drops them and rejoins; every echo once and in order', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const dev: ReturnType<typeof connect>[] = [];
  let lb: Balancer | null = null;
  let paused: ChildProcess | null = null;
  try {
    await within(90_000, 'the pause', async () => {
      const common = { servers: nats.urls, mode: 'relay' as const, prefix: 'hfstop', bucket: 'hf_stop', heartbeatMs: 100, misses: 5 };
      const v = await startChild({ ...common, node: 'n3' });
      paused = v.child;
      for (const node of ['n1', 'n2']) {
        const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null, ackAfter: 'standby', cluster: { ...common, node, placement: 'hash' } });
        gw.on('session', (ch: GatewayChannel) => ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`))));
        gws.push(gw);
      }
      await waitUntil(5000, () => gws.every((g) => g.clusterStatus()?.live.length === 3));
      lb = await Balancer.start([...gws.map((g) => g.http?.address as string), v.address]);
      const N = 30;
      const PER = 60;
      const got: string[][] = [];
      const closed: string[] = [];
      for (let d = 0; d < N; d++) {
        const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `p-${d}`, key: null, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
        got.push([]);
        ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
        ch.on('close', (e?: { code?: string; message?: string }) => closed.push(`p-${d} ${e?.code} ${e?.message}`));
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
      const child = paused as ChildProcess;
      process.kill(child.pid as number, 'SIGSTOP');
      await sendUpTo((2 * PER) / 3);
      await waitUntil(5000, () => gws.some((g) => (g.clusterStatus()?.takeovers ?? 0) > 0));
      process.kill(child.pid as number, 'SIGCONT');
      // Back, it finds its store subject fenced, drops its sessions and joins again, empty.
      await waitUntil(10_000, () => gws.every((g) => g.clusterStatus()?.live.length === 3));
      assert.ok(
        gws.every((g) => g.clusterStatus()?.live.length === 3),
        'the paused node rejoined',
      );
      assert.equal(closed, [], 'no session ended');
      await sendUpTo(PER);
      await waitUntil(40_000, () => got.every((g) => g.length >= PER));
      for (let d = 0; d < N; d++)
        assert.equal(
          got[d],
          Array.from({ length: PER }, (_, i) => `echo:d${d}-${i}`),
          `device ${d}: every echo once, in order`,
        );
      assert.equal(closed, [], 'no session ended');
    });
  } finally {
    (paused as ChildProcess | null)?.kill('SIGKILL');
    for (const ch of dev) ch.destroy();
    await sleep(50);
    await (lb as Balancer | null)?.close();
    for (const g of gws) await g.close();
  }
});

test('the NATS server restarted under traffic: nothing lost or repeated once it is back, no takeover', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const dev: ReturnType<typeof connect>[] = [];
  let lb: Balancer | null = null;
  try {
    await within(90_000, 'the NATS restart', async () => {
      const common = { servers: nats.urls, mode: 'relay' as const, prefix: 'hfnats', bucket: 'hf_nats', heartbeatMs: 100, misses: 5 };
      for (const node of ['n1', 'n2', 'n3']) {
        const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null, ackAfter: 'standby', cluster: { ...common, node, placement: 'hash' } });
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
        const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `nd-${d}`, key: null, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
        got.push([]);
        ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
        ch.on('close', () => closed.push(`nd-${d}`));
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
      const t0 = performance.now();
      await nats.servers[0].kill('SIGTERM');
      await sendUpTo((2 * PER) / 3);
      await sleep(500);
      await nats.servers[0].start();
      await sendUpTo(PER);
      await waitUntil(40_000, () => got.every((g) => g.length >= PER));
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
      console.log(`  NATS restarted: every device's echoes complete ${ms.toFixed(0)} ms after the stop`);
    });
  } finally {
    for (const ch of dev) ch.destroy();
    await sleep(50);
    await (lb as Balancer | null)?.close();
    for (const g of gws) await g.close();
  }
});

test.run();
