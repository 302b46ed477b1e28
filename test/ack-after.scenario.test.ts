/**
 * ackAfter 'app' end to end, on loopback. First in one process: a gateway whose application confirms
 * part of what a device sent leaves the rest unacknowledged in the device's out-ring; `done`, `ack(seq)`
 * and `ack()` confirm in order, a second confirmation is HF_ERR_CONFIRM. Then what a crash shows: a
 * gateway (a child process) that received every message but confirmed only the first K is killed
 * with SIGKILL; the device (with --state, reconnecting as the CLI does) gives up the lost session and
 * its successor carries the unconfirmed ones to the next gateway (PROTOCOL 11.7): they arrive again,
 * in order, and the confirmed ones never do.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../firmware/errors';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { code } from './support/errors';
import { Cleanup, Proc, ROOT, devicesFile, freePort, tmpDir } from './support/host';
import { RestartingDevice } from './support/restarting-device';
import { sleep, within } from './support/within';

const KEY = 'k-ack-after';

/** Polls `cond` every 20 ms until it holds or `ms` passed (the loop ends either way). */
async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(20);
}

test("a gateway with ackAfter 'app' acknowledges only what its application confirmed", async () => {
  const c = new Cleanup();
  try {
    await within(20_000, 'confirmations', async () => {
      const gw = await Gateway.start({ http: '127.0.0.1:0', devices: { 'pi-1': KEY }, ackAfter: 'app' });
      c.add(() => gw.close());
      const got: { n: number; seq: number; done: () => void; again: boolean }[] = [];
      let channel: GatewayChannel | null = null;
      gw.on('session', (ch) => {
        channel = ch;
        ch.on('message', (m, done, seq, again) => got.push({ n: Number(m.toString()), seq, done, again }));
      });
      const dev = connect({ gateway: gw.http?.url ?? '', id: 'pi-1', key: KEY });
      c.add(() => dev.destroy());
      dev.on('error', () => {});
      await new Promise<void>((r) => dev.once('open', () => r()));
      for (let i = 0; i < 10; i++) assert.ok(dev.send(Buffer.from(String(i))));
      await waitUntil(5000, () => got.length === 10);
      assert.equal(
        got.map((g) => g.n),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
      const ch = channel as GatewayChannel | null;
      assert.is(ch?.ackAfter, 'app');
      assert.ok(
        got.every((g) => !g.again),
        'first deliveries',
      );
      await sleep(200);
      assert.is(dev.unacknowledged, 10, 'nothing confirmed: the device holds all ten');
      got[3].done(); // confirms 0..3
      await waitUntil(3000, () => dev.unacknowledged === 6);
      assert.is(dev.unacknowledged, 6);
      assert.is(
        code(() => got[2].done()),
        ErrorCode.CONFIRM,
        'message 2 was confirmed with 3',
      );
      ch?.ack(got[6].seq);
      await waitUntil(3000, () => dev.unacknowledged === 3);
      assert.is(dev.unacknowledged, 3);
      ch?.ack(); // everything emitted
      await waitUntil(3000, () => dev.unacknowledged === 0);
      assert.is(dev.unacknowledged, 0);
      ch?.ack(); // nothing left: no-op
      assert.is(
        code(() => ch?.ack(got[9].seq)),
        ErrorCode.CONFIRM,
        'confirmed twice',
      );
    });
  } finally {
    await c.run();
  }
});

test('a device with ackAfter app: the gateway keeps what the device application did not confirm', async () => {
  const c = new Cleanup();
  try {
    await within(20_000, 'device confirmations', async () => {
      const gw = await Gateway.start({ http: '127.0.0.1:0', devices: { 'pi-1': KEY } });
      c.add(() => gw.close());
      let channel: GatewayChannel | null = null;
      gw.on('session', (ch) => {
        channel = ch;
      });
      const dev = connect({ gateway: gw.http?.url ?? '', id: 'pi-1', key: KEY, ackAfter: 'app' });
      c.add(() => dev.destroy());
      dev.on('error', () => {});
      const dones: (() => void)[] = [];
      dev.on('message', (_m, done) => dones.push(done));
      await new Promise<void>((r) => dev.once('open', () => r()));
      await waitUntil(3000, () => channel !== null);
      const ch = channel as GatewayChannel | null;
      for (let i = 0; i < 5; i++) ch?.send(Buffer.from(`down-${i}`));
      await waitUntil(5000, () => dones.length === 5);
      await sleep(200);
      assert.is(ch?.unacknowledged, 5, 'the gateway holds all five');
      dones[1]();
      await waitUntil(3000, () => ch?.unacknowledged === 3);
      assert.is(ch?.unacknowledged, 3);
      for (const d of dones.slice(2)) d();
      await waitUntil(3000, () => ch?.unacknowledged === 0);
      assert.is(ch?.unacknowledged, 0);
    });
  } finally {
    await c.run();
  }
});

const DEAD_MS = 1500;

test('a gateway killed before confirming: the next gateway gets the unconfirmed messages again, never the confirmed ones', async () => {
  const c = new Cleanup();
  let dev: RestartingDevice | null = null;
  const N = 40;
  const K = 25;
  try {
    await within(60_000, 'the crash', async () => {
      const dir = tmpDir(c);
      const port = await freePort();
      const devices = { 'pi-1': KEY };
      devicesFile(dir, devices);
      const gw1 = new Proc(process.execPath, ['-r', 'tsx/cjs', path.join(ROOT, 'test', 'support', 'ack-gateway.ts'), JSON.stringify({ http: `127.0.0.1:${port}`, devices, confirmBelow: K })], c);
      await gw1.waitFor(/listening/, 15_000, 0);
      const d = new RestartingDevice({ gateway: `http://127.0.0.1:${port}`, id: 'pi-1', key: KEY, stateDir: path.join(dir, 'state'), link: { deadAfterMs: DEAD_MS, failAfter: 3, maxRto: 1000 } });
      dev = d;
      const { lines, opened } = d;
      await waitUntil(15_000, () => opened.length > 0);
      assert.ok(opened.length > 0, 'the first session opens');
      const first = d.ch;
      for (let i = 0; i < N; i++) assert.ok(first?.send(Buffer.from(String(i))));
      // The first gateway received all N and confirmed the first K; the device heard of those K.
      await gw1.waitFor(new RegExp(`got ${N - 1}\\n`), 10_000, 0);
      await waitUntil(5000, () => first?.unacknowledged === N - K);
      assert.is(first?.unacknowledged, N - K, `the device holds the ${N - K} unconfirmed`);
      gw1.kill('SIGKILL');
      await gw1.exited;
      const got: number[] = [];
      const again: boolean[] = [];
      const gw2 = await Gateway.start({ http: `127.0.0.1:${port}`, devices, ackAfter: 'app' });
      c.add(() => gw2.close());
      gw2.on('session', (s) =>
        s.on('message', (m, done, _seq, a) => {
          got.push(Number(m.toString()));
          again.push(a);
          done();
        }),
      );
      await waitUntil(10 * DEAD_MS, () => got.length >= N - K);
      await sleep(300); // a duplicate would show up here
      assert.equal(
        got,
        Array.from({ length: N - K }, (_, i) => K + i),
        `the unconfirmed, once each, in order:\n${lines.join('\n')}`,
      );
      assert.ok(
        lines.some((l) => /the gateway lost the session/.test(l) && new RegExp(`carried=${N - K}`).test(l)),
        lines.join('\n'),
      );
      assert.ok(
        again.every((a) => a),
        `each carried message is marked as redelivered: ${again}`,
      );
      // Sent in the new session after the carried ones: a first delivery.
      d.ch?.send(Buffer.from(String(N)));
      await waitUntil(5000, () => got.length === N - K + 1);
      assert.is(got[N - K], N);
      assert.is(again[N - K], false, 'a new message is not marked');
      await waitUntil(3000, () => d.ch?.unacknowledged === 0);
      assert.is(d.ch?.unacknowledged, 0, 'the second gateway confirmed them all');
    });
  } finally {
    (dev as RestartingDevice | null)?.stop();
    await c.run();
  }
});

test.run();
