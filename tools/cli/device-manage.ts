/**
 * The device process's management resource: the board's `hal/Management` (targets/host/manage.ts over
 * the target's HAL: host or pi, chosen at build time by `#platform`) and the Executor over a journal,
 * served on each session's mux (targets/host/device/manage-server.ts).
 *
 * - Management needs the device's config file (`--config FILE`): `config.get`/`config.set` are that
 *   file, and its `manage` section says what `exec` may run and which directories `file.get`/`file.put`
 *   may touch (firmware/manage/policy.ts; nothing without it). Without --config the device has no
 *   management resource: it refuses the channel and the gateway shows it as unmanaged.
 * - The journal (which command ids ran, and their answers) lives under `--state DIR` in `DIR/manage`,
 *   so a command is executed at most once across reconnects and restarts. Without --state it is kept
 *   in memory: at most once for as long as the process runs (a warning says so).
 * - `update` needs the launcher (targets/host/device/launcher.ts), which keeps the bundles and rolls a
 *   bad one back; a session opening confirms a bundle on trial (`sessionOpened`).
 * - `config.set` is checked as the device would read it at start (the same rules as --config, with
 *   the command-line flags that win over it) before it is written; once written, `onConfig` applies
 *   what can change on a running session (its forwards), and the rest applies at the next start.
 */
import * as path from 'node:path';
import { platform } from '#platform';
import { Executor } from '../../firmware/manage/executor';
import type { Log } from '../../hal/log';
import type { Mux } from '../../targets/host/app/mux';
import { type ManageServer, serveManagement } from '../../targets/host/device/manage-server';
import type { LauncherLink } from '../../targets/host/device/launcher-files';
import { HostManagement } from '../../targets/host/manage';
import { MemoryStorage } from '../../targets/sim/storage';

export interface DeviceManagementOptions {
  configPath: string;
  stateDir: string | null;
  /** The launcher this process runs under (for `update`), or null. */
  launcher: LauncherLink | null;
  log: Log;
  /** Refuses a config the device could not start with (throws HF_ERR_BAD_ARGS). */
  validateConfig: (config: Record<string, unknown>) => void;
  /** A new config was written: apply what a running device can. */
  onConfig: (config: Record<string, unknown>) => void;
}

export interface DeviceManagement {
  serve(mux: Mux): ManageServer;
  /** A session opened: an update on trial is confirmed and its command answered. */
  sessionOpened(): void;
  close(): void;
}

export function deviceManagement(o: DeviceManagementOptions): DeviceManagement {
  const storage = o.stateDir === null ? new MemoryStorage() : platform.storage(path.join(o.stateDir, 'manage'));
  if (o.stateDir === null) o.log.warn('management journal in memory (no --state DIR): a command re-sent after this process restarts could run again');
  const mgmt = new HostManagement({
    configPath: o.configPath,
    system: platform.system,
    gpio: platform.gpio,
    target: platform.name,
    validateConfig: o.validateConfig,
    onConfigWritten: o.onConfig,
    launcher: o.launcher,
  });
  const executor = new Executor(mgmt, storage);
  if (executor.interrupted.length > 0) o.log.warn('commands interrupted by the last stop are answered HF_ERR_INTERRUPTED', { ids: executor.interrupted.length });
  return {
    serve: (mux) =>
      serveManagement(mux, executor, {
        log: o.log,
        onStarted: (id, op) => o.log.info('management command', { id, op }),
      }),
    sessionOpened: () => executor.sessionOpened(),
    close: () => {
      if ('close' in storage && typeof storage.close === 'function') storage.close();
    },
  };
}
