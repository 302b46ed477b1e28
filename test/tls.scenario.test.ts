/**
 * TLS on both transports, on loopback, with throw-away certificates made by Debian's `openssl` CLI
 * in a temporary folder (`.ci/run` installs openssl when it is missing):
 *   - the link over HTTPS and over TLS on the direct TCP port: a few hundred messages each way,
 *     exactly once and in order;
 *   - a certificate from the wrong CA and a wrong pin refused with HF_ERR_TLS (the peer's reason in
 *     the message, the TLS error as `cause`), the device retrying with back-off, not spinning;
 *   - a right pin accepted without any CA;
 *   - through Debian's tinyproxy with CONNECT;
 *   - the CLI gateway's --tls-cert/--tls-key re-read on SIGHUP.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { HfError } from '../firmware/errors';
import type { Log } from '../hal/log';
import { connect, type DeviceChannel, type DeviceOptions } from '../targets/host/device/device';
import { clientTls, openTls, parsePin } from '../targets/host/device/tls-client';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { isLoopbackHost } from '../targets/host/gateway/tls';
import { type ThrowawayCert, makeCert as makeThrowawayCert } from '../tools/throwaway-cert';
import { Cleanup, devicesFile, holdfast } from './support/host';
import { startTinyproxy, tinyproxyAvailable } from './support/tinyproxy';
import { sleep, within } from './support/within';

const KEY = 'k-tls-7a1e';
const N = 300;

type Cert = ThrowawayCert;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-tls-'));

const makeCert = (name: string, cn?: string, san?: string): Cert => makeThrowawayCert(dir, name, cn, san);

const A = makeCert('a');
const B = makeCert('b');
const OTHER_NAME = makeCert('other', 'gw.example', 'DNS:gw.example');

/** A Log that keeps every line (and prints nothing). */
function recordingLog(): Log & { lines: { level: string; event: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; event: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (event: string, fields?: Record<string, unknown>) => void lines.push({ level, event, fields });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function tlsGateway(c: Cleanup, log?: Log, cert = A): Promise<Gateway> {
  const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: '127.0.0.1:0', devices: { 'pi-1': KEY }, tls: { cert: cert.cert, key: cert.key }, log });
  c.add(() => gw.close());
  return gw;
}

/**
 * N messages each way between a device and the gateway's echo-free application: each side sends
 * its own numbered messages and checks the other's arrive once, in order.
 */
async function exchange(gw: Gateway, opts: Partial<DeviceOptions>, c: Cleanup): Promise<DeviceChannel> {
  const gwGot: number[] = [];
  const devGot: number[] = [];
  const gwDone = new Promise<void>((resolve) => {
    gw.once('session', (ch: GatewayChannel) => {
      ch.on('message', (m: Buffer) => {
        gwGot.push(m.readUInt32BE(0));
        if (gwGot.length === N) resolve();
      });
      let i = 0;
      const pump = (): void => {
        while (i < N && ch.send(frame(i, 'g'))) i++;
      };
      ch.on('drain', pump);
      pump();
    });
  });
  const ch = connect({ gateway: gw.http!.url, id: 'pi-1', key: KEY, proxy: null, ...opts } as DeviceOptions);
  c.add(() => ch.destroy());
  const devDone = new Promise<void>((resolve) => {
    ch.on('message', (m: Buffer) => {
      devGot.push(m.readUInt32BE(0));
      if (devGot.length === N) resolve();
    });
  });
  ch.once('open', () => {
    let i = 0;
    const pump = (): void => {
      while (i < N && ch.send(frame(i, 'd'))) i++;
    };
    ch.on('drain', pump);
    pump();
  });
  await Promise.all([gwDone, devDone]);
  const inOrder = Array.from({ length: N }, (_, i) => i);
  assert.equal(gwGot, inOrder, 'the gateway got every message once, in order');
  assert.equal(devGot, inOrder, 'the device got every message once, in order');
  return ch;
}

function frame(i: number, who: string): Buffer {
  const b = Buffer.alloc(200, who);
  b.writeUInt32BE(i, 0);
  return b;
}

test('the link over HTTPS: exactly once both ways, verified against the given CA', async () => {
  const c = new Cleanup();
  try {
    await within(20_000, 'https exchange', async () => {
      const gw = await tlsGateway(c);
      assert.match(gw.http!.url, /^https:\/\/127\.0\.0\.1:\d+\/v1\/link$/);
      const ch = await exchange(gw, { tls: { ca: A.cert } }, c);
      assert.is(ch.transport, 'http');
    });
  } finally {
    await c.run();
  }
});

test('the link over TLS on the direct TCP port: exactly once both ways, with a pin and no CA', async () => {
  const c = new Cleanup();
  try {
    await within(20_000, 'tls tcp exchange', async () => {
      const gw = await tlsGateway(c);
      const ch = await exchange(gw, { tcp: gw.tcp!.address, tls: { pin: A.pin } }, c);
      assert.is(ch.transport, 'tcp');
      assert.ok(gw.tcp!.connections >= 1);
    });
  } finally {
    await c.run();
  }
});

/** Waits for a 'tls refused' warning on `log`, then counts the gateway's refused handshakes for a while. */
async function refused(gw: Gateway, gwLog: ReturnType<typeof recordingLog>, opts: Partial<DeviceOptions>, c: Cleanup): Promise<{ code: string; reason: string; handshakes: number }> {
  const log = recordingLog();
  const ch = connect({ gateway: gw.http!.url, id: 'pi-1', key: KEY, proxy: null, log, ...opts } as DeviceOptions);
  c.add(() => ch.destroy());
  let opened = false;
  ch.on('open', () => {
    opened = true;
  });
  while (!log.lines.some((l) => l.level === 'warn' && l.event === 'tls refused')) await sleep(20);
  const w = log.lines.find((l) => l.level === 'warn' && l.event === 'tls refused')!;
  const before = gwLog.lines.filter((l) => l.event === 'tls handshake failed').length;
  await sleep(2500);
  const handshakes = gwLog.lines.filter((l) => l.event === 'tls handshake failed').length - before;
  assert.not.ok(opened, 'no session over a refused certificate');
  ch.destroy();
  return { code: String(w.fields?.code), reason: String(w.fields?.reason), handshakes };
}

test('a certificate from the wrong CA is refused with HF_ERR_TLS, retried with back-off (HTTP and TCP)', async () => {
  const c = new Cleanup();
  try {
    await within(20_000, 'wrong ca', async () => {
      const gwLog = recordingLog();
      const gw = await tlsGateway(c, gwLog);
      const http = await refused(gw, gwLog, { tls: { ca: B.cert } }, c);
      assert.is(http.code, 'HF_ERR_TLS');
      assert.match(http.reason, /self[- ]signed|unable to verify|SELF_SIGNED/i);
      assert.ok(http.handshakes <= 8, `${http.handshakes} handshakes in 2.5 s: the device must back off`);
      const tcp = await refused(gw, gwLog, { tcp: gw.tcp!.address, tls: { ca: B.cert } }, c);
      assert.is(tcp.code, 'HF_ERR_TLS');
      assert.ok(tcp.handshakes <= 12, `${tcp.handshakes} handshakes in 2.5 s: the device must back off`);
    });
  } finally {
    await c.run();
  }
});

test('a wrong pin is refused with HF_ERR_TLS naming both fingerprints (HTTP and TCP)', async () => {
  const c = new Cleanup();
  try {
    await within(20_000, 'wrong pin', async () => {
      const gwLog = recordingLog();
      const gw = await tlsGateway(c, gwLog);
      const http = await refused(gw, gwLog, { tls: { pin: B.pin } }, c);
      assert.is(http.code, 'HF_ERR_TLS');
      assert.match(http.reason, /does not match the pin/);
      const tcp = await refused(gw, gwLog, { tcp: gw.tcp!.address, tls: { pin: B.pin } }, c);
      assert.is(tcp.code, 'HF_ERR_TLS');
    });
  } finally {
    await c.run();
  }
});

test('openTls: untrusted CA, wrong host name and wrong pin are HF_ERR_TLS with the reason and a cause; the right pin passes', async () => {
  const c = new Cleanup();
  try {
    await within(10_000, 'openTls', async () => {
      const gw = await tlsGateway(c);
      const named = await tlsGateway(c, undefined, OTHER_NAME);
      const port = (g: Gateway) => Number(g.tcp!.address.split(':')[1]);
      const attempt = (g: Gateway, o: Parameters<typeof clientTls>[0]): Promise<HfError | null> =>
        new Promise((resolve) => {
          const s: tls.TLSSocket = openTls(clientTls(o, '127.0.0.1'), '127.0.0.1', port(g), (err) => {
            s.destroy();
            resolve(err);
          });
        });
      const wrongCa = await attempt(gw, { ca: B.cert });
      assert.is(wrongCa?.code, 'HF_ERR_TLS');
      assert.ok(wrongCa?.cause instanceof Error, 'the TLS error is the cause');
      const wrongName = await attempt(named, { ca: OTHER_NAME.cert });
      assert.is(wrongName?.code, 'HF_ERR_TLS');
      assert.match(wrongName!.message, /127\.0\.0\.1|altname|IP/i);
      const system = await attempt(gw, {});
      assert.is(system?.code, 'HF_ERR_TLS', 'a self-signed certificate is not among the system CAs');
      const wrongPin = await attempt(gw, { pin: B.pin });
      assert.is(wrongPin?.code, 'HF_ERR_TLS');
      assert.ok(wrongPin!.message.replace(/:/g, '').includes(A.pin.slice(7)), wrongPin!.message);
      assert.is(await attempt(gw, { pin: A.pin }), null);
      assert.is(await attempt(gw, { ca: A.cert }), null);
      // The pin in base64 is the same pin.
      const b64 = `sha256:${Buffer.from(A.pin.slice(7), 'hex').toString('base64')}`;
      assert.is(await attempt(gw, { pin: b64 }), null);
    });
  } finally {
    await c.run();
  }
});

test('option checks: pins, https URLs, certificates that cannot be used, loopback', () => {
  assert.is(parsePin(A.pin).length, 32);
  assert.is(parsePin(`SHA256:${(A.pin.slice(7).match(/../g) ?? []).join(':').toUpperCase()}`).toString('hex'), A.pin.slice(7));
  for (const bad of ['sha1:00', 'sha256:abcd', A.pin.slice(7), 'sha256:' + 'z'.repeat(64)]) {
    try {
      parsePin(bad);
      assert.unreachable(bad);
    } catch (e) {
      assert.is((e as HfError).code, 'HF_ERR_OPTION', bad);
    }
  }
  try {
    connect({ gateway: 'ftp://127.0.0.1:1', id: 'x', key: null });
    assert.unreachable();
  } catch (e) {
    assert.is((e as HfError).code, 'HF_ERR_OPTION');
  }
  return Gateway.start({ devices: null, tls: { cert: A.cert, key: B.key } }).then(
    () => assert.unreachable('a key that does not match its certificate'),
    (e: HfError) => {
      assert.is(e.code, 'HF_ERR_TLS');
      assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('[::1]') && isLoopbackHost('localhost'));
      assert.not.ok(isLoopbackHost('0.0.0.0') || isLoopbackHost('192.168.1.2') || isLoopbackHost('::'));
    },
  );
});

test('https through tinyproxy: CONNECT tunnels, TLS end to end, exactly once both ways', async () => {
  if (!tinyproxyAvailable('https through tinyproxy')) return;
  const c = new Cleanup();
  try {
    await within(30_000, 'https via tinyproxy', async () => {
      const proxy = await startTinyproxy();
      c.add(() => proxy.stop());
      const gw = await tlsGateway(c);
      await exchange(gw, { proxy: proxy.url, tls: { ca: A.cert } }, c);
      const seen = fs.readFileSync(proxy.logFile, 'utf8');
      assert.match(seen, /CONNECT/i, 'the proxy saw CONNECT tunnels');
      assert.not.match(seen, /POST/, 'and no request inside them');
    });
  } finally {
    await c.run();
  }
});

test('holdfast gateway --tls-cert/--tls-key: HTTPS and TLS on --tcp, the files re-read on SIGHUP', async () => {
  const c = new Cleanup();
  try {
    await within(25_000, 'cli tls reload', async () => {
      const certFile = path.join(dir, 'live.cert.pem');
      const keyFile = path.join(dir, 'live.key.pem');
      fs.copyFileSync(A.certFile, certFile);
      fs.copyFileSync(A.keyFile, keyFile);
      fs.chmodSync(keyFile, 0o600);
      const proc = holdfast(['gateway', '--http', '127.0.0.1:0', '--tcp', '127.0.0.1:0', '--devices', devicesFile(dir, { 'pi-1': KEY }), '--tls-cert', certFile, '--tls-key', keyFile], c);
      const m = await proc.waitFor(/listening.*https:\/\/127\.0\.0\.1:(\d+)\/v1\/link.*tcp=127\.0\.0\.1:(\d+)/);
      // From the start of the log: "ready" may have come in the same chunk as "listening".
      await proc.waitFor(/gateway: ready/, 15000, 0);
      const tcpPort = Number(m[2]);
      const peer = (): Promise<string> =>
        new Promise((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: tcpPort, rejectUnauthorized: false }, () => {
            resolve(`sha256:${createHash('sha256').update(s.getPeerCertificate().raw).digest('hex')}`);
            s.destroy();
          });
          s.on('error', reject);
        });
      assert.is(await peer(), A.pin);
      fs.copyFileSync(B.certFile, certFile);
      fs.copyFileSync(B.keyFile, keyFile);
      fs.chmodSync(keyFile, 0o600);
      const from = proc.log.length;
      proc.kill('SIGHUP');
      await proc.waitFor(/tls certificate reloaded/, 5000, from);
      assert.is(await peer(), B.pin);
      // A broken file on the next SIGHUP: a warning, and the certificate in use stays.
      fs.writeFileSync(certFile, 'not a certificate');
      const from2 = proc.log.length;
      proc.kill('SIGHUP');
      await proc.waitFor(/tls reload failed/, 5000, from2);
      assert.is(await peer(), B.pin);
      proc.kill('SIGTERM');
      await proc.exited;
    });
  } finally {
    await c.run();
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
