/**
 * `--workers 2` end to end on loopback: WorkerMain (the main process, here in the test process)
 * with two forked gateway workers (test/support/workers-app.ts: receipts on disk, every message sent
 * back), devices as in-process connect() clients with small link options.
 *
 *  1. 200 devices, half over HTTP and half over direct TCP, each a numbered stream both ways
 *     (workers with handoffKeepAlive: each device has connections of its own):
 *     every message exactly once, in order, both ways; the sessions on both workers; a device that
 *     reconnects (a new hello on a new socket) lands on the same worker.
 *  2. kill -9 of the worker holding most of 40 devices with state directories, under traffic: the
 *     worker is restarted, the devices resume on a new session; every message reaches a gateway
 *     application, in order within each session, and only messages the gateway never acknowledged
 *     (the ones a successor carried) come twice.
 *  3. a reverse proxy that pools its upstream keep-alive connections for all devices (the default
 *     handoff: each response closes its connection): every request is routed by the main process,
 *     every message once, in order.
 *  4. the CLI: `holdfast gateway --workers 2 --echo` serves devices on both workers, and a port
 *     forwarded by `holdfast device` through a worker carries 1 MiB intact; flags it cannot serve yet
 *     are refused with HF_ERR_OPTION.
 * Children are stopped by PID (WorkerMain.close, Proc.kill).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LinkOptions } from '../firmware/options';
import { type DeviceChannel, connect } from '../targets/host/device/device';
import { Mux } from '../targets/host/app/mux';
import { WorkerMain, WorkerState } from '../targets/host/gateway/workers/main';
import { Cleanup, ROOT, devicesFile, freePort, hashServer, holdfast, pushThrough, randomData, sha256, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'k-workers-scenario';
const LINK: LinkOptions = { outSlots: 64, outBytes: 16384, inSlots: 64, inBytes: 16384, maxMessage: 1024, maxBundleBytes: 16384 };
const APP = path.join(ROOT, 'test', 'support', 'workers-app.ts');

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

/** Every receipt the workers wrote, by device, in the order each worker wrote them. */
function receipts(dir: string): Map<string, Receipt[]> {
  const out = new Map<string, Receipt[]>();
  for (const f of fs.readdirSync(dir)) {
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

async function startMain(c: Cleanup, dir: string, keepAlive = false): Promise<WorkerMain> {
  // (the workers' environment is this process's)
  process.env.WORKERS_TEST_DIR = dir;
  process.env.WORKERS_TEST_KEY = KEY;
  process.env.WORKERS_TEST_LINK = JSON.stringify(LINK);
  process.env.WORKERS_TEST_KEEPALIVE = keepAlive ? '1' : '0';
  const main = await WorkerMain.start({
    workers: 2,
    script: APP,
    execArgv: ['--require', 'tsx/cjs'],
    http: '127.0.0.1:0',
    tcp: '127.0.0.1:0',
    wire: LINK,
    limits: { restartDelayMs: 100 },
  });
  c.add(() => main.close());
  return main;
}

/** A device sending `count` numbered messages and checking the ones coming back. */
class Device {
  ch: DeviceChannel;
  sent = 0;
  echoed = 0;
  error: string | null = null;
  constructor(
    readonly id: string,
    readonly main: WorkerMain,
    readonly tcp: boolean,
  ) {
    this.ch = this.open();
  }
  open(): DeviceChannel {
    const ch = connect({
      gateway: `http://${this.main.httpAddress}`,
      ...(this.tcp ? { tcp: this.main.tcpAddress } : {}),
      id: this.id,
      key: KEY,
      link: LINK,
      // A loaded machine may take longer than the default 3 s to hand 100 connections on: no fall back to HTTP for that.
      ladder: { directTimeoutMs: 20_000 },
    });
    ch.on('error', () => {});
    ch.on('message', (m: Buffer) => {
      const i = m.readUInt32BE(0);
      if (i !== this.echoed && this.error === null) this.error = `${this.id}: got ${i} back, expected ${this.echoed}`;
      this.echoed++;
    });
    ch.on('drain', () => this.pump());
    return ch;
  }
  /** Sends up to message `until` (exclusive) as the window lets it. */
  until = 0;
  pump(): void {
    while (this.sent < this.until && this.ch.send(message(this.sent))) this.sent++;
  }
  sendTo(n: number): void {
    this.until = n;
    this.pump();
  }
}

test('1. 200 devices over HTTP and TCP on 2 workers: exactly once, in order, both ways; spread; a reconnect lands on the same worker', async () => {
  const c = new Cleanup();
  const devices: Device[] = [];
  try {
    await within(60_000, 'the 200 devices', async () => {
      const dir = tmpDir(c);
      const main = await startMain(c, dir, true);
      const N = 20;
      for (let i = 0; i < 200; i++) {
        const d = new Device(`dev-${i}`, main, i % 2 === 1);
        devices.push(d);
        d.sendTo(N);
      }
      c.add(() => {
        for (const d of devices) d.ch.destroy();
      });
      const all = await waitUntil(40_000, () => devices.every((d) => d.echoed >= N));
      assert.ok(all, `echoes: ${devices.filter((d) => d.echoed < N).length} devices short`);
      for (const d of devices) assert.is(d.error, null);
      const onTcp = (): number => devices.filter((d) => d.tcp && d.ch.transport === 'tcp').length;
      assert.ok(await waitUntil(20_000, () => onTcp() === 100), `the TCP devices moved onto TCP (their first frame routed by session id): ${onTcp()}`);
      const got = receipts(dir);
      const slotOf = new Map<string, number>();
      for (const d of devices) {
        const r = got.get(d.id) ?? [];
        assert.equal(
          r.map((x) => x.index),
          [...Array(N).keys()],
          `${d.id}: every message once, in order`,
        );
        assert.is(new Set(r.map((x) => x.session)).size, 1, `${d.id}: one session`);
        slotOf.set(d.id, r[0].slot);
        assert.is(main.directory.slotOfDevice(d.id), r[0].slot, `${d.id}: the directory agrees`);
      }
      const on = [0, 1].map((s) => main.directory.sessions(s));
      assert.ok(on[0] > 0 && on[1] > 0 && on[0] + on[1] === 200, `sessions spread: ${on}`);
      assert.ok(main.handoffCount >= 200, `${main.handoffCount} handoffs`);

      // 20 devices (10 of each transport) drop their session and open a new one on a new socket.
      const again = devices.slice(0, 20);
      for (const d of again) {
        d.ch.destroy();
        d.sent = 0;
        d.echoed = 0;
        d.ch = d.open();
        d.sendTo(5);
      }
      assert.ok(await waitUntil(20_000, () => again.every((d) => d.echoed >= 5)), 'the reconnected devices');
      const after = receipts(dir);
      for (const d of again) {
        const r = (after.get(d.id) ?? []).slice(N);
        assert.is(r.length, 5, `${d.id}: the new session's messages`);
        assert.ok(r[0].session !== (after.get(d.id) ?? [])[0].session, `${d.id}: a new session`);
        for (const x of r) assert.is(x.slot, slotOf.get(d.id), `${d.id}: on the same worker`);
        assert.is(main.directory.slotOfDevice(d.id), slotOf.get(d.id));
      }
    });
  } finally {
    await c.run();
  }
});

/** A device with a state directory that opens a new session whenever one ends (as `holdfast device --state` does). */
class ResumingDevice {
  ch: DeviceChannel | null = null;
  sent = 0;
  /** Messages the sessions after the first took over from a lost one (ClientLink.successor). */
  carried = 0;
  sessions = 0;
  error: string | null = null;
  stopped = false;
  constructor(
    readonly id: string,
    readonly main: WorkerMain,
    readonly tcp: boolean,
    readonly stateDir: string,
    readonly count: number,
  ) {
    this.open();
  }
  open(): void {
    const ch = connect({
      gateway: `http://${this.main.httpAddress}`,
      ...(this.tcp ? { tcp: this.main.tcpAddress } : {}),
      id: this.id,
      key: KEY,
      stateDir: this.stateDir,
      link: { ...LINK, deadAfterMs: 1500, failAfter: 3, maxRto: 1000 },
    });
    this.ch = ch;
    this.sessions++;
    this.carried += ch.stats.messagesCarried;
    let last = -1;
    ch.on('error', () => {});
    ch.on('message', (m: Buffer) => {
      const i = m.readUInt32BE(0);
      if (last >= 0 && i !== last + 1 && this.error === null) this.error = `${this.id}: got ${i} back after ${last} in one session`;
      last = i;
    });
    ch.once('close', () => {
      if (this.ch === ch) this.ch = null;
      if (!this.stopped) setTimeout(() => !this.stopped && this.open(), 200);
    });
  }
  /** Sends the next message if the session takes it. */
  tick(): void {
    if (this.ch !== null && this.sent < this.count && this.ch.send(message(this.sent))) this.sent++;
  }
  stop(): void {
    this.stopped = true;
    this.ch?.destroy();
  }
}

test('2. kill -9 of a worker under traffic: it is restarted, and nothing acknowledged is lost or duplicated', async () => {
  const c = new Cleanup();
  const devices: ResumingDevice[] = [];
  try {
    await within(60_000, 'the worker kill', async () => {
      const dir = tmpDir(c);
      const main = await startMain(c, dir);
      const M = 80;
      for (let i = 0; i < 40; i++) devices.push(new ResumingDevice(`res-${i}`, main, i % 2 === 1, path.join(dir, `state-${i}`), M));
      c.add(() => {
        for (const d of devices) d.stop();
      });
      const pacer = setInterval(() => {
        for (const d of devices) d.tick();
      }, 25);
      c.add(() => clearInterval(pacer));
      assert.ok(await waitUntil(20_000, () => devices.every((d) => d.sent >= 25)), 'traffic before the kill');
      const on = [0, 1].map((s) => devices.filter((d) => main.directory.slotOfDevice(d.id) === s).length);
      const victim = on[0] >= on[1] ? 0 : 1;
      const pid = main.pid(victim) as number;
      assert.ok(on[victim] > 0, `devices on the worker to kill: ${on}`);
      process.kill(pid, 'SIGKILL');
      assert.ok(await waitUntil(15_000, () => main.states()[victim] === WorkerState.READY && main.pid(victim) !== pid), 'the worker is restarted');
      const complete = (): boolean => {
        const got = receipts(dir);
        return devices.every((d) => d.sent >= M && new Set((got.get(d.id) ?? []).map((x) => x.index)).size === M);
      };
      assert.ok(await waitUntil(35_000, complete), `every message reached an application: ${devices.filter((d) => d.sent < M).length} devices still sending`);
      const got = receipts(dir);
      let resumed = 0;
      for (const d of devices) {
        assert.is(d.error, null);
        const r = got.get(d.id) ?? [];
        // Within a session: in order, each once.
        const bySession = new Map<string, number[]>();
        for (const x of r) {
          let l = bySession.get(x.session);
          if (l === undefined) {
            l = [];
            bySession.set(x.session, l);
          }
          l.push(x.index);
        }
        for (const [sid, l] of bySession) for (let k = 1; k < l.length; k++) assert.is(l[k], l[k - 1] + 1, `${d.id} session ${sid.slice(0, 8)}: in order, once`);
        // Across sessions: only what a successor carried (never acknowledged) may come twice.
        const twice = r.length - new Set(r.map((x) => x.index)).size;
        assert.ok(twice <= d.carried, `${d.id}: ${twice} messages twice, ${d.carried} carried`);
        if (bySession.size > 1) resumed++;
      }
      assert.ok(resumed > 0, 'the devices of the killed worker went on in new sessions');
    });
  } finally {
    await c.run();
  }
});

/** A reverse proxy on 127.0.0.1 forwarding every request to `target` over one pool of keep-alive connections. */
async function poolingProxy(c: Cleanup, target: string, sockets: number): Promise<{ port: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets, scheduling: 'lifo' });
  const [host, port] = target.split(':');
  const server = http.createServer((req, res) => {
    const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  c.add(() => new Promise((r) => server.close(r)));
  c.add(() => {
    server.closeAllConnections();
    agent.destroy();
  });
  return { port: (server.address() as net.AddressInfo).port };
}

test('3. a proxy pooling keep-alive connections for all devices: every request reaches the worker of its session', async () => {
  const c = new Cleanup();
  const devices: Device[] = [];
  try {
    await within(45_000, 'the pooling proxy', async () => {
      const dir = tmpDir(c);
      const main = await startMain(c, dir);
      const proxy = await poolingProxy(c, main.httpAddress, 8);
      const via = { ...main, httpAddress: `127.0.0.1:${proxy.port}` } as WorkerMain;
      const N = 30;
      for (let i = 0; i < 12; i++) {
        const d = new Device(`pool-${i}`, via, false);
        devices.push(d);
        d.sendTo(N);
      }
      c.add(() => {
        for (const d of devices) d.ch.destroy();
      });
      assert.ok(await waitUntil(30_000, () => devices.every((d) => d.echoed >= N)), `echoes: ${devices.map((d) => d.echoed)}`);
      for (const d of devices) assert.is(d.error, null);
      const got = receipts(dir);
      for (const d of devices)
        assert.equal(
          (got.get(d.id) ?? []).map((x) => x.index),
          [...Array(N).keys()],
          `${d.id}: every message once, in order`,
        );
      const slots = new Set(devices.map((d) => main.directory.slotOfDevice(d.id)));
      assert.is(slots.size, 2, 'sessions on both workers');
    });
  } finally {
    await c.run();
  }
});

test('4. the CLI: holdfast gateway --workers 2 --echo serves devices on both workers and forwards a port; what it cannot serve yet is refused', async () => {
  const c = new Cleanup();
  const chans: DeviceChannel[] = [];
  try {
    await within(45_000, 'the CLI with workers', async () => {
      const dir = tmpDir(c);
      const ids = [...Array(16).keys()].map((i) => `cli-${i}`);
      const file = devicesFile(dir, Object.fromEntries(ids.map((id) => [id, KEY])));
      const [http, tcp] = [await freePort(), await freePort()];
      const sink = await hashServer(c);
      const gw = holdfast(['gateway', '--workers', '2', '--echo', '--http', `127.0.0.1:${http}`, '--tcp', `127.0.0.1:${tcp}`, '--devices', file, '--allow', `127.0.0.1:${sink.port}`], c);
      await gw.waitFor(/gateway: ready .*workers=2/, 20_000, 0);
      let echoed = 0;
      for (const [i, id] of ids.entries()) {
        const ch = connect({ gateway: `http://127.0.0.1:${http}`, ...(i % 2 === 1 ? { tcp: `127.0.0.1:${tcp}` } : {}), id, key: KEY, link: LINK });
        chans.push(ch);
        ch.on('error', () => {});
        const mux = new Mux(ch, { role: 'device' });
        mux.on('error', () => {});
        mux.on('message', () => echoed++);
        for (let k = 0; k < 5; k++) mux.send(Buffer.from(`m${k}`));
      }
      assert.ok(await waitUntil(20_000, () => echoed >= ids.length * 5), `${echoed} echoes`);
      assert.match(gw.log, /gateway-worker-0: session opened/);
      assert.match(gw.log, /gateway-worker-1: session opened/);
      for (const ch of chans) ch.destroy();
      // A port forwarded through a session on a worker (the CLI's own wiring there).
      const local = await freePort();
      const dev = holdfast(['device', '--id', 'cli-0', '--key', KEY, '--gateway', `http://127.0.0.1:${http}`, '--tcp', `127.0.0.1:${tcp}`, '--forward', `${local}:127.0.0.1:${sink.port}`], c);
      await dev.waitFor(/device: session open/, 20_000, 0);
      const data = randomData(1 << 20);
      assert.is((await pushThrough(local, data)).toString(), sha256(data), 'sha256 through a forward served by a worker');
      dev.kill('SIGTERM');
      for (const bad of [
        ['--workers', '2', '--data', dir],
        ['--workers', '2', '--metrics', '127.0.0.1:1'],
        ['--workers', '0'],
        ['--workers', 'many'],
        ['--placement', 'label'],
      ]) {
        const p = holdfast(['gateway', '--http', '127.0.0.1:0', '--devices', file, ...bad], c);
        const code = await p.exited;
        assert.ok(code !== 0, `${bad.join(' ')}: exit ${code}`);
        assert.match(p.log, /HF_ERR_OPTION/, bad.join(' '));
      }
      gw.kill('SIGHUP');
      await gw.waitFor(/gateway: reload: done/, 20_000, 0);
      gw.kill('SIGTERM');
      assert.is(await gw.exited, 0, 'a clean stop (after a reload)');
      assert.match(gw.log, /gateway: workers stopped/);
    });
  } finally {
    for (const ch of chans) ch.destroy();
    await c.run();
  }
});

test.run();
