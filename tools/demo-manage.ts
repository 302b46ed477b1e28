/**
 * The management part of `npm start`: the gateway's store in a temporary directory, the console on
 * 127.0.0.1:8090 (or a free port when that one is taken), an operator `demo` with a fresh password
 * printed once, and the demo device's management resource (the host target's, over a config file of
 * its own that allows `/usr/bin/uptime` and a files directory). Everything goes when the demo stops.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { platform } from '#platform';
import { Executor } from '../firmware/manage/executor';
import type { Log } from '../hal/log';
import type { Mux } from '../targets/host/app/mux';
import { serveManagement } from '../targets/host/device/manage-server';
import { type Management, startManagement } from '../targets/host/gateway/manage/start';
import { HostManagement } from '../targets/host/manage';
import { MemoryStorage } from '../targets/sim/storage';

export interface DemoManagement {
  gateway: Management;
  /** Serves the device's management resource on its mux. */
  serveDevice(mux: Mux): void;
  login: { url: string; name: string; password: string };
  close(): Promise<void>;
}

export async function startDemoManagement(deviceId: string, log: Log): Promise<DemoManagement> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-demo-'));
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  const config = path.join(dir, 'device.json');
  fs.writeFileSync(config, JSON.stringify({ id: deviceId, manage: { exec: ['/usr/bin/uptime', '/bin/uname'], files: [files] } }, null, 2), { mode: 0o600 });
  const opts = { dataDir: path.join(dir, 'data'), log, deviceIds: [deviceId], labels: { [deviceId]: { site: 'demo', class: 'host' } } };
  let gateway: Management;
  try {
    gateway = await startManagement({ ...opts, listen: '127.0.0.1:8090' });
  } catch {
    gateway = await startManagement({ ...opts, listen: '127.0.0.1:0' });
  }
  const password = randomBytes(9).toString('base64url');
  await gateway.store.operators.add('demo', 'admin', password);
  const executor = new Executor(
    new HostManagement({ configPath: config, system: platform.system, gpio: platform.gpio, target: platform.name, onRestart: () => log.info('restart asked for: the demo device does not restart') }),
    new MemoryStorage(),
  );
  return {
    gateway,
    serveDevice: (mux) => {
      serveManagement(mux, executor, { log });
    },
    login: { url: gateway.url as string, name: 'demo', password },
    close: async () => {
      await gateway.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
