/**
 * Cluster nodes on a real NATS server (Debian's nats-server with JetStream, started here): they find
 * each other by heartbeats, notice a node that left or was killed, agree on placement, keep the
 * session directory in a JetStream bucket, and refuse bad control requests with a code, changing
 * nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { encodeValue } from '../firmware/cbor-value';
import { type ClusterHost, ClusterNode, checkClusterOptions } from '../targets/host/gateway/cluster/cluster-node';
import type { HandoffMessage } from '../targets/host/gateway/cluster/cluster-messages';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { code, rejection } from './support/errors';
import { sleep, until } from './support/bounded';
import { within } from './support/within';

const ok = natsAvailable('cluster-node');
let nats: Nats;
const nodes: ClusterNode[] = [];
const adopted: { node: string; m: HandoffMessage }[] = [];

function host(name: string): ClusterHost {
  return {
    url: `http://127.0.0.1/${name}`,
    tcp: '',
    sessions: () => 0,
    adopt: async (m) => {
      const me = nodes.find((n) => n.name === name) as ClusterNode;
      const e = await me.directory.claim(m.device, name, me.incarnation, new Uint8Array(16), m.epoch);
      adopted.push({ node: name, m });
      return e.epoch;
    },
    relayed: async (m) => ({ t: 'answer', status: 200, code: '', body: new Uint8Array([...m.body, name.charCodeAt(1)]) }),
    relayTimeoutMs: 2000,
    drain: async () => ({ t: 'drained', moved: 0, failed: 0, ms: 0, p50: 0, p99: 0 }),
  };
}

test.before(async () => {
  if (!ok) return;
  nats = await startNats();
});

test.after(async () => {
  for (const n of nodes) await n.close();
  await nats?.stop();
});

test('options are checked before anything connects', () => {
  assert.is(
    code(() => checkClusterOptions({ servers: 'nats://127.0.0.1:4222', node: 'a.b' })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => checkClusterOptions({ servers: 'http://x', node: 'a' })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => checkClusterOptions({ servers: [], node: 'a' })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => checkClusterOptions({ servers: 'nats://h:1', node: 'a', placement: 'random' as 'hash' })),
    'HF_ERR_OPTION',
  );
  assert.equal(checkClusterOptions({ servers: 'nats://h:1, nats://h:2', node: 'a' }), ['nats://h:1', 'nats://h:2']);
});

test('three nodes find each other, agree on placement and see a leave at once', async () => {
  if (!ok) return;
  for (const name of ['n1', 'n2', 'n3'])
    nodes.push(await ClusterNode.start({ servers: nats.urls, node: name, heartbeatMs: 100, misses: 3, labels: { site: name === 'n3' ? 'paris' : 'berlin' }, placement: 'label' }, host(name)));
  await within(3000, 'every node sees three', () => until(() => nodes.every((n) => n.live().length === 3)));
  assert.equal(
    nodes[0].live().map((n) => n.node),
    ['n1', 'n2', 'n3'],
  );
  for (let i = 0; i < 50; i++) {
    const at = nodes.map((n) => n.place(`dev-${i}`, { site: 'berlin' }));
    assert.ok(at.every((a) => a === at[0]) && at[0] !== 'n3', at.join());
    assert.ok(nodes.every((n) => n.place(`dev-${i}`, { site: 'paris' }) === 'n3'));
  }
  const extra = await ClusterNode.start({ servers: nats.urls, node: 'n4', heartbeatMs: 100, misses: 3 }, host('n4'));
  await within(3000, 'n4 joined', () => until(() => nodes[0].live().length === 4));
  const t0 = Date.now();
  await extra.close();
  await within(3000, 'n4 gone', () => until(() => nodes[0].live().length === 3));
  assert.ok(Date.now() - t0 < 300, `a leave needs no silence (${Date.now() - t0} ms)`);
});

test('a node killed with SIGKILL is dead for the others after misses x heartbeat', async () => {
  if (!ok) return;
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, 'support/cluster-node-proc.ts'), nats.urls, 'victim'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    await within(3000, 'victim joined', () => until(() => nodes[0].members.isLive('victim')));
    const dead = new Promise<number>((resolve) => nodes[1].once('dead', (n) => n.node === 'victim' && resolve(Date.now())));
    const t0 = Date.now();
    child.kill('SIGKILL');
    const ms = (await dead) - t0;
    assert.ok(ms <= 300 + 100 + 150, `dead after ${ms} ms`);
    await within(300, 'every node saw it dead', () => until(() => nodes.every((n) => !n.members.isLive('victim'))));
  } finally {
    child.kill('SIGKILL');
  }
});

test('a handoff is answered with the new epoch; stale epoch, unknown node and malformed requests are refused and change nothing', async () => {
  if (!ok) return;
  const [n1, n2] = nodes;
  const first = await n1.directory.claim('pi-7', 'n1', n1.incarnation, new Uint8Array(16), null);
  assert.is(await n1.handOff('n2', 'pi-7', first.epoch, new Uint8Array([1, 2, 3])), first.epoch + 1);
  assert.is(adopted.length, 1);
  assert.is((await n2.directory.lookup('pi-7'))?.node, 'n2');
  assert.is(await rejection(n1.handOff('n2', 'pi-7', first.epoch, new Uint8Array([1]))), 'HF_ERR_EPOCH', 'the entry moved on');
  assert.is(await rejection(n1.request('n2', { t: 'handoff', from: 'ghost', inc: 1, device: 'pi-7', epoch: first.epoch + 1, snap: new Uint8Array([1]) })), 'HF_ERR_NODE');
  assert.is(
    await rejection(n1.request('n2', { t: 'handoff', from: 'n1', inc: n1.incarnation + 1, device: 'pi-7', epoch: first.epoch + 1, snap: new Uint8Array([1]) })),
    'HF_ERR_NODE',
    'another incarnation',
  );
  assert.is(await rejection(n1.request('n2', encodeValue({ t: 'handoff', from: 'n1' }))), 'HF_ERR_PEER');
  assert.is(await rejection(n1.request('n2', new Uint8Array([0xff, 0x00]))), 'HF_ERR_PEER');
  assert.is(await rejection(n1.request('n2', { t: 'ok', epoch: 1 })), 'HF_ERR_PEER', 'not a request');
  assert.is(await rejection(n1.handOff('nobody', 'pi-7', 0, new Uint8Array([1]))), 'HF_ERR_NODE');
  assert.is(adopted.length, 1, 'nothing refused reached the host');
  assert.is((await n2.directory.lookup('pi-7'))?.epoch, first.epoch + 1);
});

test('a relayed request is answered by the node it was sent to; one from a stranger is refused HF_ERR_NODE', async () => {
  if (!ok) return;
  const a = await nodes[0].relay('n3', new Uint8Array([7]), '127.0.0.1');
  assert.equal([a.status, a.code, [...a.body]], [200, '', [7, '3'.charCodeAt(0)]]);
  assert.is(await rejection(nodes[0].relay('nobody', new Uint8Array([7]), '')), 'HF_ERR_NATS', 'no responders');
});

test('the session index: every node learns which node serves a session id', async () => {
  if (!ok) return;
  nodes[1].index.opened('00112233445566778899aabbccddeeff');
  // The write is on its way (opened() does not wait for it): read until it is there.
  const readBack = async (): Promise<string | null> => {
    for (;;) {
      const o = await nodes[2].index.ownerOf('00112233445566778899aabbccddeeff');
      if (o !== null) return o;
      await sleep(5);
    }
  };
  assert.is(await within(2000, 'read back', readBack), 'n2');
  await within(2000, 'watched', () => until(() => nodes[0].index.ownerOf('00112233445566778899aabbccddeeff') === 'n2'));
  nodes[1].index.ended('00112233445566778899aabbccddeeff');
  await within(2000, 'ended everywhere', () => until(() => nodes.every((n) => typeof n.index.ownerOf('00112233445566778899aabbccddeeff') !== 'string')));
  assert.is(await nodes[2].index.ownerOf('00112233445566778899aabbccddeeff'), null);
});

test('the directory on JetStream: nodes racing for one device never share an epoch', async () => {
  if (!ok) return;
  for (let round = 0; round < 10; round++) {
    const got = await Promise.allSettled(nodes.map((n) => n.directory.claim('racy', n.name, n.incarnation, new Uint8Array(16), null)));
    const epochs = got.flatMap((g) => (g.status === 'fulfilled' ? [g.value.epoch] : []));
    assert.ok(epochs.length >= 1);
    assert.is(new Set(epochs).size, epochs.length, epochs.join());
    const top = Math.max(...epochs);
    assert.is((await nodes[0].directory.lookup('racy'))?.epoch, top);
  }
});

test.run();
