/**
 * A gateway killed (SIGKILL) and started again keeps no sessions: a device with a state directory,
 * reconnecting as the CLI does, gives up the lost session once the silence rule ends it with
 * HF_ERR_UNKNOWN_SESSION, and opens a new session within a few `deadAfterMs`, without a burst of
 * refused requests on the way; what it queued while the gateway was down reaches the restarted one,
 * in order (PROTOCOL 11.7). The CLI gateway as a child (killed by PID; the restarted one in process
 * for the messages), the device in process.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Gateway } from '../targets/host/gateway/gateway';
import { Cleanup, type Proc, devicesFile, freePort, holdfast, tmpDir } from './support/host';
import { RestartingDevice } from './support/restarting-device';
import { sleep, within } from './support/within';

const KEY = 'k-gateway-restart';

/** Polls `cond` every 20 ms until it holds or `ms` passed (the loop ends either way). */
async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(20);
}
const DEAD_MS = 1500;

test('after a gateway restart the device with --state starts a new session within a few deadAfterMs', async () => {
  const c = new Cleanup();
  let dev: RestartingDevice | null = null;
  try {
    await within(60_000, 'the gateway restart', async () => {
      const dir = tmpDir(c);
      const devices = devicesFile(dir, { 'pi-1': KEY });
      const port = await freePort();
      const gateway = async (): Promise<Proc> => {
        const gw = holdfast(['gateway', '--http', `127.0.0.1:${port}`, '--devices', devices], c);
        await gw.waitFor(/gateway: ready/, 15_000, 0);
        return gw;
      };
      let gw = await gateway();
      dev = new RestartingDevice({ gateway: `http://127.0.0.1:${port}`, id: 'pi-1', key: KEY, stateDir: path.join(dir, 'state'), link: { deadAfterMs: DEAD_MS, failAfter: 3, maxRto: 1000 } });
      const { opened, requests, lines } = dev;
      await waitUntil(15_000, () => opened.length > 0);
      assert.ok(opened.length > 0, 'the first session opens');
      const first = opened[0];
      gw.kill('SIGKILL');
      await gw.exited;
      gw = await gateway();
      const back = performance.now();
      await waitUntil(8 * DEAD_MS, () => opened.some((s) => s !== first));
      const took = performance.now() - back;
      assert.ok(
        opened.some((s) => s !== first),
        `no new session within ${8 * DEAD_MS} ms:\n${lines.join('\n')}`,
      );
      assert.ok(took < 8 * DEAD_MS, `new session after ${Math.round(took)} ms`);
      assert.ok(
        lines.some((l) => /the gateway lost the session/.test(l) && /HF_ERR_UNKNOWN_SESSION/.test(l)),
        lines.join('\n'),
      );
      assert.not.ok(
        lines.some((l) => /resuming session from journal/.test(l)),
        'the lost session is not resumed',
      );
      // Refused requests stay few: no hot loop while the gateway answers with untagged errors.
      for (const n of requests) assert.ok(n < 100, `a session sent ${n} requests`);
      assert.is(dev.ch?.sessionId, opened[opened.length - 1]);
    });
  } finally {
    (dev as RestartingDevice | null)?.stop();
    await c.run();
  }
});

test('what the device queued while the gateway was down reaches the restarted gateway in the new session, in order', async () => {
  const c = new Cleanup();
  let dev: RestartingDevice | null = null;
  try {
    await within(60_000, 'the carried messages', async () => {
      const dir = tmpDir(c);
      const port = await freePort();
      const gw1 = holdfast(['gateway', '--http', `127.0.0.1:${port}`, '--devices', devicesFile(dir, { 'pi-1': KEY })], c);
      await gw1.waitFor(/gateway: ready/, 15_000, 0);
      dev = new RestartingDevice({ gateway: `http://127.0.0.1:${port}`, id: 'pi-1', key: KEY, stateDir: path.join(dir, 'state'), link: { deadAfterMs: DEAD_MS, failAfter: 3, maxRto: 1000 } });
      const { lines, opened } = dev;
      await waitUntil(15_000, () => opened.length > 0);
      assert.ok(opened.length > 0, 'the first session opens');
      gw1.kill('SIGKILL');
      await gw1.exited;
      // Queued while the gateway is down: never acknowledged by the gateway that is gone.
      const first = dev.ch;
      for (const m of ['one', 'two', 'three']) first?.send(Buffer.from(m));
      await sleep(300);
      const got: string[] = [];
      const gw2 = await Gateway.start({ http: `127.0.0.1:${port}`, devices: { 'pi-1': KEY } });
      c.add(() => gw2.close());
      gw2.on('session', (s: { on(ev: 'message', fn: (m: Buffer) => void): void }) => s.on('message', (m: Buffer) => got.push(m.toString())));
      await waitUntil(8 * DEAD_MS, () => got.length >= 3);
      assert.equal(got, ['one', 'two', 'three'], lines.join('\n'));
      assert.ok(
        lines.some((l) => /the gateway lost the session/.test(l) && /carried=3/.test(l)),
        lines.join('\n'),
      );
      assert.is(dev.ch?.stats.messagesCarried, 3);
    });
  } finally {
    (dev as RestartingDevice | null)?.stop();
    await c.run();
  }
});

test.run();
