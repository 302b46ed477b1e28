/**
 * A gateway in a process of its own for test/ack-after.scenario.test.ts, killed there with SIGKILL:
 * `node -r tsx/cjs test/support/ack-gateway.ts '<json>'` with `{ http, devices, confirmBelow }`.
 * Sessions acknowledge after the application (ackAfter 'app'); each message is a decimal number,
 * confirmed (`done`) only when it is below `confirmBelow`, the others left unconfirmed. Prints
 * "listening <url>" once bound, then "got <n>" for every message.
 */
import { Gateway } from '../../targets/host/gateway/gateway';

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}');
  const gw = await Gateway.start({ http: o.http, devices: o.devices, ackAfter: 'app' });
  gw.on('session', (ch) =>
    ch.on('message', (m, done) => {
      const n = Number(m.toString());
      process.stdout.write(`got ${n}\n`);
      if (n < o.confirmBelow) done();
    }),
  );
  if (gw.http === null) throw new Error('no listener');
  process.stdout.write(`listening ${gw.http.url}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
