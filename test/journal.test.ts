/** The device journal: records, torn tails, compaction, and exactly-once across power cuts. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientLink } from '../firmware/client-link';
import { Journal, Rec } from '../firmware/journal';
import { MemoryStorage } from '../targets/sim/storage';
import { SIM_KEY, SimPair } from '../targets/sim/pair';
import { nodeCrypto } from '../targets/node/crypto';
import { code } from './support/errors';

test('records load back in order after the checkpoint', () => {
  const st = new MemoryStorage();
  const j = new Journal(st, 64);
  j.checkpoint(new Uint8Array([9, 9, 9]));
  j.pushed(new Uint8Array([1, 2, 3]), 0, 3);
  j.released(7);
  j.delivered(5, 500);
  const c = Journal.load(st);
  assert.ok(c);
  assert.equal([...c!.checkpoint], [9, 9, 9]);
  assert.equal(
    c!.records.map(([t]) => t),
    [Rec.MESSAGE, Rec.RELEASED, Rec.DELIVERED],
  );
  assert.equal([...c!.records[0][1]], [1, 2, 3]);
  assert.is(c!.torn, 0);
  assert.is(j.size, st.size('journal'));
});

test('a torn last record is ignored at every cut point; earlier records survive', () => {
  for (let cut = 1; cut < 5 + 3 + 4; cut++) {
    const st = new MemoryStorage();
    const j = new Journal(st, 64);
    j.checkpoint(new Uint8Array([1]));
    j.pushed(new Uint8Array([4, 5, 6, 7]), 0, 4);
    j.pushed(new Uint8Array([8, 9, 10]), 0, 3);
    st.cutTail('journal', cut);
    const c = Journal.load(st)!;
    assert.is(c.records.length, 1, `cut ${cut}`);
    assert.equal([...c.records[0][1]], [4, 5, 6, 7]);
    assert.is(c.torn, 12 - cut);
  }
});

test('a corrupted record stops the replay there (CRC)', () => {
  const st = new MemoryStorage();
  const j = new Journal(st, 64);
  j.checkpoint(new Uint8Array([1]));
  j.released(1);
  j.released(2);
  const b = st.read('journal')!;
  b[b.length - 10] ^= 1; // inside the last RELEASED record
  st.write('journal', b);
  const c = Journal.load(st)!;
  assert.is(c.records.length, 1);
});

test('no journal loads as null; one without a checkpoint is HF_ERR_STATE', () => {
  const st = new MemoryStorage();
  assert.is(Journal.load(st), null);
  const j = new Journal(st, 64);
  j.released(3);
  assert.is(
    code(() => Journal.load(st)),
    'HF_ERR_STATE',
  );
});

test('a long journal is compacted into one checkpoint and still restores', () => {
  const pair = new SimPair({ seed: 3, durable: true });
  pair.start();
  pair.run(100);
  for (let i = 0; i < 400; i++) {
    pair.deviceSend(new Uint8Array(40).fill(i & 0xff));
    pair.run(5);
  }
  pair.run(1000);
  // compactBytes is 4096 in SimPair: 400 x 40 bytes cannot all be there.
  assert.ok(pair.storage.size('journal') < 4096 + 200, `journal is ${pair.storage.size('journal')} bytes`);
  const c = Journal.load(pair.storage)!;
  assert.ok(c.checkpoint.length > 0);
  const port = { transmit: () => {}, deliver: () => true };
  const r = ClientLink.fromJournal(pair.storage, pair.now, { id: 'device-1', random: () => {}, key: SIM_KEY, crypto: nodeCrypto }, port);
  assert.ok(r && r.sid !== null);
  assert.ok(r.ep.sealer !== null, 'the session key comes back with the session');
  const again = Journal.load(pair.storage)!;
  assert.is(
    code(() => ClientLink.restore(again.checkpoint, pair.now, { id: 'device-1', random: () => {} }, port)),
    'HF_ERR_STATE',
    'an authenticated session does not restore without crypto',
  );
});

test('power cut mid-stream: every message send() accepted reaches the gateway exactly once', () => {
  const got: number[] = [];
  const pair = new SimPair({
    seed: 11,
    durable: true,
    requests: { drop: 0.1, dup: 0.05, delayMin: 2, delayMax: 40 },
    onGatewayMessage: (b, o) => {
      got.push(b[o] | (b[o + 1] << 8));
      return true;
    },
  });
  pair.start();
  pair.run(200);
  let accepted = 0;
  const sendSome = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const m = new Uint8Array([accepted & 0xff, accepted >> 8]);
      if (!pair.deviceSend(m)) break;
      accepted++;
    }
  };
  for (let round = 0; round < 10; round++) {
    sendSome(20);
    pair.run(30 + round * 7);
    pair.crash();
    pair.run(500);
    pair.restart();
  }
  for (let i = 0; i < 100 && got.length < accepted; i++) pair.run(200);
  assert.equal(
    got,
    Array.from({ length: accepted }, (_, i) => i),
  );
  assert.ok(accepted >= 150, `accepted ${accepted}`);
});

test.run();
