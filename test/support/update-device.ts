/**
 * A device program for the update scenario (test/update.scenario.test.ts), bundled by the test and
 * run by the real launcher: the real Executor over the real HostManagement (told about its launcher
 * by HOLDFAST_LAUNCHER_DIR and HOLDFAST_BUNDLE_SHA256) with the command journal in FileStorage. Its
 * "session" is a TCP connection to the test's stand-in gateway on loopback, carrying the
 * management channel's items (firmware/manage/items.ts): first a hello {hello: sha256, pid}, then
 * replies to the commands the gateway sends. A session counts as open once connected: the executor
 * is told (which confirms a bundle on trial and answers the update that installed it).
 *
 *   node device.js PORT STATE_DIR RESTART_DELAY_MS
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { encodeValue } from '../../firmware/cbor-value';
import { decodeCommand, encodeReply, type Reply } from '../../firmware/manage/command';
import { Executor } from '../../firmware/manage/executor';
import { ItemReader, itemHeader } from '../../firmware/manage/items';
import { launcherFromEnv } from '../../targets/host/device/launcher-child';
import { HostManagement } from '../../targets/host/manage';
import { FileStorage } from '../../targets/node/storage';
import { SimClock } from '../../targets/sim/clock';
import { SimGpio } from '../../targets/sim/gpio';
import { SimSystem } from '../../targets/sim/system';

const [port, stateDir, restartDelayMs] = process.argv.slice(2);
const launcher = launcherFromEnv(process.env);
const mgmt = new HostManagement({ configPath: path.join(stateDir, 'device.json'), system: new SimSystem(new SimClock()), gpio: new SimGpio(), target: 'host', launcher });
const ex = new Executor(mgmt, new FileStorage(stateDir), { restartDelayMs: Number(restartDelayMs) });

function item(s: net.Socket, b: Uint8Array): void {
  if (!s.destroyed) s.write(Buffer.concat([itemHeader(b.length), b]));
}

function session(): void {
  const s = net.connect(Number(port), '127.0.0.1');
  const reader = new ItemReader();
  const send = (r: Reply): void => item(s, encodeReply(r));
  s.on('connect', () => {
    ex.sessionOpened();
    item(s, encodeValue({ hello: launcher?.running ?? null, pid: process.pid }));
  });
  s.on('data', (chunk: Buffer) => {
    for (const b of reader.push(chunk)) {
      const cmd = decodeCommand(b);
      void ex.execute(cmd, (id) => send({ id, accepted: true })).then(send);
    }
  });
  s.on('error', () => {});
  s.on('close', () => setTimeout(session, 100));
}

session();
