/** The gateway's cluster flags as ClusterOptions (tools/cli/cluster-flags.ts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterOptionsOf } from '../tools/cli/cluster-flags';
import { pairOptionsOf } from '../tools/cli/pair-flags';
import type { Values } from '../tools/cli/args';
import { code, message } from './support/errors';

test('no --cluster: no cluster; a cluster-only flag without it is refused', () => {
  assert.is(clusterOptionsOf({ http: '127.0.0.1:0' }), null);
  assert.is(clusterOptionsOf({ node: 'n1' }), null, '--node alone names a node, makes nothing');
  assert.is(pairOptionsOf({ node: 'n1' }), null, '--node alone makes no pair either');
  assert.is(
    message(() => clusterOptionsOf({ 'node-label': ['site=x'] })),
    '--node-label needs --cluster nats://HOST:PORT',
  );
});

test('every flag passed through, checked', () => {
  const o = clusterOptionsOf({
    cluster: 'nats://127.0.0.1:4222,nats://127.0.0.1:4223',
    node: 'n-1',
    'node-label': ['site=berlin', 'rack=3'],
    'node-service': ['db', 'hist=127.0.0.1:8086+[::1]:8087'],
    placement: 'label',
    'cluster-mode': 'relay',
    'cluster-replicas': 3,
  });
  assert.equal(o, {
    servers: 'nats://127.0.0.1:4222,nats://127.0.0.1:4223',
    node: 'n-1',
    labels: { site: 'berlin', rack: '3' },
    services: ['db', 'hist'],
    reach: ['127.0.0.1:8086', '[::1]:8087'],
    placement: 'label',
    mode: 'relay',
    replicas: 3,
  });
  assert.match(clusterOptionsOf({ cluster: 'nats://h:1' })?.node ?? '', /^[A-Za-z0-9_-]{1,64}$/, 'the host name, made a node name');
  assert.is(clusterOptionsOf({ cluster: 'nats://h:1' })?.placement, 'hash');
  for (const [v, flag] of [
    [{ cluster: 'http://h:1' }, 'servers'],
    [{ cluster: 'nats://h:1', node: 'a.b' }, 'node'],
    [{ cluster: 'nats://h:1', placement: 'random' }, 'placement'],
    [{ cluster: 'nats://h:1', 'cluster-mode': 'both' }, 'cluster-mode'],
    [{ cluster: 'nats://h:1', 'cluster-replicas': 0 }, 'cluster-replicas'],
    [{ cluster: 'nats://h:1', 'node-label': ['nolabel'] }, 'node-label'],
    [{ cluster: 'nats://h:1', 'node-service': ['db=127.0.0.1'] }, 'node-service'],
    [{ cluster: 'nats://h:1', 'node-service': ['=127.0.0.1:1'] }, 'node-service'],
    [{ cluster: 'nats://h:1', 'cluster-rebalance': -1 }, 'cluster-rebalance'],
    [{ cluster: 'nats://h:1', 'cluster-rebalance': 2.5 }, 'cluster-rebalance'],
    [{ cluster: 'nats://h:1', 'cluster-rebalance': 10_001 }, 'cluster-rebalance'],
  ] as const) {
    assert.is(
      code(() => clusterOptionsOf(v as unknown as Values)),
      'HF_ERR_OPTION',
      flag,
    );
    assert.match(
      message(() => clusterOptionsOf(v as unknown as Values)),
      flag,
    );
  }
});

test('--cluster-rebalance N: N sessions a second to a node that joins; 0: none; absent: the defaults', () => {
  assert.equal(clusterOptionsOf({ cluster: 'nats://h:1', node: 'n1', 'cluster-rebalance': 20 })?.rebalance, { perSecond: 20 });
  assert.equal(clusterOptionsOf({ cluster: 'nats://h:1', node: 'n1', 'cluster-rebalance': 0 })?.rebalance, { enabled: false });
  assert.equal(clusterOptionsOf({ cluster: 'nats://h:1', node: 'n1', 'cluster-rebalance': 10_000 })?.rebalance, { perSecond: 10_000 });
  assert.is(clusterOptionsOf({ cluster: 'nats://h:1', node: 'n1' })?.rebalance, undefined);
  assert.is(
    message(() => clusterOptionsOf({ 'cluster-rebalance': 5 })),
    '--cluster-rebalance needs --cluster nats://HOST:PORT',
  );
  assert.match(
    message(() => clusterOptionsOf({ cluster: 'nats://h:1', 'cluster-rebalance': -1 })),
    'got -1',
  );
});

test.run();
