/**
 * A gateway in a process of its own, for test/strangers.scenario.test.ts (its RSS is read from
 * /proc/PID/status): `node -r tsx/cjs test/support/strangers-gateway.ts '<json>'` with the JSON
 * `{ tcp, devices, maxConnections?, tcpLimits? }`. Echoes every message; prints
 * "listening <tcp address> <http url>" once bound, then "stat <connections> <preAuth>" every 100 ms.
 * Ends on SIGTERM (the test kills it by PID in any case).
 */
import { Gateway } from '../../targets/host/gateway/gateway';

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}');
  const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: o.tcp, devices: o.devices, maxConnections: o.maxConnections, tcpLimits: o.tcpLimits });
  gw.on('session', (ch) => ch.on('message', (m: Buffer) => ch.send(m)));
  const tcp = gw.tcp;
  if (tcp === null || gw.http === null) throw new Error('no listener');
  process.stdout.write(`listening ${tcp.address} ${gw.http.url}\n`);
  const stat = setInterval(() => process.stdout.write(`stat ${tcp.connections} ${tcp.preAuthConnections}\n`), 100);
  process.on('SIGTERM', () => {
    clearInterval(stat);
    void gw.close().then(() => process.exit(0));
  });
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
