/**
 * Devices on NATS subjects (cluster/device-subjects.ts), 2 cluster nodes in this process on a real
 * NATS server (ackAfter 'standby', deviceSubjects on), devices placed on node 2 by label:
 *
 *  - a plain NATS client sends N messages to a device via `.down`, some sent twice at once and some
 *    again after their ok (the same id): the device gets each exactly once, in order;
 *  - `.up` subscribers see every message the device sends, in order;
 *  - node 1's sendToDevice reaches a device on node 2 (a repeat of its id is not delivered again);
 *  - no id header: HF_ERR_PEER; a device no node serves: no responders (NATS), and
 *    HF_ERR_UNKNOWN_SESSION from sendToDevice; a paused device's full out-ring: HF_ERR_BUSY, nothing taken;
 *  - node 2 drained: its sessions go to node 1 with their ids, so a retry of a message node 2 took is
 *    answered ok by node 1 and not delivered twice.
 *
 * And the window device-subjects.ts documents for a takeover: node 2 a child process killed with
 * SIGKILL, its heir (node 1) restores the session from the store without its message ids, so a retry
 * of a message node 2 stored is delivered again; a message never sent before is delivered once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection } from '@nats-io/transport-node';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { deviceSubject } from '../targets/host/gateway/cluster/device-subjects';
import { placeOn } from '../targets/host/gateway/placement/policies';
import { Balancer } from './support/balancer';
import { allLive, waitUntil } from './support/cluster-traffic';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { rejection } from './support/errors';
import { within } from './support/within';

const ok = natsAvailable('cluster-device-subjects.scenario');
let nats: Nats;

test.before(async () => {
  if (ok) nats = await startNats();
});
test.after(async () => {
  await nats?.stop();
});

const PREFIX = 'hfdevsubj';
const N = 60;

async function node(name: string, site: string): Promise<Gateway> {
  const gw = await Gateway.start({
    http: '127.0.0.1:0',
    devices: null,
    ackAfter: 'standby',
    cluster: {
      servers: nats.urls,
      node: name,
      labels: { site },
      placement: 'label',
      prefix: PREFIX,
      bucket: 'hf_devsubj',
      heartbeatMs: 100,
      misses: 10,
      rebalance: { enabled: false },
      deviceSubjects: true,
    },
  });
  // The application on every node answers nothing: what devices get is only what is sent to them.
  gw.on('session', (_ch: GatewayChannel) => {});
  return gw;
}

/** A `.down` request from a plain NATS client: the answer's text, or the error's text. */
async function down(nc: NatsConnection, device: string, id: string | null, body: string): Promise<string> {
  const h = headers();
  if (id !== null) h.set('Hf-Msg-Id', id);
  try {
    const m = await nc.request(deviceSubject(PREFIX, device, 'down'), Buffer.from(body), { timeout: 5000, headers: h });
    return Buffer.from(m.data).toString();
  } catch (e) {
    const r = e as { isNoResponders?: () => boolean; message: string };
    return r.isNoResponders?.() === true ? 'no responders' : `error ${r.message}`;
  }
}

test('.down exactly once and in order with retries, .up seen, sendToDevice across nodes, refusals, ids carried by a drain', async () => {
  if (!ok) return;
  const gws: Gateway[] = [];
  const devs: ReturnType<typeof connect>[] = [];
  let nc: NatsConnection | null = null;
  try {
    await within(40_000, 'the scenario', async () => {
      gws.push(await node('n1', 'a'), await node('n2', 'b'));
      await allLive(gws, 2);
      const got: string[][] = [[], []];
      for (let d = 0; d < 2; d++) {
        const ch = connect({ gateway: gws[1].http?.url as string, id: `ds-${d}`, key: null, labels: { site: 'b' }, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
        ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
        devs.push(ch);
      }
      await waitUntil(10_000, () => gws[1].sessionCount === 2);
      assert.is(gws[1].sessionCount, 2, 'both devices served by node 2');
      assert.is(gws[0].sessionCount, 0);
      nc = await natsConnect({ servers: nats.urls });
      const client = nc;

      // .up: what device 0 sends, in order.
      const ups: string[] = [];
      client.subscribe(deviceSubject(PREFIX, 'ds-0', 'up'), {
        callback: (_e, m) => {
          ups.push(Buffer.from(m.data).toString());
        },
      });
      await client.flush();
      for (let i = 0; i < 10; i++) devs[0].send(Buffer.from(`up-${i}`));
      await waitUntil(10_000, () => ups.length >= 10);
      assert.equal(
        ups,
        Array.from({ length: 10 }, (_, i) => `up-${i}`),
        '.up: every message of the device, in order',
      );

      // .down: N messages pipelined; every 4th sent twice at once, every 5th again after its ok.
      const answers: Promise<string>[] = [];
      for (let i = 0; i < N; i++) {
        answers.push(down(client, 'ds-0', `m-${i}`, `down-${i}`));
        if (i % 4 === 0) answers.push(down(client, 'ds-0', `m-${i}`, `down-${i}`));
      }
      assert.ok(
        (await Promise.all(answers)).every((a) => a === 'ok'),
        'every .down answered ok',
      );
      for (let i = 0; i < N; i += 5) assert.is(await down(client, 'ds-0', `m-${i}`, `down-${i}`), 'ok', `retry of m-${i} after its ok`);
      await waitUntil(10_000, () => got[0].length >= N);
      await new Promise((r) => setTimeout(r, 300)); // a duplicate would have come by now
      assert.equal(
        got[0],
        Array.from({ length: N }, (_, i) => `down-${i}`),
        'the device got each once, in order',
      );

      // Refusals.
      assert.match(await down(client, 'ds-0', null, 'no id'), /^err HF_ERR_PEER /, 'no id header');
      assert.match(await down(client, 'ds-0', 'a b', 'bad id'), /^err HF_ERR_PEER /, 'a bad id');
      assert.is(await down(client, 'ghost', 'm-1', 'x'), 'no responders', 'a device no node serves');
      assert.is(await rejection(gws[0].sendToDevice('ghost', Buffer.from('x'))), 'HF_ERR_UNKNOWN_SESSION');
      assert.is(await rejection(gws[0].sendToDevice('ds-1', Buffer.from('x'), { msgId: '' })), 'HF_ERR_OPTION');

      // sendToDevice from node 1 to a device on node 2, and from node 2 itself.
      await gws[0].sendToDevice('ds-1', Buffer.from('from-n1'), { msgId: 'g1' });
      await gws[0].sendToDevice('ds-1', Buffer.from('from-n1'), { msgId: 'g1' });
      await gws[1].sendToDevice('ds-1', Buffer.from('from-n2'), { msgId: 'g2' });
      await gws[1].sendToDevice('ds-1', Buffer.from('from-n2'), { msgId: 'g2' });
      await waitUntil(10_000, () => got[1].length >= 2);

      // A drain hands both sessions to node 1, their ids with them.
      const r = await gws[1].drainCluster();
      assert.is(r.failed, 0, 'no handoff failed');
      assert.is(gws[0].sessionCount, 2, 'node 1 serves both now');
      assert.is(await down(client, 'ds-1', 'g1', 'from-n1'), 'ok', 'a retry after the move: ok');
      assert.is(await down(client, 'ds-0', `m-${N - 1}`, `down-${N - 1}`), 'ok');
      await gws[1].sendToDevice('ds-1', Buffer.from('after'), { msgId: 'g3' });
      await waitUntil(10_000, () => got[1].length >= 3);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(got[1], ['from-n1', 'from-n2', 'after'], 'no duplicate after the move');
      assert.is(got[0].length, N, 'nor on device 0');

      // A device that takes nothing (paused): its session's out-ring fills, and a .down is refused
      // HF_ERR_BUSY with nothing taken; the ones taken arrive once it resumes, the refused ones never.
      devs[1].pause();
      const big = 'x'.repeat(60_000);
      let taken = 0;
      let busy = '';
      for (let i = 0; i < 80 && busy === ''; i++) {
        const a = await down(client, 'ds-1', `big-${i}`, `${i}:${big}`);
        if (a === 'ok') taken++;
        else busy = a;
      }
      assert.match(busy, /^err HF_ERR_BUSY /, `refused once full (after ${taken})`);
      assert.ok(taken > 0);
      devs[1].resume();
      await waitUntil(10_000, () => got[1].length >= 3 + taken);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        got[1].slice(3).map((m) => m.slice(0, m.indexOf(':'))),
        Array.from({ length: taken }, (_, i) => String(i)),
        'what was taken arrives once, in order; the refused one not',
      );
      console.log(`  device subjects: ${N} .down messages (${answers.length + N / 5} requests) once each, ${ups.length} .up, drain moved ${r.moved} with their ids, busy after ${taken} of 60 KB`);
    });
  } finally {
    await (nc as NatsConnection | null)?.close();
    for (const d of devs) d.destroy();
    await new Promise((r) => setTimeout(r, 50));
    for (const g of gws) await g.close();
  }
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

test('a takeover does not carry the ids: a retry of a message the dead node stored is delivered again (the documented window)', async () => {
  if (!ok) return;
  let child: ChildProcess | null = null;
  let gw1: Gateway | null = null;
  let lb: Balancer | null = null;
  let dev: ReturnType<typeof connect> | null = null;
  try {
    await within(60_000, 'the takeover', async () => {
      const common = { servers: nats.urls, mode: 'relay' as const, prefix: 'hfdevtk', bucket: 'hf_devtk', heartbeatMs: 100, misses: 10, deviceSubjects: true, placement: 'hash' as const };
      const v = await startChild({ ...common, node: 'n2' });
      child = v.child;
      gw1 = await Gateway.start({ http: '127.0.0.1:0', devices: null, ackAfter: 'standby', cluster: { ...common, node: 'n1', rebalance: { enabled: false } } });
      const g = gw1;
      await allLive([g], 2);
      // A device hash places on n2.
      const nodes = ['n1', 'n2'].map((name) => ({ name, sessions: 0, labels: {}, services: [] }));
      const id = Array.from({ length: 100 }, (_, i) => `tk-${i}`).find((d) => placeOn({ policy: 'hash' }, { device: d, labels: {} }, nodes) === 'n2') as string;
      lb = await Balancer.start([g.http?.address as string, v.address]);
      const got: string[] = [];
      dev = connect({ gateway: `http://${lb.address}/v1/link`, id, key: null, link: { deadAfterMs: 30_000 }, failures: { warnIntervalMs: 60_000 } });
      dev.on('message', (m: Uint8Array) => got.push(Buffer.from(m).toString()));
      // Served by n2 (a child process): n1's sendToDevice goes over NATS.
      await waitUntil(10_000, () => g.clusterStatus()?.live.find((n) => n.node === 'n2')?.sessions === 1);
      assert.is(g.sessionCount, 0, 'n1 serves nothing yet');
      await g.sendToDevice(id, Buffer.from('a'), { msgId: 't1' });
      await g.sendToDevice(id, Buffer.from('b'), { msgId: 't2' });
      await waitUntil(10_000, () => got.length >= 2);
      assert.equal(got, ['a', 'b']);
      await new Promise((r) => setTimeout(r, 500)); // the device's acknowledgement stored too
      v.child.kill('SIGKILL');
      const tk = Date.now();
      await waitUntil(20_000, () => g.sessionCount === 1);
      const takeoverMs = Date.now() - tk;
      assert.is(g.sessionCount, 1, 'n1 took the session over');
      // The retry of t2 (as a sender that never saw its ok would): n1 has no ids of it.
      await g.sendToDevice(id, Buffer.from('b'), { msgId: 't2' });
      await g.sendToDevice(id, Buffer.from('c'), { msgId: 't3' });
      await g.sendToDevice(id, Buffer.from('c'), { msgId: 't3' });
      // The device's poll held by the killed node ends only at its hold time (20 s): then it reaches n1.
      await waitUntil(30_000, () => got.length >= 4);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(got, ['a', 'b', 'b', 'c'], 'the retry after the takeover delivered again; a new id once');
      console.log(`  device subjects: taken over in ${takeoverMs} ms; a retry of a stored message after it delivered again, as documented`);
    });
  } finally {
    (child as ChildProcess | null)?.kill('SIGKILL');
    (dev as ReturnType<typeof connect> | null)?.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await (lb as Balancer | null)?.close();
    await (gw1 as Gateway | null)?.close();
  }
});

test.run();
