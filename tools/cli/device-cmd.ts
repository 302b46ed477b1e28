/**
 * `holdfast device`: keeps a session to the gateway (direct TCP first, HTTP through firewalls and
 * proxies otherwise), forwards local ports through it, and starts a new session with back-off when
 * one fails. With --state the session survives restarts: on SIGTERM the process stops without closing
 * it, and the next start resumes it from the journal (nothing accepted is lost or sent twice). A
 * session the gateway lost (a restarted gateway: the silence rule with HF_ERR_UNKNOWN_SESSION) is not
 * resumed: the next session is a new one carrying what was unacknowledged (PROTOCOL 11.7).
 * Run by the launcher (holdfast-launcher.js) as a bundle on trial, it tells the launcher when its
 * first session opens, so that the launcher keeps it rather than rolling it back.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { ErrorCode, type HfError, hfError, isHfError } from '../../firmware/errors';
import { parseTarget } from '../../firmware/mux';
import { connect, type DeviceChannel, type DeviceOptions } from '../../targets/host/device/device';
import { type ForwardSpec, forwardPorts, type PortForwarder } from '../../targets/host/app/forward';
import { createLog, type LogFormat, type LogLevel } from '../../targets/node/log';
import { Mux } from '../../targets/host/app/mux';
import type { Log } from '../../hal/log';
import { type Flag, parseArgs, usage, type Values } from './args';
import { ackAfterFlag, ackAfterOf, labelsOf, LOG_FLAGS, onSignals, readFlagFile, readFlagJson } from './common';
import { INSECURE_KEY_FILE_FLAG, deviceKey } from './key';
import { FailureLog, type FailureLogOptions } from '../../targets/host/device/failure-log';
import { checkMs } from '../../firmware/check';
import type { LinkOptions } from '../../firmware/options';
import { REPLACED_BY_NEWER } from '../../firmware/errors';
import type { DeviceStats } from '../../targets/host/device/device-channel';
import { statusFileIn } from './status-cmd';
import { deviceManagement } from './device-manage';
import { confirmBundle, launcherFromEnv } from '../../targets/host/device/launcher-child';

/** How the device CLI restarts sessions. */
export interface RestartOptions {
  /** After a newer session of the same device id replaced ours, the first wait before a new one, ms (default 30000), doubling... */
  replacedBackoffMs?: number;
  /** ... up to this, ms (default 600000). */
  replacedBackoffMaxMs?: number;
}

export const RESTART_DEFAULTS: Required<RestartOptions> = { replacedBackoffMs: 30000, replacedBackoffMaxMs: 600000 };

/** How the device CLI keeps its status file. */
export interface StatusOptions {
  /** While only the counters change, the status file is rewritten at most this often, ms (default 1000); a change of state is written at once. */
  statusIntervalMs?: number;
}

export const STATUS_DEFAULTS: Required<StatusOptions> = { statusIntervalMs: 1000 };

const FLAGS: Flag[] = [
  {
    name: 'gateway',
    meta: 'URL',
    repeat: true,
    help: "the gateway's HTTP URL, e.g. http://gw.example:8080; give it again for each gateway of a pair: the device moves to the next when one fails or answers as a standby",
  },
  { name: 'tcp', meta: 'HOST:PORT', repeat: true, help: "the gateway's direct TCP address (tried first; HTTP when blocked); with several --gateway, one per gateway, in the same order" },
  { name: 'failover-after', type: 'number', meta: 'N', help: 'with several --gateway: failed requests in a row after which the device tries the next gateway (default 2)' },
  { name: 'no-tcp', type: 'bool', help: 'HTTP only (the default when --tcp is not given)' },
  { name: 'id', meta: 'ID', help: "device id, as in the gateway's devices file" },
  { name: 'key', meta: 'KEY', help: 'secret key (others see it in ps: prefer --key-file or HOLDFAST_KEY)' },
  { name: 'key-file', meta: 'FILE', help: 'file whose first line is the secret key (mode 600)' },
  INSECURE_KEY_FILE_FLAG,
  { name: 'forward', meta: 'LOCALPORT:HOST:PORT', repeat: true, help: 'listen on 127.0.0.1:LOCALPORT, connect through the gateway to HOST:PORT' },
  { name: 'proxy', meta: 'URL', help: 'HTTP forward proxy (default: http_proxy / HTTP_PROXY, https_proxy for https:, honouring no_proxy)' },
  { name: 'ca', meta: 'FILE', help: "CA certificates (PEM) the gateway's certificate must chain to (default: the system CAs)" },
  { name: 'pin', meta: 'sha256:HEX', help: "the gateway certificate's SHA-256 fingerprint; replaces CA verification (boards without a CA)" },
  { name: 'state', meta: 'DIR', help: 'keep the session journal here: restarts resume it, nothing accepted is lost' },
  ackAfterFlag('device'),
  { name: 'label', meta: 'KEY=VALUE', repeat: true, help: 'a label of this device, told in every hello (site=berlin, service=db): a cluster of gateways places the session by them' },
  { name: 'fsync', type: 'bool', help: 'with --state: sync every journal record to flash (survives power cuts; one write per message)' },
  { name: 'status', meta: 'FILE', help: 'keep FILE up to date with the session state and counters as JSON (default with --state: DIR/status.json)' },
  { name: 'status-interval-ms', type: 'number', meta: 'MS', help: 'while only the counters change, rewrite the status file at most this often (default 1000)' },
  { name: 'warn-interval-ms', type: 'number', meta: 'MS', help: 'at most one warning per kind of failure to reach the gateway this often (default 30000)' },
  {
    name: 'replaced-backoff-ms',
    type: 'number',
    meta: 'MS',
    help: 'when a newer session of the same device id replaced ours (another process uses the id?), wait this long before a new one, doubling (default 30000)',
  },
  {
    name: 'dead-after-ms',
    type: 'number',
    meta: 'MS',
    help: 'a session from which nothing genuine was heard this long ends, and a new one starts: how soon a device notices a gateway that restarted without its sessions (default 60000)',
  },
  {
    name: 'fail-after',
    type: 'number',
    meta: 'N',
    help: 'with --dead-after-ms: a session also needs this many requests unanswered before it ends (default 8)',
  },
  { name: 'replaced-backoff-max-ms', type: 'number', meta: 'MS', help: 'longest such wait (default 600000)' },
  { name: 'config', meta: 'FILE', help: 'JSON with any of these settings ({"gateway": ..., "id": ..., "forward": [...]}); flags win' },
  ...LOG_FLAGS,
];

const ABOUT = `Runs a device: one session to the gateway, carrying messages and forwarded TCP connections.`;

/** Settings from --config, checked: the keys are flag names (camelCase also accepted). */
function readConfig(file: string): Values {
  return configValues(readFlagJson('config', file, 'a JSON object'), `--config ${file}`);
}

/**
 * A device config's settings as flag values, checked (HF_ERR_OPTION naming `where`). Its `manage`
 * section (what management may run and touch) is not a flag: firmware/manage/policy.ts checks it.
 */
export function configValues(d: Record<string, unknown>, where: string): Values {
  const out: Values = {};
  const known = new Map(FLAGS.map((f) => [f.name, f]));
  for (const [k, val] of Object.entries(d)) {
    if (k === 'manage') continue;
    const name = k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    const f = known.get(name);
    if (f === undefined || name === 'config') throw hfError(ErrorCode.OPTION, `${where}: unknown setting ${JSON.stringify(k)}`);
    if (f.repeat && typeof val === 'string') out[name] = [val];
    else if (f.repeat) {
      if (!Array.isArray(val) || !val.every((x) => typeof x === 'string')) throw hfError(ErrorCode.OPTION, `${where}: ${k} must be a string or a list of strings`);
      out[name] = val as string[];
    } else if (f.type === 'bool' ? typeof val !== 'boolean' : f.type === 'number' ? typeof val !== 'number' : typeof val !== 'string') {
      throw hfError(ErrorCode.OPTION, `${where}: ${k} must be a ${f.type === 'bool' ? 'boolean' : f.type === 'number' ? 'number' : 'string'}`);
    } else out[name] = val as string | number | boolean;
  }
  return out;
}

/** "LOCALPORT:HOST:PORT" (HOST may be [v6]). */
export function parseForward(s: string): ForwardSpec {
  const i = s.indexOf(':');
  const local = i < 0 ? NaN : Number(s.slice(0, i));
  if (!Number.isInteger(local) || local < 0 || local > 65535) throw hfError(ErrorCode.OPTION, `--forward must be LOCALPORT:HOST:PORT, got ${JSON.stringify(s)}`);
  const t = parseTarget(s.slice(i + 1));
  return { localPort: local, host: t.host, port: t.port };
}

/** --ca FILE (read now) and --pin as the device's TLS options. */
function deviceTls(v: Values): DeviceOptions['tls'] {
  const tls: NonNullable<DeviceOptions['tls']> = {};
  if (typeof v.ca === 'string') {
    tls.ca = readFlagFile('ca', v.ca);
  }
  if (typeof v.pin === 'string') tls.pin = v.pin;
  return tls;
}

export interface DeviceSettings {
  options: DeviceOptions;
  forwards: ForwardSpec[];
  log: Log;
  status: string | null;
  statusIntervalMs: number;
  restart: Required<RestartOptions>;
  /** --config FILE, or null. */
  configPath: string | null;
  /** The flags as given on the command line (they win over the config file). */
  flags: Values;
}

/** --dead-after-ms and --fail-after as link options (the rule that ends a session the gateway no longer answers). */
function silenceRule(v: Values): LinkOptions {
  const o: LinkOptions = {};
  if (v['dead-after-ms'] !== undefined) o.deadAfterMs = checkMs('--dead-after-ms', v['dead-after-ms'], 1);
  if (v['fail-after'] !== undefined) {
    const n = v['fail-after'];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000) throw hfError(ErrorCode.OPTION, `--fail-after must be a whole number in 1..1000, got ${String(n)}`);
    o.failAfter = n;
  }
  return o;
}

/** The device's settings from flags and --config, validated before anything starts. */
export function deviceSettings(argv: string[]): DeviceSettings | 'help' {
  const { values: flags, help } = parseArgs(argv, FLAGS);
  if (help) return 'help';
  const v: Values = { ...(typeof flags.config === 'string' ? readConfig(flags.config) : {}), ...flags };
  const gateways = (v.gateway as string[] | undefined) ?? [];
  if (gateways.length === 0) throw hfError(ErrorCode.OPTION, '--gateway URL is required');
  const tcps = (v.tcp as string[] | undefined) ?? [];
  if (tcps.length > 0 && tcps.length !== gateways.length)
    throw hfError(ErrorCode.OPTION, `--tcp: one per --gateway, in the same order (${gateways.length} gateway(s), ${tcps.length} tcp address(es))`);
  const failoverAfter = v['failover-after'];
  if (failoverAfter !== undefined && (typeof failoverAfter !== 'number' || !Number.isInteger(failoverAfter) || failoverAfter < 1 || failoverAfter > 1000))
    throw hfError(ErrorCode.OPTION, `--failover-after must be a whole number in 1..1000, got ${String(failoverAfter)}`);
  if (typeof v.id !== 'string') throw hfError(ErrorCode.OPTION, '--id ID is required');
  if (v['no-tcp'] === true && flags.tcp !== undefined) throw hfError(ErrorCode.OPTION, '--tcp and --no-tcp contradict each other');
  const log = createLog({ name: 'device', format: (v.log as LogFormat) ?? 'text', level: (v['log-level'] as LogLevel) ?? 'info' });
  const key = deviceKey(v);
  if (key.warning !== undefined) log.warn(key.warning);
  const options: DeviceOptions = {
    gateway: gateways.length === 1 ? gateways[0] : gateways,
    tcp: v['no-tcp'] === true || tcps.length === 0 ? null : tcps.length === 1 ? tcps[0] : tcps,
    failover: failoverAfter === undefined ? {} : { failuresToMove: failoverAfter as number },
    id: v.id,
    key: key.key,
    proxy: v.proxy as string | undefined,
    stateDir: (v.state as string | undefined) ?? null,
    syncAppends: v.fsync === true,
    tls: deviceTls(v),
    failures: typeof v['warn-interval-ms'] === 'number' ? { warnIntervalMs: v['warn-interval-ms'] } : {},
    link: silenceRule(v),
    ackAfter: ackAfterOf(v, 'device'),
    labels: labelsOf(v, 'label'),
    log,
  };
  const restart = {
    replacedBackoffMs: checkMs('--replaced-backoff-ms', v['replaced-backoff-ms'] ?? RESTART_DEFAULTS.replacedBackoffMs, 1),
    replacedBackoffMaxMs: checkMs('--replaced-backoff-max-ms', v['replaced-backoff-max-ms'] ?? RESTART_DEFAULTS.replacedBackoffMaxMs, 1),
  };
  restart.replacedBackoffMaxMs = Math.max(restart.replacedBackoffMaxMs, restart.replacedBackoffMs);
  const forwards = ((v.forward as string[] | undefined) ?? []).map(parseForward);
  const status = (v.status as string | undefined) ?? (typeof v.state === 'string' ? statusFileIn(v.state) : null);
  const statusIntervalMs = checkMs('--status-interval-ms', v['status-interval-ms'] ?? STATUS_DEFAULTS.statusIntervalMs, 1);
  return { options, forwards, log, status, statusIntervalMs, restart, configPath: (flags.config as string | undefined) ?? null, flags };
}

interface Current {
  ch: DeviceChannel;
  mux: Mux;
  fwd: PortForwarder | null;
}

/** A config.set's config, checked as the device would read it at its next start (flags winning). */
function checkNewConfig(cfg: Record<string, unknown>, flags: Values): void {
  try {
    const v: Values = { ...configValues(cfg, 'config'), ...flags };
    if (!Array.isArray(v.gateway) || v.gateway.length === 0) throw hfError(ErrorCode.OPTION, 'config: the device would have no gateway ("gateway" is required, or --gateway)');
    if (typeof v.id !== 'string') throw hfError(ErrorCode.OPTION, 'config: the device would have no id ("id" is required, or --id)');
    ((v.forward as string[] | undefined) ?? []).map(parseForward);
  } catch (e) {
    if (isHfError(e) && e.code === ErrorCode.OPTION) throw hfError(ErrorCode.BAD_ARGS, e.message, e);
    throw e;
  }
}

/** The running session's forwards replaced by `next` (a new config's). */
async function reforward(c: Current, next: ForwardSpec[], log: Log): Promise<void> {
  const old = c.fwd;
  c.fwd = null;
  await old?.close();
  if (next.length === 0) return log.info('config written; no forwards now');
  c.fwd = await forwardPorts(c.mux, next);
  for (const [i, f] of next.entries()) log.info('forwarding (new config)', { listen: `127.0.0.1:${c.fwd.ports[i]}`, to: `${f.host}:${f.port}` });
}

export async function deviceCommand(argv: string[]): Promise<number> {
  const s = deviceSettings(argv);
  if (s === 'help') {
    process.stdout.write(usage('holdfast device --gateway URL... [--tcp HOST:PORT... | --no-tcp] --id ID --key KEY [--forward LOCALPORT:HOST:PORT]... [--proxy URL] [--state DIR]', ABOUT, FLAGS));
    return 0;
  }
  const { log, restart } = s;
  let forwards = s.forwards;
  // One failure log for every session of this process: its rate limit holds across restarts.
  const options: DeviceOptions = { ...s.options, failures: new FailureLog(log, () => performance.now(), s.options.failures as FailureLogOptions) };
  // Counters of this process: the sessions that ended, plus the current one (sessionStats).
  const ended: Record<string, number> = {};
  let reconnects = 0;
  let sessionStats: (() => DeviceStats) | null = null;
  const counters = (): Record<string, number> => {
    const t: Record<string, number> = { ...ended, reconnects };
    addStats(t, sessionStats?.() ?? {});
    return t;
  };
  // The last failure: of a session, or to reach the gateway (the failure log's), whichever came later.
  const failures = options.failures as FailureLog;
  let lastErr: { code: string; message: string; at: string } | null = null;
  let seenFailure: HfError | null = null;
  const setError = (e: HfError): void => {
    lastErr = { code: e.code, message: e.message, at: new Date().toISOString() };
  };
  const lastError = (): typeof lastErr => {
    if (failures.last !== seenFailure && failures.last !== null) {
      seenFailure = failures.last;
      setError(seenFailure);
    }
    return lastErr;
  };
  const status = statusWriter(s.status, options.id, log, s.statusIntervalMs, counters, lastError);
  const launcher = launcherFromEnv(process.env);
  const confirm = (): void => {
    if (launcher === null) return;
    try {
      if (confirmBundle(launcher)) log.info('a session is open: told the launcher to keep this bundle', { bundle: launcher.running.slice(0, 12) });
    } catch (e) {
      log.warn('cannot tell the launcher that a session is open (it rolls this bundle back unless a later session can)', { reason: (e as Error).message });
    }
  };
  let stopping = false;
  let current: Current | null = null;
  const manage =
    s.configPath === null
      ? null
      : deviceManagement({
          configPath: s.configPath,
          stateDir: options.stateDir ?? null,
          launcher,
          log,
          validateConfig: (cfg) => checkNewConfig(cfg, s.flags),
          onConfig: (cfg) => {
            if (s.flags.forward !== undefined) return log.info('config written; its forwards apply only without --forward on the command line');
            const next = ((configValues(cfg, 'config').forward as string[] | undefined) ?? []).map(parseForward);
            if (JSON.stringify(next) === JSON.stringify(forwards)) return log.info('config written');
            forwards = next;
            const c = current;
            if (c === null) return;
            void reforward(c, next, log).catch((e: unknown) => log.error('config written, but its forwards could not start', { code: isHfError(e) ? e.code : 'error', message: (e as Error).message }));
          },
        });
  if (manage === null) log.debug('no management: give --config FILE to be managed from the gateway');
  let wake: (() => void) | null = null;
  const stopped = onSignals(async () => {
    stopping = true;
    wake?.();
    const cur = current;
    if (cur === null) return;
    await cur.fwd?.close();
    if (options.stateDir) {
      // The journal holds the session: the next start resumes it.
      (cur.ch as unknown as { detach(): void }).detach();
      status({ state: 'stopped', session: cur.ch.sessionId, transport: 'none', error: null });
      log.info('stopped; the session resumes from the state directory on the next start');
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        cur.ch.destroy();
        resolve();
      }, 5000);
      cur.ch.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      cur.ch.end();
    });
  });
  let backoff = 1000;
  let replacedWait = restart.replacedBackoffMs;
  while (!stopping) {
    const ch = connect(options);
    const mux = new Mux(ch, { role: 'device' });
    mux.on('error', () => {});
    mux.on('message', (m: Buffer) => log.debug('message', { bytes: m.length }));
    const served = manage?.serve(mux) ?? null;
    const cur: Current = { ch, mux, fwd: null };
    current = cur;
    sessionStats = () => ch.stats;
    const closed = new Promise<HfError | undefined>((resolve) => ch.once('close', resolve));
    status({ state: 'connecting', session: null, transport: 'none', error: null });
    ch.once('open', () => {
      backoff = 1000;
      status({ state: 'open', session: ch.sessionId, transport: ch.transport, error: null });
      confirm();
      manage?.sessionOpened();
    });
    ch.on('transport', (t: string) => {
      if (ch.sessionId !== null) status({ state: 'open', session: ch.sessionId, transport: t, error: null });
    });
    if (forwards.length > 0) {
      try {
        cur.fwd = await forwardPorts(mux, forwards);
        for (const [i, f] of forwards.entries()) log.info('forwarding', { listen: `127.0.0.1:${cur.fwd.ports[i]}`, to: `${f.host}:${f.port}` });
      } catch (e) {
        // A local port we cannot listen on (HF_ERR_CONNECT) ends the process; the session is left
        // as it is, so that with --state the next start resumes it.
        (ch as unknown as { detach(): void }).detach();
        throw e;
      }
    }
    const err = await closed;
    served?.close();
    await cur.fwd?.close();
    current = null;
    addStats(ended, ch.stats);
    sessionStats = null;
    if (err !== undefined) setError(err);
    if (stopping) break;
    // The state directory cannot be written (and could not be made again): the session could not
    // stay durable, so the device ends rather than carry on without what --state promises.
    if (isHfError(err) && err.code === ErrorCode.STORAGE) throw err;
    // A newer session of the same device id took ours: another process (or board) uses the id. Taking
    // it back at once would only start a fight neither side wins; wait, longer each time.
    const replaced = isHfError(err) && err.code === ErrorCode.CLOSED && err.message.includes(REPLACED_BY_NEWER);
    let wait = isHfError(err) && err.code === ErrorCode.AUTH ? 60_000 : backoff;
    if (replaced) {
      wait = replacedWait;
      replacedWait = Math.min(restart.replacedBackoffMaxMs, replacedWait * 2);
      log.warn(`another process uses device id ${options.id}: a newer session of it replaced ours; waiting before a new session`, { code: err.code, in_s: Math.round(wait / 1000) });
    } else replacedWait = restart.replacedBackoffMs;
    reconnects++;
    status({ state: 'reconnecting', session: null, transport: 'none', error: err?.code ?? null });
    backoff = Math.min(30_000, backoff * 2);
    log.info('reconnecting', { in_ms: wait, after: err?.code ?? 'close' });
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, wait);
    });
    wake = null;
  }
  await stopped;
  manage?.close();
  status({ state: 'stopped', session: null, transport: 'none', error: null });
  status.stop();
  return 0;
}

interface Status {
  state: 'connecting' | 'open' | 'reconnecting' | 'stopped';
  session: string | null;
  transport: string;
  error: string | null;
}

/** Adds each counter of `s` to `into` (in place). */
function addStats(into: Record<string, number>, s: object): void {
  for (const [k, v] of Object.entries(s)) into[k] = (into[k] ?? 0) + v;
}

/**
 * Writes the session state, the counters, the last failure, memory and uptime to `file` as one JSON
 * object, atomically (a temp file renamed over it): at once on each change of state, and every
 * `intervalMs` while only the counters change. A write that fails is a warning (once per reason).
 */
function statusWriter(file: string | null, id: string, log: Log, intervalMs: number, counters: () => Record<string, number>, lastError: () => object | null): ((s: Status) => void) & { stop(): void } {
  if (file === null) return Object.assign(() => {}, { stop: () => {} });
  let since = new Date().toISOString();
  let last = '';
  let cur: Status | null = null;
  let seen = '';
  let failed = '';
  const write = (): void => {
    if (cur === null) return;
    const e = lastError();
    const c = counters();
    seen = JSON.stringify([c, e]);
    const m = process.memoryUsage();
    const body = JSON.stringify({
      id,
      pid: process.pid,
      ...cur,
      since,
      updated: new Date().toISOString(),
      uptimeS: Math.round(process.uptime()),
      lastError: e,
      counters: c,
      memory: { rss: m.rss, heapUsed: m.heapUsed },
    });
    try {
      writeFileSync(`${file}.tmp`, body + '\n');
      renameSync(`${file}.tmp`, file);
      failed = '';
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (reason !== failed) log.warn('cannot write the status file', { file, reason });
      failed = reason;
    }
  };
  const timer = setInterval(() => {
    if (JSON.stringify([counters(), lastError()]) !== seen) write();
  }, intervalMs);
  timer.unref();
  const set = (s: Status): void => {
    const key = `${s.state} ${s.session} ${s.transport}`;
    if (key !== last) since = new Date().toISOString();
    last = key;
    cur = s;
    write();
  };
  return Object.assign(set, { stop: () => clearInterval(timer) });
}
