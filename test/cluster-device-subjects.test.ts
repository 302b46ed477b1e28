/**
 * The pure parts of the devices' subjects (cluster/device-subjects.ts): the subject token of a device
 * id, message ids, the bounded set of recent ids (capacity-1, capacity, capacity+1), the inbox that
 * takes a message id once, the `.down` answers, the options and the handoff's ids field; and
 * Gateway.sendToDevice on a gateway alone (no NATS: the session here or nowhere).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeClusterMessage, encodeClusterMessage } from '../targets/host/gateway/cluster/cluster-messages';
import { checkClusterOptions } from '../targets/host/gateway/cluster/cluster-node';
import { checkMsgId, DeviceInboxes, decodeDownAnswer, deviceOfToken, deviceSubject, deviceToken, encodeDownAnswer, RecentIds, recentIdsOption } from '../targets/host/gateway/cluster/device-subjects';
import { clusterOptionsOf } from '../tools/cli/cluster-flags';
import { encodeValue } from '../firmware/cbor-value';
import { ErrorCode, hfError } from '../firmware/errors';
import { code, rejection } from './support/errors';
import { connect } from '../targets/host/device/device';
import { Gateway } from '../targets/host/gateway/gateway';
import { within } from './support/within';

test('a device id is one subject token: base64url of its UTF-8 bytes, no padding, and back', () => {
  assert.is(deviceToken('pi-1'), 'cGktMQ');
  assert.is(deviceSubject('holdfast', 'pi-1', 'down'), 'holdfast.dev.cGktMQ.down');
  assert.is(deviceSubject('hf', 'a.b*>', 'up'), `hf.dev.${Buffer.from('a.b*>').toString('base64url')}.up`);
  for (const id of ['a', 'pi-1', 'a.b.c', 'x y', 'ünï', '>', 'd'.repeat(128), '🛰️ sat']) {
    const t = deviceToken(id);
    assert.match(t, /^[A-Za-z0-9_-]+$/, id);
    assert.is(deviceOfToken(t), id);
  }
  assert.is(deviceToken('d'.repeat(128)).length, 171);
  // Not what deviceToken makes: padded, another alphabet, too short, empty.
  for (const bad of ['cGktMQ==', 'cGk+MQ', 'c', '', 'a.b', 'cGktMR'])
    assert.is(
      code(() => deviceOfToken(bad)),
      'HF_ERR_PEER',
      bad,
    );
});

test('message ids: 1..128 printable ASCII characters', () => {
  assert.is(checkMsgId('m-1'), 'm-1');
  assert.is(checkMsgId('x'.repeat(128)), 'x'.repeat(128));
  for (const bad of ['', 'x'.repeat(129), 'a b', 'é', 'a\nb', undefined, 7])
    assert.is(
      code(() => checkMsgId(bad)),
      'HF_ERR_PEER',
      String(bad),
    );
  assert.is(
    code(() => checkMsgId('', ErrorCode.OPTION)),
    'HF_ERR_OPTION',
  );
});

test('recent ids: capacity-1, capacity and capacity+1; the oldest goes first; a repeat does not move', () => {
  const r = new RecentIds(3);
  r.add('a');
  r.add('b');
  assert.is(r.size, 2);
  r.add('c');
  assert.equal(r.list(), ['a', 'b', 'c']);
  r.add('a'); // a repeat: still the oldest
  assert.equal(r.list(), ['a', 'b', 'c']);
  r.add('d');
  assert.equal(r.list(), ['b', 'c', 'd']);
  assert.ok(!r.has('a') && r.has('b') && r.has('d'));
  assert.equal(RecentIds.from(['1', '2', '3', '4', '5'], 3).list(), ['3', '4', '5']);
  assert.is(new RecentIds(1).capacity, 1);
  for (const bad of [0, -1, 1.5, (1 << 20) + 1])
    assert.is(
      code(() => new RecentIds(bad)),
      'HF_ERR_OPTION',
      String(bad),
    );
});

test('an inbox takes a message id once: a repeat waits for the first to be held, a refusal keeps no id', async () => {
  const delivered: string[] = [];
  let full = false;
  const holds: (() => void)[] = [];
  const inbox = new DeviceInboxes((device, bytes) => {
    if (device !== 'pi-1') throw hfError(ErrorCode.UNKNOWN_SESSION, 'no session');
    if (full) throw hfError(ErrorCode.BUSY, 'full');
    delivered.push(Buffer.from(bytes).toString());
    return new Promise<void>((resolve) => holds.push(resolve));
  }, 2);
  const first = inbox.take('pi-1', 'm1', Buffer.from('one'));
  const again = inbox.take('pi-1', 'm1', Buffer.from('one'));
  let settled = 0;
  void first.then(() => settled++);
  void again.then(() => settled++);
  await new Promise((r) => setImmediate(r));
  assert.is(settled, 0, 'neither is ok before the owner holds it');
  holds[0]();
  await Promise.all([first, again]);
  assert.equal(delivered, ['one'], 'taken once');
  await inbox.take('pi-1', 'm1', Buffer.from('one')); // held already: ok at once
  assert.equal(delivered, ['one']);
  full = true;
  assert.is(
    code(() => inbox.take('pi-1', 'm2', Buffer.from('two'))),
    'HF_ERR_BUSY',
  );
  full = false;
  const two = inbox.take('pi-1', 'm2', Buffer.from('two'));
  holds[1]();
  await two;
  assert.equal(delivered, ['one', 'two'], 'the refused one taken on its retry');
  assert.is(
    code(() => inbox.take('pi-9', 'm1', Buffer.from('x'))),
    'HF_ERR_UNKNOWN_SESSION',
  );
  // Past the bound the oldest is forgotten.
  const three = inbox.take('pi-1', 'm3', Buffer.from('three'));
  holds[2]();
  await three;
  assert.equal(inbox.ids('pi-1'), ['m2', 'm3']);
  // The ids go with the session and come back with it.
  const ids = inbox.end('pi-1');
  assert.equal(ids, ['m2', 'm3']);
  assert.equal(inbox.ids('pi-1'), []);
  inbox.restore('pi-1', ids);
  await inbox.take('pi-1', 'm3', Buffer.from('three'));
  assert.equal(delivered, ['one', 'two', 'three'], 'a restored id is not taken again');
  // A first taking whose hold fails: its repeats fail the same way.
  const failing = new DeviceInboxes(() => Promise.reject(hfError(ErrorCode.CLOSED, 'moved')));
  const f1 = failing.take('d', 'x', Buffer.from('x'));
  const f2 = failing.take('d', 'x', Buffer.from('x'));
  assert.is(await rejection(f1), 'HF_ERR_CLOSED');
  assert.is(await rejection(f2), 'HF_ERR_CLOSED');
});

test('.down answers: ok, or err CODE message; anything else is HF_ERR_PEER', () => {
  assert.is(Buffer.from(encodeDownAnswer(null)).toString(), 'ok');
  assert.is(decodeDownAnswer(encodeDownAnswer(null)), null);
  assert.is(Buffer.from(encodeDownAnswer({ code: 'HF_ERR_BUSY', message: 'full' })).toString(), 'err HF_ERR_BUSY full');
  assert.equal(decodeDownAnswer(Buffer.from('err HF_ERR_PEER no id')), { code: 'HF_ERR_PEER', message: 'no id' });
  for (const bad of ['', 'OK', 'err', 'err busy', 'yes'])
    assert.is(
      code(() => decodeDownAnswer(Buffer.from(bad))),
      'HF_ERR_PEER',
      bad,
    );
});

test('options: deviceSubjects a boolean, deviceRecentIds 1..1048576 (default 4096); the CLI flag', () => {
  const base = { servers: 'nats://h:1', node: 'n1' };
  assert.is(recentIdsOption(undefined), 4096);
  assert.is(recentIdsOption(1), 1);
  assert.is(recentIdsOption(1 << 20), 1 << 20);
  for (const bad of [0, (1 << 20) + 1, 2.5])
    assert.is(
      code(() => checkClusterOptions({ ...base, deviceRecentIds: bad })),
      'HF_ERR_OPTION',
      String(bad),
    );
  assert.is(
    code(() => checkClusterOptions({ ...base, deviceSubjects: 'yes' as unknown as boolean })),
    'HF_ERR_OPTION',
  );
  checkClusterOptions({ ...base, deviceSubjects: true, deviceRecentIds: 10 });
  assert.is(clusterOptionsOf({ cluster: 'nats://h:1', node: 'n1', 'cluster-device-subjects': true })?.deviceSubjects, true);
  assert.is(clusterOptionsOf({ cluster: 'nats://h:1', node: 'n1' })?.deviceSubjects, undefined, 'off by default');
  assert.is(
    code(() => clusterOptionsOf({ 'cluster-device-subjects': true })),
    'HF_ERR_OPTION',
    'needs --cluster',
  );
});

test('a handoff carries the ids (checked), or none', () => {
  const m = { t: 'handoff' as const, from: 'n1', inc: 1, device: 'pi-1', epoch: 2, snap: new Uint8Array([1]) };
  assert.equal(decodeClusterMessage(encodeClusterMessage(m)), m);
  assert.equal(decodeClusterMessage(encodeClusterMessage({ ...m, ids: ['a', 'b'] })), { ...m, ids: ['a', 'b'] });
  for (const ids of [['a b'], [''], 'a', [7]])
    assert.is(
      code(() => decodeClusterMessage(encodeValue({ ...m, ids }))),
      'HF_ERR_PEER',
      JSON.stringify(ids),
    );
});

test('sendToDevice on a gateway alone: into the session here, an id taken once; no session: HF_ERR_UNKNOWN_SESSION', async () => {
  const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null });
  const dev = connect({ gateway: gw.http?.url as string, id: 'pi-1', key: null });
  try {
    await within(10_000, 'sendToDevice', async () => {
      const got: string[] = [];
      dev.on('message', (m: Uint8Array) => got.push(Buffer.from(m).toString()));
      await new Promise<void>((r) => gw.once('session', () => r()));
      assert.is(await rejection(gw.sendToDevice('pi-2', Buffer.from('x'))), 'HF_ERR_UNKNOWN_SESSION');
      assert.is(await rejection(gw.sendToDevice('pi-1', Buffer.from('x'), { msgId: 'a b' })), 'HF_ERR_OPTION');
      assert.is(await rejection(gw.sendToDevice('', Buffer.from('x'))), 'HF_ERR_OPTION');
      assert.is(await rejection(gw.sendToDevice('pi-1', Buffer.alloc(70_000))), 'HF_ERR_TOO_BIG');
      await gw.sendToDevice('pi-1', Buffer.from('one'), { msgId: 'm1' });
      await gw.sendToDevice('pi-1', Buffer.from('one'), { msgId: 'm1' });
      await gw.sendToDevice('pi-1', Buffer.from('two'));
      await gw.sendToDevice('pi-1', Buffer.from('two'));
      while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got, ['one', 'two', 'two'], 'a repeated id once; no id: each call a message');
    });
  } finally {
    dev.destroy();
    await gw.close();
  }
});

test.run();
