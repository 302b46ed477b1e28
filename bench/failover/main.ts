/**
 * `npm run bench:failover`: a primary/standby pair of gateways (bench/failover/node.ts, each a
 * process of its own on 127.0.0.1) under load from `devices` devices in this process (HTTP), each
 * knowing both gateways and keeping at most `in-flight` messages on their way (numbered "0", "1", …;
 * the gateway's application echoes every message back as "e<index>"). Phases, each with its own
 * processes and devices:
 *   single-R  one gateway, no pair, ackAfter 'received', as fast as the window allows: echoes per
 *             second over `measure-ms` (after `warm-ms`);
 *   pair-R    primary + standby, ackAfter 'standby', no kill, the same load: echoes per second;
 *             (`rounds` of each, alternating; throughput_ratio = best pair / best single);
 *   kills     primary + standby under a steady load (`kill-rate` messages per second per device
 *             each way, within the window; 0: unpaced), `kills` times: SIGKILL of the primary, the
 *             standby takes over (takeover: from the kill to its "primary <epoch>"; served: until
 *             every device got an echo again), then the dead node starts again, on its ports, as the
 *             standby of the new primary, and once it is synced the traffic runs `gap-ms` before
 *             the next kill.
 * At the end of each phase the senders stop and the bench waits (bounded) for every echo; then it
 * counts, per direction, from the devices' echoes and the receipts the gateways' applications wrote
 * (on disk before a message could be acknowledged): offered, delivered (distinct), lost, duplicated
 * (an echo a device got twice; a message the applications received twice without it being marked
 * again), out of order (a first arrival after a later index) and marked again. A device whose first
 * echo after a takeover took more than STALL_MS is listed ("stall") with its moves. The last line is
 * {"kills", "offered", "delivered", "lost", "duplicated", "out_of_order", "takeover_p50_ms",
 * "takeover_p99_ms", "throughput_ratio"}: the kills phase, both directions summed. Writes
 * failover.json to --out (default bench/results). Every wait is bounded; every process it starts is
 * stopped by PID (also on SIGTERM, which bench/failover/run.js sends at its limit). On 2 cores the
 * devices share the machine with the gateways: the figures are this machine's.
 * Flags: --kills N (100), --devices N (50), --in-flight N (32), --warm-ms N (1000), --measure-ms N
 * (5000), --rounds N (3), --gap-ms N (1500), --kill-rate N (100), --out DIR.
 * Diagnostics: FAILOVER_LOG=info (the gateways' log level), FAILOVER_LOGS=DIR (each gateway
 * process's output kept there), FAILOVER_DEVICE_LOG=N (device N of each phase logs at debug level),
 * FAILOVER_PROF=DIR (a CPU profile of each gateway process a phase stops).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type DeviceChannel, connect } from '../../targets/host/device/device';
import { createLog } from '../../targets/node/log';
import { Cleanup, Proc, ROOT } from '../../test/support/host';
import { flagNumber } from '../flag-number';
import { machine } from '../report';

const PAIR_KEY = 'bench-failover-pair-key-0123456789';
const DEVICE_KEY = 'bench-failover-device-key';
/** Longest wait for one step: a node ready, a takeover, a sync, the last echoes. */
const READY_MS = 20_000;
const TAKEOVER_LIMIT_MS = 10_000;
const SERVED_LIMIT_MS = 30_000;
const DRAIN_LIMIT_MS = 30_000;

interface Config {
  kills: number;
  devices: number;
  inFlight: number;
  warmMs: number;
  measureMs: number;
  gapMs: number;
  /** Kills phase: messages per second per device (0: unpaced, as the capacity phases). */
  killRate: number;
  rounds: number;
  out: string;
}

function parseArgs(argv: string[]): Config {
  const c: Config = { kills: 100, devices: 50, inFlight: 32, warmMs: 1000, measureMs: 5000, gapMs: 1500, killRate: 100, rounds: 3, out: path.join(ROOT, 'bench', 'results') };
  const int = (a: string, v: string | undefined, min: number): number => Math.round(flagNumber(a, v, min));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--kills') c.kills = int(a, argv[++i], 0);
    else if (a === '--devices') c.devices = int(a, argv[++i], 1);
    else if (a === '--in-flight') c.inFlight = int(a, argv[++i], 1);
    else if (a === '--warm-ms') c.warmMs = int(a, argv[++i], 0);
    else if (a === '--measure-ms') c.measureMs = int(a, argv[++i], 100);
    else if (a === '--gap-ms') c.gapMs = int(a, argv[++i], 0);
    else if (a === '--kill-rate') c.killRate = int(a, argv[++i], 0);
    else if (a === '--rounds') c.rounds = int(a, argv[++i], 1);
    else if (a === '--out') c.out = path.resolve(argv[++i] ?? '.');
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench:failover -- [--kills N] [--devices N] [--in-flight N] [--warm-ms N] [--measure-ms N] [--gap-ms N] [--kill-rate N] [--rounds N] [--out DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (--help)`);
  }
  return c;
}

/** Ports handed out by listenPort (never twice in a run). */
const taken = new Set<number>();

/**
 * A port on 127.0.0.1 nothing listens on, below the kernel's ephemeral range: the devices' own
 * connections take ports from that range, and one could take a killed node's port before it starts
 * again on it (EADDRINUSE).
 */
async function listenPort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the usual range
  }
  const from = Math.max(1024, Math.min(low, 32768) - 12000);
  for (let i = 0; i < 200; i++) {
    const port = from + Math.floor(Math.random() * (Math.min(low, 32768) - from));
    if (taken.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (ok) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port below the ephemeral range');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds; false after `ms`. */
async function until(ms: number, cond: () => boolean): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** Nearest-rank percentile of `xs` (NaN when empty). */
function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** One gateway process (started again on the same ports after a kill). */
class Node {
  proc: Proc | null = null;
  /** Every receipts file this node's processes wrote, oldest first. */
  readonly files: string[] = [];
  starts = 0;

  constructor(
    private readonly c: Cleanup,
    private readonly dir: string,
    readonly name: string,
    readonly http: number,
    readonly peer: number,
    /** Every receipts file of the phase, in the order their processes started. */
    private readonly order: string[] = [],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.http}`;
  }

  /** Starts a process: single (no pair), or in a pair as the standby of `standbyOf` (a peer port) or the first primary (null). */
  start(paired: boolean, standbyOf: number | null): Proc {
    const receipts = path.join(this.dir, `receipts-${this.name}-${this.starts++}.txt`);
    this.files.push(receipts);
    this.order.push(receipts);
    const o = {
      http: `127.0.0.1:${this.http}`,
      listen: `127.0.0.1:${this.peer}`,
      standbyOf: standbyOf === null ? null : `127.0.0.1:${standbyOf}`,
      node: this.name,
      pairKey: PAIR_KEY,
      deviceKey: DEVICE_KEY,
      receipts,
      logLevel: process.env.FAILOVER_LOG ?? 'warn',
      pair: paired,
    };
    // FAILOVER_PROF=DIR: each gateway process writes a CPU profile there (those a phase stops; not the killed ones).
    const prof = process.env.FAILOVER_PROF;
    const flags = prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', prof];
    const proc = new Proc(process.execPath, [...flags, path.join(__dirname, 'node.js'), JSON.stringify(o)], this.c);
    this.proc = proc;
    // FAILOVER_LOGS=DIR: each process's output is kept there (with FAILOVER_LOG=info, say).
    const keep = process.env.FAILOVER_LOGS;
    if (keep !== undefined) {
      const file = path.join(keep, path.basename(receipts).replace(/^receipts-/, 'log-'));
      proc.child.once('exit', () => fs.writeFileSync(file, proc.log));
    }
    return proc;
  }

  kill(): void {
    this.proc?.kill('SIGKILL');
  }

  /** The end of a phase: SIGKILL, or SIGTERM with FAILOVER_PROF (the process exits and writes its profile). */
  stop(): void {
    this.proc?.kill(process.env.FAILOVER_PROF === undefined ? 'SIGKILL' : 'SIGTERM');
  }
}

/** The devices of a phase and what each sent and got. */
class Load {
  readonly chans: DeviceChannel[] = [];
  /** Per device: messages accepted by send(). */
  readonly sent: number[] = [];
  /** Per device: echo indices in the order they came. */
  readonly got: number[][] = [];
  /** Per device: distinct echo indices. */
  readonly seen: Set<number>[] = [];
  /** Per device: its moves to another gateway, [ms since the load started, to, code] (for stalls). */
  readonly moves: [number, string, string][][] = [];
  /** Echoes (all devices, with repeats) since the start. */
  echoes = 0;
  readonly t0 = performance.now();
  private running = true;

  private readonly pumps: (() => void)[] = [];
  private readonly pace: ReturnType<typeof setInterval> | null = null;

  /** `rate`: messages per second per device at most (0: as fast as the `inFlight` window allows). */
  constructor(n: number, gateways: string[], phase: string, inFlight: number, rate: number) {
    /** Messages device d may have sent by now. */
    const allowed = rate > 0 ? (): number => Math.floor(((performance.now() - this.t0) * rate) / 1000) + 1 : (): number => Number.POSITIVE_INFINITY;
    for (let d = 0; d < n; d++) {
      // FAILOVER_DEVICE_LOG=N: device N of each phase logs at debug level to stderr.
      const log = process.env.FAILOVER_DEVICE_LOG === String(d) ? { log: createLog({ name: `${phase}-${d}`, level: 'debug' }) } : {};
      const ch = connect({ gateway: gateways, id: `${phase}-${d}`, key: DEVICE_KEY, link: { deadAfterMs: 60_000 }, ...log });
      this.chans.push(ch);
      this.sent.push(0);
      this.got.push([]);
      this.seen.push(new Set());
      this.moves.push([]);
      ch.on('gateway', (to: string, code: string) => this.moves[d].push([Math.round(performance.now() - this.t0), to, code]));
      const pump = (): void => {
        const top = allowed();
        while (this.running && this.sent[d] < top && this.sent[d] - this.seen[d].size < inFlight && ch.send(Buffer.from(String(this.sent[d])))) this.sent[d]++;
      };
      this.pumps.push(pump);
      ch.on('message', (m: Buffer) => {
        const s = m.toString();
        const i = s.startsWith('e') ? Number(s.slice(1)) : Number.NaN;
        this.got[d].push(i);
        this.seen[d].add(i);
        this.echoes++;
        pump();
      });
      ch.on('drain', pump);
      pump();
    }
    if (rate > 0)
      this.pace = setInterval(() => {
        for (const f of this.pumps) f();
      }, 5);
  }

  /** Stops sending; waits (bounded) until each device has an echo of everything it sent. */
  async finish(): Promise<boolean> {
    this.running = false;
    if (this.pace !== null) clearInterval(this.pace);
    return until(DRAIN_LIMIT_MS, () => this.seen.every((s, d) => s.size >= this.sent[d]));
  }

  destroy(): void {
    if (this.pace !== null) clearInterval(this.pace);
    for (const ch of this.chans) ch.destroy();
  }
}

interface Way {
  offered: number;
  delivered: number;
  lost: number;
  duplicated: number;
  out_of_order: number;
  /** Received again, marked again (not duplicates for an application that acknowledges). */
  again: number;
}

interface Phase {
  name: string;
  msgs_per_s: number;
  /** Device -> gateway (the applications' receipts). */
  up: Way;
  /** Gateway -> device (the echoes). */
  down: Way;
  /** Devices still short of an echo when the wait for the last ones ended. */
  short_devices: number;
}

/** Counts a phase from the load and the receipts files (in the order their processes started). */
function count(name: string, load: Load, files: string[], msgsPerS: number): Phase {
  const rec = new Map<string, { index: number; again: boolean }[]>();
  for (const f of files) {
    const text = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const [dev, i, again] = line.split(' ');
      let l = rec.get(dev);
      if (l === undefined) {
        l = [];
        rec.set(dev, l);
      }
      l.push({ index: Number(i), again: again === '1' });
    }
  }
  const up: Way = { offered: 0, delivered: 0, lost: 0, duplicated: 0, out_of_order: 0, again: 0 };
  const down: Way = { offered: 0, delivered: 0, lost: 0, duplicated: 0, out_of_order: 0, again: 0 };
  let short = 0;
  for (let d = 0; d < load.chans.length; d++) {
    const offered = load.sent[d];
    const seen = new Set<number>();
    let top = -1;
    for (const r of rec.get(`${name}-${d}`) ?? []) {
      if (r.again) up.again++;
      if (seen.has(r.index)) {
        if (!r.again) up.duplicated++;
        continue;
      }
      if (r.index < top) up.out_of_order++;
      top = Math.max(top, r.index);
      seen.add(r.index);
    }
    const delivered = [...seen].filter((i) => i >= 0 && i < offered).length;
    up.offered += offered;
    up.delivered += delivered;
    up.lost += offered - delivered;
    // Every message the applications received was echoed once (again when received again).
    const echoed = new Set<number>();
    let topDown = -1;
    for (const i of load.got[d]) {
      if (echoed.has(i)) {
        down.duplicated++;
        continue;
      }
      if (i < topDown) down.out_of_order++;
      topDown = Math.max(topDown, i);
      echoed.add(i);
    }
    const got = [...echoed].filter((i) => seen.has(i)).length;
    down.offered += seen.size;
    down.delivered += got;
    down.lost += seen.size - got;
    if (echoed.size < offered) short++;
  }
  return { name, msgs_per_s: msgsPerS, up, down, short_devices: short };
}

/** Echoes per second over `ms`, after `warmMs`. */
async function measure(load: Load, warmMs: number, ms: number): Promise<number> {
  await sleep(warmMs);
  const [n0, t0] = [load.echoes, performance.now()];
  await sleep(ms);
  return Math.round(((load.echoes - n0) * 1000) / (performance.now() - t0));
}

/** A device that got no echo for more than STALL_MS after a takeover. */
interface Stall {
  kill: number;
  device: number;
  /** From the kill to its first echo after the takeover (null: none within SERVED_LIMIT_MS). */
  served_ms: number | null;
  /** The gateway in use when the wait ended, its requests failed so far, messages unacknowledged. */
  gateway: string;
  requests_failed: number;
  unacknowledged: number;
  /** Its moves from the kill on: [ms after the kill, to, code]. */
  moves: [number, string, string][];
}

const STALL_MS = 5000;

interface Kills {
  takeover_ms: number[];
  served_ms: number[];
  /** Kills after which some device got no echo within SERVED_LIMIT_MS. */
  not_served: number;
  /** Kills where some device waited more than STALL_MS for an echo: which devices, how long, their moves. */
  stalls: Stall[];
  /** Per kill: from the kill until half the devices got an echo again. */
  half_served_ms: number[];
  /** Per kill: from the kill to the restarted node's "synced". */
  synced_ms: number[];
  /** Per kill: echoes per second during the gap after the sync (the pair whole again). */
  gap_msgs_per_s: number[];
  /** Restarted nodes that did not sync within READY_MS (and were started once more). */
  sync_retries: number;
  /** This process's event loop delay during the kills (the devices' side: high means the figures are this machine's). */
  lag_p99_ms: number;
  lag_max_ms: number;
  /** Restarts that failed twice: the kills stopped there. */
  stopped: string | null;
  wall_ms: number;
}

async function runKills(cfg: Config, a: Node, b: Node, load: Load): Promise<Kills> {
  const k: Kills = {
    takeover_ms: [],
    served_ms: [],
    not_served: 0,
    stalls: [],
    half_served_ms: [],
    synced_ms: [],
    gap_msgs_per_s: [],
    sync_retries: 0,
    lag_p99_ms: 0,
    lag_max_ms: 0,
    stopped: null,
    wall_ms: 0,
  };
  const w0 = performance.now();
  let [primary, standby] = [a, b];
  await sleep(cfg.warmMs);
  for (let n = 0; n < cfg.kills; n++) {
    const sp = standby.proc as Proc;
    const from = sp.log.length;
    const t0 = performance.now();
    primary.kill();
    const m = await sp.waitFor(/primary (\d+)/, TAKEOVER_LIMIT_MS, from).catch(() => null);
    if (m === null) {
      k.stopped = `kill ${n + 1}: ${standby.name} did not take over within ${TAKEOVER_LIMIT_MS} ms`;
      break;
    }
    k.takeover_ms.push(performance.now() - t0);
    const atPromote = load.got.map((g) => g.length);
    const servedAt: (number | null)[] = atPromote.map(() => null);
    const served = await until(SERVED_LIMIT_MS, () => {
      let all = true;
      for (let d = 0; d < atPromote.length; d++) {
        if (servedAt[d] !== null) continue;
        if (load.got[d].length > atPromote[d]) servedAt[d] = performance.now() - t0;
        else all = false;
      }
      return all;
    });
    if (served) k.served_ms.push(performance.now() - t0);
    else k.not_served++;
    k.half_served_ms.push(
      pct(
        servedAt.map((x) => x ?? SERVED_LIMIT_MS),
        50,
      ),
    );
    const tk = t0 - load.t0;
    for (let d = 0; d < servedAt.length; d++) {
      const at = servedAt[d];
      if (at !== null && at <= STALL_MS) continue;
      const ch = load.chans[d];
      k.stalls.push({
        kill: n + 1,
        device: d,
        served_ms: at === null ? null : Math.round(at),
        gateway: ch.gateway,
        requests_failed: ch.stats.requestsFailed,
        unacknowledged: ch.unacknowledged,
        moves: load.moves[d].filter((m) => m[0] >= tk).map(([t, to, code]) => [Math.round(t - tk), to, code]),
      });
    }
    const dead = primary;
    [primary, standby] = [standby, dead];
    let synced = false;
    for (let attempt = 0; attempt < 2 && !synced; attempt++) {
      if (attempt > 0) {
        k.sync_retries++;
        dead.kill();
        await dead.proc?.exited;
      }
      const p = dead.start(true, primary.peer);
      synced = await p.waitFor(/synced/, READY_MS).then(
        () => true,
        () => false,
      );
    }
    if (!synced) {
      k.stopped = `kill ${n + 1}: ${dead.name} did not sync as the standby of ${primary.name} within ${READY_MS} ms (twice)`;
      break;
    }
    k.synced_ms.push(performance.now() - t0);
    const [e0, g0] = [load.echoes, performance.now()];
    await sleep(cfg.gapMs);
    k.gap_msgs_per_s.push(Math.round(((load.echoes - e0) * 1000) / (performance.now() - g0)));
  }
  k.wall_ms = performance.now() - w0;
  return k;
}

/** A direction's cells; `again` only where it is known (the device does not see the marks). */
function wayCells(w: Way, width: number, again: boolean): string {
  return [w.offered, w.delivered, w.lost, w.duplicated, w.out_of_order, again ? w.again : '-'].map((x) => String(x).padStart(width)).join('');
}

async function main(): Promise<void> {
  const cfg = parseArgs(process.argv.slice(2));
  const c = new Cleanup();
  const stopAll = (): void => {
    void c.run().finally(() => process.exit(1));
  };
  process.once('SIGTERM', stopAll);
  process.once('SIGINT', stopAll);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bench-failover-'));
  c.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const phases: Phase[] = [];
  let kills: Kills | null = null;
  const w0 = performance.now();
  try {
    const ports = async (): Promise<[number, number, number, number]> => [await listenPort(), await listenPort(), await listenPort(), await listenPort()];
    const single = async (name: string): Promise<void> => {
      const [http, peer] = await ports();
      const g = new Node(c, dir, name, http, peer);
      await g.start(false, null).waitFor(/listening/, READY_MS);
      const load = new Load(cfg.devices, [g.url], name, cfg.inFlight, 0);
      const rate = await measure(load, cfg.warmMs, cfg.measureMs);
      const ok = await load.finish();
      phases.push(count(name, load, g.files, rate));
      load.destroy();
      g.stop();
      if (!ok) process.stderr.write(`bench:failover: ${name}: some echoes did not come within ${DRAIN_LIMIT_MS} ms\n`);
    };
    const paired = async (name: string, withKills: boolean): Promise<void> => {
      const [httpA, httpB, peerA, peerB] = await ports();
      const order: string[] = [];
      const a = new Node(c, dir, `${name}-a`, httpA, peerA, order);
      const b = new Node(c, dir, `${name}-b`, httpB, peerB, order);
      await a.start(true, null).waitFor(/primary 1/, READY_MS);
      await b.start(true, peerA).waitFor(/synced/, READY_MS);
      const load = new Load(cfg.devices, [a.url, b.url], name, cfg.inFlight, withKills ? cfg.killRate : 0);
      let rate: number;
      if (!withKills) rate = await measure(load, cfg.warmMs, cfg.measureMs);
      else {
        const echoes0 = load.echoes;
        const lag = monitorEventLoopDelay({ resolution: 10 });
        lag.enable();
        kills = await runKills(cfg, a, b, load);
        lag.disable();
        kills.lag_p99_ms = Math.round(lag.percentile(99) / 1e6);
        kills.lag_max_ms = Math.round(lag.max / 1e6);
        rate = Math.round(((load.echoes - echoes0) * 1000) / kills.wall_ms);
      }
      const ok = await load.finish();
      phases.push(count(name, load, order, rate));
      load.destroy();
      a.stop();
      b.stop();
      if (!ok) process.stderr.write(`bench:failover: ${name}: some echoes did not come within ${DRAIN_LIMIT_MS} ms\n`);
    };
    for (let r = 1; r <= cfg.rounds; r++) {
      await single(`single-${r}`);
      await paired(`pair-${r}`, false);
    }
    await paired('kills', true);
  } finally {
    await c.run();
  }
  const k = kills as Kills | null;
  if (k === null) throw new Error('no kills phase');
  const wall = Math.round((performance.now() - w0) / 100) / 10;
  const best = (prefix: string): number => Math.max(...phases.filter((p) => p.name.startsWith(prefix)).map((p) => p.msgs_per_s));
  const [singleRate, pairRate] = [best('single-'), best('pair-')];
  const kp = phases[phases.length - 1];
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  const line = {
    kills: k.takeover_ms.length,
    offered: kp.up.offered + kp.down.offered,
    delivered: kp.up.delivered + kp.down.delivered,
    lost: kp.up.lost + kp.down.lost,
    duplicated: kp.up.duplicated + kp.down.duplicated,
    out_of_order: kp.up.out_of_order + kp.down.out_of_order,
    takeover_p50_ms: r1(pct(k.takeover_ms, 50)),
    takeover_p99_ms: r1(pct(k.takeover_ms, 99)),
    throughput_ratio: Math.round((pairRate / singleRate) * 100) / 100,
  };
  const head = `bench:failover  ${cfg.devices} devices, ${cfg.inFlight} in flight each, both ways; ${os.availableParallelism?.() ?? os.cpus().length} cores; measured ${cfg.measureMs} ms; ${k.takeover_ms.length} kills (gap ${cfg.gapMs} ms); ${wall} s`;
  const cols = ['offered', 'deliv', 'lost', 'dup', 'order', 'again'];
  const lines = [
    head,
    `${'phase'.padEnd(8)}${'msgs/s'.padStart(8)}  |${cols.map((x) => `up ${x}`.padStart(11)).join('')}  |${cols.map((x) => `down ${x}`.padStart(12)).join('')}  short`,
    ...phases.map((p) => `${p.name.padEnd(8)}${String(p.msgs_per_s).padStart(8)}  |${wayCells(p.up, 11, true)}  |${wayCells(p.down, 12, false)}  ${p.short_devices}`),
    `takeover  promoted p50 ${r1(pct(k.takeover_ms, 50))} ms, p99 ${r1(pct(k.takeover_ms, 99))} ms, max ${r1(pct(k.takeover_ms, 100))} ms; half the devices served again p50 ${r1(pct(k.half_served_ms, 50))} ms, p99 ${r1(pct(k.half_served_ms, 99))} ms; every device served again p50 ${r1(pct(k.served_ms, 50))} ms, p99 ${r1(pct(k.served_ms, 99))} ms, max ${r1(pct(k.served_ms, 100))} ms; not served within ${SERVED_LIMIT_MS / 1000} s: ${k.not_served}; restarts not synced within ${READY_MS / 1000} s: ${k.sync_retries}`,
  ];
  lines.push(
    `capacity  best of ${cfg.rounds} rounds: single ${singleRate} msgs/s, pair ${pairRate} msgs/s; kills phase paced at ${cfg.killRate > 0 ? `${cfg.killRate} msgs/s per device` : 'the window'}, this process's event loop delay p99 ${k.lag_p99_ms} ms, max ${k.lag_max_ms} ms`,
    `restart   standby synced again (from the kill) p50 ${r1(pct(k.synced_ms, 50))} ms, max ${r1(pct(k.synced_ms, 100))} ms; echoes/s in the gaps (pair whole again) p50 ${pct(k.gap_msgs_per_s, 50)}, min ${pct(k.gap_msgs_per_s, 0)}, max ${pct(k.gap_msgs_per_s, 100)}`,
  );
  for (const st of k.stalls)
    lines.push(
      `stall     kill ${st.kill} device ${st.device}: ${st.served_ms === null ? 'no echo' : `first echo after ${st.served_ms} ms`}; on ${st.gateway}, ${st.unacknowledged} unacknowledged, ${st.requests_failed} requests failed; moves ${JSON.stringify(st.moves)}`,
    );
  if (k.stopped !== null) lines.push(`stopped: ${k.stopped}`);
  for (const l of lines) console.log(l);
  fs.mkdirSync(cfg.out, { recursive: true });
  fs.writeFileSync(
    path.join(cfg.out, 'failover.json'),
    `${JSON.stringify(
      {
        machine: machine(ROOT),
        config: { ...cfg, out: undefined },
        wall_seconds: wall,
        summary: line,
        phases,
        takeover: {
          promoted_ms: k.takeover_ms.map(r1),
          served_ms: k.served_ms.map(r1),
          half_served_ms: k.half_served_ms.map(r1),
          not_served: k.not_served,
          stalls: k.stalls,
          synced_ms: k.synced_ms.map(r1),
          gap_msgs_per_s: k.gap_msgs_per_s,
          sync_retries: k.sync_retries,
          lag_p99_ms: k.lag_p99_ms,
          lag_max_ms: k.lag_max_ms,
          stopped: k.stopped,
        },
        table: lines,
      },
      null,
      2,
    )}\n`,
  );
  console.log(JSON.stringify(line));
  if (k.stopped !== null) process.exitCode = 1;
}

main().catch((e: Error) => {
  console.error(`bench:failover: ${e.message}`);
  process.exit(1);
});
