/**
 * How a flashed device lives on its board: the files under PREFIX, its --config, the systemd unit,
 * and the shell scripts that start and stop it without systemd. Pure text: `flash-cmd.ts` sends it.
 *
 * PREFIX/holdfast-launcher.js the launcher (tools/bundle.js): what the unit or the pidfile runs; it
 *                             runs the device bundle as its child (targets/host/device/launcher.ts)
 * PREFIX/holdfast-device.js   the device bundle as flashed: the launcher's --bundle, taken in (copied
 *                             to PREFIX/launcher/bundles/SHA256.js) when its sha256 is new
 * PREFIX/launcher/            the launcher's --dir: the bundles it keeps and its state.json (0755)
 * PREFIX/device.json          --config: gateway, tcp, id, forward, state, status, keyFile (0600)
 * PREFIX/device.key           the secret key, one line (0600)
 * PREFIX/state/               the session journal (0700): a restart resumes the session
 * PREFIX/status.json          written by the device: {"state": "open", "session": ..., "transport": ...}
 * PREFIX/device.log, .pid     without systemd only: the output of the launcher and the device, and
 *                             the launcher's process id
 *
 * With --no-launcher (flash's flag) the device bundle runs directly, as `node PREFIX/holdfast-device.js`,
 * and cannot be updated over its session (`update` answers HF_ERR_UNSUPPORTED).
 */
import { shq, shWord } from './ssh';

export const UNIT_NAME = 'holdfast-device.service';
export const UNIT_FILE = `/etc/systemd/system/${UNIT_NAME}`;

export interface BoardPaths {
  prefix: string;
  bundle: string;
  launcher: string;
  launcherDir: string;
  config: string;
  key: string;
  state: string;
  status: string;
  log: string;
  pid: string;
}

export function boardPaths(prefix: string): BoardPaths {
  return {
    prefix,
    bundle: `${prefix}/holdfast-device.js`,
    launcher: `${prefix}/holdfast-launcher.js`,
    launcherDir: `${prefix}/launcher`,
    config: `${prefix}/device.json`,
    key: `${prefix}/device.key`,
    state: `${prefix}/state`,
    status: `${prefix}/status.json`,
    log: `${prefix}/device.log`,
    pid: `${prefix}/device.pid`,
  };
}

export interface DeviceSettings {
  gateway: string;
  tcp: string | null;
  proxy: string | null;
  id: string;
  forward: string[];
}

/** The device's --config file (the key itself is in `keyFile`, never here). Keys are device flag names in camelCase. */
export function deviceConfig(s: DeviceSettings, p: BoardPaths): Record<string, unknown> {
  const c: Record<string, unknown> = { gateway: s.gateway };
  if (s.tcp !== null) c.tcp = s.tcp;
  if (s.proxy !== null) c.proxy = s.proxy;
  c.id = s.id;
  if (s.forward.length > 0) c.forward = s.forward;
  c.state = p.state;
  c.status = p.status;
  c.keyFile = p.key;
  return c;
}

/** How the device is run on the board. */
export interface RunSettings {
  /** Absolute path of node on the board. */
  node: string;
  /** Under the launcher (the default), or the device bundle directly (flash --no-launcher). */
  launcher: boolean;
  /** The launcher's --update-confirm-ms, ms; null: the launcher's default. */
  updateConfirmMs: number | null;
}

/** How long a stop by pidfile waits after SIGTERM before SIGKILL, s: more than the launcher's own grace for its child (10 s). */
export const STOP_WAIT_S = 15;

/** The device's command line (under the launcher: the launcher's, the device's after `--`); no secret in it. */
export function deviceArgv(r: RunSettings, p: BoardPaths): string[] {
  const device = ['device', '--config', p.config];
  if (!r.launcher) return [r.node, p.bundle, ...device];
  const confirm = r.updateConfirmMs === null ? [] : ['--update-confirm-ms', String(r.updateConfirmMs)];
  return [r.node, p.launcher, '--dir', p.launcherDir, '--bundle', p.bundle, ...confirm, '--', ...device];
}

/** One word of an ExecStart= line: quoted when needed; `%` and `$` are systemd's specifiers and variables. */
export function systemdWord(s: string): string {
  const e = s.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_./:@+=,-]+$/.test(e) ? e : `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The unit. SIGTERM (not SIGKILL) so the device detaches its session and the next start resumes it
 * from the journal. KillMode=mixed: SIGTERM goes to the main process only (the launcher, which passes
 * it on to the device and exits when the device has), SIGKILL to whatever is left at the end.
 * Hardening: the whole file system is read-only to it except PREFIX (state, status, the launcher's
 * directory); no new privileges, no SUID, private /tmp. Not MemoryDenyWriteExecute: V8's JIT needs W+X pages. Not
 * ProtectKernelTunables or PrivateDevices: device applications may drive GPIO (/dev/gpiochip*, /sys).
 */
export function systemdUnit(r: RunSettings, p: BoardPaths, id: string): string {
  return [
    '# Written by `holdfast flash`; flashing again replaces it.',
    '[Unit]',
    `Description=holdfast device ${id.replace(/[\r\n]/g, ' ')}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${deviceArgv(r, p).map(systemdWord).join(' ')}`,
    `WorkingDirectory=${systemdWord(p.prefix)}`,
    'Restart=always',
    'RestartSec=5',
    'KillSignal=SIGTERM',
    'KillMode=mixed',
    'TimeoutStopSec=20',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=read-only',
    `ReadWritePaths=${systemdWord(p.prefix)}`,
    'PrivateTmp=yes',
    'ProtectControlGroups=yes',
    'ProtectKernelModules=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * Shell (POSIX sh) that stops a device started by hand, by its pidfile: only if that PID is still a
 * PREFIX/holdfast-launcher.js process (or a PREFIX/holdfast-device.js one, from a flash before the
 * launcher or with --no-launcher); a stale pidfile may name someone else's process. SIGTERM, which
 * the launcher passes on to the device, waiting for it; up to `waitS` s, then SIGKILL for the process
 * and its children (the device, which the launcher could no longer stop; the journal survives that
 * too). Prints "stopped=PID" or "killed=PID".
 */
export function stopByPidfileScript(p: BoardPaths, waitS = STOP_WAIT_S): string {
  return `
if [ -f ${shq(p.pid)} ]; then
  old=$(cat ${shq(p.pid)} 2>/dev/null || true)
  case "$old" in ''|*[!0-9]*) old= ;; esac
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null && grep -q -F -e ${shq(p.launcher)} -e ${shq(p.bundle)} "/proc/$old/cmdline" 2>/dev/null; then
    kill -TERM "$old" 2>/dev/null || true
    i=0
    while kill -0 "$old" 2>/dev/null && [ "$i" -lt ${waitS * 10} ]; do
      if sleep 0.1 2>/dev/null; then i=$((i+1)); else sleep 1; i=$((i+10)); fi
    done
    if kill -0 "$old" 2>/dev/null; then
      kids=
      for f in /proc/[0-9]*/status; do
        pp=$( (while read -r k v; do if [ "$k" = PPid: ]; then echo "$v"; break; fi; done < "$f") 2>/dev/null || true)
        if [ "$pp" = "$old" ]; then d=\${f%/status}; kids="$kids \${d#/proc/}"; fi
      done
      kill -KILL "$old" $kids 2>/dev/null || true
      echo "killed=$old"
    else
      echo "stopped=$old"
    fi
  fi
  rm -f ${shq(p.pid)}
fi
`;
}

/**
 * Shell that starts the device in the background without systemd: its own session (setsid, so it
 * outlives the ssh login), no terminal, output to PREFIX/device.log, PID (the launcher's) to
 * PREFIX/device.pid.
 * Every descriptor is redirected, or ssh would wait for the device to close them. A unit installed
 * by an earlier flash is disabled and stopped first (--no-systemd after systemd), so that one device
 * runs, not two. Prints "pid=PID" (and "unit=disabled").
 */
export function startByHandScript(r: RunSettings, p: BoardPaths): string {
  return `set -e
if [ -f ${shq(UNIT_FILE)} ] && [ -d /run/systemd/system ]; then
  systemctl disable --now ${UNIT_NAME} >/dev/null
  echo unit=disabled
fi
${stopByPidfileScript(p)}
rm -f ${shq(p.status)}
if command -v setsid >/dev/null 2>&1; then S=setsid; else S=; fi
$S nohup ${deviceArgv(r, p).map(shq).join(' ')} > ${shq(p.log)} 2>&1 < /dev/null &
echo "$!" > ${shq(p.pid)}
echo "pid=$!"
`;
}

/** The line to put in root's crontab (`crontab -e`) to start the device at boot without systemd. */
export function atBootLine(r: RunSettings, p: BoardPaths): string {
  return `@reboot ${deviceArgv(r, p).map(shWord).join(' ')} > ${shWord(p.log)} 2>&1 & echo $! > ${shWord(p.pid)}`;
}

/**
 * Shell that installs the unit (read from stdin), reloads systemd and (re)starts the device. A device
 * started by hand before is stopped first. Prints "pid=MAINPID".
 */
export function installUnitScript(p: BoardPaths): string {
  const tmp = `${UNIT_FILE}.tmp`;
  return `set -e
${stopByPidfileScript(p)}
rm -f ${shq(p.status)}
trap 'rm -f ${shq(tmp)}' EXIT
cat > ${shq(tmp)}
chmod 0644 ${shq(tmp)}
mv -f ${shq(tmp)} ${shq(UNIT_FILE)}
systemctl daemon-reload
systemctl enable ${UNIT_NAME} >/dev/null
systemctl restart ${UNIT_NAME}
echo "pid=$(systemctl show -p MainPID --value ${UNIT_NAME})"
`;
}
