/**
 * The host target end to end on loopback: `bin/holdfast gateway` and `bin/holdfast device` processes
 * (or the same code in-process where a test must steer it), a port forwarded through the session,
 * and a stream whose sha256 must come out as it went in.
 *
 *  1. --tcp at a closed port: the device falls back to HTTP; 5 MB forwarded intact.
 *  2. the same over direct TCP, both directions.
 *  3. a proxy of our own that kills HTTP connections before the request, after it, and mid-response.
 *  4. HTTP -> TCP -> HTTP in the middle of a stream.
 *  5. through Debian's tinyproxy as the forward proxy.
 *  6. kill -9 of the device mid-stream, restart with the same --state: every accepted message
 *     reaches the gateway exactly once, in order.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { type ChaosProxy, startChaosProxy } from '../tools/chaos-proxy';
import { connect } from '../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { channelStream } from '../targets/host/app/stream';
import { startTinyproxy, tinyproxyAvailable } from './support/tinyproxy';
import { within, sleep } from './support/within';
import { Cleanup, Proc, devicesFile, freePort, hashServer, holdfast, pushThrough, randomData, readAll, sha256, sourceServer, tmpDir, ROOT } from './support/host';

const MB = 1 << 20;
const KEY = 'k-9f2c1e';

/** Starts `bin/holdfast gateway` on free ports; resolves with its ports once it listens. */
async function cliGateway(c: Cleanup, dir: string, extra: string[] = []): Promise<{ proc: Proc; http: number; tcp: number }> {
  const httpPort = await freePort();
  const tcpPort = await freePort();
  const proc = holdfast(['gateway', '--http', `127.0.0.1:${httpPort}`, '--tcp', `127.0.0.1:${tcpPort}`, '--devices', devicesFile(dir, { 'pi-1': KEY }), ...extra], c);
  await proc.waitFor(/gateway: ready/);
  return { proc, http: httpPort, tcp: tcpPort };
}

/** Starts `bin/holdfast device` forwarding a free local port to each target; resolves with those ports. */
async function cliDevice(c: Cleanup, args: string[], ...targets: number[]): Promise<{ proc: Proc; port: number; ports: number[] }> {
  const ports: number[] = [];
  const fwd: string[] = [];
  for (const t of targets) {
    const p = await freePort();
    ports.push(p);
    fwd.push('--forward', `${p}:127.0.0.1:${t}`);
  }
  const proc = holdfast(['device', '--id', 'pi-1', '--key', KEY, ...fwd, ...args], c);
  await proc.waitFor(/device: session open/);
  return { proc, port: ports[0], ports };
}

test('1. --tcp at a closed port: falls back to HTTP and forwards 5 MB intact', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'scenario 1', async () => {
      const dir = tmpDir(c);
      const sink = await hashServer(c);
      const gw = await cliGateway(c, dir, ['--allow', `127.0.0.1:${sink.port}`]);
      const closed = await freePort();
      const dev = await cliDevice(c, ['--gateway', `http://127.0.0.1:${gw.http}`, '--tcp', `127.0.0.1:${closed}`], sink.port);
      assert.match(dev.proc.log, /tcp failed: ECONNREFUSED/);
      assert.match(dev.proc.log, /transport http|fell back to http/);
      assert.not.match(dev.proc.log, /moved to tcp/);
      const data = randomData(5 * MB);
      const digest = (await pushThrough(dev.port, data)).toString();
      assert.is(digest, sha256(data), 'sha256 through the tunnel');
      assert.equal(sink.bytes, [data.length]);
    });
  } finally {
    await c.run();
  }
});

test('2. direct TCP: 5 MB each way intact', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'scenario 2', async () => {
      const dir = tmpDir(c);
      const sink = await hashServer(c);
      const down = randomData(5 * MB);
      const source = await sourceServer(c, down);
      const gw = await cliGateway(c, dir, ['--allow', `127.0.0.1:${sink.port}`, '--allow', `127.0.0.1:${source.port}`]);
      const dev = await cliDevice(c, ['--gateway', `http://127.0.0.1:${gw.http}`, '--tcp', `127.0.0.1:${gw.tcp}`], sink.port, source.port);
      assert.match(dev.proc.log, /device: transport tcp/);
      const data = randomData(5 * MB);
      const [upDigest, downData] = await Promise.all([pushThrough(dev.ports[0], data), readAll(dev.ports[1])]);
      assert.is(upDigest.toString(), sha256(data), 'device -> gateway');
      assert.is(sha256(downData), sha256(down), 'gateway -> device');
      assert.match(gw.proc.log, /session on tcp/);
      assert.not.match(dev.proc.log, /fell back to http/);
    });
  } finally {
    await c.run();
  }
});

test('3. connections killed before the request, after it and mid-response: 5 MB intact, nothing twice', async () => {
  const c = new Cleanup();
  try {
    await within(120_000, 'scenario 3', async () => {
      const dir = tmpDir(c);
      const sink = await hashServer(c);
      const gw = await cliGateway(c, dir, ['--allow', `127.0.0.1:${sink.port}`]);
      const proxy = await startChaosProxy({ target: { port: gw.http }, seed: 7, killRate: 0.15 });
      c.add(() => proxy.close());
      const dev = await cliDevice(c, ['--gateway', `http://127.0.0.1:${proxy.port}`, '--no-tcp'], sink.port);
      const data = randomData(5 * MB);
      assert.is((await pushThrough(dev.port, data)).toString(), sha256(data), 'sha256 through a killing proxy');
      assert.equal(sink.bytes, [data.length], 'one connection, every byte once');
      const k = proxy.stats.kills;
      assert.ok(k['before-request'] > 0 && k['after-request'] > 0 && k['mid-response'] > 0, `every kill phase happened: ${JSON.stringify(k)}`);
    });
  } finally {
    await c.run();
  }
});

test('4. HTTP -> TCP -> HTTP in the middle of a stream: nothing lost or duplicated', async () => {
  const c = new Cleanup();
  try {
    await within(90_000, 'scenario 4', async () => {
      const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: '127.0.0.1:0', devices: { 'pi-1': KEY } });
      c.add(() => gw.close());
      const tcpPort = Number(gw.tcp!.address.split(':').pop());
      const proxy: ChaosProxy = await startChaosProxy({ target: { port: tcpPort }, mode: 'refuse' });
      c.add(() => proxy.close());
      let got = 0;
      const hash = createHash('sha256');
      const done = new Promise<string>((resolve) => {
        gw.on('session', (ch: GatewayChannel) => {
          const s = channelStream(ch);
          s.on('data', (d: Buffer) => {
            hash.update(d);
            got += d.length;
          });
          s.on('end', () => {
            resolve(hash.digest('hex'));
            s.end();
          });
          s.on('error', () => {});
        });
      });
      const dev = connect({
        gateway: `http://${gw.http!.address}`,
        tcp: `127.0.0.1:${proxy.port}`,
        id: 'pi-1',
        key: KEY,
        ladder: { reprobeMs: 200, reprobeMaxMs: 400, directTimeoutMs: 1000, reconnectMs: 100 },
      });
      c.add(() => dev.destroy());
      const moves: string[] = [];
      dev.on('transport', (name: string) => moves.push(name));
      const out = channelStream(dev);
      out.on('error', () => {});
      const data = randomData(6 * MB);
      const chunk = 64 * 1024;
      let at = 0;
      const write = async (upTo: number): Promise<void> => {
        while (at < upTo) {
          const part = data.subarray(at, Math.min(upTo, at + chunk));
          at += part.length;
          if (!out.write(part)) await new Promise((r) => out.once('drain', r));
        }
      };
      await write(1 * MB);
      while (got < 1 * MB) await sleep(20);
      assert.is(dev.transport, 'http', 'TCP refused: on HTTP');
      await proxy.setMode('pass');
      while (dev.transport !== 'tcp') await sleep(20);
      await write(3 * MB);
      while (got < 2 * MB) await sleep(20);
      proxy.killAll();
      await proxy.setMode('refuse');
      while ((dev.transport as string) !== 'http') await sleep(20);
      await write(6 * MB);
      out.end();
      const digest = await done;
      assert.is(digest, sha256(data), 'sha256 across the moves');
      assert.is(got, data.length);
      assert.equal(moves.slice(0, 3), ['http', 'tcp', 'http'], `transports: ${moves.join(' -> ')}`);
    });
  } finally {
    await c.run();
  }
});

test('5. through a real forward proxy (tinyproxy): forwards 2 MB intact', async () => {
  if (!tinyproxyAvailable('scenario 5')) return;
  const c = new Cleanup();
  try {
    await within(90_000, 'scenario 5', async () => {
      const dir = tmpDir(c);
      const sink = await hashServer(c);
      const gw = await cliGateway(c, dir, ['--allow', `127.0.0.1:${sink.port}`]);
      const tp = await startTinyproxy();
      c.add(() => tp.stop());
      const dev = await cliDevice(c, ['--gateway', `http://127.0.0.1:${gw.http}`, '--no-tcp', '--proxy', tp.url], sink.port);
      assert.match(dev.proc.log, /proxy=http:\/\/127\.0\.0\.1/);
      const data = randomData(2 * MB);
      assert.is((await pushThrough(dev.port, data)).toString(), sha256(data), 'sha256 through tinyproxy');
      const fs = await import('node:fs');
      const plog = fs.readFileSync(tp.logFile, 'utf8');
      assert.match(plog, new RegExp(`POST http://127\\.0\\.0\\.1:${gw.http}/v1/link`), 'the requests went through tinyproxy');
    });
  } finally {
    await c.run();
  }
});

async function killAndResume(transport: 'tcp' | 'http', TOTAL: number): Promise<void> {
  const c = new Cleanup();
  try {
    await within(120_000, `scenario 6 (${transport})`, async () => {
      const dir = tmpDir(c);
      const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: '127.0.0.1:0', devices: { 'pi-1': KEY } });
      c.add(() => gw.close());
      const got: number[] = [];
      let sessions = 0;
      gw.on('session', (ch: GatewayChannel) => {
        sessions++;
        ch.on('message', (m: Buffer) => got.push(m.readUInt32BE(0)));
      });
      const sender = (): Proc =>
        new Proc(
          process.execPath,
          ['-r', 'tsx/cjs', path.join(ROOT, 'test', 'support', 'sender.ts'), `http://${gw.http!.address}`, transport === 'tcp' ? gw.tcp!.address : 'none', KEY, path.join(dir, 'state'), String(TOTAL)],
          c,
        );
      const first = sender();
      await first.waitFor(/accepted 5000\b/, 30_000);
      first.kill('SIGKILL');
      await first.exited;
      const accepted1 = Math.max(...[...first.log.matchAll(/accepted (\d+)/g)].map((m) => Number(m[1])));
      const second = sender();
      await second.waitFor(/resumed at (\d+)/, 30_000);
      const resumedAt = Number(/resumed at (\d+)/.exec(second.log)![1]);
      assert.ok(resumedAt > accepted1, `resumed at ${resumedAt}, after the last accepted ${accepted1}`);
      // The gateway hears from the resumed session at once, not after it held a request holdMs (20 s).
      const opened = Number((await second.waitFor(/open after (\d+) ms/, 10_000))[1]);
      assert.ok(opened < 5000, `the resumed session opened after ${opened} ms`);
      await second.waitFor(/all accepted/, 60_000);
      while (got.length < TOTAL) await sleep(50);
      await sleep(200);
      assert.is(sessions, 1, 'one session across the restart');
      assert.is(got.length, TOTAL, 'no message twice');
      for (let i = 0; i < TOTAL; i++) if (got[i] !== i) assert.unreachable(`message ${i} is ${got[i]}: out of order, lost or twice`);
      second.kill('SIGTERM');
    });
  } finally {
    await c.run();
  }
}

test('6. kill -9 mid-stream, restart with the same state: every accepted message exactly once, in order (TCP)', () => killAndResume('tcp', 30_000));

test('6b. the same over HTTP only: the resumed session asks the gateway for an answer at once', () => killAndResume('http', 12_000));

test.run();
