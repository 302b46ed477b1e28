/**
 * What both nodes of a pair report of themselves (Gateway.pairStatus, the holdfast_pair_ families of
 * metricsText, the log lines of attach, loss and takeover), over the in-memory control connection of
 * test/pair.test.ts: before the standby attached, once it synced, while a device's records flow and
 * are confirmed, and after the primary died and the standby took over.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { PairRole } from '../targets/host/gateway/pair/pair';
import type { Log } from '../hal/log';
import { MemoryPeers } from './support/memory-peers';
import { parseScrape } from './support/scrape';
import { sleep, within } from './support/within';

const KEY = 'pair-key-0123456789';
const ROLES = ['standby', 'primary', 'closed'];

/** The pair's families of a scrape: each with its # HELP and # TYPE before its samples. */
function pairMetrics(gw: Gateway): Map<string, number> {
  const text = gw.metricsText();
  const lines = text.split('\n');
  const want: Record<string, string> = {
    holdfast_pair_role: 'gauge',
    holdfast_pair_epoch: 'gauge',
    holdfast_pair_peer_up: 'gauge',
    holdfast_pair_takeovers_total: 'counter',
    holdfast_pair_records_total: 'counter',
    holdfast_pair_held_answers: 'gauge',
    holdfast_pair_lag_records: 'gauge',
    holdfast_pair_shadow_sessions: 'gauge',
  };
  for (const [name, type] of Object.entries(want)) {
    const t = lines.indexOf(`# TYPE ${name} ${type}`);
    assert.ok(t > 0, `# TYPE ${name} ${type} in the scrape`);
    assert.match(lines[t - 1], new RegExp(`^# HELP ${name} \\S`), `# HELP ${name} just before its # TYPE`);
    assert.match(lines[t + 1], new RegExp(`^${name}(\\{| )`), `a sample of ${name} just after its # TYPE`);
  }
  const all = parseScrape(text);
  const pair = new Map<string, number>();
  for (const [k, v] of all) if (k.startsWith('holdfast_pair_')) pair.set(k, v);
  return pair;
}

/** The role lines of a scrape: role -> value, one line per possible role. */
function roleLines(m: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of m) {
    const r = /^holdfast_pair_role\{role="([a-z]+)"\}$/.exec(k);
    if (r !== null) out[r[1]] = v;
  }
  return out;
}

const onlyRole = (role: string): Record<string, number> => Object.fromEntries(ROLES.map((r) => [r, r === role ? 1 : 0]));

interface Line {
  level: string;
  event: string;
  fields: Record<string, unknown>;
}

function recordingLog(lines: Line[]): Log {
  const at =
    (level: string) =>
    (event: string, fields: Record<string, unknown> = {}): void => {
      lines.push({ level, event, fields });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

test('a pair reports role, epoch, peer, records, lag and takeovers in pairStatus, metrics and logs', async () => {
  const peers = new MemoryPeers();
  const logA: Line[] = [];
  const logB: Line[] = [];
  let primary: Gateway | null = null;
  let standby: Gateway | null = null;
  let dev: ReturnType<typeof connect> | null = null;
  try {
    await within(20_000, 'the pair status', async () => {
      // The primary's lag as each record reaches the standby (before the standby's own listener: its
      // confirmation is not sent yet, so a record in flight shows).
      const lagSeen: number[] = [];
      const sampled = async (address: string, epoch: number) => {
        const p = await peers.connect(address, epoch);
        p.on('message', (m) => {
          if (m.t === 'delta' || m.t === 'snap') lagSeen.push(primary?.pairStatus()?.lagRecords ?? -1);
        });
        return p;
      };
      // The standby first: nothing listens at mem:a yet, so it keeps trying and has no peer.
      const b = await Gateway.start({
        http: '127.0.0.1:0',
        devices: null,
        ackAfter: 'standby',
        log: recordingLog(logB),
        pair: { key: KEY, node: 'b', listen: 'mem:b', standbyOf: 'mem:a', retryMs: 20, connect: sampled, listenPeers: peers.listenFor(() => b.pair?.epoch ?? 0) },
      });
      standby = b;
      let m = pairMetrics(b);
      assert.equal(roleLines(m), onlyRole('standby'));
      assert.is(m.get('holdfast_pair_peer_up'), 0, 'no primary yet');
      assert.is(m.get('holdfast_pair_epoch'), 0);
      assert.is(m.get('holdfast_pair_takeovers_total'), 0);
      assert.is(m.get('holdfast_pair_records_total'), 0);
      assert.is(m.get('holdfast_pair_shadow_sessions'), 0);
      assert.equal(b.pairStatus(), {
        role: 'standby',
        epoch: 0,
        node: 'b',
        peer: { up: false },
        takeovers: 0,
        records: 0,
        heldAnswers: 0,
        lagRecords: 0,
        shadowSessions: 0,
        shadowBytes: 0,
      });

      const a = await Gateway.start({
        http: '127.0.0.1:0',
        devices: null,
        ackAfter: 'standby',
        log: recordingLog(logA),
        pair: { key: KEY, node: 'a', listen: 'mem:a', connect: peers.connect, listenPeers: peers.listenFor(() => a.pair?.epoch ?? 1) },
      });
      primary = a;
      m = pairMetrics(a);
      assert.equal(roleLines(m), onlyRole('primary'));
      assert.is(m.get('holdfast_pair_peer_up'), 0, 'no standby yet');
      assert.is(m.get('holdfast_pair_epoch'), 1);

      await waitUntil(3000, () => b.pair?.synced === true);
      assert.ok(b.pair?.synced, 'the standby synced');
      const sa = a.pairStatus();
      const sb = b.pairStatus();
      assert.equal(
        [sa?.peer, sb?.peer],
        [
          { up: true, node: 'standby' },
          { up: true, node: 'primary' },
        ],
      );
      assert.equal([sa?.epoch, sb?.epoch], [1, 1]);
      m = pairMetrics(a);
      assert.equal(roleLines(m), onlyRole('primary'));
      assert.is(m.get('holdfast_pair_peer_up'), 1);
      m = pairMetrics(b);
      assert.equal(roleLines(m), onlyRole('standby'));
      assert.is(m.get('holdfast_pair_peer_up'), 1);
      assert.is(m.get('holdfast_pair_epoch'), 1, "the standby knows its primary's epoch");

      // A device on the primary: every answer is a record the standby confirms.
      lagSeen.length = 0;
      a.on('session', (ch: GatewayChannel) => ch.on('message', (msg: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(msg).toString()}`))));
      const before = pairMetrics(a).get('holdfast_pair_records_total') ?? 0;
      const got: string[] = [];
      dev = connect({ gateway: `${a.http?.url}`, id: 'dev-1', key: null, link: { deadAfterMs: 20_000 } });
      dev.on('message', (msg: Uint8Array) => got.push(Buffer.from(msg).toString()));
      const N = 20;
      for (let i = 0; i < N; i++) {
        dev.send(Buffer.from(`m${i}`));
        if (i % 5 === 4) await sleep(5);
      }
      await waitUntil(5000, () => got.length >= N);
      assert.is(got.length, N, 'every echo came back');
      await waitUntil(2000, () => a.pairStatus()?.lagRecords === 0 && a.pairStatus()?.heldAnswers === 0);
      assert.ok(
        lagSeen.some((n) => n > 0),
        `records were ahead of the standby's confirmation at some point: ${lagSeen.join(',')}`,
      );
      const ma = pairMetrics(a);
      const records = ma.get('holdfast_pair_records_total') ?? 0;
      assert.ok(records > before, `records went from ${before} to ${records}`);
      assert.is(ma.get('holdfast_pair_lag_records'), 0, 'every record confirmed');
      assert.is(ma.get('holdfast_pair_held_answers'), 0, 'no answer held');
      await waitUntil(2000, () => (b.pairStatus()?.records ?? 0) === records);
      const mb = pairMetrics(b);
      assert.is(mb.get('holdfast_pair_records_total'), records, 'the standby took every record the primary sent');
      assert.is(mb.get('holdfast_pair_shadow_sessions'), 1, "the device's session is a shadow on the standby");
      assert.ok((b.pairStatus()?.shadowBytes ?? -1) >= 0);

      // The primary dies: the standby takes over, one epoch up.
      peers.kill('mem:a');
      await waitUntil(3000, () => b.pair?.role === PairRole.PRIMARY);
      assert.is(b.pair?.role, PairRole.PRIMARY, 'the standby took over');
      const after = b.pairStatus();
      assert.is(after?.role, 'primary');
      assert.is(after?.epoch, 2, 'epoch one above its primary');
      assert.is(after?.takeovers, 1);
      assert.equal(after?.peer, { up: false });
      assert.is(after?.shadowSessions, 0, 'the shadows are live sessions now');
      m = pairMetrics(b);
      assert.equal(roleLines(m), onlyRole('primary'));
      assert.is(m.get('holdfast_pair_epoch'), 2);
      assert.is(m.get('holdfast_pair_takeovers_total'), 1);
      assert.is(m.get('holdfast_pair_peer_up'), 0);
      assert.ok((m.get('holdfast_pair_records_total') ?? 0) >= records, 'a counter does not fall');
      await waitUntil(2000, () => a.pairStatus()?.peer.up === false);
      assert.is(pairMetrics(a).get('holdfast_pair_peer_up'), 0, 'the old primary lost its standby');

      // The log lines of attach, loss and takeover carry role and epoch.
      const find = (lines: Line[], event: string): Line => {
        const l = lines.find((x) => x.event === event);
        assert.ok(l !== undefined, `a "${event}" line`);
        return l;
      };
      const attached = find(logB, 'attached to primary');
      assert.equal([attached.level, attached.fields.role, attached.fields.epoch], ['info', 'standby', 1]);
      const took = find(logB, 'took over from the primary');
      assert.equal([took.level, took.fields.role, took.fields.epoch, took.fields.takeovers], ['warn', 'primary', 2, 1]);
      const sAttached = find(logA, 'standby attached');
      assert.equal([sAttached.level, sAttached.fields.role, sAttached.fields.epoch, sAttached.fields.node], ['info', 'primary', 1, 'standby']);
      const lost = find(logA, 'standby lost');
      assert.equal([lost.level, lost.fields.role, lost.fields.epoch], ['warn', 'primary', 1]);
      const start = logB.find((x) => x.event === 'pair');
      assert.equal([start?.fields.role, start?.fields.epoch], ['standby', 0]);
      assert.is(logA.filter((x) => x.event.includes('record')).length, 0, 'no line per record');
    });
  } finally {
    (dev as ReturnType<typeof connect> | null)?.destroy();
    await sleep(20);
    await (standby as Gateway | null)?.close();
    await (primary as Gateway | null)?.close();
  }
});

test('a gateway without a pair: pairStatus() is null and the scrape has no holdfast_pair_ family', async () => {
  const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null });
  try {
    assert.is(gw.pairStatus(), null);
    assert.not.match(gw.metricsText(), /holdfast_pair_/);
  } finally {
    await gw.close();
  }
});

test('a closed pair node reports role closed', async () => {
  const peers = new MemoryPeers();
  const gw = await Gateway.start({
    http: '127.0.0.1:0',
    devices: null,
    pair: { key: KEY, node: 'a', listen: 'mem:a', connect: peers.connect, listenPeers: peers.listenFor(() => 1) },
  });
  await gw.close();
  assert.is(gw.pairStatus()?.role, 'closed');
  assert.equal(roleLines(parseScrape(gw.metricsText())), onlyRole('closed'));
});

test.run();
