/**
 * A reload of `--workers 2` under traffic, end to end on loopback (the issue's "SIGHUP reload under
 * traffic: no session drops"):
 *
 *  1. 200 devices, half over HTTP and half over direct TCP, each a numbered stream both ways
 *     (test/support/workers-app.ts: receipts on disk, every message sent back), WorkerMain in this
 *     process: `reload()` (what SIGHUP runs) in mid-stream. Every session is still open afterwards
 *     with the same session id, every message reached a gateway application exactly once and in
 *     order (the old workers' receipts all before the new ones'), every echo came back once and in
 *     order, the workers' PIDs changed and every session is on a new worker. The figures measured
 *     (sessions moved, the move's duration) are printed.
 *  2. the CLI: `holdfast gateway --workers 2 --echo` and `kill -HUP`: each step is logged, the devices
 *     keep their sessions and their echoes, the new workers have new PIDs, and a devices file that
 *     no longer reads leaves everything as it was.
 * Children are stopped by PID (WorkerMain.close, Proc.kill).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LinkOptions } from '../firmware/options';
import { type DeviceChannel, connect } from '../targets/host/device/device';
import { Mux } from '../targets/host/app/mux';
import { WorkerMain } from '../targets/host/gateway/workers/main';
import { Cleanup, ROOT, devicesFile, freePort, holdfast, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'k-workers-reload';
const LINK: LinkOptions = { outSlots: 64, outBytes: 16384, inSlots: 64, inBytes: 16384, maxMessage: 1024, maxBundleBytes: 16384 };
const APP = path.join(ROOT, 'test', 'support', 'workers-app.ts');
/** Messages each device keeps in flight at most (sent, not yet echoed): the application's backlog stays empty. */
const IN_FLIGHT = 16;

/** Polls `cond` every 50 ms until it holds or `ms` passed (the loop ends either way); returns whether it held. */
async function waitUntil(ms: number, cond: () => boolean): Promise<boolean> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(50);
  return cond();
}

function message(index: number): Buffer {
  const b = Buffer.alloc(40, index & 0xff);
  b.writeUInt32BE(index, 0);
  return b;
}

interface Receipt {
  slot: number;
  session: string;
  index: number;
}

/** Every receipt the workers wrote, by device, each worker's in the order it wrote them. */
function receipts(dir: string): Map<string, Receipt[]> {
  const out = new Map<string, Receipt[]>();
  for (const f of fs.readdirSync(dir).sort()) {
    const m = /^receipts-(\d+)-\d+\.txt$/.exec(f);
    if (m === null) continue;
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const [device, session, index] = line.split(' ');
      if (index === undefined) continue;
      let l = out.get(device);
      if (l === undefined) {
        l = [];
        out.set(device, l);
      }
      l.push({ slot: Number(m[1]), session, index: Number(index) });
    }
  }
  return out;
}

/** A device sending numbered messages up to `count`, at most IN_FLIGHT ahead of their echoes, checking the echoes. */
class Device {
  readonly ch: DeviceChannel;
  sent = 0;
  echoed = 0;
  closed = false;
  error: string | null = null;
  constructor(
    readonly id: string,
    gateway: string,
    readonly tcp: string | null,
    public count: number,
  ) {
    this.ch = connect({
      gateway: `http://${gateway}`,
      ...(tcp === null ? {} : { tcp }),
      id,
      key: KEY,
      link: LINK,
      ladder: { directTimeoutMs: 20_000 },
    });
    this.ch.on('error', () => {});
    this.ch.on('close', () => {
      this.closed = true;
    });
    this.ch.on('message', (m: Buffer) => {
      const i = m.readUInt32BE(0);
      if (i !== this.echoed && this.error === null) this.error = `${this.id}: got ${i} back, expected ${this.echoed}`;
      this.echoed++;
    });
  }
  /** Sends the next message if the window of IN_FLIGHT and the session take it (one per tick: a stream that lasts). */
  tick(): void {
    if (this.sent < this.count && this.sent - this.echoed < IN_FLIGHT && this.ch.send(message(this.sent))) this.sent++;
  }
}

test('1. 200 devices over HTTP and TCP, reload mid-stream: every session open with its id, every message once and in order, new PIDs', async () => {
  const c = new Cleanup();
  const devices: Device[] = [];
  try {
    await within(150_000, 'the reload under traffic', async () => {
      const dir = tmpDir(c);
      process.env.WORKERS_TEST_DIR = dir;
      process.env.WORKERS_TEST_KEY = KEY;
      process.env.WORKERS_TEST_LINK = JSON.stringify(LINK);
      process.env.WORKERS_TEST_KEEPALIVE = '1';
      const main = await WorkerMain.start({ workers: 2, script: APP, execArgv: ['--require', 'tsx/cjs'], http: '127.0.0.1:0', tcp: '127.0.0.1:0', wire: LINK });
      c.add(() => main.close());
      // Each stream goes on until the reload is over, then 20 messages more.
      for (let i = 0; i < 200; i++) devices.push(new Device(`rl-${i}`, main.httpAddress, i % 2 === 1 ? main.tcpAddress : null, Number.POSITIVE_INFINITY));
      c.add(() => {
        for (const d of devices) d.ch.destroy();
      });
      const pacer = setInterval(() => {
        for (const d of devices) d.tick();
      }, 40);
      c.add(() => clearInterval(pacer));
      // (A machine loaded by others may take a while to open 200 sessions through 2 workers.)
      const short = (): string =>
        devices
          .filter((d) => d.echoed < 20)
          .map((d) => `${d.id} ${d.tcp === null ? 'http' : 'tcp'} ${d.ch.sessionId === null ? 'no session' : 'open'} sent ${d.sent} echoed ${d.echoed}`)
          .join('; ');
      assert.ok(await waitUntil(60_000, () => devices.every((d) => d.echoed >= 20)), `traffic before the reload, short: ${short()}`);
      const onTcp = (): number => devices.filter((d) => d.tcp !== null && d.ch.transport === 'tcp').length;
      const sids = new Map(devices.map((d) => [d.id, d.ch.sessionId]));
      const before = main.pids();
      const tcpBefore = onTcp();
      const echoedBefore = devices.reduce((n, d) => n + d.echoed, 0);
      const result = await main.reload();
      const duringReload = devices.reduce((n, d) => n + d.echoed, 0) - echoedBefore;
      for (const d of devices) d.count = d.sent + 20;
      const after = main.pids();
      assert.is(after.length, 2, `two new workers: ${after}`);
      for (const p of after) assert.not.ok(before.includes(p), `new PIDs: ${before} -> ${after}`);
      assert.ok(result.moved >= 190, `sessions moved: ${JSON.stringify(result)}`);
      assert.is(result.failed, 0, `none lost in the move: ${JSON.stringify(result)}`);
      assert.ok(await waitUntil(45_000, () => devices.every((d) => d.echoed >= d.count)), `echoes after the reload: ${devices.filter((d) => d.echoed < d.count).length} devices short`);
      const newSlots = new Set(main.workerSlots());
      const got = receipts(dir);
      let oldReceipts = 0;
      let newReceipts = 0;
      let both = 0;
      for (const d of devices) {
        assert.is(d.error, null);
        assert.not.ok(d.closed, `${d.id}: the session never closed`);
        assert.is(d.ch.sessionId, sids.get(d.id), `${d.id}: the same session`);
        const M = d.count;
        assert.is(d.echoed, M, `${d.id}: every echo once`);
        const r = got.get(d.id) ?? [];
        const old = r.filter((x) => !newSlots.has(x.slot)).map((x) => x.index);
        const fresh = r.filter((x) => newSlots.has(x.slot)).map((x) => x.index);
        oldReceipts += old.length;
        newReceipts += fresh.length;
        if (old.length > 0 && fresh.length > 0) both++;
        assert.equal([...old, ...fresh], [...Array(M).keys()], `${d.id}: every message once, in order, the old workers' before the new ones'`);
        assert.is(new Set(r.map((x) => x.session)).size, 1, `${d.id}: one session on both workers`);
        assert.is(r[0].session, sids.get(d.id), `${d.id}: the gateway's session id is the device's`);
        assert.ok(newSlots.has(main.directory.slotOfDevice(d.id)), `${d.id}: on a new worker`);
      }
      assert.ok(both >= 190, `devices whose stream went on across the reload: ${both} (receipts ${oldReceipts} old, ${newReceipts} new)`);
      assert.ok(await waitUntil(20_000, () => onTcp() === 100), `the TCP devices back on TCP: ${onTcp()}`);
      console.log(
        `  reload: ${result.moved} sessions moved (${result.gone} gone, ${result.failed} lost, ${result.left} left) in ${result.ms} ms (one session held at most ${result.maxSessionMs} ms); ${result.totalMs} ms from the call to the old workers' exit; ${duringReload} echoes came back while it ran; ${tcpBefore} devices on TCP before; receipts ${oldReceipts} old + ${newReceipts} new = ${oldReceipts + newReceipts}, ${both} devices on both`,
      );
    });
  } finally {
    await c.run();
  }
});

test('2. the CLI: kill -HUP of holdfast gateway --workers 2 moves the sessions to new workers; a bad devices file reloads nothing', async () => {
  const c = new Cleanup();
  const chans: DeviceChannel[] = [];
  try {
    await within(60_000, 'the CLI reload', async () => {
      const dir = tmpDir(c);
      const ids = [...Array(12).keys()].map((i) => `hup-${i}`);
      const file = devicesFile(dir, Object.fromEntries(ids.map((id) => [id, KEY])));
      const [http, tcp] = [await freePort(), await freePort()];
      const gw = holdfast(['gateway', '--workers', '2', '--echo', '--http', `127.0.0.1:${http}`, '--tcp', `127.0.0.1:${tcp}`, '--devices', file], c);
      await gw.waitFor(/gateway: ready .*workers=2/, 20_000, 0);
      const pidsOf = (log: string): string[] => [...log.matchAll(/worker started .*pid=(\d+)/g)].map((m) => m[1]);
      const first = pidsOf(gw.log);
      const echoes = new Map<string, number[]>();
      const sids = new Map<string, string | null>();
      const muxes: Mux[] = [];
      for (const [i, id] of ids.entries()) {
        const ch = connect({ gateway: `http://127.0.0.1:${http}`, ...(i % 2 === 1 ? { tcp: `127.0.0.1:${tcp}` } : {}), id, key: KEY, link: LINK });
        chans.push(ch);
        echoes.set(id, []);
        ch.on('error', () => {});
        const mux = new Mux(ch, { role: 'device' });
        mux.on('error', () => {});
        mux.on('message', (m: Buffer) => echoes.get(id)?.push(m.readUInt32BE(0)));
        muxes.push(mux);
      }
      const send = (k: number): void => {
        for (const mux of muxes) {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(k, 0);
          mux.send(b);
        }
      };
      for (let k = 0; k < 5; k++) send(k);
      assert.ok(await waitUntil(20_000, () => ids.every((id) => (echoes.get(id)?.length ?? 0) >= 5)), 'echoes before the reload');
      for (const ch of chans) sids.set(ch.deviceId, ch.sessionId);
      gw.kill('SIGHUP');
      await gw.waitFor(/gateway: reload: done/, 30_000, 0);
      for (const step of [
        /SIGHUP: reloading the workers/,
        /reload: starting new workers/,
        /reload: new workers ready/,
        /reload: moving sessions .*sessions=12/,
        /reload: sessions moved .*moved=12/,
        /reload: retiring old workers/,
        /reload: done/,
      ]) {
        assert.match(gw.log, step);
      }
      const second = pidsOf(gw.log).slice(first.length);
      assert.is(second.length, 2, `two new workers: ${second}`);
      for (const p of second) assert.not.ok(first.includes(p), 'new PIDs');
      for (let k = 5; k < 10; k++) send(k);
      assert.ok(await waitUntil(20_000, () => ids.every((id) => (echoes.get(id)?.length ?? 0) >= 10)), 'echoes after the reload');
      for (const ch of chans) {
        assert.equal(echoes.get(ch.deviceId), [...Array(10).keys()], `${ch.deviceId}: every echo once, in order`);
        assert.is(ch.sessionId, sids.get(ch.deviceId), `${ch.deviceId}: the same session`);
        assert.not.ok(ch.closed, `${ch.deviceId}: still open`);
      }
      // A devices file that does not read: nothing is reloaded.
      fs.writeFileSync(file, '{ not json');
      gw.kill('SIGHUP');
      await gw.waitFor(/SIGHUP: the devices file does not read; nothing reloaded/, 10_000, 0);
      // Devices still connected: the main process and its workers stop all the same.
      gw.kill('SIGTERM');
      assert.is(await gw.exited, 0, 'a clean stop');
      assert.match(gw.log, /gateway: workers stopped/);
    });
  } finally {
    for (const ch of chans) ch.destroy();
    await c.run();
  }
});

test.run();
