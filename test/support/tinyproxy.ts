/**
 * A real HTTP forward proxy for integration tests: Debian's tinyproxy (1.11 in bookworm), run in the
 * foreground (`tinyproxy -d -c CONF`) on 127.0.0.1 and a free port, with a config and log in a
 * temporary folder. `.ci/run` installs it (`tinyproxy-bin`: the binary without the service).
 *
 * What tinyproxy 1.11 does to the traffic (checked against node:http):
 *   - One request per client connection: it sends `Connection: close` upstream and closes the client
 *     connection after the answer, without saying so (the answer is HTTP/1.1 with no Connection
 *     header). A keep-alive client puts the socket back in its pool and may send the next request on
 *     it just as it closes: that request fails with ECONNRESET and `req.reusedSocket === true`, and
 *     must be retried on a new connection.
 *   - `Timeout` (seconds) is an idle limit on the relay: a held request quieter than that is cut with
 *     a bare close (the client sees "socket hang up"), no error page. Default here: 60 s, over
 *     holdfast's ~20 s holds.
 *   - `Via: 1.1 tinyproxy (tinyproxy/1.11.1)` is added to requests and answers, as tinyproxy does by
 *     default (`via: false` turns it off). Nothing in holdfast reads Via.
 *   - Chunked request bodies pass through unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../firmware/errors';

export interface TinyproxyOptions {
  /** Idle timeout of a relayed request (s). Default 60. */
  timeoutS?: number;
  /** Clients served at once. Default 8. */
  maxClients?: number;
  /** Add Via headers (tinyproxy's default). Default true. */
  via?: boolean;
  /** How long to wait for the port to accept connections (ms). Default 5000. */
  startTimeoutMs?: number;
  /** The binary. Default 'tinyproxy' on PATH. */
  bin?: string;
  /** Keep the temporary folder (config, log) after stop(). Default false. */
  keep?: boolean;
}

export interface Tinyproxy {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** tinyproxy's log (LogLevel Info: one line per connection and request). Removed by stop() unless keep. */
  logFile: string;
  /** The process id, for the record. */
  pid: number;
  /** Kills it by its PID (SIGTERM, then SIGKILL after 2 s) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

const NOT_INSTALLED = 'tinyproxy not installed: apt-get install tinyproxy';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function config(port: number, log: string, o: Required<Pick<TinyproxyOptions, 'timeoutS' | 'maxClients' | 'via'>>): string {
  return [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Allow 127.0.0.1',
    `Timeout ${o.timeoutS}`,
    `MaxClients ${o.maxClients}`,
    'Syslog Off',
    `LogFile "${log}"`,
    'LogLevel Info',
    o.via ? 'ViaProxyName "tinyproxy"' : 'DisableViaHeader Yes',
    '',
  ].join('\n');
}

/** Starts one attempt; resolves once the port accepts connections. */
async function attempt(bin: string, dir: string, o: Required<Omit<TinyproxyOptions, 'bin' | 'keep'>>): Promise<{ child: ChildProcess; port: number; logFile: string }> {
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  const conf = path.join(dir, 'tinyproxy.conf');
  fs.writeFileSync(conf, config(port, logFile, o));
  const child = spawn(bin, ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d).slice(-4000)));
  let exited: string | null = null;
  let spawnError: NodeJS.ErrnoException | null = null;
  child.on('error', (e: NodeJS.ErrnoException) => (spawnError = e));
  child.on('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
  const deadline = Date.now() + o.startTimeoutMs;
  while (Date.now() < deadline) {
    if (spawnError) {
      const e = spawnError as NodeJS.ErrnoException;
      throw e.code === 'ENOENT' ? hfError(ErrorCode.UNSUPPORTED, NOT_INSTALLED) : e;
    }
    if (exited) {
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
      throw new Error(`tinyproxy ${exited} before listening on ${port}:\n${stderr}${log}`);
    }
    if (await canConnect(port)) return { child, port, logFile };
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`tinyproxy did not accept connections on 127.0.0.1:${port} within ${o.startTimeoutMs} ms:\n${stderr}`);
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Sends `sig` to the child by its PID unless it has exited; true once it has exited (within 2 s). */
async function signal(child: ChildProcess, sig: NodeJS.Signals): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  try {
    process.kill(child.pid!, sig);
  } catch {
    // ESRCH: it exited just now
  }
  return waitExit(child, 2000);
}

export async function startTinyproxy(opts: TinyproxyOptions = {}): Promise<Tinyproxy> {
  const o = {
    timeoutS: opts.timeoutS ?? 60,
    maxClients: opts.maxClients ?? 8,
    via: opts.via ?? true,
    startTimeoutMs: opts.startTimeoutMs ?? 5000,
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-tinyproxy-'));
  let started: { child: ChildProcess; port: number; logFile: string } | null = null;
  let lastError: unknown;
  try {
    // The free port can be taken between probing and tinyproxy's bind: try a few.
    for (let i = 0; i < 3 && !started; i++) {
      try {
        started = await attempt(opts.bin ?? 'tinyproxy', dir, o);
      } catch (e) {
        lastError = e;
        if (e instanceof Error && e.message.includes(NOT_INSTALLED)) break;
      }
    }
    if (!started) throw lastError;
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const { child, port, logFile } = started;
  // If the test process dies without stop(), take tinyproxy with it.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  let stopping: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logFile,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        process.off('exit', onExit);
        if (!(await signal(child, 'SIGTERM'))) {
          await signal(child, 'SIGKILL');
        }
        if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/**
 * Whether tests that need tinyproxy can run here. Without the binary they are skipped with a notice,
 * unless HOLDFAST_REQUIRE_TINYPROXY=1 (set by .ci/run, which installs it): then its absence fails.
 */
export function tinyproxyAvailable(label: string): boolean {
  const found = (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, 'tinyproxy')));
  if (found) return true;
  if (process.env.HOLDFAST_REQUIRE_TINYPROXY === '1') throw hfError(ErrorCode.UNSUPPORTED, `${label}: tinyproxy not installed: apt-get install tinyproxy-bin`);
  console.log(`  SKIPPED ${label}: tinyproxy is not installed (apt-get install tinyproxy-bin; .ci/run does)`);
  return false;
}
