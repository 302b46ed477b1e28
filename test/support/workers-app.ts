/**
 * The gateway worker of test/workers.scenario.test.ts (forked by WorkerMain with tsx): a handoff
 * gateway whose application writes a receipt line "device session index" for every message it is
 * given, before returning (a synchronous write: a receipt is on disk before the message can be
 * acknowledged, so a worker killed with SIGKILL keeps every receipt of what it acknowledged), and
 * sends every message back (the numbered stream the other way). Configured by environment:
 * WORKERS_TEST_DIR (receipts), WORKERS_TEST_KEY (every device's key), WORKERS_TEST_LINK (JSON),
 * WORKERS_TEST_KEEPALIVE ("1": handoffKeepAlive), WORKERS_TEST_LOG (a log level: the gateway's log on stderr; unset: none).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Gateway, type GatewayChannel } from '../../targets/host/gateway/gateway';
import { createLog, type LogLevel } from '../../targets/node/log';
import { serveHandoffs, workerDirectory, workerPlacement, workerSlot } from '../../targets/host/gateway/workers/worker';

const KEY = process.env.WORKERS_TEST_KEY ?? '';

async function main(): Promise<void> {
  const slot = workerSlot();
  const fd = fs.openSync(path.join(process.env.WORKERS_TEST_DIR ?? '.', `receipts-${slot}-${process.pid}.txt`), 'a');
  // Every device id is let in with the one key.
  const key = new TextEncoder().encode(KEY);
  const devices = (): Uint8Array => key;
  const gw = await Gateway.start({
    http: '127.0.0.1:0',
    tcp: '127.0.0.1:0',
    handoff: true,
    handoffKeepAlive: process.env.WORKERS_TEST_KEEPALIVE === '1',
    directory: workerDirectory(),
    hellosHere: workerPlacement(),
    devices,
    link: JSON.parse(process.env.WORKERS_TEST_LINK ?? '{}'),
    tcpLimits: { helloRate: 10000, helloBurst: 10000, maxPreAuthPerAddress: 1000 },
    ...(process.env.WORKERS_TEST_LOG === undefined ? {} : { log: createLog({ name: `worker-${slot}`, level: process.env.WORKERS_TEST_LOG as LogLevel }) }),
  });
  gw.on('session', (ch: GatewayChannel) => {
    const backlog: Buffer[] = [];
    const flush = (): void => {
      while (backlog.length > 0 && ch.send(backlog[0])) backlog.shift();
    };
    ch.on('drain', flush);
    ch.on('message', (m: Buffer) => {
      fs.writeSync(fd, `${ch.deviceId} ${ch.sessionId} ${m.readUInt32BE(0)}\n`);
      backlog.push(Buffer.from(m));
      flush();
    });
    ch.on('error', () => {});
    ch.on('end', () => ch.end());
  });
  serveHandoffs(gw);
}

void main();
