/** The placement policies shared by the cluster and the workers (targets/host/gateway/placement/policies.ts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Candidate, placeOn, placementPolicy, servicesOf } from '../targets/host/gateway/placement/policies';
import { Prng } from '../targets/sim/prng';
import { code } from './support/errors';

const nodes: Candidate[] = [
  { name: 'b1', sessions: 5, labels: { site: 'berlin' }, services: ['db'] },
  { name: 'b2', sessions: 1, labels: { site: 'berlin' }, services: [] },
  { name: 'p1', sessions: 3, labels: { site: 'paris' }, services: ['cache', 'db'] },
];

test('hash: a device keeps its node while the set stays; only the devices of a node that went away move', () => {
  const seed = Number(process.env.SEED ?? Date.now() % 100000);
  const rng = new Prng(seed);
  const before = new Map<string, string>();
  for (let i = 0; i < 2000; i++) {
    const id = `dev-${rng.int(1e9)}`;
    const n = placeOn({ policy: 'hash' }, { device: id }, nodes) as string;
    assert.is(placeOn({ policy: 'hash' }, { device: id }, [...nodes].reverse()), n, `order matters not (seed ${seed})`);
    before.set(id, n);
  }
  const counts = new Map<string, number>();
  for (const n of before.values()) counts.set(n, (counts.get(n) ?? 0) + 1);
  for (const c of nodes) assert.ok((counts.get(c.name) ?? 0) > 2000 / 3 / 2, `${c.name} gets a fair share: ${counts.get(c.name)} (seed ${seed})`);
  const without = nodes.filter((c) => c.name !== 'b2');
  for (const [id, n] of before) {
    const after = placeOn({ policy: 'hash' }, { device: id }, without);
    if (n !== 'b2') assert.is(after, n, `${id} stays on ${n} (seed ${seed})`);
    else assert.ok(after === 'b1' || after === 'p1');
  }
});

test('label: a device goes to a node whose site agrees; none agreeing or no label: hash over all', () => {
  for (let i = 0; i < 200; i++) {
    const n = placeOn({ policy: 'label' }, { device: `d${i}`, labels: { site: 'berlin', class: 'pi4' } }, nodes);
    assert.ok(n === 'b1' || n === 'b2', n ?? 'null');
    assert.is(placeOn({ policy: 'label' }, { device: `d${i}`, labels: { site: 'paris' } }, nodes), 'p1');
    assert.is(placeOn({ policy: 'label' }, { device: `d${i}`, labels: { site: 'rome' } }, nodes), placeOn({ policy: 'hash' }, { device: `d${i}` }, nodes));
    assert.is(placeOn({ policy: 'label' }, { device: `d${i}` }, nodes), placeOn({ policy: 'hash' }, { device: `d${i}` }, nodes));
  }
  assert.is(
    placeOn({ policy: 'label', labelKeys: ['class'] }, { device: 'x', labels: { site: 'paris', class: 'pi4' } }, nodes),
    placeOn({ policy: 'hash' }, { device: 'x' }, nodes),
    'only labelKeys count',
  );
});

test('service: the nodes reaching every named service, else the most of them', () => {
  assert.equal(servicesOf({ service: 'db+cache' }), ['db', 'cache']);
  assert.equal(servicesOf({}), []);
  for (let i = 0; i < 100; i++) {
    assert.is(placeOn({ policy: 'service' }, { device: `d${i}`, labels: { service: 'db+cache' } }, nodes), 'p1');
    assert.is(placeOn({ policy: 'service' }, { device: `d${i}`, labels: { service: 'cache+queue' } }, nodes), 'p1');
    const db = placeOn({ policy: 'service' }, { device: `d${i}`, labels: { service: 'db' } }, nodes);
    assert.ok(db === 'b1' || db === 'p1');
    assert.is(placeOn({ policy: 'service' }, { device: `d${i}`, labels: { service: 'queue' } }, nodes), placeOn({ policy: 'hash' }, { device: `d${i}` }, nodes));
  }
});

test('least-loaded: fewest sessions, ties by name; none live: null; policy names checked', () => {
  assert.is(placeOn({ policy: 'least-loaded' }, { device: 'x' }, nodes), 'b2');
  assert.is(
    placeOn({ policy: 'least-loaded' }, { device: 'x' }, [
      { name: 'z', sessions: 1 },
      { name: 'a', sessions: 1 },
    ]),
    'a',
  );
  assert.is(placeOn({ policy: 'hash' }, { device: 'x' }, []), null);
  assert.is(placeOn({ policy: 'label' }, { device: null, labels: { site: 'berlin' } }, nodes), 'b2', 'no device id: least loaded among the agreeing');
  assert.is(placementPolicy('service'), 'service');
  assert.is(
    code(() => placementPolicy('random')),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => placementPolicy('label', ['hash'])),
    'HF_ERR_OPTION',
  );
});

test.run();
