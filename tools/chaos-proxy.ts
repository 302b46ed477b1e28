/**
 * A fault-injecting TCP proxy for tests and benchmarks. It listens on loopback and forwards every
 * connection to one target on loopback, and on the way it can
 *   - cut connections at chosen points of an HTTP exchange (seeded, so a run replays),
 *   - add one-way latency to every chunk,
 *   - refuse new connections, or swallow them without an answer (a black hole).
 *
 * Kill phases. The proxy sees bytes, not HTTP, so it takes turns: a *request* starts with the first
 * client bytes of a connection, and again whenever client bytes arrive after the target has sent
 * something (keep-alive connections carry several). For each request it draws once: with probability
 * `killRate` that request is killed, in one of the allowed `phases` (drawn uniformly):
 *   before-request  forward only part of the request (at least 1 byte, never all), then kill;
 *   after-request   forward the whole request; kill at the first byte of the answer, unforwarded;
 *   mid-response    forward part of the answer (at least 1 byte, never all), then kill.
 * "The whole request/answer" is known from Content-Length when the head is in the first chunk (else
 * from the first chunk alone), so the cut lands anywhere in a body, not only in its first chunk.
 * A kill destroys both sockets with a RST (socket.resetAndDestroy(), Node >= 18.3; plain destroy()
 * before). Bytes already forwarded reach the peer before the RST. A socket the target has not yet
 * accept()ed sees the RST as a plain end of stream (the kernel's doing, not ours).
 *
 * Each connection draws from its own stream, seeded from `seed` and the connection's number (1, 2,
 * ... in accept order), so one connection's decisions do not depend on how others interleave.
 *
 * Modes (setMode, at run time):
 *   pass       forward (the default).
 *   refuse     stop listening: connects fail with ECONNREFUSED, as against a gateway that is down.
 *              Leaving it listens again on the same port. Open connections are not touched.
 *   blackhole  new connections are accepted, read and discarded, never answered (for their whole life,
 *              even after the mode changes). Open forwarded connections are frozen: nothing moves
 *              either way (bytes wait in the kernel, as in a network partition) until the mode
 *              leaves blackhole, when they go on where they stopped.
 * killAll() cuts every open connection now (counted under kills.killAll).
 *
 * Byte budgets (`cutBelow` > 0): besides the kill phases, every connection draws one budget in
 * 1..cutBelow-1 when it is accepted and is cut (RST both ways, counted under kills.budget) once that
 * many bytes, both directions together, went through it: a middlebox that lets each connection carry
 * only so much.
 *
 * CLI: npx tsx tools/chaos-proxy.ts --target 127.0.0.1:8080 [--listen 127.0.0.1:0] [--kill-rate 0.02]
 *   [--phases before-request,after-request,mid-response] [--seed 1] [--delay-ms 0] [--mode pass]
 *   [--cut-below 0] [--max-seconds 3600]. Prints "listening HOST:PORT -> HOST:PORT". Reads commands on stdin, one a
 *   line: pass | refuse | blackhole | kill-all | stats. Prints stats (JSON) to stderr on exit.
 */
import * as net from 'node:net';
import * as readline from 'node:readline';
import { checkInt } from '../firmware/check';
import { ErrorCode, hfError, isHfError } from '../firmware/errors';
import { Prng } from '../targets/sim/prng';

export type KillPhase = 'before-request' | 'after-request' | 'mid-response';
export const KILL_PHASES: readonly KillPhase[] = ['before-request', 'after-request', 'mid-response'];

export type ChaosMode = 'pass' | 'refuse' | 'blackhole';
const MODES: readonly ChaosMode[] = ['pass', 'refuse', 'blackhole'];

export interface ChaosProxyOptions {
  /** Where to forward: a loopback host (default '127.0.0.1') and a port. */
  target: { host?: string; port: number };
  /** Listen address, loopback only. Default '127.0.0.1'. */
  host?: string;
  /** Listen port. Default 0: any free port (read it from `port` after listen()). */
  port?: number;
  /** Seed of the kill decisions (u32). Default 1. */
  seed?: number;
  /** Probability (0..1) that a request is killed. Default 0. */
  killRate?: number;
  /** The phases a kill may happen in. Default all three. */
  phases?: readonly KillPhase[];
  /** Latency added to every chunk, each direction (ms). Default 0. */
  delayMs?: number;
  /** Mode at start. Default 'pass'. */
  mode?: ChaosMode;
  /** Open connections at most; more are destroyed on accept. Default 256. */
  maxConnections?: number;
  /** Connecting to the target may take this long (ms) before the client is cut. Default 5000. */
  connectTimeoutMs?: number;
  /** A connection with no bytes from the client for this long (ms) is destroyed. Default 120000. */
  idleTimeoutMs?: number;
  /** Cut every connection once it carried a random number of bytes below this (both ways). Default 0: no budget. */
  cutBelow?: number;
  /** Called after each kill by phase (not for killAll). */
  onKill?: (kill: KillInfo) => void;
}

export interface KillInfo {
  /** Connection number, 1-based in accept order. */
  conn: number;
  /** Request number within the connection, 1-based. */
  request: number;
  phase: KillPhase | 'budget';
  /** Bytes of the cut direction forwarded in this request/answer before the kill. */
  forwarded: number;
}

export interface ChaosStats {
  /** Connections accepted in all. */
  connections: number;
  /** Connections open now. */
  open: number;
  /** Requests seen (turns, see above). */
  requests: number;
  /** Bytes forwarded client -> target. */
  bytesUp: number;
  /** Bytes forwarded target -> client. */
  bytesDown: number;
  /** Bytes read and not forwarded (black holes, the rest of a cut chunk). */
  discarded: number;
  /** Connections cut, by phase, by their byte budget, and by killAll(). */
  kills: Record<KillPhase | 'budget' | 'killAll', number>;
  /** Connects to the target that failed or timed out (the client was cut). */
  upstreamErrors: number;
  /** Connections destroyed at accept because maxConnections were open. */
  rejected: number;
}

/** Counters at zero: a new proxy's, or the start of a sum over several. */
export function zeroStats(): ChaosStats {
  return {
    connections: 0,
    open: 0,
    requests: 0,
    bytesUp: 0,
    bytesDown: 0,
    discarded: 0,
    kills: { 'before-request': 0, 'after-request': 0, 'mid-response': 0, budget: 0, killAll: 0 },
    upstreamErrors: 0,
    rejected: 0,
  };
}

interface Conn {
  id: number;
  prng: Prng;
  client: net.Socket;
  /** null: a black-hole connection. */
  upstream: net.Socket | null;
  request: number;
  serverSpoke: boolean;
  plan: KillPhase | null;
  /** Bytes of the current request / answer seen so far. */
  upOff: number;
  downOff: number;
  /** Offset where the current request / answer is cut; -1: not cut (yet). */
  upCut: number;
  downCut: number;
  /** Bytes this connection may carry, both ways (0: no budget), and how many it did. */
  budget: number;
  carried: number;
  frozen: boolean;
  /** A cut is under way: later bytes of the cut direction are discarded. */
  cutting: boolean;
  dead: boolean;
  timers: Set<ReturnType<typeof setTimeout>>;
}

const LOOPBACK_NAMES = new Set(['localhost', '::1', '0:0:0:0:0:0:0:1']);

function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || (net.isIPv4(host) && host.startsWith('127.'));
}

function optionError(message: string): Error {
  return hfError(ErrorCode.OPTION, message);
}

/** Destroys with a RST where this Node can (resetAndDestroy, 18.3+), else plainly. */
function reset(s: net.Socket): void {
  const r = (s as { resetAndDestroy?: () => void }).resetAndDestroy;
  if (typeof r === 'function' && !s.destroyed) {
    try {
      r.call(s);
      return;
    } catch {
      // not a TCP handle, or already closing: fall through
    }
  }
  s.destroy();
}

const HEAD_END = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;

/**
 * Length of the HTTP message that starts `chunk` (head + Content-Length), when the head is all in
 * `chunk`; null when unknown (not HTTP, head split, chunked, read-until-close).
 */
export function httpMessageLength(chunk: Uint8Array, request: boolean): number | null {
  const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
  const end = b.indexOf(HEAD_END);
  if (end < 0) return null;
  const head = b.toString('latin1', 0, end + 2);
  const status = STATUS_LINE.exec(head);
  if (request ? !REQUEST_LINE.test(head) : !status) return null;
  if (/\r\ntransfer-encoding:/i.test(head)) return null;
  const cl = /\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n/i.exec(head);
  if (cl) return end + 4 + Number(cl[1]);
  if (request) return end + 4;
  const code = Number(status![1]);
  return code < 200 || code === 204 || code === 304 ? end + 4 : null;
}

export class ChaosProxy {
  private readonly host: string;
  private readonly targetHost: string;
  private readonly targetPort: number;
  private readonly seed: number;
  private readonly killRate: number;
  private readonly phases: readonly KillPhase[];
  private readonly delayMs: number;
  private readonly maxConnections: number;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly onKill: ((k: KillInfo) => void) | undefined;
  private readonly cutBelow: number;
  private server: net.Server | null = null;
  private boundPort: number;
  private currentMode: ChaosMode;
  private readonly conns = new Set<Conn>();
  private nextId = 1;
  private listened = false;
  private closing: Promise<void> | null = null;
  private modeChain: Promise<void> = Promise.resolve();
  private readonly counts: ChaosStats = zeroStats();

  /** Validates every option; listens only on listen(). Throws HF_ERR_OPTION naming the bad value. */
  constructor(opts: ChaosProxyOptions) {
    if (!opts || typeof opts !== 'object' || !opts.target || typeof opts.target !== 'object') throw optionError('target {host, port} is required');
    const host = opts.host ?? '127.0.0.1';
    if (!isLoopback(host)) throw optionError(`host must be a loopback address, got ${host}`);
    const targetHost = opts.target.host ?? '127.0.0.1';
    if (!isLoopback(targetHost)) throw optionError(`target host must be a loopback address, got ${targetHost}`);
    const killRate = opts.killRate ?? 0;
    if (typeof killRate !== 'number' || !(killRate >= 0 && killRate <= 1)) throw optionError(`killRate must be in 0..1, got ${String(killRate)}`);
    const phases = opts.phases ?? KILL_PHASES;
    if (!Array.isArray(phases) || phases.length === 0) throw optionError(`phases must name at least one of ${KILL_PHASES.join(', ')}`);
    for (const p of phases) if (!KILL_PHASES.includes(p)) throw optionError(`unknown kill phase ${String(p)}`);
    const mode = opts.mode ?? 'pass';
    if (!MODES.includes(mode)) throw optionError(`unknown mode ${String(mode)}`);
    if (opts.onKill !== undefined && typeof opts.onKill !== 'function') throw optionError('onKill must be a function');
    this.host = host;
    this.boundPort = checkInt('port', opts.port ?? 0, 0, 65535);
    this.targetHost = targetHost;
    this.targetPort = checkInt('target port', opts.target.port, 1, 65535);
    this.seed = checkInt('seed', opts.seed ?? 1, 0, 0xffffffff);
    this.killRate = killRate;
    this.phases = [...phases];
    this.delayMs = checkInt('delayMs', opts.delayMs ?? 0, 0, 600_000);
    this.maxConnections = checkInt('maxConnections', opts.maxConnections ?? 256, 1, 100_000);
    this.connectTimeoutMs = checkInt('connectTimeoutMs', opts.connectTimeoutMs ?? 5000, 1, 600_000);
    this.idleTimeoutMs = checkInt('idleTimeoutMs', opts.idleTimeoutMs ?? 120_000, 1, 86_400_000);
    this.cutBelow = checkInt('cutBelow', opts.cutBelow ?? 0, 0, 0x7fffffff);
    if (this.cutBelow === 1) throw optionError('cutBelow must be 0 (no budget) or at least 2');
    this.onKill = opts.onKill;
    this.currentMode = mode;
  }

  /** Binds the listener (also in refuse mode, to learn the port, then closes it). */
  async listen(): Promise<{ host: string; port: number }> {
    this.checkOpen('listen');
    if (this.listened) throw optionError('listen() called twice');
    this.listened = true;
    await this.openListener();
    if (this.currentMode === 'refuse') await this.closeListener();
    return { host: this.host, port: this.boundPort };
  }

  /** The bound port (0 before listen()). */
  get port(): number {
    return this.boundPort;
  }

  get mode(): ChaosMode {
    return this.currentMode;
  }

  /** A snapshot of the counters. */
  get stats(): ChaosStats {
    return { ...this.counts, open: this.conns.size, kills: { ...this.counts.kills } };
  }

  /**
   * Switches mode (see the file comment); resolves once the listener is closed or open again.
   * Calls take effect one after another, in call order.
   */
  setMode(mode: ChaosMode): Promise<void> {
    try {
      this.checkOpen('setMode');
      if (!MODES.includes(mode)) throw optionError(`unknown mode ${String(mode)}`);
    } catch (e) {
      return Promise.reject(e);
    }
    const next = this.modeChain.then(() => this.applyMode(mode));
    this.modeChain = next.catch(() => {});
    return next;
  }

  private async applyMode(mode: ChaosMode): Promise<void> {
    if (this.closing) return;
    const prev = this.currentMode;
    if (mode === prev) return;
    this.currentMode = mode;
    if (prev === 'blackhole') for (const c of this.conns) this.thaw(c);
    if (mode === 'blackhole') for (const c of this.conns) this.freeze(c);
    if (mode === 'refuse' && this.server) await this.closeListener();
    if (prev === 'refuse' && this.boundPort !== 0) await this.openListener();
  }

  /** Cuts every open connection now (RST both ways). Returns how many. */
  killAll(): number {
    this.checkOpen('killAll');
    let n = 0;
    for (const c of [...this.conns]) {
      if (c.dead) continue;
      this.kill(c, 'killAll');
      n++;
    }
    return n;
  }

  /** Closes the listener and every socket. May be called more than once. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      await this.closeListener();
      for (const c of [...this.conns]) {
        c.dead = true;
        this.clearTimers(c);
        c.client.destroy();
        c.upstream?.destroy();
        this.conns.delete(c);
      }
    })();
    return this.closing;
  }

  private checkOpen(what: string): void {
    if (this.closing) throw hfError(ErrorCode.CLOSED, `${what}() after close()`);
  }

  private openListener(): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(hfError(ErrorCode.CONNECT, `cannot listen on ${this.host}:${this.boundPort}: ${e.message}`, e));
      server.once('error', onError);
      server.listen(this.boundPort, this.host, () => {
        server.off('error', onError);
        server.on('error', () => {});
        if (this.closing) {
          server.close();
          resolve();
          return;
        }
        this.server = server;
        this.boundPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops listening. Open connections stay; the port is free again at once. */
  private closeListener(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }

  private accept(client: net.Socket): void {
    client.on('error', () => {});
    if (this.closing || this.currentMode === 'refuse' || this.conns.size >= this.maxConnections) {
      this.counts.rejected++;
      client.destroy();
      return;
    }
    const id = this.nextId++;
    const prng = new Prng((Math.imul(this.seed, 0x9e3779b1) ^ Math.imul(id, 0x85ebca6b)) >>> 0);
    const c: Conn = {
      id,
      prng,
      client,
      upstream: null,
      request: 0,
      serverSpoke: false,
      plan: null,
      upOff: 0,
      downOff: 0,
      upCut: -1,
      downCut: -1,
      budget: this.cutBelow > 0 ? 1 + prng.int(this.cutBelow - 1) : 0,
      carried: 0,
      frozen: false,
      cutting: false,
      dead: false,
      timers: new Set(),
    };
    this.conns.add(c);
    this.counts.connections++;
    client.setNoDelay(true);
    client.setTimeout(this.idleTimeoutMs, () => this.drop(c));
    client.on('close', (hadError) => this.sideClosed(c, client, hadError));
    if (this.currentMode === 'blackhole') {
      client.on('data', (d: Buffer) => {
        this.counts.discarded += d.length;
      });
      return;
    }
    const up = net.connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    c.upstream = up;
    up.setNoDelay(true);
    let connected = false;
    up.on('error', () => {
      if (!connected && !c.dead) this.counts.upstreamErrors++;
    });
    up.setTimeout(this.connectTimeoutMs, () => {
      this.counts.upstreamErrors++;
      this.drop(c, true);
    });
    up.once('connect', () => {
      connected = true;
      up.setTimeout(0);
    });
    up.on('close', (hadError) => this.sideClosed(c, up, hadError));
    client.on('data', (d: Buffer) => this.fromClient(c, d));
    up.on('data', (d: Buffer) => this.fromTarget(c, d));
    client.on('end', () => this.later(c, () => up.end()));
    up.on('end', () => this.later(c, () => client.end()));
  }

  private fromClient(c: Conn, chunk: Buffer): void {
    if (c.dead || c.cutting) {
      this.counts.discarded += chunk.length;
      return;
    }
    if (c.request === 0 || c.serverSpoke) this.startRequest(c, chunk);
    const off = c.upOff;
    c.upOff += chunk.length;
    this.forward(c, 'up', chunk, off, c.plan === 'before-request' ? c.upCut : -1);
  }

  private fromTarget(c: Conn, chunk: Buffer): void {
    if (c.dead || c.cutting) {
      this.counts.discarded += chunk.length;
      return;
    }
    const first = !c.serverSpoke;
    c.serverSpoke = true;
    if (first && c.plan === 'after-request') {
      this.counts.discarded += chunk.length;
      this.kill(c, 'after-request', c.upOff);
      return;
    }
    if (first && c.plan === 'mid-response') c.downCut = cutPoint(c.prng, httpMessageLength(chunk, false) ?? chunk.length, 1);
    const off = c.downOff;
    c.downOff += chunk.length;
    this.forward(c, 'down', chunk, off, c.plan === 'mid-response' ? c.downCut : -1);
  }

  private startRequest(c: Conn, first: Buffer): void {
    c.request++;
    this.counts.requests++;
    c.serverSpoke = false;
    c.upOff = 0;
    c.downOff = 0;
    c.upCut = -1;
    c.downCut = -1;
    const kill = c.prng.next() < this.killRate;
    c.plan = kill ? this.phases[this.phases.length === 1 ? 0 : c.prng.int(this.phases.length)] : null;
    if (c.plan === 'before-request') c.upCut = cutPoint(c.prng, httpMessageLength(first, true) ?? first.length, 0);
  }

  /** Forwards `chunk` (at offset `off` of its request/answer) unless it crosses `cut` (>= 0): then the bytes before it, and a kill. */
  private forward(c: Conn, dir: 'up' | 'down', chunk: Buffer, off: number, cut: number): void {
    const src = dir === 'up' ? c.client : c.upstream!;
    const dest = dir === 'up' ? c.upstream! : c.client;
    let data = chunk;
    let killAfter = false;
    let phase: KillPhase | 'budget' = c.plan!;
    if (cut >= 0 && off + chunk.length >= cut) {
      const keep = Math.max(0, cut - off);
      data = chunk.subarray(0, keep);
      this.counts.discarded += chunk.length - keep;
      killAfter = true;
      c.cutting = true;
    }
    if (c.budget > 0 && c.carried + data.length >= c.budget) {
      const keep = c.budget - c.carried;
      this.counts.discarded += data.length - keep;
      data = data.subarray(0, keep);
      killAfter = true;
      c.cutting = true;
      phase = 'budget';
      cut = off + keep;
    }
    c.carried += data.length;
    this.later(c, () => {
      if (dir === 'up') this.counts.bytesUp += data.length;
      else this.counts.bytesDown += data.length;
      if (!killAfter) {
        if (!dest.write(data)) this.backpressure(c, src, dest);
        return;
      }
      // The write callback runs once the bytes before the cut are handed to the kernel, so the
      // peer gets them before the RST.
      dest.write(data, () => this.kill(c, phase, Math.min(cut, off + chunk.length)));
    });
  }

  private backpressure(c: Conn, src: net.Socket, dest: net.Socket): void {
    src.pause();
    dest.once('drain', () => {
      if (!c.frozen && !c.dead) src.resume();
    });
  }

  private freeze(c: Conn): void {
    if (!c.upstream || c.dead) return;
    c.frozen = true;
    c.client.pause();
    c.upstream.pause();
  }

  private thaw(c: Conn): void {
    if (!c.frozen) return;
    c.frozen = false;
    if (!c.upstream!.writableNeedDrain) c.client.resume();
    if (!c.client.writableNeedDrain) c.upstream!.resume();
  }

  private kill(c: Conn, phase: KillPhase | 'budget' | 'killAll', forwarded = 0): void {
    if (c.dead) return;
    c.dead = true;
    this.clearTimers(c);
    reset(c.client);
    if (c.upstream) reset(c.upstream);
    this.counts.kills[phase]++;
    if (phase !== 'killAll' && this.onKill) this.onKill({ conn: c.id, request: c.request, phase, forwarded });
  }

  /** Ends a connection without counting a kill (idle, failed connect to the target). */
  private drop(c: Conn, withReset = false): void {
    if (c.dead) return;
    c.dead = true;
    this.clearTimers(c);
    if (withReset) reset(c.client);
    else c.client.destroy();
    c.upstream?.destroy();
  }

  private sideClosed(c: Conn, side: net.Socket, hadError: boolean): void {
    const other = side === c.client ? c.upstream : c.client;
    if (other && !other.destroyed) {
      if (hadError) {
        // A reset on one side is passed on as a reset, without waiting for the delay.
        this.clearTimers(c);
        reset(other);
      } else this.later(c, () => other.end());
    }
    if (c.client.destroyed && (!c.upstream || c.upstream.destroyed)) {
      c.dead = true;
      this.clearTimers(c);
      this.conns.delete(c);
    }
  }

  /** Runs `fn` after delayMs (at once when 0). Equal delays keep the order of the calls. */
  private later(c: Conn, fn: () => void): void {
    if (this.delayMs === 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      c.timers.delete(t);
      if (!c.dead) fn();
    }, this.delayMs);
    c.timers.add(t);
  }

  private clearTimers(c: Conn): void {
    for (const t of c.timers) clearTimeout(t);
    c.timers.clear();
  }
}

/** A cut point in 1..total-1 (at least `min` when total is too small for that). */
function cutPoint(prng: Prng, total: number, min: number): number {
  return total >= 2 ? 1 + prng.int(total - 1) : min;
}

/** Creates and starts a proxy. */
export async function startChaosProxy(opts: ChaosProxyOptions): Promise<ChaosProxy> {
  const p = new ChaosProxy(opts);
  await p.listen();
  return p;
}

function hostPort(flag: string, v: string | undefined): { host: string; port: number } {
  const m = v === undefined ? null : /^\[?([^\]]*?)\]?:(\d+)$/.exec(v);
  if (!m) throw optionError(`${flag} must be HOST:PORT, got ${String(v)}`);
  return { host: m[1], port: Number(m[2]) };
}

async function main(argv: string[]): Promise<void> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw optionError(`expected --flag value, got ${argv[i]}`);
    flags.set(argv[i].slice(2), argv[i + 1]);
  }
  const known = ['listen', 'target', 'kill-rate', 'phases', 'seed', 'delay-ms', 'mode', 'max-seconds', 'cut-below'];
  for (const k of flags.keys()) if (!known.includes(k)) throw optionError(`unknown flag --${k}`);
  const listen = hostPort('--listen', flags.get('listen') ?? '127.0.0.1:0');
  const num = (k: string) => (flags.has(k) ? Number(flags.get(k)) : undefined);
  const proxy = new ChaosProxy({
    host: listen.host,
    port: listen.port,
    target: hostPort('--target', flags.get('target')),
    killRate: num('kill-rate'),
    phases: flags.has('phases') ? (flags.get('phases')!.split(',') as KillPhase[]) : undefined,
    seed: num('seed'),
    delayMs: num('delay-ms'),
    cutBelow: num('cut-below'),
    mode: flags.get('mode') as ChaosMode | undefined,
  });
  const maxSeconds = checkInt('--max-seconds', num('max-seconds') ?? 3600, 1, 31 * 86400);
  const addr = await proxy.listen();
  const t = flags.get('target')!;
  process.stdout.write(`listening ${addr.host}:${addr.port} -> ${t}\n`);
  const stop = () => {
    process.stderr.write(JSON.stringify(proxy.stats) + '\n');
    void proxy.close().then(() => process.exit(0));
  };
  const deadline = setTimeout(stop, maxSeconds * 1000);
  deadline.unref();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'kill-all') process.stderr.write(`killed ${proxy.killAll()}\n`);
    else if (cmd === 'stats') process.stderr.write(JSON.stringify(proxy.stats) + '\n');
    else if ((MODES as readonly string[]).includes(cmd))
      void proxy.setMode(cmd as ChaosMode).then(
        () => process.stderr.write(`mode ${cmd}\n`),
        (e: Error) => process.stderr.write(`${isHfError(e) ? `${e.code}: ` : ''}${e.message}\n`),
      );
    else if (cmd) process.stderr.write(`commands: pass | refuse | blackhole | kill-all | stats\n`);
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stderr.write(`chaos-proxy: ${isHfError(e) ? `${e.code}: ` : ''}${e.message}\n`);
    process.exit(2);
  });
}
