/**
 * Real NATS servers for the cluster's tests: Debian's nats-server (2.9 in bookworm) with JetStream,
 * run in the foreground on 127.0.0.1 and free ports, its store in a temporary folder (`-js -sd DIR`).
 * One server, or a cluster of three (routes between them, JetStream clustered: a stream or bucket
 * with 3 replicas survives the loss of one). `.ci/run` installs it.
 *
 * Each server can be stopped (SIGTERM, or SIGKILL for a crash) and started again on the same ports
 * and store, as a restart under traffic needs. Everything is stopped by its PID, and the folders
 * removed, by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../firmware/errors';
import { freePort } from './host';

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  url: string;
  port: number;
  /** The running process's id (changes with each start). */
  readonly pid: number;
  /** Whether its process runs. */
  readonly running: boolean;
  /** Stops it by its PID (SIGTERM, or SIGKILL: a crash) and waits for the exit. */
  kill(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same ports and store; resolves once it takes clients. */
  start(): Promise<void>;
}

export interface Nats {
  servers: NatsServer[];
  /** Every server's URL, comma-separated (what `--cluster` takes). */
  urls: string;
  /** Stops every server and removes the store folders. Idempotent. */
  stop(): Promise<void>;
}

export interface NatsOptions {
  /** Servers: 1 (default) or 3 (a cluster with routes, JetStream clustered). */
  servers?: 1 | 3;
  /** How long a start may take until the client port answers, ms. Default 10000. */
  startTimeoutMs?: number;
  /** Keep the folders (store, logs) after stop(). Default false. */
  keep?: boolean;
}

const BIN = 'nats-server';

/** Resolves once a TCP connection to the port is read the server's INFO line. */
function waitInfo(port: number, deadline: number, child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(hfError(ErrorCode.UNSUPPORTED, `nats-server on ${port} exited (${child.exitCode ?? child.signalCode}) before it took clients`));
        return;
      }
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        got += d;
        if (got.startsWith('INFO ')) {
          s.destroy();
          resolve();
        }
      });
      s.on('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(hfError(ErrorCode.TIMEOUT, `nats-server on ${port} took no client in time`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts one nats-server, or a cluster of three, each with JetStream on a store of its own. */
export async function startNats(opts: NatsOptions = {}): Promise<Nats> {
  const count = opts.servers ?? 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-nats-'));
  const ports: { client: number; route: number }[] = [];
  for (let i = 0; i < count; i++) ports.push({ client: await freePort(), route: await freePort() });
  const live = new Set<ChildProcess>();
  const onExit = (): void => {
    for (const c of live) c.kill('SIGKILL');
  };
  process.on('exit', onExit);
  const servers: NatsServer[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const store = path.join(dir, name);
    fs.mkdirSync(store);
    const args = ['-a', '127.0.0.1', '-p', String(p.client), '-n', name, '-js', '-sd', store];
    if (count > 1) {
      const routes = ports.filter((_, j) => j !== i).map((q) => `nats://127.0.0.1:${q.route}`);
      args.push('--cluster_name', 'hf', '--cluster', `nats://127.0.0.1:${p.route}`, '--routes', routes.join(','));
    }
    let child: ChildProcess | null = null;
    const log = path.join(dir, `${name}.log`);
    const srv: NatsServer = {
      url: `nats://127.0.0.1:${p.client}`,
      port: p.client,
      get pid() {
        return child?.pid ?? -1;
      },
      get running() {
        return child !== null && child.exitCode === null && child.signalCode === null;
      },
      async kill(signal = 'SIGTERM') {
        const c = child;
        if (c === null || !srv.running) return;
        c.kill(signal);
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        await exited(c);
        clearTimeout(t);
        live.delete(c);
      },
      async start() {
        if (srv.running) return;
        const out = fs.openSync(log, 'a');
        const c = spawn(BIN, args, { stdio: ['ignore', out, out] });
        fs.closeSync(out);
        child = c;
        live.add(c);
        await new Promise<void>((resolve, reject) => {
          c.once('spawn', () => resolve());
          c.once('error', (e) => reject(hfError(ErrorCode.UNSUPPORTED, `nats-server: ${(e as Error).message}`, e)));
        });
        await waitInfo(p.client, Date.now() + (opts.startTimeoutMs ?? 10000), c);
      },
    };
    return srv;
  });
  let stopping: Promise<void> | null = null;
  const nats: Nats = {
    servers,
    urls: servers.map((s) => s.url).join(','),
    stop() {
      stopping ??= (async () => {
        await Promise.all(servers.map((s) => s.kill('SIGTERM')));
        process.off('exit', onExit);
        if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  try {
    await Promise.all(servers.map((s) => s.start()));
  } catch (e) {
    await nats.stop();
    throw e;
  }
  return nats;
}

/**
 * Whether tests that need nats-server can run here. Without the binary they are skipped with a
 * notice, unless HOLDFAST_REQUIRE_NATS=1 (set by .ci/run, which installs it): then its absence fails.
 */
export function natsAvailable(label: string): boolean {
  const found = (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, BIN)));
  if (found) return true;
  if (process.env.HOLDFAST_REQUIRE_NATS === '1') throw hfError(ErrorCode.UNSUPPORTED, `${label}: nats-server not installed: apt-get install nats-server`);
  console.log(`  SKIPPED ${label}: nats-server is not installed (apt-get install nats-server; .ci/run does)`);
  return false;
}
