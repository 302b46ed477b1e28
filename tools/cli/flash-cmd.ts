/**
 * `holdfast flash`: puts the device on a board over ssh, from a checkout on the workstation.
 *
 *   1/7 build dist/holdfast-device.js and dist/holdfast-launcher.js if either is missing or older
 *       than the sources
 *   2/7 log in (`ssh ... true`), find `node` (18 or newer), the model, root or not, systemd or not
 *   3/7 create PREFIX, PREFIX/state (0700) and PREFIX/launcher; scp each bundle to a temporary name,
 *       check its size and sha256, rename both into place (a running device keeps its old files until
 *       it restarts)
 *   4/7 write PREFIX/device.json and PREFIX/device.key (0600); the key goes over ssh's stdin, never
 *       on a command line on either machine
 *   5/7 systemd: install and (re)start holdfast-device.service; otherwise stop the old launcher (and
 *       with it its device) by its pidfile and start the new one in the background
 *   6/7 poll PREFIX/status.json until the new device (the new launcher's child) reports an open session
 *   7/7 print where everything is, how to see the logs and how to stop it
 *
 * What runs is the launcher (unit.ts): `node PREFIX/holdfast-launcher.js --dir PREFIX/launcher
 * --bundle PREFIX/holdfast-device.js -- device --config PREFIX/device.json`, which runs the device
 * bundle as its child, so that the management operation `update` can swap bundles and roll a bad one
 * back (docs/PROTOCOL.md 14.7). The launcher takes the flashed bundle in when it starts and its
 * sha256 is not the one it took in last: a new build flashed becomes the current bundle, whatever
 * PREFIX/launcher/state.json named before, and the bundle that was current becomes `previous` (an
 * update staged and not yet tried is dropped). Flashing the same bytes again leaves the launcher's
 * current bundle as it is (one that `update` installed since stays). --no-launcher runs the device
 * bundle directly (no `update`).
 *
 * Every flag is checked before anything runs. A failing step names itself and says what it had
 * already changed on the board.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { ErrorCode, type ErrorCodeValue, hfError, isHfError } from '../../firmware/errors';
import { parseTarget } from '../../firmware/mux';
import { type Flag, parseArgs, usage, type Values } from './args';
import { parseForward } from './device-cmd';
import { INSECURE_KEY_FILE_FLAG, deviceKey } from './key';
import { copyToBoard, describeTarget, parseSshHost, type Ran, runChild, runOnBoard, shq, sshCommandLine, sshFailed, type SshTarget, whyFailed } from './ssh';
import { LAUNCHER_DEFAULTS } from '../../targets/host/device/launcher';
import { atBootLine, type BoardPaths, boardPaths, deviceConfig, type DeviceSettings, installUnitScript, type RunSettings, STOP_WAIT_S, startByHandScript, systemdUnit, UNIT_NAME } from './unit';

const FLAGS: Flag[] = [
  { name: 'host', meta: 'USER@HOST', help: 'the board, as for ssh (required)' },
  { name: 'port', type: 'number', help: "the board's ssh port (default 22)" },
  { name: 'identity', meta: 'KEYFILE', help: "ssh private key to log in with (default: ssh's own keys and agent)" },
  { name: 'known-hosts', meta: 'FILE', help: "known_hosts file for the board's host key (default ~/.ssh/known_hosts; a new board is added, a changed key is refused)" },
  { name: 'gateway', meta: 'URL', help: "the gateway's HTTP URL as the board sees it (required)" },
  { name: 'tcp', meta: 'HOST:PORT', help: "the gateway's direct TCP address (default: HTTP only)" },
  { name: 'proxy', meta: 'URL', help: 'HTTP forward proxy the board must use' },
  { name: 'id', meta: 'ID', help: "device id, as in the gateway's devices file (required)" },
  { name: 'key', meta: 'KEY', help: "the device's secret key (others see it in ps and /proc here: prefer --key-file or HOLDFAST_KEY)" },
  { name: 'key-file', meta: 'FILE', help: 'file whose first line is the secret key (mode 600: refused if group or others may read it)' },
  INSECURE_KEY_FILE_FLAG,
  { name: 'forward', meta: 'LOCALPORT:HOST:PORT', repeat: true, help: 'on the board, listen on 127.0.0.1:LOCALPORT and connect through the gateway to HOST:PORT' },
  { name: 'prefix', meta: 'DIR', help: 'where the device lives on the board (default /opt/holdfast)' },
  { name: 'node', meta: 'PATH', help: 'node on the board (default: `command -v node` there)' },
  { name: 'systemd', type: 'bool', help: 'install a systemd unit when the board runs systemd (default; --no-systemd starts it by hand)' },
  { name: 'launcher', type: 'bool', help: 'run the device under holdfast-launcher.js, for `update` with rollback (default; --no-launcher runs the device bundle directly)' },
  {
    name: 'update-confirm-ms',
    type: 'number',
    meta: 'MS',
    help: `the launcher's --update-confirm-ms: how long a bundle that update installed has to open a session before the previous one is put back (default ${LAUNCHER_DEFAULTS.updateConfirmMs})`,
  },
  { name: 'wait-s', type: 'number', help: 'how long to wait for the session to open (default 60)' },
];

const ABOUT = `Installs the device on a board over ssh (OpenSSH's ssh and scp), starts it (systemd, or by hand
without it) and waits until its session to the gateway is open. Flash again to update: the bundle and
config are replaced and the device restarts, resuming its session from PREFIX/state. The device runs
under the launcher (holdfast-launcher.js), so that it can also be updated over its session (update).`;

const SYNOPSIS =
  'holdfast flash --host USER@HOST [--port 22] [--identity KEYFILE] --gateway URL [--tcp HOST:PORT] --id ID --key KEY [--forward L:H:P]... [--prefix /opt/holdfast] [--no-launcher] [--wait-s 60]';

const STEPS = 7;
const MIN_NODE = 18;
const CONNECT_TIMEOUT_S = 10;

export interface FlashSettings {
  target: SshTarget;
  device: DeviceSettings;
  key: string;
  prefix: string;
  node: string | null;
  systemd: boolean;
  /** Run the device under the launcher (default), or directly. */
  launcher: boolean;
  /** The launcher's --update-confirm-ms; null: its default. */
  updateConfirmMs: number | null;
  waitS: number;
}

function optionError(msg: string, cause?: unknown): never {
  throw hfError(ErrorCode.OPTION, msg, cause);
}

/** A value for a flag that names a host:port, or HF_ERR_OPTION naming the flag. */
function target(flag: string, s: string): string {
  try {
    parseTarget(s);
  } catch (e) {
    optionError(`--${flag} must be HOST:PORT, got ${JSON.stringify(s)}`, e);
  }
  return s;
}

function httpUrl(flag: string, s: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch (e) {
    optionError(`--${flag} must be a URL like http://host:8080, got ${JSON.stringify(s)}`, e);
  }
  if (u.protocol !== 'http:') optionError(`--${flag} must be an http: URL, got ${JSON.stringify(s)}`);
  return s;
}

function readableFile(flag: string, file: string): fs.Stats {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    const st = fs.statSync(file);
    if (!st.isFile()) optionError(`--${flag} ${file}: not a file`);
    return st;
  } catch (e) {
    if (isHfError(e)) throw e;
    optionError(`--${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
}

/** The key (see key.ts), which must also survive being the first line of a file on the board. */
function keyOf(v: Values): string {
  const { key, from, warning } = deviceKey(v);
  if (warning !== undefined) process.stderr.write(`holdfast flash: warning: ${warning}\n`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (/[\x00-\x1f\x7f]/.test(key)) optionError(`${from}: the key must be one line without control characters`);
  if (key.trim() !== key) optionError(`${from}: the key must not start or end with blanks`);
  return key;
}

/** All flags, checked: nothing has run yet when this returns. */
export function flashSettings(argv: string[]): FlashSettings | 'help' {
  const { values: v, help, rest } = parseArgs(argv, FLAGS);
  if (help) return 'help';
  if (rest.length > 0) optionError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (typeof v.host !== 'string') optionError('--host USER@HOST is required');
  const { user, host } = parseSshHost(v.host);
  const port = (v.port as number | undefined) ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) optionError(`--port must be 1..65535, got ${port}`);
  let identity: string | null = null;
  if (typeof v.identity === 'string') {
    const st = readableFile('identity', v.identity);
    // ssh ignores a private key that others can read, and then fails in a way that hides why.
    if ((st.mode & 0o077) !== 0) optionError(`--identity ${v.identity}: readable by others (mode ${(st.mode & 0o777).toString(8)}), ssh would refuse it: chmod 600 ${v.identity}`);
    identity = path.resolve(v.identity);
  }
  const knownHosts = typeof v['known-hosts'] === 'string' ? path.resolve(v['known-hosts']) : null;
  if (typeof v.gateway !== 'string') optionError('--gateway URL is required');
  const gateway = httpUrl('gateway', v.gateway);
  const tcp = typeof v.tcp === 'string' ? target('tcp', v.tcp) : null;
  const proxy = typeof v.proxy === 'string' ? httpUrl('proxy', v.proxy) : null;
  if (typeof v.id !== 'string') optionError('--id ID is required');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (v.id.length === 0 || v.id.length > 128 || /[\x00-\x1f\x7f]/.test(v.id)) optionError(`--id must be 1..128 printable characters, got ${JSON.stringify(v.id)}`);
  const forward = ((v.forward as string[] | undefined) ?? []).map((f) => {
    try {
      parseForward(f);
    } catch (e) {
      optionError(`--forward must be LOCALPORT:HOST:PORT, got ${JSON.stringify(f)}`, e);
    }
    return f;
  });
  const prefix = ((v.prefix as string | undefined) ?? '/opt/holdfast').replace(/\/+$/, '');
  // Absolute and plain: it goes into shell scripts (quoted), the unit file and the device's config.
  if (!/^(\/[A-Za-z0-9._+@-]+)+$/.test(prefix) || prefix.split('/').some((p) => p === '.' || p === '..')) {
    optionError(`--prefix must be an absolute path of letters, digits and ._+@- (no . or .. parts), got ${JSON.stringify(v.prefix)}`);
  }
  const node = typeof v.node === 'string' ? v.node : null;
  if (node !== null && !/^(\/[A-Za-z0-9._+@-]+)+$/.test(node)) optionError(`--node must be an absolute path, got ${JSON.stringify(node)}`);
  const waitS = (v['wait-s'] as number | undefined) ?? 60;
  if (!(waitS > 0 && waitS <= 3600)) optionError(`--wait-s must be more than 0 and at most 3600, got ${waitS}`);
  const launcher = v.launcher !== false;
  const updateConfirmMs = (v['update-confirm-ms'] as number | undefined) ?? null;
  if (updateConfirmMs !== null && !launcher) optionError("--update-confirm-ms is the launcher's: it cannot go with --no-launcher");
  if (updateConfirmMs !== null && !(Number.isInteger(updateConfirmMs) && updateConfirmMs >= 1 && updateConfirmMs <= 86_400_000))
    optionError(`--update-confirm-ms must be a whole number of ms, 1..86400000, got ${updateConfirmMs}`);
  return {
    target: { user, host, port, identity, knownHosts, connectTimeoutS: CONNECT_TIMEOUT_S },
    device: { gateway, tcp, proxy, id: v.id, forward },
    key: keyOf(v),
    prefix,
    node,
    systemd: v.systemd !== false,
    launcher,
    updateConfirmMs,
    waitS,
  };
}

/** A step failed: its code and why, in words. */
class StepFailure extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    readonly why: string,
  ) {
    super(why);
  }
}

function fail(code: ErrorCodeValue, why: string): never {
  throw new StepFailure(code, why);
}

/** Prints "n/7 label ... ok (note)" as each step runs, and keeps what has changed on the board. */
class Steps {
  private n = 0;
  /** What the steps so far changed on the board, in words. */
  readonly changed: string[] = [];

  constructor(private readonly out: NodeJS.WritableStream) {}

  async run<T>(label: string, fn: () => Promise<{ value: T; note: string }>): Promise<T> {
    this.n++;
    this.out.write(`${this.n}/${STEPS} ${label} ... `);
    try {
      const { value, note } = await fn();
      this.out.write(`ok${note ? ` (${note})` : ''}\n`);
      return value;
    } catch (e) {
      this.out.write('FAILED\n');
      let code: ErrorCodeValue;
      let why: string;
      if (e instanceof StepFailure) ({ code, why } = e);
      else if (isHfError(e)) {
        code = e.code;
        why = e.message;
      } else {
        code = ErrorCode.UNSUPPORTED;
        why = (e as Error).message;
      }
      const state = this.changed.length === 0 ? 'Nothing on the board was changed.' : `Already done on the board: ${this.changed.join('; ')}.`;
      throw hfError(code, `step ${this.n}/${STEPS} (${label}) failed: ${why.replace(/[.\s]+$/, '')}. ${state}`, e);
    }
  }
}

/** The checkout this CLI runs from: tools/cli/ under tsx, dist/cli/ when bundled by bin/holdfast. */
function checkoutRoot(): string {
  let d = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(d, 'tools', 'bundle.js'))) return d;
    d = path.dirname(d);
  }
  fail(ErrorCode.UNSUPPORTED, `tools/bundle.js not found above ${__dirname}: run flash from a holdfast checkout`);
}

/** Newest modification time (ms) of the files the device bundle is built from. */
function newestSource(root: string): number {
  let newest = 0;
  const walk = (p: string, depth: number): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      if (depth > 8) return;
      for (const n of fs.readdirSync(p)) walk(path.join(p, n), depth + 1);
    } else if (/\.(ts|js|json)$/.test(p)) newest = Math.max(newest, st.mtimeMs);
  };
  for (const s of ['firmware', 'hal', 'targets', 'tools/cli', 'tools/bundle.js', 'tools/empty.js', 'package-lock.json']) walk(path.join(root, s), 0);
  return newest;
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

/** A bundle built here, to go to the board. */
interface Bundle {
  /** Its file here. */
  file: string;
  /** Its name in PREFIX on the board. */
  name: string;
  sha256: string;
  bytes: number;
}

const DEVICE_BUNDLE = 'holdfast-device.js';
const LAUNCHER_BUNDLE = 'holdfast-launcher.js';

/** The bundles the board needs (the device's, and the launcher's unless --no-launcher), built when one is missing or older than the sources. */
async function buildBundles(s: FlashSettings): Promise<{ value: Bundle[]; note: string }> {
  const root = checkoutRoot();
  const names = s.launcher ? [DEVICE_BUNDLE, LAUNCHER_BUNDLE] : [DEVICE_BUNDLE];
  const files = names.map((n) => path.join(root, 'dist', n));
  let oldest = Number.POSITIVE_INFINITY;
  for (const file of files) {
    try {
      oldest = Math.min(oldest, fs.statSync(file).mtimeMs);
    } catch {
      oldest = 0; // missing: built below
    }
  }
  let how = 'up to date';
  if (oldest === 0 || oldest < newestSource(root)) {
    const r = await runChild(process.execPath, [path.join(root, 'tools', 'bundle.js'), '--quiet'], { timeoutMs: 120_000, cwd: root });
    if (r.code !== 0) fail(ErrorCode.UNSUPPORTED, `node tools/bundle.js: ${r.timedOut ? 'did not finish within 120 s' : (r.stderr + r.stdout).trim().split('\n').slice(-4).join(' / ')}`);
    how = 'built';
  }
  const bundles = files.map((file, i) => {
    const body = fs.readFileSync(file);
    return { file, name: names[i], sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length };
  });
  const dir = path.relative(process.cwd(), path.join(root, 'dist')) || '.';
  return { value: bundles, note: `${how}: ${bundles.map((b) => `${path.join(dir, b.name)} ${kib(b.bytes)}`).join(', ')}` };
}

interface Board {
  node: string;
  nodeVersion: string;
  model: string;
  arch: string;
  root: boolean;
  systemd: boolean;
}

/** key=value lines from a board script. */
function fields(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

function connectFailure(s: FlashSettings, r: Ran, timeoutMs: number): never {
  fail(ErrorCode.CONNECT, `ssh ${describeTarget(s.target)}: ${whyFailed(r, timeoutMs)}`);
}

async function checkBoard(s: FlashSettings): Promise<{ value: Board; note: string }> {
  const t = s.target;
  const timeoutMs = (CONNECT_TIMEOUT_S + 20) * 1000;
  const reach = await runOnBoard(t, 'true', { timeoutMs });
  if (reach.code !== 0) connectFailure(s, reach, timeoutMs);
  const probe = await runOnBoard(
    t,
    `n=${s.node !== null ? shq(s.node) : '$(command -v node 2>/dev/null || true)'}
echo "node=$n"
if [ -n "$n" ] && [ -x "$n" ]; then echo "version=$("$n" -v 2>/dev/null || true)"; fi
m=
if [ -r /proc/device-tree/model ]; then m=$(tr -d '\\000' < /proc/device-tree/model); fi
if [ -z "$m" ] && [ -r /sys/class/dmi/id/product_name ]; then m=$(cat /sys/class/dmi/id/product_name 2>/dev/null || true); fi
echo "model=$m"
echo "arch=$(uname -m)"
echo "uid=$(id -u)"
if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
`,
    { timeoutMs },
  );
  if (sshFailed(probe)) connectFailure(s, probe, timeoutMs);
  if (probe.code !== 0) fail(ErrorCode.UNSUPPORTED, `probing the board failed: ${whyFailed(probe)}`);
  const f = fields(probe.stdout);
  const node = f.get('node') ?? '';
  const version = f.get('version') ?? '';
  if (node === '') fail(ErrorCode.UNSUPPORTED, `no node on the board's PATH: install Node.js ${MIN_NODE} or newer there (Debian, Raspberry Pi OS: apt-get install nodejs) or pass --node PATH`);
  if (!node.startsWith('/')) fail(ErrorCode.UNSUPPORTED, `node on the board is ${JSON.stringify(node)}, not a file: pass --node PATH`);
  const major = /^v(\d+)\./.exec(version);
  if (major === null) fail(ErrorCode.UNSUPPORTED, `${node} on the board does not run (\`node -v\` said ${JSON.stringify(version)})`);
  if (Number(major[1]) < MIN_NODE) fail(ErrorCode.UNSUPPORTED, `node on the board is ${version} (${node}); the device needs ${MIN_NODE} or newer`);
  const board: Board = {
    node,
    nodeVersion: version,
    model: f.get('model') || 'unknown model',
    arch: f.get('arch') ?? '?',
    root: f.get('uid') === '0',
    systemd: s.systemd && f.get('systemd') === 'yes',
  };
  if (board.systemd && !board.root) {
    fail(
      ErrorCode.UNSUPPORTED,
      `the board runs systemd and installing the unit needs root, but ${t.user ?? 'this user'} is uid ${f.get('uid')}: flash as root@${t.host}, or pass --no-systemd to start the device by hand`,
    );
  }
  const how = board.systemd ? 'systemd' : f.get('systemd') === 'yes' ? 'systemd, not used (--no-systemd)' : 'no systemd';
  return { value: board, note: `${board.model}, ${board.arch}, node ${version} at ${node}, ${how}` };
}

/** Shell that checks the copy `tmp` of `b` (size, and sha256 where the board has sha256sum) and makes it executable. */
function checkCopyScript(b: Bundle, tmp: string): string {
  return `n=$(wc -c < ${shq(tmp)} | tr -d ' ')
if [ "$n" != ${b.bytes} ]; then echo "${b.name}: copied $n bytes, expected ${b.bytes}" >&2; exit 3; fi
if command -v sha256sum >/dev/null 2>&1; then
  h=$(sha256sum ${shq(tmp)} | cut -d ' ' -f 1)
  if [ "$h" != ${b.sha256} ]; then echo "${b.name}: sha256 of the copy is $h, expected ${b.sha256}" >&2; exit 3; fi
  echo checked=sha256
fi
chmod 0755 ${shq(tmp)}
`;
}

/**
 * Step 3: PREFIX, PREFIX/state (0700) and PREFIX/launcher; each bundle copied to a temporary name,
 * and once every copy checks out, each renamed into place.
 */
async function copyBundles(s: FlashSettings, p: BoardPaths, bundles: Bundle[], steps: Steps): Promise<{ value: null; note: string }> {
  const t = s.target;
  const mk = await runOnBoard(
    t,
    `set -e
if [ -d ${shq(p.prefix)} ]; then echo had=prefix; fi
mkdir -p ${shq(p.state)}
chmod 0700 ${shq(p.state)}
${
  s.launcher
    ? `mkdir -p ${shq(p.launcherDir)}
`
    : ''
}rm -f ${bundles.map((b) => `${shq(p.prefix)}/.${b.name}.*.tmp`).join(' ')}
`,
  );
  if (sshFailed(mk)) connectFailure(s, mk, 60_000);
  if (mk.code !== 0) fail(ErrorCode.STORAGE, `cannot create ${p.prefix} and ${p.state} on the board: ${whyFailed(mk)}`);
  if (fields(mk.stdout).get('had') !== 'prefix') steps.changed.push(`created ${p.prefix} and ${p.state} (empty)${s.launcher ? ` and ${p.launcherDir}` : ''}`);
  const tag = randomBytes(4).toString('hex');
  const tmps = bundles.map((b) => `${p.prefix}/.${b.name}.${tag}.tmp`);
  const removeTmps = (): Promise<unknown> => runOnBoard(t, `rm -f ${tmps.map(shq).join(' ')}`, { timeoutMs: 20_000 }).catch(() => undefined);
  for (const [i, b] of bundles.entries()) {
    const cp = await copyToBoard(t, b.file, tmps[i]);
    if (cp.code !== 0) {
      await removeTmps();
      fail(sshFailed(cp) ? ErrorCode.CONNECT : ErrorCode.STORAGE, `scp to ${tmps[i]}: ${whyFailed(cp)}`);
    }
  }
  const mv = await runOnBoard(
    t,
    `set -e
trap 'rm -f ${tmps.map(shq).join(' ')}' EXIT
${bundles.map((b, i) => checkCopyScript(b, tmps[i])).join('')}${bundles
  .map(
    (b, i) => `mv -f ${shq(tmps[i])} ${shq(`${p.prefix}/${b.name}`)}
`,
  )
  .join('')}`,
  );
  if (sshFailed(mv)) connectFailure(s, mv, 60_000);
  if (mv.code !== 0) fail(ErrorCode.STORAGE, `putting the bundles in place: ${whyFailed(mv)}`);
  const placed = bundles.map((b) => `${p.prefix}/${b.name}`);
  steps.changed.push(`put the new ${placed.join(' and ')} in place (a device already running keeps its old code until it restarts)`);
  const checked = mv.stdout.split('\n').filter((l) => l === 'checked=sha256').length === bundles.length ? 'sha256 checked' : 'sizes checked (no sha256sum on the board)';
  return { value: null, note: `${bundles.map((b) => `${b.name} ${kib(b.bytes)}`).join(', ')} to ${p.prefix}, ${checked}` };
}

async function writeConfig(s: FlashSettings, p: BoardPaths, steps: Steps): Promise<{ value: null; note: string }> {
  const config = JSON.stringify(deviceConfig(s.device, p), null, 2) + '\n';
  // The script holds paths only; the key is the first line of its stdin, written by the shell's
  // builtin printf (no process gets it as an argument), the config is the rest.
  const r = await runOnBoard(
    s.target,
    `set -e
umask 077
cd ${shq(p.prefix)}
trap 'rm -f .device.key.tmp .device.json.tmp' EXIT
IFS= read -r key
printf '%s\\n' "$key" > .device.key.tmp
cat > .device.json.tmp
chmod 0600 .device.key.tmp .device.json.tmp
mv -f .device.key.tmp ${shq(p.key)}
mv -f .device.json.tmp ${shq(p.config)}
`,
    { stdin: `${s.key}\n${config}` },
  );
  if (sshFailed(r)) connectFailure(s, r, 60_000);
  if (r.code !== 0) fail(ErrorCode.STORAGE, `writing ${p.config} and ${p.key}: ${whyFailed(r)}`);
  steps.changed.push(`wrote ${p.config} and ${p.key} (a device already running reads them when it restarts)`);
  return { value: null, note: `${p.config} and ${p.key}, mode 0600` };
}

function runSettings(s: FlashSettings, board: Board): RunSettings {
  return { node: board.node, launcher: s.launcher, updateConfirmMs: s.updateConfirmMs };
}

async function startDevice(s: FlashSettings, p: BoardPaths, board: Board, steps: Steps): Promise<{ value: number; note: string }> {
  const run = runSettings(s, board);
  const r = board.systemd ? await runOnBoard(s.target, installUnitScript(p), { stdin: systemdUnit(run, p, s.device.id) }) : await runOnBoard(s.target, startByHandScript(run, p));
  if (sshFailed(r)) connectFailure(s, r, 60_000);
  const f = fields(r.stdout);
  if (f.get('unit') === 'disabled') steps.changed.push(`disabled and stopped ${UNIT_NAME} (an earlier flash installed it)`);
  const old = f.get('stopped') ?? f.get('killed');
  if (old !== undefined) steps.changed.push(`stopped the device that ran before (pid ${old}${f.has('killed') ? `, with SIGKILL after ${STOP_WAIT_S} s` : ''})`);
  if (r.code !== 0) fail(ErrorCode.UNSUPPORTED, `${board.systemd ? `installing and starting ${UNIT_NAME}` : 'starting the device'}: ${whyFailed(r)}`);
  const pid = Number(f.get('pid'));
  if (!Number.isInteger(pid) || pid <= 0) fail(ErrorCode.UNSUPPORTED, `the device did not start (no process id; ${board.systemd ? `systemctl status ${UNIT_NAME}` : `see ${p.log}`})`);
  const what = s.launcher ? 'launcher' : 'device';
  steps.changed.push(`started the new ${what} (pid ${pid})`);
  const stopped = (f.get('unit') === 'disabled' ? `, after disabling ${UNIT_NAME}` : '') + (old !== undefined ? `, after stopping pid ${old}` : '');
  return {
    value: pid,
    note: board.systemd ? `systemd: ${UNIT_NAME} enabled and (re)started, ${what} pid ${pid}${stopped}` : `no systemd: started by hand, ${what} pid ${pid}${stopped}`,
  };
}

interface DeviceStatus {
  pid?: number;
  state?: string;
  session?: string | null;
  transport?: string;
  error?: string | null;
}

/**
 * Shell that prints PREFIX/status.json, then "parent=PPID" of the process it names (the device's
 * pid is the top-level "pid" field, right after "id": an id holding `,"pid":` has its quotes escaped).
 */
function statusScript(p: BoardPaths): string {
  return `cat ${shq(p.status)} 2>/dev/null || true
echo
sp=$(tr ',' '\\n' < ${shq(p.status)} 2>/dev/null | grep -m 1 '^"pid":' | cut -d : -f 2 || true)
case "$sp" in ''|*[!0-9]*) ;; *)
  if [ -r "/proc/$sp/status" ]; then
    while read -r k v; do if [ "$k" = PPid: ]; then echo "parent=$v"; break; fi; done < "/proc/$sp/status" || true
  fi ;;
esac
`;
}

/**
 * Step 6: polls PREFIX/status.json until the new device reports an open session. The new device is
 * the process `pid` started (systemd: the unit's main process), or under the launcher, its child:
 * a status from the device that ran before (systemd restarts it after this step's first look) is
 * not taken for it.
 */
async function waitOpen(s: FlashSettings, p: BoardPaths, board: Board, pid: number): Promise<{ value: DeviceStatus; note: string }> {
  const deadline = Date.now() + s.waitS * 1000;
  const script = `${statusScript(p)}${board.systemd ? `echo "pid=$(systemctl show -p MainPID --value ${UNIT_NAME})"` : `if kill -0 ${pid} 2>/dev/null; then echo alive=yes; else echo alive=no; fi`}
`;
  let last: DeviceStatus | null = null;
  let lastError = '';
  let current = pid;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    const r = await runOnBoard(s.target, script, { timeoutMs: Math.max(5000, deadline - Date.now() + 2000) });
    if (r.code !== 0) lastError = whyFailed(r);
    else {
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
      try {
        last = line !== undefined ? (JSON.parse(line) as DeviceStatus) : last;
      } catch {
        // caught mid-write: the next poll reads it whole
      }
      const f = fields(r.stdout);
      if (board.systemd && Number(f.get('pid')) > 0) current = Number(f.get('pid'));
      const ours = last !== null && (s.launcher ? Number(f.get('parent')) === current : last.pid === current);
      if (ours && last !== null && last.state === 'open' && typeof last.session === 'string') {
        const by = s.launcher ? `, device pid ${last.pid} under the launcher` : '';
        return { value: last, note: `session ${last.session}, transport ${last.transport ?? '?'}${by}` };
      }
      if (ours && last !== null && last.error === ErrorCode.AUTH) {
        fail(ErrorCode.AUTH, `the gateway refused id ${JSON.stringify(s.device.id)} with this key (HF_ERR_AUTH): check the gateway's devices file`);
      }
      if (!board.systemd && f.get('alive') === 'no') {
        const log = await runOnBoard(s.target, `tail -n 8 ${shq(p.log)} 2>/dev/null || true`, { timeoutMs: 20_000 });
        fail(ErrorCode.UNSUPPORTED, `the ${s.launcher ? 'launcher' : 'device'} (pid ${pid}) exited; the end of ${p.log}:\n${log.stdout.trimEnd()}\n`);
      }
    }
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
  }
  const said = last !== null ? `status ${JSON.stringify(last)}` : lastError !== '' ? `ssh: ${lastError}` : `no ${p.status} yet`;
  const logs = board.systemd ? `journalctl -u ${UNIT_NAME}` : p.log;
  fail(ErrorCode.TIMEOUT, `no open session within ${s.waitS} s (${said}); the device keeps trying: see ${logs}`);
}

function summary(s: FlashSettings, p: BoardPaths, board: Board, pid: number, status: DeviceStatus): string {
  const ssh = sshCommandLine(s.target);
  const rows: [string, string][] = [
    ['board', `${describeTarget(s.target)}: ${board.model}, node ${board.nodeVersion}`],
    ['device', s.launcher ? `${s.device.id}, pid ${status.pid ?? '?'}, under the launcher (pid ${pid})` : `${s.device.id}, pid ${pid}`],
    ['bundle', s.launcher ? `${p.bundle} (as flashed; the launcher runs its copy in ${p.launcherDir}/bundles)` : p.bundle],
  ];
  if (s.launcher) rows.push(['launcher', `${p.launcher}, its bundles and state in ${p.launcherDir} (update with rollback: docs/PROTOCOL.md 14.7)`]);
  rows.push(['config', `${p.config} (key in ${p.key}, both 0600)`], ['state', `${p.state} (the session journal: keep it across updates)`], ['status', `${ssh} cat ${p.status}`]);
  if (board.systemd) {
    rows.push(['logs', `${ssh} journalctl -u ${UNIT_NAME} -f`]);
    rows.push(['stop', `${ssh} systemctl stop ${UNIT_NAME}   (and disable ${UNIT_NAME}: not at boot)`]);
    rows.push(['at boot', `enabled (${UNIT_NAME})`]);
  } else {
    rows.push(['logs', `${ssh} tail -f ${p.log}`]);
    rows.push(['stop', `${ssh} 'kill $(cat ${p.pid})'${s.launcher ? '   (the launcher stops its device first)' : ''}`]);
    rows.push(['at boot', `not set up (no systemd). By hand, in crontab -e on the board: ${atBootLine(runSettings(s, board), p)}`]);
  }
  return rows.map(([k, v]) => `  ${k.padEnd(9)}${v}`).join('\n') + '\n';
}

export async function flashCommand(argv: string[]): Promise<number> {
  const s = flashSettings(argv);
  if (s === 'help') {
    process.stdout.write(usage(SYNOPSIS, ABOUT, FLAGS));
    return 0;
  }
  const p = boardPaths(s.prefix);
  const steps = new Steps(process.stdout);
  const bundles = await steps.run(s.launcher ? 'building the device and launcher bundles' : 'building the device bundle', () => buildBundles(s));
  const board = await steps.run('checking the board', () => checkBoard(s));
  await steps.run('copying the bundles', () => copyBundles(s, p, bundles, steps));
  await steps.run('writing the config and key', () => writeConfig(s, p, steps));
  const pid = await steps.run(board.systemd ? 'installing the systemd unit and starting' : 'starting the device', () => startDevice(s, p, board, steps));
  const status = await steps.run('waiting for the session', () => waitOpen(s, p, board, pid));
  await steps.run('done', async () => ({ value: null, note: `${s.device.id} runs on ${describeTarget(s.target)}${s.launcher ? ' under the launcher' : ''}` }));
  process.stdout.write(summary(s, p, board, pid, status));
  return 0;
}
