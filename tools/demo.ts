/**
 * `npm start`: a gateway and a device on loopback, the real host target end to end.
 *
 *  - The gateway listens for HTTP and direct TCP on free ports of 127.0.0.1.
 *  - The device's direct TCP goes through a "firewall" (a proxy of our own) that refuses connections
 *    at first: the device falls back to HTTP. After a few seconds the firewall opens and the device
 *    moves to TCP mid-stream; nothing is lost or repeated.
 *  - Management (tools/demo-manage.ts): the web console on 127.0.0.1:8090 with a printed login, the
 *    device managed from it (info, exec of uptime, config, files).
 *  - The device sends a reading every 250 ms and the gateway answers each with a command; a port is
 *    forwarded through the session to an echo service next to the gateway, and used once a second.
 *
 * Stops on Ctrl-C (or after --seconds N), closing everything; exit status 0.
 */
import { createServer, type AddressInfo, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect } from '../targets/host/device/device';
import { forwardPorts } from '../targets/host/app/forward';
import { Gateway, type GatewayChannel } from '../targets/host/gateway/gateway';
import { createLog } from '../targets/node/log';
import { Mux } from '../targets/host/app/mux';
import { serveForwards } from '../targets/host/app/forward';
import { startChaosProxy } from './chaos-proxy';
import { startDemoManagement } from './demo-manage';

const args = process.argv.slice(2);
const seconds = args[0] === '--seconds' ? Number(args[1]) : Infinity;
const OPEN_FIREWALL_AFTER_MS = 4000;
const log = createLog({ name: 'device', level: (process.env.HOLDFAST_LOG as 'debug' | 'info' | undefined) ?? 'info' });
const say = (line: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 23)}  ${line}\n`);
};

async function main(): Promise<void> {
  // An echo service beside the gateway: what the forwarded port reaches.
  const sockets = new Set<Socket>();
  const echo: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as AddressInfo).port;

  const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: '127.0.0.1:0', devices: { 'demo-pi': 'demo-secret' }, log: createLog({ name: 'gateway' }) });
  const gwTcp = Number(gw.tcp!.address.split(':').pop());
  const manage = await startDemoManagement('demo-pi', createLog({ name: 'gateway' }));
  let commands = 0;
  gw.on('session', (ch: GatewayChannel) => {
    const mux = new Mux(ch, { role: 'gateway' });
    manage.gateway.attach(ch, mux);
    serveForwards(mux, { allow: [`127.0.0.1:${echoPort}`] });
    mux.on('error', () => {});
    mux.on('message', (m: Buffer) => {
      const reading = m.toString();
      mux.send(Buffer.from(`ack ${reading.split(' ')[1]} (${++commands} so far)`));
    });
    ch.on('end', () => ch.end());
  });

  const firewall = await startChaosProxy({ target: { port: gwTcp }, mode: 'refuse' });
  say(`gateway: http ${gw.http!.url}, tcp ${gw.tcp!.address}; the device's tcp path is blocked for now`);
  say(`console: ${manage.login.url} (log in as ${manage.login.name}, password ${manage.login.password})`);

  const dev = connect({
    gateway: `http://${gw.http!.address}`,
    tcp: `127.0.0.1:${firewall.port}`,
    id: 'demo-pi',
    key: 'demo-secret',
    log,
    ladder: { reprobeMs: 1000, reprobeMaxMs: 2000, directTimeoutMs: 1000 },
  });
  const mux = new Mux(dev, { role: 'device' });
  manage.serveDevice(mux);
  mux.on('error', () => {});
  let sent = 0;
  let acks = 0;
  mux.on('message', () => acks++);
  dev.on('transport', (name: string, reason: string) => say(`device: now on ${name} (${reason})`));
  await new Promise<void>((r) => dev.once('open', () => r()));
  const fwd = await forwardPorts(mux, [{ localPort: 0, host: '127.0.0.1', port: echoPort }]);
  say(`device: session open; 127.0.0.1:${fwd.ports[0]} forwards to the echo service at 127.0.0.1:${echoPort}`);

  const readings = setInterval(() => {
    const t = 20 + Math.sin(sent / 8) * 2;
    if (mux.send(Buffer.from(`reading ${sent} ${t.toFixed(2)}C`))) sent++;
  }, 250);
  const opener = setTimeout(() => {
    say('firewall: direct tcp is open now');
    void firewall.setMode('pass');
  }, OPEN_FIREWALL_AFTER_MS);
  const probe = setInterval(() => {
    const t0 = performance.now();
    const s = tcpConnect(fwd.ports[0], '127.0.0.1', () => s.end('ping through the tunnel'));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => say(`${dev.transport.padEnd(4)}  readings sent ${sent}, acks back ${acks}, forwarded port echoed "${got}" in ${(performance.now() - t0).toFixed(1)} ms`));
    s.on('error', (e) => say(`forwarded port: ${e.message}`));
  }, 1000);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    say(`stopping (${why})`);
    clearInterval(readings);
    clearInterval(probe);
    clearTimeout(opener);
    for (let i = 0; i < 40 && acks < sent; i++) await new Promise((r) => setTimeout(r, 50));
    await fwd.close();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        dev.destroy();
        resolve();
      }, 3000);
      dev.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      mux.close();
    });
    await gw.close();
    await manage.close();
    await firewall.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => echo.close(r));
    say(`stopped: ${sent} readings sent, ${acks} acknowledged by the gateway${acks === sent ? ': every one, once' : ''}`);
  };
  process.once('SIGINT', () => void stop('Ctrl-C'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  if (Number.isFinite(seconds)) setTimeout(() => void stop(`${seconds} s passed`), seconds * 1000);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
