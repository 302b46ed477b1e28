/**
 * The cluster's store on a real NATS server (targets/host/gateway/cluster/store.ts, store-link.ts):
 * a Replicator's records stored, group-committed and split into parts, read back as the shadows a
 * pair's standby would hold; a fence stops the writer (HF_ERR_EPOCH); a generation cut short leaves
 * the one before it as the state to take over; a purge forgets a subject.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerLink } from '../firmware/server-link';
import { silentLog } from '../targets/node/log';
import { Replicator } from '../targets/host/gateway/pair/replicator';
import { StoreLink } from '../targets/host/gateway/cluster/store-link';
import { fence, lastSequence, openStore, purge, readShadows, type Store } from '../targets/host/gateway/cluster/store';
import { Manual } from './support/manual';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { sleep, within } from './support/within';

const ok = natsAvailable('cluster-store');
let nats: Nats;
let nc: import('@nats-io/transport-node').NatsConnection;
let store: Store;
const OPTS = { outSlots: 64, outBytes: 65536, inSlots: 64, inBytes: 65536 };

test.before(async () => {
  if (!ok) return;
  nats = await startNats();
  const { connect } = await import('@nats-io/transport-node');
  nc = await connect({ servers: nats.urls });
  store = await openStore(nc, 'hfstore');
});
test.after(async () => {
  await nc?.close();
  await nats?.stop();
});

/** A live session (Manual: a device and a gateway link in memory) with `n` messages queued for the device. */
function session(n: number): { m: Manual; link: ServerLink } {
  const m = new Manual(OPTS, OPTS);
  m.client.start(m.now);
  m.deliverRequest();
  m.deliverAnswer();
  const link = m.server as ServerLink;
  for (let i = 0; i < n; i++) link.send(m.now, Buffer.from(`down${i}-${'x'.repeat(200)}`));
  return { m, link };
}

async function stored(r: Replicator): Promise<void> {
  await within(5000, 'stored', async () => {
    while (r.lag > 0) await sleep(5);
  });
}

for (const maxPartBytes of [1 << 20, 300])
  test(`records stored and read back as shadows (parts of ${maxPartBytes} bytes); a fence stops the writer`, async () => {
    if (!ok) return;
    const subject = `hfstore.repl.a.${maxPartBytes}`;
    const s = session(5);
    const r = new Replicator(
      () => [s.link],
      () => s.m.now,
      silentLog,
    );
    const link = new StoreLink(store.js, subject, await lastSequence(store, subject), { maxPartBytes });
    r.attach(link);
    for (let i = 5; i < 12; i++) {
      s.link.send(s.m.now, Buffer.from(`down${i}-${'x'.repeat(200)}`));
      r.record(s.link);
    }
    await stored(r);
    assert.ok(link.lastSequence > (maxPartBytes === 300 ? 9 : 0), `${link.lastSequence} messages`);
    const upTo = await fence(store, subject, 'b');
    const { shadows, records } = await readShadows(store, subject, upTo);
    assert.is(records, 9, 'snapshot, synced, seven deltas');
    assert.ok(shadows?.synced && shadows.size === 1);
    const sh = [...(shadows?.all() ?? [])][0];
    assert.ok(sh.bytes >= 12 * 200, `the shadow holds every message queued (${sh.bytes} bytes)`);
    const dead = new Promise<string>((resolve) => link.once('dead', (c: string) => resolve(c)));
    s.link.send(s.m.now, Buffer.from('after the fence'));
    r.record(s.link);
    assert.is(await within(5000, 'fenced', () => dead), 'HF_ERR_EPOCH');
    await purge(store, subject);
    assert.is(await lastSequence(store, subject), 0, 'purged');
  });

test('a generation cut short: the one before it is what is taken over', async () => {
  if (!ok) return;
  const subject = 'hfstore.repl.c.1';
  const s = session(3);
  const r = new Replicator(
    () => [s.link],
    () => s.m.now,
    silentLog,
  );
  const first = new StoreLink(store.js, subject, 0, { maxPartBytes: 1 << 20 });
  r.attach(first);
  await stored(r);
  // A second generation that died after its first record (a snapshot, no synced).
  await within(5000, 'idle', async () => {
    while (first.busy) await sleep(2);
  });
  const cut = new StoreLink(store.js, subject, first.lastSequence, { maxPartBytes: 1 << 20 });
  cut.send({ t: 'snap', n: 1, sid: s.link.sid, bytes: s.link.snapshot(s.m.now) });
  await within(5000, 'cut stored', async () => {
    while (cut.busy) await sleep(2);
  });
  const { shadows, records } = await readShadows(store, subject, await fence(store, subject, 'x'));
  assert.is(records, 3);
  assert.ok(shadows?.synced, 'the first generation, whole');
  assert.is(shadows?.size, 1);
});

test.run();
