/**
 * The gateway process of `npm run bench:manage`: a real Gateway (HTTP and direct TCP listeners on
 * 127.0.0.1, ephemeral ports, a devices table with a key per device) with management attached to
 * every session as `holdfast gateway --data DIR --console ...` does (tools/cli/gateway-cmd.ts): a Mux
 * per session, `manage.attach(ch, mux)`. The store is SQLite under a temporary directory; the
 * console's API listens on 127.0.0.1 too, and an operator's API token is made for the runner.
 * It runs in a process of its own so that its RSS (read by the runner from /proc/PID/status) is the
 * gateway's alone. Driven over IPC (bench/ipc.ts); exits when the runner goes away.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { Mux } from '../../targets/host/app/mux';
import { Gateway, type GatewayChannel } from '../../targets/host/gateway/gateway';
import { type Management, startManagement } from '../../targets/host/gateway/manage/start';
import { silentLog } from '../../targets/node/log';
import { serve } from '../ipc';
import { benchTcpLimits, fleetId, keyOf, LATENCY_HTTP, LATENCY_TCP, smallLink } from './link';

let gw: Gateway | null = null;
let manage: Management | null = null;
let dir: string | null = null;

async function start(a: { fleet: number; linkKib: number }): Promise<{ http: string; tcp: string; console: string; token: string }> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-bench-manage-'));
  const ids = [LATENCY_TCP, LATENCY_HTTP];
  for (let i = 0; i < a.fleet; i++) ids.push(fleetId(i));
  const devices: Record<string, string> = {};
  const labels: Record<string, Record<string, string>> = {};
  ids.forEach((id, i) => {
    devices[id] = keyOf(id);
    // The fleet in batches of 1000 (the first two ids are the latency devices): `group=fleet,batch=0` selects 1000.
    labels[id] = id.startsWith('fan-') ? { group: 'fleet', batch: String(Math.floor((i - 2) / 1000)) } : { group: id };
  });
  manage = await startManagement({ dataDir: dir, listen: '127.0.0.1:0', log: silentLog, deviceIds: ids, labels, console: { files: null } });
  await manage.store.operators.add('bench', 'operator', 'bench password 1');
  const token = manage.store.tokens.create('bench', 'bench:manage').token;
  const m = manage;
  gw = await Gateway.start({
    http: '127.0.0.1:0',
    tcp: '127.0.0.1:0',
    devices,
    link: smallLink(a.linkKib),
    maxSessions: ids.length + 16,
    maxConnections: ids.length + 16,
    tcpLimits: benchTcpLimits(ids.length + 16),
    log: silentLog,
  });
  gw.on('session', (ch: GatewayChannel) => {
    const mux = new Mux(ch, { role: 'gateway' });
    m.attach(ch, mux);
    mux.on('error', () => {});
    ch.on('end', () => ch.end());
  });
  return { http: gw.http?.url ?? '', tcp: gw.tcp?.address ?? '', console: m.url ?? '', token };
}

async function stop(): Promise<void> {
  await gw?.close();
  await manage?.close();
  if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
  setImmediate(() => process.exit(0));
}

serve(
  {
    start,
    sessions: () => ({ sessions: gw?.sessionCount ?? 0, online: manage?.service.onlineCount ?? 0 }),
    gc: () => {
      (globalThis as { gc?: () => void }).gc?.();
      const s = gw?.slabs;
      return {
        ...process.memoryUsage(),
        spaces: v8.getHeapSpaceStatistics().map((x) => ({ name: x.space_name, sizeMb: x.space_size / 1048576, usedMb: x.space_used_size / 1048576 })),
        ringsLentMb: (s?.lentBytes ?? 0) / 1048576,
        ringBlocksLent: s?.lent ?? 0,
        ringBlocksPeak: s?.peakLent ?? 0,
        ringBlocksMade: s?.made ?? 0,
      };
    },
    snapshot: (a: { file: string }) => v8.writeHeapSnapshot(a.file),
    stop,
  },
  1800,
);
process.on('SIGTERM', () => {
  stop().catch(() => process.exit(1));
});
