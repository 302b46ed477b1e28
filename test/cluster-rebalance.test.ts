/** Which sessions a node hands to a node that joined, and the rebalance options (targets/host/gateway/cluster/rebalance.ts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkClusterOptions } from '../targets/host/gateway/cluster/cluster-node';
import { type OwnedSession, rebalanceOptions, sessionsToMove } from '../targets/host/gateway/cluster/rebalance';
import { type Candidate, placeOn } from '../targets/host/gateway/placement/policies';
import { Prng } from '../targets/sim/prng';
import { code, message } from './support/errors';

const owned = (n: number, labels: (i: number) => Record<string, string> = () => ({})): OwnedSession[] => Array.from({ length: n }, (_, i) => ({ sid: `s${i}`, device: `dev-${i}`, labels: labels(i) }));
const node = (name: string, sessions = 0, more: Partial<Candidate> = {}): Candidate => ({ name, sessions, ...more });

test('hash: exactly the sessions placed on the joined node now; moved, they stay put (nothing moves twice)', () => {
  const seed = Number(process.env.SEED ?? Date.now() % 100000);
  const rng = new Prng(seed);
  const mine: OwnedSession[] = Array.from({ length: 600 }, (_, i) => ({ sid: `s${i}`, device: `dev-${rng.int(1e9)}`, labels: {} }));
  // Each of the sessions was placed here while a and b were the cluster.
  const before = [node('a'), node('b')];
  const here = mine.filter((s) => placeOn({ policy: 'hash' }, { device: s.device }, before) === 'a');
  const open = [node('a'), node('b'), node('c')];
  const moved = sessionsToMove({ policy: 'hash' }, here, 'a', 'c', open);
  for (const s of here) assert.is(moved.includes(s), placeOn({ policy: 'hash' }, { device: s.device }, open) === 'c', `${s.device} (seed ${seed})`);
  assert.ok(moved.length > here.length / 3 / 2 && moved.length < (here.length * 2) / 3, `about a third moves: ${moved.length} of ${here.length} (seed ${seed})`);
  assert.equal(
    moved.map((s) => s.sid),
    here.filter((s) => moved.includes(s)).map((s) => s.sid),
    'in the order given',
  );
  // On c, none of them is placed elsewhere: the same join moves them no further.
  assert.equal(sessionsToMove({ policy: 'hash' }, moved, 'c', 'a', open), []);
  assert.equal(sessionsToMove({ policy: 'hash' }, moved, 'c', 'b', open), []);
  // What stays on a is not picked for b either (only a node that joined since moves anything more).
  assert.equal(
    sessionsToMove(
      { policy: 'hash' },
      here.filter((s) => !moved.includes(s)),
      'a',
      'b',
      open,
    ),
    [],
  );
});

test('nothing moves when this node or the joined one is not among the open nodes, or is this node', () => {
  const mine = owned(50);
  // Draining nodes are not in the open list: a draining node rebalances nothing, a draining joined node takes nothing.
  assert.equal(sessionsToMove({ policy: 'hash' }, mine, 'a', 'c', [node('b'), node('c')]), [], 'this node drains');
  assert.equal(sessionsToMove({ policy: 'hash' }, mine, 'a', 'c', [node('a'), node('b')]), [], 'the joined node drains or is gone');
  assert.equal(sessionsToMove({ policy: 'hash' }, mine, 'a', 'a', [node('a'), node('b')]), [], 'a node does not join itself');
  assert.equal(sessionsToMove({ policy: 'least-loaded' }, mine, 'a', 'c', [node('a', 50), node('b', 50)]), []);
  assert.equal(sessionsToMove({ policy: 'hash' }, [], 'a', 'c', [node('a'), node('c')]), []);
});

test("label: only the devices of the joined node's site move; the others stay where they agree", () => {
  const mine = owned(200, (i) => (i % 2 === 0 ? { site: 'berlin' } : { site: 'paris' }));
  const open = [node('a', 0, { labels: { site: 'berlin' } }), node('b', 0, { labels: { site: 'paris' } }), node('c', 0, { labels: { site: 'berlin' } })];
  const moved = sessionsToMove({ policy: 'label' }, mine, 'a', 'c', open);
  assert.ok(moved.length > 20, `some berlin devices move: ${moved.length}`);
  assert.ok(
    moved.every((s) => s.labels.site === 'berlin'),
    'no paris device goes to a berlin node',
  );
  for (const s of mine) assert.is(moved.includes(s), placeOn({ policy: 'label' }, s, open) === 'c', s.device);
});

test('service: a joined node reaching the wanted service takes the devices placement gives it', () => {
  const mine = owned(100, () => ({ service: 'db' }));
  const without = [node('a', 0, { services: [] }), node('c', 0, { services: ['db'] })];
  assert.equal(
    sessionsToMove({ policy: 'service' }, mine, 'a', 'c', without).map((s) => s.sid),
    mine.map((s) => s.sid),
    'every db device: c is the only node reaching db',
  );
  const both = [node('a', 0, { services: ['db'] }), node('c', 0, { services: ['db'] })];
  const some = sessionsToMove({ policy: 'service' }, mine, 'a', 'c', both);
  assert.ok(some.length > 0 && some.length < mine.length, `both reach db: by hash, ${some.length}`);
});

test('least-loaded: at most enough to even the counts, the oldest first', () => {
  // 60 + 60 + 0: the mean is 40, each of a and b hands 20.
  assert.equal(
    sessionsToMove({ policy: 'least-loaded' }, owned(60), 'a', 'c', [node('a', 999), node('b', 60), node('c', 0)]).map((s) => s.sid),
    Array.from({ length: 20 }, (_, i) => `s${i}`),
    "this node's own count, not its heartbeat's",
  );
  // 10 + 3 + 0 (13: the mean rounds up to 5): 5 from a; b, below the mean, hands none.
  assert.is(sessionsToMove({ policy: 'least-loaded' }, owned(10), 'a', 'c', [node('a'), node('b', 3), node('c', 0)]).length, 5);
  assert.is(sessionsToMove({ policy: 'least-loaded' }, owned(3), 'b', 'c', [node('a', 10), node('b'), node('c', 0)]).length, 0);
  // No more than the joined node lacks of the mean: 30 + 0 + 18 (the joined node has 18 already, mean 16).
  assert.is(sessionsToMove({ policy: 'least-loaded' }, owned(30), 'a', 'c', [node('a'), node('b', 0), node('c', 18)]).length, 0);
  // 30 + 0 + 10: mean 14, a hands 4 (c lacks 4), not 16.
  assert.is(sessionsToMove({ policy: 'least-loaded' }, owned(30), 'a', 'c', [node('a'), node('b', 0), node('c', 10)]).length, 4);
  assert.is(sessionsToMove({ policy: 'least-loaded' }, owned(1), 'a', 'c', [node('a'), node('c', 0)]).length, 0, 'one session: 1 + 0, the mean rounds up to 1');
  assert.is(sessionsToMove({ policy: 'least-loaded' }, owned(2), 'a', 'c', [node('a'), node('c', 0)]).length, 1);
});

test('options: defaults, each bound checked (HF_ERR_OPTION naming the field), the delay in heartbeats by default', () => {
  assert.equal(rebalanceOptions(undefined, 200), { enabled: true, perSecond: 50, concurrency: 8, delayMs: 1000 });
  assert.equal(rebalanceOptions({}, 100), { enabled: true, perSecond: 50, concurrency: 8, delayMs: 500 });
  assert.equal(rebalanceOptions({ enabled: false, perSecond: 1, concurrency: 256, delayMs: 0 }, 200), { enabled: false, perSecond: 1, concurrency: 256, delayMs: 0 });
  assert.equal(rebalanceOptions({ perSecond: 10_000, delayMs: 600_000, concurrency: 1 }, 200), { enabled: true, perSecond: 10_000, concurrency: 1, delayMs: 600_000 });
  for (const [o, field] of [
    [{ perSecond: 0 }, 'perSecond'],
    [{ perSecond: 10_001 }, 'perSecond'],
    [{ perSecond: 1.5 }, 'perSecond'],
    [{ perSecond: '5' }, 'perSecond'],
    [{ concurrency: 0 }, 'concurrency'],
    [{ concurrency: 257 }, 'concurrency'],
    [{ delayMs: -1 }, 'delayMs'],
    [{ delayMs: 600_001 }, 'delayMs'],
    [{ delayMs: Number.NaN }, 'delayMs'],
    [{ enabled: 'yes' }, 'enabled'],
  ] as const) {
    const f = () => rebalanceOptions(o as never, 200);
    assert.is(code(f), 'HF_ERR_OPTION', field);
    assert.match(message(f), `cluster.rebalance.${field}`);
  }
  assert.is(
    code(() => rebalanceOptions(null as never, 200)),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => rebalanceOptions(5 as never, 200)),
    'HF_ERR_OPTION',
  );
  // The cluster's options check them too (at start, and the CLI's).
  assert.is(
    code(() => checkClusterOptions({ servers: 'nats://h:1', node: 'n1', rebalance: { perSecond: 0 } })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => checkClusterOptions({ servers: 'nats://h:1', node: 'n1', rebalance: { perSecond: 5 } })),
    'no error',
  );
});

test.run();
