/**
 * One gateway of a primary/standby pair in a process of its own, for test/failover.scenario.test.ts
 * (`node -r tsx/cjs bench/failover/node.ts '<json>'`) and bench/failover (bundled, killed there with
 * SIGKILL). The JSON: `{ http, listen, standbyOf?, node, pairKey, deviceKey, receipts, heartbeatMs?,
 * logLevel?, pair? }`. With a pair (the default), ackAfter 'standby'; with `pair: false`, a single
 * gateway with ackAfter 'received' and the same application (the bench's baseline; listen, standbyOf
 * and pairKey are not used). Its application writes a receipt line "device index again" for every
 * message (synchronously, before returning: a receipt is on disk before the message can be
 * acknowledged) and sends "e<index>" back. Prints "listening", then, in a pair, "synced" (a standby
 * holding every session) and "primary <epoch>" when it serves.
 */
import * as fs from 'node:fs';
import { Gateway, type GatewayChannel } from '../../targets/host/gateway/gateway';
import { PairRole } from '../../targets/host/gateway/pair/pair';
import { createLog } from '../../targets/node/log';

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}');
  const paired = o.pair !== false;
  const fd = fs.openSync(o.receipts, 'a');
  const key = new TextEncoder().encode(o.deviceKey);
  const gw = await Gateway.start({
    http: o.http,
    devices: () => key,
    ackAfter: paired ? 'standby' : 'received',
    pair: paired ? { key: o.pairKey, node: o.node, listen: o.listen, standbyOf: o.standbyOf ?? null, heartbeatMs: o.heartbeatMs ?? 50 } : null,
    log: createLog({ name: o.node, level: o.logLevel ?? 'warn' }),
  });
  gw.on('session', (ch: GatewayChannel) => {
    const backlog: Buffer[] = [];
    const flush = (): void => {
      while (backlog.length > 0 && ch.send(backlog[0])) backlog.shift();
    };
    ch.on('drain', flush);
    ch.on('message', (m: Buffer, _done, _seq, again) => {
      const i = m.toString();
      fs.writeSync(fd, `${ch.deviceId} ${i} ${again ? 1 : 0}\n`);
      backlog.push(Buffer.from(`e${i}`));
      flush();
    });
  });
  process.stdout.write('listening\n');
  if (!paired) return;
  const pair = gw.pair;
  if (pair === null) throw new Error('no pair');
  let said = '';
  const t = setInterval(() => {
    const now = pair.role === PairRole.PRIMARY ? `primary ${pair.epoch}` : pair.synced ? 'synced' : '';
    if (now !== said && now !== '') process.stdout.write(`${now}\n`);
    said = now;
  }, 5);
  t.unref();
}

// SIGTERM (the end of a bench phase under FAILOVER_PROF): exit, so that --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
