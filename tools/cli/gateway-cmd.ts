/**
 * `holdfast gateway`: serves devices over HTTP (and direct TCP), forwards their port-forwarding
 * streams to the targets the allow list names, and stops cleanly on SIGINT/SIGTERM.
 */
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import { Gateway, type GatewayChannel, type GatewayTlsOptions } from '../../targets/host/gateway/gateway';
import { serveForwards } from '../../targets/host/app/forward';
import { createLog, type LogFormat, type LogLevel } from '../../targets/node/log';
import { Mux } from '../../targets/host/app/mux';
import type { TcpLimits } from '../../targets/host/gateway/tcp-front';
import { parseTarget } from '../../firmware/mux';
import { type Flag, parseArgs, usage, type Values } from './args';
import { benchResponder } from './bench-proto';
import { ackAfterFlag, ackAfterOf, linkOptions, LINK_FLAGS, LOG_FLAGS, onSignals, readFlagFile, readFlagJson } from './common';
import { checkSecretFile, INSECURE_KEY_FILE_FLAG } from './key';
import { PAIR_FLAG_NAMES, PAIR_FLAGS, advertiseOf, pairOptionsOf } from './pair-flags';
import { CLUSTER_FLAG_NAMES, CLUSTER_FLAGS, clusterOptionsOf } from './cluster-flags';
import { startManagement } from '../../targets/host/gateway/manage/start';
import { LABEL_KEY } from '../../targets/host/gateway/manage/devices-store';
import * as os from 'node:os';
import { GATEWAY_LINK_DEFAULTS } from '../../targets/host/gateway/gateway';
import { WorkerMain } from '../../targets/host/gateway/workers/main';
import { type PlacementPolicy, placementPolicy } from '../../targets/host/gateway/workers/placement';
import { serveHandoffs, workerDirectory, workerPlacement, workerSlot } from '../../targets/host/gateway/workers/worker';

/** The direct TCP port's bounds on connections that have not proved a key (TcpLimits). */
export const TCP_LIMIT_FLAGS: Flag[] = [
  { name: 'max-connections', type: 'number', help: 'most direct TCP connections at once (default 10000)' },
  { name: 'pre-auth-frame-bytes', type: 'number', help: 'largest first frame a TCP connection may announce before it proved a key (default 4096)' },
  { name: 'pre-auth-deadline-ms', type: 'number', help: 'a TCP connection must have a frame accepted within this, ms (default 10000)' },
  { name: 'pre-auth-idle-ms', type: 'number', help: 'a TCP connection not yet authenticated that goes quiet this long is closed, ms (default 5000)' },
  { name: 'connection-idle-ms', type: 'number', help: "a session's TCP connection with nothing received this long is closed, ms (default 45000)" },
  { name: 'max-pre-auth', type: 'number', help: 'most TCP connections not yet authenticated, at once (default 1000)' },
  { name: 'max-pre-auth-per-address', type: 'number', help: 'most TCP connections not yet authenticated from one address (default 64)' },
  { name: 'hello-rate', type: 'number', help: 'first frames taken per second from one address (default 20)' },
  { name: 'hello-burst', type: 'number', help: 'first frames one address may send in a burst (default 100)' },
];

/** The TcpLimits the flags give (unset ones stay unset: the gateway's defaults apply). */
export function tcpLimitsOf(v: Record<string, unknown>): TcpLimits {
  const o: Record<string, number> = {};
  for (const f of TCP_LIMIT_FLAGS) {
    if (f.name === 'max-connections' || v[f.name] === undefined) continue;
    o[f.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = v[f.name] as number;
  }
  return o as TcpLimits;
}

const FLAGS: Flag[] = [
  { name: 'http', meta: 'HOST:PORT', help: 'HTTP listener (default 127.0.0.1:8080)' },
  {
    name: 'workers',
    meta: 'N|auto',
    help: "gateway processes serving sessions (default 1: this process alone); auto: one per core. A main process routes each connection to its session's worker",
  },
  {
    name: 'worker-keep-alive',
    type: 'bool',
    help: 'with --workers: HTTP connections stay open in their worker (for devices on connections of their own; not behind a proxy that pools connections for many devices)',
  },
  { name: 'placement', meta: 'POLICY', help: 'where --workers puts a new session: hash (of the device id, default) or least-loaded; with --cluster also label or service' },
  { name: 'tcp', meta: 'HOST:PORT', help: 'direct TCP listener (default: none)' },
  { name: 'metrics', meta: 'HOST:PORT', help: 'serve Prometheus metrics at http://HOST:PORT/metrics, on a listener of its own (default: none; use loopback or a private network)' },
  {
    name: 'devices',
    meta: 'FILE',
    help: 'JSON {"<device id>": "<secret key>" or {"key": "<secret key>", "labels": {"site": "berlin"}}, ...}: the devices let in (required; mode 600: refused if group or others may read it)',
  },
  { name: 'allow', meta: 'HOST:PORT', repeat: true, help: 'a target devices may forward to (anything else is refused, HF_ERR_FORBIDDEN)' },
  { name: 'data', meta: 'DIR', help: 'keep devices, jobs, operators and the audit log in DIR/holdfast.db: devices can be managed (see --console)' },
  { name: 'console', meta: 'HOST:PORT', help: 'serve the management API and web console here (needs --data; use loopback or a private network)' },
  { name: 'echo', type: 'bool', help: 'send every plain message back to its device (for testing)' },
  { name: 'bench', type: 'bool', help: "answer devices' `bench` command (implies --echo)" },
  { name: 'max-sessions', type: 'number', help: 'most sessions at once (default 10000)' },
  { name: 'tls-cert', meta: 'FILE', help: 'TLS certificate chain (PEM): HTTPS and TLS on --tcp; re-read on SIGHUP' },
  { name: 'tls-key', meta: 'FILE', help: "the certificate's private key (PEM; mode 600 like --devices); re-read on SIGHUP" },
  { name: 'tls-ca', meta: 'FILE', help: 'CA certificates (PEM): devices must show a client certificate from one of them' },
  INSECURE_KEY_FILE_FLAG,
  ackAfterFlag('gateway'),
  ...PAIR_FLAGS,
  ...CLUSTER_FLAGS,
  ...LINK_FLAGS,
  ...TCP_LIMIT_FLAGS,
  ...LOG_FLAGS,
];

const ABOUT = `Runs the gateway devices connect to. Each device proves its key from the devices file;
its session then carries messages and forwarded TCP connections to the --allow targets.
With --peer-listen or --standby-of it is one of a primary/standby pair: a standby holds every session
of its primary and takes over when the primary goes.`;

/**
 * Reads the devices file: a JSON object whose values are each a device's secret key (a non-empty
 * string) or {"key": ..., "labels": {...}} (labels: what management selectors match), in a file only
 * its owner may read (see checkSecretFile; `insecure` lets a looser one through, and `warn` gets the
 * warning). Returns the keys, and the labels of the devices that have some.
 */
export function readDevicesFile(file: string, insecure = false, warn: (message: string) => void = () => {}): { keys: Record<string, string>; labels: Record<string, Record<string, string>> } {
  const loose = checkSecretFile('devices', file, insecure);
  if (loose !== null) warn(loose);
  const d = readFlagJson('devices', file, 'a JSON object {"<device id>": "<secret key>"}');
  const keys: Record<string, string> = {};
  const labels: Record<string, Record<string, string>> = {};
  for (const [id, v] of Object.entries(d)) {
    if (id.length === 0 || id.length > 128) throw hfError(ErrorCode.OPTION, `--devices ${file}: device id ${JSON.stringify(id)} must be 1..128 characters`);
    const entry = typeof v === 'string' ? { key: v } : v;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      throw hfError(ErrorCode.OPTION, `--devices ${file}: the key of ${JSON.stringify(id)} must be a non-empty string, or {"key": ..., "labels": {...}}`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (k !== 'key' && k !== 'labels') throw hfError(ErrorCode.OPTION, `--devices ${file}: ${JSON.stringify(id)} has an unknown field ${JSON.stringify(k)} (key, labels)`);
    if (typeof e.key !== 'string' || e.key.length === 0) throw hfError(ErrorCode.OPTION, `--devices ${file}: the key of ${JSON.stringify(id)} must be a non-empty string`);
    keys[id] = e.key;
    if (e.labels === undefined) continue;
    const l = e.labels;
    if (l === null || typeof l !== 'object' || Array.isArray(l) || !Object.values(l).every((x) => typeof x === 'string'))
      throw hfError(ErrorCode.OPTION, `--devices ${file}: the labels of ${JSON.stringify(id)} must be an object of strings`);
    for (const k of Object.keys(l))
      if (!LABEL_KEY.test(k))
        throw hfError(ErrorCode.OPTION, `--devices ${file}: label key ${JSON.stringify(k)} of ${JSON.stringify(id)}: 1..63 of letters, digits and . _ - /, starting with a letter or digit`);
    labels[id] = l as Record<string, string>;
  }
  return { keys, labels };
}

/** The devices file's keys (see readDevicesFile). */
export function readDevices(file: string, insecure = false, warn: (message: string) => void = () => {}): Record<string, string> {
  return readDevicesFile(file, insecure, warn).keys;
}

/**
 * The TLS files named by --tls-cert/--tls-key/--tls-ca, read now (null without --tls-cert). The key
 * file must be private to its owner unless --insecure-key-file (then `warn` gets the warning).
 */
export function readTls(v: Record<string, unknown>, warn: (message: string) => void = () => {}): GatewayTlsOptions | null {
  if (v['tls-cert'] === undefined && v['tls-key'] === undefined) {
    if (v['tls-ca'] !== undefined) throw hfError(ErrorCode.OPTION, '--tls-ca needs --tls-cert and --tls-key');
    return null;
  }
  if (v['tls-cert'] === undefined || v['tls-key'] === undefined) throw hfError(ErrorCode.OPTION, '--tls-cert and --tls-key go together');
  const loose = checkSecretFile('tls-key', String(v['tls-key']), v['insecure-key-file'] === true);
  if (loose !== null) warn(loose);
  const read = (flag: string): Buffer => readFlagFile(flag, String(v[flag]));
  return { cert: read('tls-cert'), key: read('tls-key'), ...(v['tls-ca'] === undefined ? {} : { ca: read('tls-ca'), requestCert: true }) };
}

/** The worker count --workers gives (1 without it; auto: os.availableParallelism()). HF_ERR_OPTION for anything else. */
export function workerCount(v: unknown): number {
  if (v === undefined) return 1;
  const s = String(v);
  const n = s === 'auto' ? availableCores() : /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 256) throw hfError(ErrorCode.OPTION, `--workers must be 1..256 or auto, got ${JSON.stringify(s)}`);
  return n;
}

function availableCores(): number {
  const o = os as { availableParallelism?: () => number };
  return o.availableParallelism?.() ?? os.cpus().length;
}

/**
 * What --workers N > 1 cannot do yet, refused at start (HF_ERR_OPTION naming the flag): TLS (the
 * main process reads each first request, so it would have to end TLS itself), the management store
 * (--data, --console: one SQLite file with one writer, and the console's view of every session),
 * --metrics (each worker counts only its own sessions) and the pair flags (a standby replicates one
 * process's sessions).
 */
function refuseWithWorkers(v: Record<string, unknown>, n: number): void {
  for (const flag of ['tls-cert', 'tls-key', 'tls-ca', 'data', 'console', 'metrics', ...PAIR_FLAG_NAMES, ...CLUSTER_FLAG_NAMES]) {
    if (v[flag] !== undefined)
      throw hfError(
        ErrorCode.OPTION,
        `--${flag} does not work with --workers ${n} yet (the main process reads first requests in the clear; the management store has one writer; metrics are per worker; a pair replicates one process; a cluster node is one process): use --workers 1`,
      );
  }
}

export async function gatewayCommand(argv: string[]): Promise<number> {
  const { values: v, help } = parseArgs(argv, FLAGS);
  if (help) {
    process.stdout.write(usage('holdfast gateway --http HOST:PORT [--tcp HOST:PORT] --devices FILE [--allow HOST:PORT]...', ABOUT, FLAGS));
    return 0;
  }
  if (v.devices === undefined) throw hfError(ErrorCode.OPTION, '--devices FILE is required');
  const ackAfter = ackAfterOf(v, 'gateway'); // a bad value is an error before anything starts
  const workers = workerCount(v.workers);
  const cluster = clusterOptionsOf(v);
  const placement = cluster === null ? placementPolicy((v.placement as string | undefined) ?? 'hash') : 'hash';
  const slot = workerSlot();
  if (workers > 1 || slot >= 0) refuseWithWorkers(v, workers);
  // Warnings about loose file modes (--insecure-key-file) wait for the log, which comes later.
  const loose: string[] = [];
  const pair = pairOptionsOf(v, process.env, (m) => loose.push(m));
  if (ackAfter === 'standby' && pair === null && cluster === null)
    throw hfError(ErrorCode.OPTION, '--ack-after standby needs a pair (--peer-listen HOST:PORT or --standby-of HOST:PORT, and its key) or a cluster (--cluster nats://HOST:PORT)');
  const advertise = advertiseOf(v);
  if (workers > 1 && slot < 0) return workersMain(v, workers, placement);
  const { keys: devices, labels } = readDevicesFile(String(v.devices), v['insecure-key-file'] === true, (m) => loose.push(m));
  if (v.console !== undefined && v.data === undefined) throw hfError(ErrorCode.OPTION, '--console needs --data DIR (where jobs, operators and the audit log are kept)');
  const tls = readTls(v, (m) => loose.push(m));
  const allow = (v.allow as string[] | undefined) ?? [];
  for (const a of allow) parseTarget(a); // a bad entry is an error now, not a refusal later
  const log = createLog({ name: slot >= 0 ? `gateway-worker-${slot}` : 'gateway', format: (v.log as LogFormat) ?? 'text', level: (v['log-level'] as LogLevel) ?? 'info' });
  for (const m of loose) log.warn(m);
  const manage = v.data === undefined ? null : await startManagement({ dataDir: String(v.data), listen: (v.console as string | undefined) ?? null, log, deviceIds: Object.keys(devices), labels });
  if (manage?.url) log.info('console', { url: manage.url });
  const gw = await Gateway.start({
    http: (v.http as string) ?? '127.0.0.1:8080',
    tcp: (v.tcp as string) ?? null,
    ...(slot >= 0 ? { handoff: true, handoffKeepAlive: v['worker-keep-alive'] === true, directory: workerDirectory(), hellosHere: workerPlacement() } : {}),
    metrics: (v.metrics as string | undefined) ?? null,
    devices,
    link: linkOptions(v),
    maxSessions: v['max-sessions'] as number | undefined,
    maxConnections: v['max-connections'] as number | undefined,
    tcpLimits: tcpLimitsOf(v),
    tls,
    ackAfter,
    pair,
    advertise,
    cluster,
    log,
  });
  if (manage?.api) manage.api.gateway = gw;
  // SIGHUP: the TLS files again (a renewed certificate); a bad one is a warning, the old one stays.
  const reloadTls = (): void => {
    try {
      const t = readTls(v, (m) => log.warn(m));
      if (t === null) return log.info('SIGHUP: no --tls-cert, nothing to reload');
      gw.setTls(t);
      log.info('tls certificate reloaded', { cert: String(v['tls-cert']) });
    } catch (e) {
      log.warn('tls reload failed; the previous certificate stays', { code: isHfError(e) ? e.code : undefined, reason: (e as Error).message });
    }
  };
  process.on('SIGHUP', reloadTls);
  gw.on('session', (ch: GatewayChannel) => {
    const mux = new Mux(ch, { role: 'gateway' });
    const fwd = serveForwards(mux, { allow, dial: (host, port) => gw.dial(host, port) });
    manage?.attach(ch, mux);
    fwd.on('refused', (target: string, err: { code: string; message: string }) => log.warn('forward refused', { device: ch.deviceId, target, code: err.code }));
    fwd.on('connection', () => log.debug('forward connected', { device: ch.deviceId }));
    if (v.bench === true) benchResponder(mux);
    else
      mux.on('message', (m: Buffer) => {
        log.debug('message', { device: ch.deviceId, bytes: m.length });
        if (v.echo === true) mux.send(m);
      });
    mux.on('error', () => {});
    mux.on('close', () => fwd.close());
    ch.on('end', () => ch.end());
  });
  if (slot >= 0) serveHandoffs(gw);
  else log.info('ready', { devices: Object.keys(devices).length, allow: allow.length > 0 ? allow.join(',') : 'none' });
  await onSignals(async (sig) => {
    log.info('stopping', { signal: sig });
    process.off('SIGHUP', reloadTls);
    // A cluster node hands its sessions to the others first (a rolling upgrade loses none).
    if (cluster !== null && sig === 'SIGTERM') await gw.drainCluster({ timeoutMs: 30_000 }).catch((e: Error) => log.warn('drain before stopping failed', { reason: e.message }));
    await gw.close();
    await manage?.close();
    // A worker's IPC channel would keep it running after this: closing it lets the process end.
    if (slot >= 0 && process.connected) process.disconnect();
  });
  return 0;
}

/**
 * `--workers N` (N > 1): this process owns the listeners and routes connections (workers/main.ts);
 * N copies of this command, forked with the same arguments, serve the sessions with the wiring above
 * (forwards, echo, bench). A worker that dies is started again. SIGHUP reloads: N new workers (the
 * code and the --devices file read afresh), every session moved to them, the old ones stopped; a
 * --devices file that no longer reads leaves everything as it was.
 */
async function workersMain(v: Record<string, unknown>, n: number, placement: PlacementPolicy): Promise<number> {
  readDevicesFile(String(v.devices), v['insecure-key-file'] === true); // a bad file fails here, not in N workers
  const log = createLog({ name: 'gateway', format: (v.log as LogFormat) ?? 'text', level: (v['log-level'] as LogLevel) ?? 'info' });
  const link = { ...GATEWAY_LINK_DEFAULTS, ...linkOptions(v as Values) };
  const main = await WorkerMain.start({
    workers: n,
    script: process.argv[1],
    args: process.argv.slice(2), // the whole command line again: the command name too
    http: (v.http as string) ?? '127.0.0.1:8080',
    tcp: (v.tcp as string) ?? null,
    placement,
    wire: link,
    limits: { maxBodyBytes: link.maxBundleBytes },
    log,
  });
  log.info('ready', { workers: n, placement, http: main.httpAddress || undefined, tcp: main.tcpAddress || undefined });
  const hup = (): void => {
    try {
      readDevicesFile(String(v.devices), v['insecure-key-file'] === true);
    } catch (e) {
      log.warn('SIGHUP: the devices file does not read; nothing reloaded', { code: isHfError(e) ? e.code : undefined, reason: (e as Error).message });
      return;
    }
    log.info('SIGHUP: reloading the workers');
    main.reload().then(
      (r) => log.info('SIGHUP: reloaded', { generation: r.generation, moved: r.moved, failed: r.failed, left: r.left, ms: r.totalMs }),
      (e: Error) => log.warn('SIGHUP: reload failed; the workers serving go on', { code: isHfError(e) ? e.code : undefined, reason: e.message }),
    );
  };
  process.on('SIGHUP', hup);
  await onSignals(async (sig) => {
    log.info('stopping', { signal: sig });
    process.off('SIGHUP', hup);
    await main.close();
  });
  return 0;
}
