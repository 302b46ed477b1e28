/** The session directory's compare-and-set epochs (targets/host/gateway/cluster/directory.ts) on an in-memory bucket. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deviceKey, KvConflict, type KvLike, MemoryKv, SessionDirectory } from '../targets/host/gateway/cluster/directory';
import { Prng } from '../targets/sim/prng';
import { rejection } from './support/errors';

const sid = (n: number): Uint8Array => new Uint8Array(16).fill(n);

test('claims count the epoch up; a handoff claim from a stale epoch is refused and writes nothing', async () => {
  const d = new SessionDirectory(new MemoryKv());
  assert.is(await d.lookup('pi-1'), null);
  assert.equal(await d.claim('pi-1', 'n1', 1, sid(1), null), { node: 'n1', inc: 1, epoch: 1, sid: sid(1) });
  assert.is((await d.claim('pi-1', 'n2', 1, sid(1), 1)).epoch, 2);
  assert.is(await rejection(d.claim('pi-1', 'n3', 1, sid(1), 1)), 'HF_ERR_EPOCH');
  assert.is((await d.lookup('pi-1'))?.node, 'n2');
  assert.not.ok(await d.release('pi-1', 'n1', 2), 'not the owner');
  assert.not.ok(await d.release('pi-1', 'n2', 1), 'not the epoch');
  assert.ok(await d.release('pi-1', 'n2', 2));
  assert.equal(await d.lookup('pi-1'), { node: '', inc: 0, epoch: 3, sid: new Uint8Array(0) });
  assert.is((await d.claim('pi-1', 'n1', 2, sid(2), null)).epoch, 4, 'a released entry still counts up');
  assert.match(deviceKey('ünï/cødé'), /^d\.[A-Za-z0-9_-]+$/);
});

/** A bucket whose operations resolve in a random order: the races of many nodes. */
class RacyKv implements KvLike {
  constructor(
    private readonly kv: MemoryKv,
    private readonly rng: Prng,
  ) {}
  private async later<T>(f: () => Promise<T>): Promise<T> {
    await new Promise((r) => setTimeout(r, this.rng.int(3)));
    return f();
  }
  get(k: string) {
    return this.later(() => this.kv.get(k));
  }
  create(k: string, v: Uint8Array) {
    return this.later(() => this.kv.create(k, v));
  }
  update(k: string, v: Uint8Array, r: number) {
    return this.later(() => this.kv.update(k, v, r));
  }
}

test('property: nodes racing for one device never own it in the same epoch; the last owner has the highest', async () => {
  const seed = Number(process.env.SEED ?? Date.now() % 100000);
  const rng = new Prng(seed);
  const kv = new MemoryKv();
  for (let round = 0; round < 20; round++) {
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'].slice(0, 2 + rng.int(4));
    const won = await Promise.allSettled(nodes.map((n) => new SessionDirectory(new RacyKv(kv, rng), { maxAttempts: 50 }).claim('dev', n, 1, sid(1), null)));
    const epochs = won.filter((w) => w.status === 'fulfilled').map((w) => (w as PromiseFulfilledResult<{ epoch: number; node: string }>).value);
    assert.is(new Set(epochs.map((e) => e.epoch)).size, epochs.length, `distinct epochs (seed ${seed})`);
    const last = await new SessionDirectory(kv).lookup('dev');
    const top = epochs.reduce((a, b) => (b.epoch > a.epoch ? b : a));
    assert.is(last?.node, top.node, `the highest epoch owns it (seed ${seed})`);
  }
  void KvConflict;
});

test.run();
