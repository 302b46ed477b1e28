/** Cluster membership from heartbeats (targets/host/gateway/cluster/members.ts): live, dead, restarted. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkNodeName, Members, type NodeInfo } from '../targets/host/gateway/cluster/members';
import { code } from './support/errors';

const info = (node: string, incarnation = 1, sessions = 0): NodeInfo => ({ node, incarnation, url: `http://${node}`, tcp: '', labels: {}, services: [], reach: [], sessions, draining: false });

test('a node heard is live until it is silent for misses x heartbeat, then dead once', () => {
  const m = new Members(info('a'), { heartbeatMs: 100, misses: 3 });
  assert.is(m.deadAfterMs, 300);
  assert.is(m.heard(info('b'), 0), 'joined');
  assert.is(m.heard(info('b', 1, 4), 200), 'updated');
  assert.is(m.info('b')?.sessions, 4);
  assert.equal(m.sweep(500), [], 'heard at 200: live until 500');
  assert.equal(
    m.sweep(501).map((n) => n.node),
    ['b'],
  );
  assert.equal(m.sweep(900), [], 'reported once');
  assert.not.ok(m.isLive('b'));
  assert.is(m.incarnationOf('b'), -1);
  assert.is(m.heard(info('b'), 950), 'stale', 'the dead incarnation does not come back');
  assert.not.ok(m.isLive('b'));
  assert.is(m.heard(info('b', 2), 960), 'restarted');
  assert.is(m.incarnationOf('b'), 2);
  assert.is(m.heard(info('b', 1), 970), 'stale', 'an older incarnation is ignored');
  assert.is(m.heard(info('a', 9), 970), 'stale', 'its own heartbeat');
  assert.ok(m.isLive('a'));
});

test('a leave makes the node dead at once (only its live incarnation); live() is sorted and includes self', () => {
  const m = new Members(info('m'));
  m.heard(info('z'), 0);
  m.heard(info('b'), 0);
  assert.equal(
    m.live().map((n) => n.node),
    ['b', 'm', 'z'],
  );
  assert.not.ok(m.left('z', 7), 'another incarnation');
  assert.ok(m.left('z', 1));
  assert.not.ok(m.left('z', 1), 'once');
  assert.equal(
    m.live().map((n) => n.node),
    ['b', 'm'],
  );
});

test('options and names are checked', () => {
  assert.is(
    code(() => new Members(info('a'), { heartbeatMs: 0 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new Members(info('a'), { misses: 1.5 })),
    'HF_ERR_OPTION',
  );
  assert.is(checkNodeName('node-2_a'), 'node-2_a');
  for (const bad of ['', 'a.b', 'a b', 'x'.repeat(65), 3])
    assert.is(
      code(() => checkNodeName(bad)),
      'HF_ERR_OPTION',
      String(bad),
    );
});

test.run();
