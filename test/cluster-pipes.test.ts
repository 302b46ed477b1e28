/**
 * Forwarded connections through the node their target is behind (targets/host/gateway/cluster/
 * pipes.ts), two cluster nodes on a real NATS server: the route follows the heartbeats' `reach`,
 * bytes go both ways with half-close, refusals carry their code and open nothing, and a pipe ends
 * when its far node leaves.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { type ClusterHost, ClusterNode } from '../targets/host/gateway/cluster/cluster-node';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { rejection } from './support/errors';
import { collect, errorOf, random, sha256, until } from './support/bounded';
import { within } from './support/within';

const ok = natsAvailable('cluster-pipes');
let nats: Nats;
let echo: net.Server;
let target = '';
/** A port nothing listens on. */
let closed = '';
const nodes: ClusterNode[] = [];

const host = (name: string): ClusterHost => ({
  url: `http://127.0.0.1/${name}`,
  tcp: '',
  sessions: () => 0,
  adopt: async () => 0,
  relayed: async () => ({ t: 'answer', status: 200, code: '', body: new Uint8Array() }),
  relayTimeoutMs: 2000,
  drain: async () => ({ t: 'drained', moved: 0, failed: 0, ms: 0, p50: 0, p99: 0 }),
});

function opened(s: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
}

test.before(async () => {
  if (!ok) return;
  nats = await startNats();
  echo = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  target = `127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
  const spare = net.createServer();
  await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
  closed = `127.0.0.1:${(spare.address() as net.AddressInfo).port}`;
  await new Promise((r) => spare.close(r));
  const o = { servers: nats.urls, heartbeatMs: 100, misses: 5, prefix: 'pipes' };
  nodes.push(await ClusterNode.start({ ...o, node: 'near', reach: [target, closed] }, host('near')));
  nodes.push(await ClusterNode.start({ ...o, node: 'far' }, host('far')));
  await within(3000, 'both see both', () => until(() => nodes.every((n) => n.live().length === 2)));
});

test.after(async () => {
  for (const n of nodes) await n.close();
  echo?.close();
  await nats?.stop();
});

test('the route: through the node that reaches the target, else straight', () => {
  if (!ok) return;
  const [near, far] = nodes;
  assert.is(far.pipes.route(target), 'near');
  assert.is(near.pipes.route(target), null, 'the node the target is behind connects itself');
  assert.is(far.pipes.route('127.0.0.1:1'), null, 'a target no node names: straight');
});

test('a connection through the other node: 2 MiB each way, half-close, then the pipe is gone on both nodes', async () => {
  if (!ok) return;
  const [near, far] = nodes;
  await within(10_000, 'the echo through the pipe', async () => {
    const [h, p] = target.split(':');
    const s = far.pipes.dial(h, Number(p));
    assert.not.ok(s instanceof net.Socket, 'a pipe, not a socket');
    await opened(s);
    const data = random(2 << 20);
    const back = collect(s);
    s.end(data);
    assert.is(sha256(await back), sha256(data));
    assert.is(near.pipes.accepted, 1);
    await until(() => near.pipes.size === 0 && far.pipes.size === 0);
  });
});

test('refused: a target not behind the node (HF_ERR_FORBIDDEN), one that refuses (HF_ERR_CONNECT), a stranger (HF_ERR_NODE), a bad id (HF_ERR_PEER); nothing stays open', async () => {
  if (!ok) return;
  const [near, far] = nodes;
  const before = near.pipes.accepted;
  assert.is(await rejection(far.request('near', { t: 'pipe', from: 'far', inc: far.incarnation, id: '00000000000000aa', target: '127.0.0.1:1' })), 'HF_ERR_FORBIDDEN');
  assert.is(await rejection(far.request('near', { t: 'pipe', from: 'ghost', inc: 1, id: '00000000000000ab', target })), 'HF_ERR_NODE');
  assert.is(await rejection(far.request('near', { t: 'pipe', from: 'far', inc: far.incarnation, id: 'xyz', target } as never)), 'HF_ERR_PEER');
  const [h, p] = closed.split(':');
  const s = far.pipes.dial(h, Number(p));
  const e = await errorOf(s);
  assert.is((e as { code?: string }).code, 'HF_ERR_CONNECT', e.message);
  assert.is(near.pipes.accepted, before);
  await within(2000, 'nothing open', () => until(() => near.pipes.size === 0 && far.pipes.size === 0));
});

test('the far node judged dead: its pipes are reset HF_ERR_NODE; one that stops resets them HF_ERR_CLOSED', async () => {
  if (!ok) return;
  const [near, far] = nodes;
  await within(10_000, 'the resets', async () => {
    const [h, p] = target.split(':');
    const echoed = async (): Promise<Duplex> => {
      const s = far.pipes.dial(h, Number(p));
      await opened(s);
      s.write('hello');
      assert.is(String(await new Promise<Buffer>((r) => s.once('data', r))), 'hello');
      return s;
    };
    const s1 = await echoed();
    const e1 = errorOf(s1);
    // What the membership says when the heartbeats stop (members.ts; cluster-node.test kills a node).
    far.emit('dead', far.members.info('near') as NonNullable<ReturnType<typeof far.members.info>>);
    assert.is((await e1).code, 'HF_ERR_NODE');
    const s2 = await echoed();
    const e2 = errorOf(s2);
    await near.close();
    assert.is((await e2).code, 'HF_ERR_CLOSED', 'a node that stops says so');
    await until(() => far.pipes.size === 0);
  });
});

test.run();
