/**
 * Bad input on a pair's control connection, gateway by gateway over real TCP on 127.0.0.1: a standby
 * with the wrong key, a standby that saw a newer epoch, a primary of an older epoch than the standby
 * saw, and a primary that sends a malformed delta. Each is refused with its code, said in the logs,
 * and changes no session: the primary keeps serving its devices, the standby takes over nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, type HfError } from '../firmware/errors';
import type { ServerLink } from '../firmware/server-link';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { PairRole } from '../targets/host/gateway/pair/pair';
import { type PeerConnection, PeerConnection as Peer, PeerListener } from '../targets/host/gateway/pair/peer-conn';
import type { PeerMessage } from '../targets/host/gateway/pair/peer-link';
import { createLog } from '../targets/node/log';
import { Manual } from './support/manual';
import { sleep, within } from './support/within';

const KEY = 'pair-refusals-key-0123456789';

/** A log that keeps its lines. */
function memoryLog(name: string): { log: ReturnType<typeof createLog>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLog({ name, level: 'debug', out: { write: (l: string) => lines.push(l) } }), lines };
}

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

/** A primary that echoes, and a device on it that sees its echoes; `roundTrip` checks it serves. */
async function servedPrimary(lines: ReturnType<typeof memoryLog>) {
  const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null, ackAfter: 'standby', pair: { key: KEY, node: 'a', listen: '127.0.0.1:0' }, log: lines.log });
  gw.on('session', (ch: GatewayChannel) => ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`))));
  const got: string[] = [];
  const dev = connect({ gateway: `http://${gw.http?.address}`, id: 'dev-1', key: null, link: { deadAfterMs: 10_000 } });
  dev.on('message', (m: Uint8Array) => got.push(Buffer.from(m).toString()));
  let n = 0;
  const roundTrip = async (): Promise<void> => {
    const want = `echo:${n}`;
    dev.send(Buffer.from(String(n++)));
    await waitUntil(5000, () => got.includes(want));
    assert.ok(got.includes(want), `the primary served ${want}`);
  };
  return { gw, dev, got, roundTrip };
}

test('a standby with the wrong key: refused with HF_ERR_AUTH on both sides, said once, the primary serves on alone', async () => {
  const la = memoryLog('a');
  const lb = memoryLog('b');
  const p = await servedPrimary(la);
  let b: Gateway | null = null;
  try {
    await within(15_000, 'the refusal', async () => {
      await p.roundTrip();
      b = await Gateway.start({ http: '127.0.0.1:0', devices: null, pair: { key: 'another-key-0123456789', node: 'b', standbyOf: p.gw.pair?.peerAddress, retryMs: 20 }, log: lb.log });
      await waitUntil(5000, () => la.lines.some((l) => l.includes('standby refused')) && lb.lines.filter((l) => l.includes('primary not reached')).length >= 2);
      await sleep(300); // several more attempts
      assert.ok(
        la.lines.some((l) => /warn\s+a: standby refused\s.*code=HF_ERR_AUTH/.test(l)),
        la.lines.join(''),
      );
      const said = lb.lines.filter((l) => /warn\s+b: primary refused this standby\s.*code=HF_ERR_AUTH/.test(l));
      assert.is(said.length, 1, `said once, retried quietly: ${lb.lines.join('')}`);
      assert.is(b.pair?.role, PairRole.STANDBY);
      assert.is(b.pair?.synced, false);
      assert.is(b.pair?.shadowCount, 0);
      assert.is(p.gw.pair?.peerUp, false, 'no standby attached');
      await p.roundTrip();
    });
  } finally {
    p.dev.destroy();
    await (b as Gateway | null)?.close();
    await p.gw.close();
  }
});

test('a standby that saw a newer epoch is refused with HF_ERR_EPOCH (this primary was superseded); its sessions go on', async () => {
  const la = memoryLog('a');
  const p = await servedPrimary(la);
  try {
    await within(15_000, 'the refusal', async () => {
      await p.roundTrip();
      const err = await Peer.connect(p.gw.pair?.peerAddress ?? '', { key: KEY, node: 'x', epoch: 5 }).then(
        (c) => {
          c.close();
          return null;
        },
        (e: HfError) => e,
      );
      assert.is(err?.code, ErrorCode.EPOCH, String(err?.message));
      assert.match(err?.message ?? '', /epoch 5/);
      await waitUntil(1000, () => la.lines.some((l) => l.includes('standby refused')));
      assert.ok(
        la.lines.some((l) => /standby refused\s.*code=HF_ERR_EPOCH/.test(l)),
        la.lines.join(''),
      );
      assert.is(p.gw.pair?.role, PairRole.PRIMARY);
      assert.is(p.gw.pair?.epoch, 1);
      await p.roundTrip();
    });
  } finally {
    p.dev.destroy();
    await p.gw.close();
  }
});

/** A primary played by the test: a peer listener at `epoch` whose connections it drives by hand. */
async function fakePrimary(epoch: number): Promise<{ l: PeerListener; conns: PeerConnection[]; got: PeerMessage[][]; deaths: string[][] }> {
  const l = await PeerListener.listen('127.0.0.1:0', { key: KEY, node: 'fake', epoch, role: 'primary', maxPeers: 1 });
  const conns: PeerConnection[] = [];
  const got: PeerMessage[][] = [];
  /** Per connection, how it died: [code, message]. */
  const deaths: string[][] = [];
  l.on('peer', (c) => {
    const k = conns.length;
    const mine: PeerMessage[] = [];
    got.push(mine);
    conns.push(c);
    c.on('message', (m) => mine.push(m));
    c.on('dead', (code, message) => {
      deaths[k] = [code, message];
    });
  });
  return { l, conns, got, deaths };
}

/** A standby gateway attached to the fake primary `f` (once its connection is there), logging to `l`. */
async function standbyOf(f: { l: PeerListener; conns: PeerConnection[] }, l: ReturnType<typeof memoryLog>): Promise<Gateway> {
  const b = await Gateway.start({ http: '127.0.0.1:0', devices: null, pair: { key: KEY, node: 'b', standbyOf: f.l.address, retryMs: 20 }, log: l.log });
  await waitUntil(3000, () => f.conns.length === 1);
  return b;
}

/** A real session's snapshot (its hello taken by a server link in memory). */
function sessionSnapshot(): { sid: Uint8Array; bytes: Uint8Array } {
  const m = new Manual();
  m.client.start(m.now);
  m.deliverRequest();
  const server = m.server as ServerLink;
  return { sid: server.sid, bytes: server.snapshot(m.now) };
}

test('a primary of an older epoch than the standby saw: refused with HF_ERR_EPOCH, nothing taken from it', async () => {
  const lb = memoryLog('b');
  const f = await fakePrimary(3);
  let b: Gateway | null = null;
  try {
    await within(15_000, 'the refusal', async () => {
      const sb = await standbyOf(f, lb);
      b = sb;
      // The listener sees the connection before the standby has read the primary's hello.
      await waitUntil(3000, () => sb.pair?.epoch === 3);
      assert.is(sb.pair?.epoch, 3, 'the standby learned epoch 3');
      // The connection ends before the standby synced (no takeover); the primary comes back at epoch 1.
      f.l.setEpoch(1);
      f.conns[0].close();
      await waitUntil(3000, () => lb.lines.some((l) => l.includes('primary of an older epoch refused')));
      assert.ok(
        lb.lines.some((l) => /primary of an older epoch refused\s.*code=HF_ERR_EPOCH epoch=1 seen=3/.test(l)),
        lb.lines.join(''),
      );
      if (f.conns.length > 1) {
        const snap = sessionSnapshot();
        try {
          f.conns[f.conns.length - 1].send({ t: 'snap', n: 1, sid: snap.sid, bytes: snap.bytes });
        } catch {
          // closed by the standby already
        }
      }
      await sleep(100);
      assert.is(b.pair?.role, PairRole.STANDBY);
      assert.is(b.pair?.epoch, 3);
      assert.is(b.pair?.shadowCount, 0, 'nothing taken from the older primary');
    });
  } finally {
    await (b as Gateway | null)?.close();
    f.l.close();
  }
});

test('a malformed delta: HF_ERR_PEER told to the primary, the shadow untouched, no takeover; the standby attaches again from fresh snapshots', async () => {
  const lb = memoryLog('b');
  const f = await fakePrimary(1);
  let b: Gateway | null = null;
  try {
    await within(15_000, 'the refusal', async () => {
      b = await standbyOf(f, lb);
      const snap = sessionSnapshot();
      f.conns[0].send({ t: 'snap', n: 1, sid: snap.sid, bytes: snap.bytes });
      f.conns[0].send({ t: 'synced', n: 2 });
      await waitUntil(2000, () => b?.pair?.synced === true);
      assert.is(b.pair?.synced, true);
      assert.is(b.pair?.shadowCount, 1);
      assert.is(b.pair?.lastRecord, 2);
      f.conns[0].send({ t: 'delta', n: 3, sid: snap.sid, d: [4, 'not rn'] });
      await waitUntil(3000, () => f.deaths[0] !== undefined && f.conns.length === 2);
      // The standby told its refusal before it closed: the primary's connection died of it.
      const [code, message] = f.deaths[0] ?? [];
      assert.is(code, ErrorCode.PEER, String(message));
      assert.match(message ?? '', /refused by the peer: malformed delta: rn is not \[rnTop, rnSeen\]/);
      assert.ok(
        lb.lines.some((l) => /primary sent a bad record: attaching again\s.*code=HF_ERR_PEER/.test(l)),
        lb.lines.join(''),
      );
      // The connection it refused ended: no takeover (it was not the primary dying).
      assert.is(b.pair?.role, PairRole.STANDBY);
      assert.is(b.pair?.epoch, 1);
      const r = await fetch(`${b.http?.url}`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: new Uint8Array([0xa0]) });
      assert.is(r.headers.get('x-holdfast-error'), 'HF_ERR_STANDBY', 'the standby still serves no device');
      // Attached again: it takes the state afresh, and the records that followed count from 1.
      assert.is(b.pair?.synced, false, 'the refused state is not kept');
      f.conns[1].send({ t: 'snap', n: 1, sid: snap.sid, bytes: snap.bytes });
      f.conns[1].send({ t: 'synced', n: 2 });
      await waitUntil(2000, () => b?.pair?.synced === true);
      assert.is(b.pair?.shadowCount, 1);
      // Now a primary that dies is taken over, with the session.
      f.conns[1].close();
      await waitUntil(2000, () => b?.pair?.role === PairRole.PRIMARY);
      assert.is(b.pair?.role, PairRole.PRIMARY);
      assert.is(b.pair?.epoch, 2);
      assert.ok(
        lb.lines.some((l) => /took over from the primary\s.*sessions=1 /.test(l)),
        lb.lines.join(''),
      );
    });
  } finally {
    await (b as Gateway | null)?.close();
    f.l.close();
  }
});

test.run();
