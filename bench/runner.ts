/**
 * The workload runner (`npm run bench:peers`, through bench/run.js): for each system, one after
 * another, it starts a server process and a client process (bench/server.ts, bench/client.ts) on
 * 127.0.0.1 and runs the same workloads:
 *
 *   1. throughput: N 64-byte messages client -> server (c2s), then N server -> client (s2c); time
 *      from the first send to the last arrival; best of three runs after a warm-up (see `measure`)
 *   2. round trips: RTT_N pings one at a time (after a warm-up); p50 / p99
 *   3. throughput with 1 KiB and 16 KiB messages
 *   4. bytes on the wire: workload 1 again through a counting proxy (tools/chaos-proxy.ts, no kills),
 *      TCP payload bytes both ways divided by messages
 *   5. IDLE idle sessions: the server's heap and RSS per session (memoryUsage after a full GC)
 *   6. reliability: N_CHAOS numbered 64-byte messages each way at once through tools/chaos-proxy.ts
 *      killing 2% of request turns (all phases); delivered, lost, duplicated, out of order. The proxy
 *      draws once per turn (client bytes after server bytes), and one unpaced stream is one turn, so
 *      both ends send in bursts (CHAOS_BURST every CHAOS_EVERY_MS): every system goes through a few
 *      hundred turns, and its kills are printed beside its losses.
 *
 * The `*-tls` rows run the same workloads over TLS (bench/tls.ts: one throw-away certificate per run,
 * the same TLS settings for every row); the report puts each beside its plain row with the ratio
 * (`--tls` runs just those pairs).
 *
 * Processes are fresh for each of 1-3, 4, 5 and 6. Everything is bounded: each call has a time limit,
 * a child that overruns is killed by its PID, and a failed workload leaves its cells empty with the
 * reason noted. Prints the tables, writes bench/results/peers.json and peers.md, and ends with one
 * JSON line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADAPTERS, TLS_ADAPTERS, adapterNamed } from './adapters/index';
import type { CountResult, PumpResult, RttResult } from './flow';
import { errorText } from './ipc';
import { MAIN_ID, Pair } from './pair';
import { goals, jsonLine, machine, markdown, tlsCost, writeDocs, type SystemResult } from './report';
import { makeTlsDir, probe, removeTlsDir } from './tls';

interface Config {
  systems: string[];
  n: number;
  n1k: number;
  n16k: number;
  rtt: number;
  warmup: number;
  idle: number;
  chaosN: number;
  killRate: number;
  /** Longest one throughput phase may take, ms. */
  phaseMs: number;
  /** Longest the senders may take under chaos, ms (paced, they need about 2 s). */
  chaosSendMs: number;
  /** After the senders are done under chaos, the longest the receivers wait, ms ... */
  drainMs: number;
  /** ... and they stop early once nothing new arrived for this long, ms. */
  quietMs: number;
  skip: Set<string>;
  writeDocs: boolean;
  out: string;
}

/**
 * Systems too slow for the full counts would get a fraction of them here (the output says so). None
 * needs it on the machines tried: even eio-polling-noagent, which opens a TCP connection per request,
 * moves thousands of messages per POST, so only its round trips pay for the connects.
 */
const SCALE: Record<string, number> = {};

/** Windows tried for systems bounded by the harness's Window (adapter.ts); the best is kept per direction and size. */
const WINDOWS = [64 * 1024, 256 * 1024, 1024 * 1024];

/** Pacing of the reliability workload: messages per burst, ms between bursts (each end). */
const CHAOS_BURST = 25;
const CHAOS_EVERY_MS = 5;

const root = path.resolve(__dirname, '..', '..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parseArgs(argv: string[]): Config {
  const c: Config = {
    systems: ADAPTERS.map((a) => a.name),
    n: 50_000,
    n1k: 10_000,
    n16k: 2_000,
    rtt: 5000,
    warmup: 2000,
    idle: 1000,
    chaosN: 10_000,
    killRate: 0.02,
    phaseMs: 30_000,
    chaosSendMs: 8_000,
    drainMs: 10_000,
    quietMs: 3_000,
    skip: new Set(),
    writeDocs: false,
    out: path.join(root, 'bench', 'results'),
  };
  const num = (flag: string, v: string | undefined): number => {
    const x = Number(v);
    if (v === undefined || !Number.isFinite(x) || x < 0) throw new Error(`${flag} needs a number, got ${String(v)}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--systems') c.systems = argv[++i].split(',').map((s) => adapterNamed(s.trim()).name);
    else if (a === '--tls') c.systems = TLS_ADAPTERS.flatMap((x) => [x.plain!, x.name]);
    else if (a === '--messages') c.n = num(a, argv[++i]);
    else if (a === '--rtt') c.rtt = num(a, argv[++i]);
    else if (a === '--idle') c.idle = num(a, argv[++i]);
    else if (a === '--chaos-messages') c.chaosN = num(a, argv[++i]);
    else if (a === '--kill-rate') c.killRate = Math.min(1, num(a, argv[++i]));
    else if (a === '--drain-ms') c.drainMs = num(a, argv[++i]);
    else if (a === '--skip') for (const s of argv[++i].split(',')) c.skip.add(s.trim());
    else if (a === '--quick') {
      c.n = 5000;
      c.n1k = 2000;
      c.n16k = 300;
      c.rtt = 200;
      c.warmup = 300;
      c.idle = 100;
      c.chaosN = 2000;
      c.drainMs = 5000;
    } else if (a === '--write-docs') c.writeDocs = true;
    else if (a === '--out') c.out = path.resolve(argv[++i] ?? '.');
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        [
          'usage: npm run bench:peers -- [--systems a,b | --tls] [--quick] [--messages N] [--rtt N] [--idle N]',
          '         [--chaos-messages N] [--drain-ms MS] [--skip throughput,rtt,sizes,bytes,idle,chaos] [--write-docs]',
          '         [--kill-rate R] [--out DIR]   (R: 0..1, default 0.02; DIR: where peers.json and peers.md go, default bench/results)',
          `systems: ${ADAPTERS.map((x) => x.name).join(', ')}`,
          '--tls runs the TLS rows, each after its plain row (the report gives TLS / plain per transport)',
          '--write-docs rewrites the results between the markers in docs/BENCHMARKS.md',
          '',
        ].join('\n'),
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (--help lists them)`);
  }
  return c;
}

interface Flow {
  /** Messages per second from the first send to the last arrival (partial runs: what arrived). */
  rate: number;
  count: CountResult;
  pump: PumpResult;
}

/** n messages of `size` bytes one way; the receiver is armed before the sender starts. */
async function oneWay(p: Pair, dir: 'c2s' | 's2c', n: number, size: number, limitMs: number): Promise<Flow> {
  const [tx, rx] = dir === 'c2s' ? [p.cli, p.srv] : [p.srv, p.cli];
  await rx.call('arm', { n }, 5000);
  const pump = await tx.call<PumpResult>('pump', { n, size, timeoutMs: limitMs }, limitMs + 5000);
  const left = Math.max(1000, limitMs - (pump.t1 - pump.t0));
  const count = await rx.call<CountResult>('wait', { timeoutMs: left }, left + 5000);
  const secs = (count.last - pump.t0) / 1000;
  return { rate: count.unique > 0 && secs > 0 ? count.unique / secs : 0, count, pump };
}

/**
 * One direction's rate: the best of three runs. A windowed system makes its three runs with the three
 * windows of WINDOWS (`windows[key]` records the one kept; short trial runs would pick wrongly, some
 * libraries slowing down only once many thousands of messages are outstanding); any other system
 * makes three runs as it is. Every run's rate goes to `trials[key]`, to show the spread.
 */
async function measure(p: Pair, windowed: boolean, dir: 'c2s' | 's2c', n: number, size: number, limitMs: number, what: string, r: SystemResult): Promise<number | null> {
  const key = `${dir}_${size}`;
  let best: number | null = null;
  const failed: string[] = [];
  const rates: (number | null)[] = [];
  for (const w of WINDOWS) {
    if (windowed) await p.setWindow(w);
    const rate = check(await oneWay(p, dir, n, size, limitMs), windowed ? `${what}, window ${w / 1024} KiB` : what, failed);
    rates.push(rate);
    if (rate !== null && (best === null || rate > best)) {
      best = rate;
      if (windowed) r.windows[key] = w;
    }
  }
  r.trials[key] = rates;
  if (best === null) r.notes.push(...failed);
  return best;
}

function check(f: Flow, what: string, notes: string[]): number | null {
  if (f.count.unique === f.count.expected) return Math.round(f.rate);
  notes.push(`${what}: ${f.count.unique}/${f.count.expected} arrived (${f.count.end}, sender ${f.pump.end})`);
  return null;
}

const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** Runs one workload group on a fresh pair of processes; failures become notes. Stops the pair. */
async function phase(r: SystemResult, name: string, p: Pair, fn: () => Promise<void>): Promise<void> {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    r.notes.push(`${name} failed: ${errorText(e)}`);
  } finally {
    r.notes.push(...p.uncaughtNotes(name));
    await p.stop();
    r.seconds[name] = round((Date.now() - t0) / 1000, 1);
  }
}

/**
 * A TLS row: what its server negotiates with a client of the bench's settings, on each port (asked
 * directly, not through a proxy), into `r.negotiated`. Once per system; a failed probe is a note.
 */
async function negotiated(r: SystemResult, p: Pair): Promise<void> {
  if (r.plain === undefined || r.negotiated !== undefined) return;
  const seen = new Set<string>();
  try {
    for (const port of Object.values(p.ports)) {
      const n = await probe(port);
      seen.add(`${n.protocol} ${n.cipher}`);
    }
    r.negotiated = [...seen].join(', ');
  } catch (e) {
    r.negotiated = '?';
    r.notes.push(`TLS probe failed: ${errorText(e)}`);
  }
}

async function runSystem(c: Config, system: string): Promise<SystemResult> {
  const a = adapterNamed(system);
  const scale = SCALE[system] ?? 1;
  const k = (x: number): number => Math.max(1, Math.round(x * scale));
  const r: SystemResult = { name: system, settings: a.settings, reconnects: a.reconnects, scale, notes: [], seconds: {}, counts: {}, windows: {}, trials: {} };
  if (a.plain !== undefined) r.plain = a.plain;
  const ids = [MAIN_ID];
  for (let i = 0; i < c.idle; i++) ids.push(`idle-${i}`);
  if (scale !== 1) r.notes.push(`counts scaled to ${scale * 100}% (a slow peer)`);

  // 1-3: throughput and round trips, on one connection.
  if (!(c.skip.has('throughput') && c.skip.has('rtt') && c.skip.has('sizes'))) {
    const p = new Pair(system);
    await phase(r, 'throughput', p, async () => {
      await p.connect(await p.start([MAIN_ID], null));
      await negotiated(r, p);
      // Warm-up both ways (JIT, buffers), not measured.
      await oneWay(p, 'c2s', k(Math.min(5000, c.n)), 64, c.phaseMs);
      await oneWay(p, 's2c', k(Math.min(5000, c.n)), 64, c.phaseMs);
      if (!c.skip.has('rtt')) {
        const rtt = await p.cli.call<RttResult>('ping', { n: k(c.rtt), warmup: k(c.warmup), size: 64, timeoutMs: c.phaseMs }, c.phaseMs + 5000);
        r.counts.rtt = k(c.rtt);
        if (rtt.end !== 'done') r.notes.push(`rtt: ${rtt.samples} samples (${rtt.end})`);
        if (rtt.samples > 0) Object.assign(r, { rtt_p50_ms: round(rtt.p50), rtt_p99_ms: round(rtt.p99), rtt_mean_ms: round(rtt.mean) });
      }
      const run = (dir: 'c2s' | 's2c', n: number, size: number, what: string): Promise<number | null> => measure(p, a.windowed, dir, n, size, c.phaseMs, what, r);
      // Before the first runs of a size: one unmeasured run each way (code paths, buffer pools and the
      // kernel's socket buffers grow with use; without it the first of three runs is always the slowest).
      const warm = async (n: number, size: number): Promise<void> => {
        if (a.windowed) await p.setWindow(WINDOWS[WINDOWS.length - 1]);
        await oneWay(p, 'c2s', k(Math.max(200, Math.round(n / 5))), size, c.phaseMs);
        await oneWay(p, 's2c', k(Math.max(200, Math.round(n / 5))), size, c.phaseMs);
      };
      if (!c.skip.has('throughput')) {
        r.counts.n64 = k(c.n);
        await warm(c.n, 64);
        r.c2s_msgs_per_s = await run('c2s', k(c.n), 64, 'c2s 64 B');
        r.s2c_msgs_per_s = await run('s2c', k(c.n), 64, 's2c 64 B');
      }
      if (!c.skip.has('sizes')) {
        r.counts.n1k = k(c.n1k);
        r.counts.n16k = k(c.n16k);
        await warm(c.n1k, 1024);
        r.c2s_1k_msgs_per_s = await run('c2s', k(c.n1k), 1024, 'c2s 1 KiB');
        r.s2c_1k_msgs_per_s = await run('s2c', k(c.n1k), 1024, 's2c 1 KiB');
        await warm(c.n16k, 16384);
        r.c2s_16k_msgs_per_s = await run('c2s', k(c.n16k), 16384, 'c2s 16 KiB');
        r.s2c_16k_msgs_per_s = await run('s2c', k(c.n16k), 16384, 's2c 16 KiB');
      }
    });
  }

  // 4: bytes on the wire, through a counting proxy.
  if (!c.skip.has('bytes')) {
    const p = new Pair(system);
    await phase(r, 'bytes', p, async () => {
      await p.connect(await p.start([MAIN_ID], { killRate: 0, seed: 1 }));
      await negotiated(r, p);
      await p.setWindow(r.windows.c2s_64, r.windows.s2c_64);
      const n = k(c.n);
      r.counts.bytes = n;
      const per: Record<string, number> = {};
      for (const dir of ['c2s', 's2c'] as const) {
        await sleep(100);
        const s0 = p.stats();
        const f = await oneWay(p, dir, n, 64, c.phaseMs);
        await sleep(100); // the last acknowledgements
        const s1 = p.stats();
        if (f.count.unique !== n) throw new Error(`${dir}: ${f.count.unique}/${n} arrived (${f.count.end})`);
        per[dir] = (s1.bytesUp - s0.bytesUp + s1.bytesDown - s0.bytesDown) / n;
        per[`${dir}_up`] = (s1.bytesUp - s0.bytesUp) / n;
        per[`${dir}_down`] = (s1.bytesDown - s0.bytesDown) / n;
      }
      r.bytes_per_msg = round((per.c2s + per.s2c) / 2, 1);
      r.bytes_per_msg_c2s = round(per.c2s, 1);
      r.bytes_per_msg_s2c = round(per.s2c, 1);
      r.bytes_detail = { c2s_up: round(per.c2s_up, 1), c2s_down: round(per.c2s_down, 1), s2c_up: round(per.s2c_up, 1), s2c_down: round(per.s2c_down, 1), connections: p.stats().connections };
    });
  }

  // 5: idle sessions.
  if (!c.skip.has('idle') && c.idle > 0) {
    const p = new Pair(system);
    await phase(r, 'idle', p, async () => {
      const ports = await p.start(ids, null);
      type Mem = NodeJS.MemoryUsage;
      const before = await p.srv.call<Mem>('memory', {}, 10_000);
      const want = k(c.idle);
      const o = await p.cli.call<{ opened: number; failed: number; error: string }>('idle', { system, ports, k: want, concurrency: 50, timeoutMs: 60_000 }, 70_000);
      const { sessions } = await p.srv.call<{ sessions: number }>('sessions', { atLeast: o.opened, timeoutMs: 10_000 }, 15_000);
      await sleep(1000); // let the sessions settle (held requests, pings)
      const after = await p.srv.call<Mem>('memory', {}, 10_000);
      r.counts.idle = want;
      if (o.opened !== want) r.notes.push(`idle: ${o.opened}/${want} opened (${o.failed} failed: ${o.error})`);
      if (sessions === 0) throw new Error('no sessions open');
      r.idle_sessions = sessions;
      r.heap_per_session_kb = round((after.heapUsed - before.heapUsed) / sessions / 1024, 2);
      r.rss_per_session_kb = round((after.rss - before.rss) / sessions / 1024, 2);
      r.external_per_session_kb = round((after.external - before.external) / sessions / 1024, 2);
    });
  }

  // 6: both directions at once through a proxy that kills connections.
  if (!c.skip.has('chaos')) {
    const p = new Pair(system);
    await phase(r, 'chaos', p, async () => {
      await p.connect(await p.start([MAIN_ID], { killRate: c.killRate, seed: 1 }), 5);
      await negotiated(r, p);
      await p.setWindow(r.windows.c2s_64, r.windows.s2c_64);
      const n = k(c.chaosN);
      r.counts.chaos = n;
      await Promise.all([p.srv.call('arm', { n }, 5000), p.cli.call('arm', { n }, 5000)]);
      const t0 = Date.now();
      const [pc, ps] = await Promise.all([
        p.cli.call<PumpResult>('pump', { n, size: 64, timeoutMs: c.chaosSendMs, burst: CHAOS_BURST, everyMs: CHAOS_EVERY_MS }, c.chaosSendMs + 5000),
        p.srv.call<PumpResult>('pump', { n, size: 64, timeoutMs: c.chaosSendMs, burst: CHAOS_BURST, everyMs: CHAOS_EVERY_MS }, c.chaosSendMs + 5000),
      ]);
      const [rs, rc] = await Promise.all([
        p.srv.call<CountResult>('wait', { timeoutMs: c.drainMs, quietMs: c.quietMs }, c.drainMs + 5000),
        p.cli.call<CountResult>('wait', { timeoutMs: c.drainMs, quietMs: c.quietMs }, c.drainMs + 5000),
      ]);
      const s = p.stats();
      const kills = s.kills['before-request'] + s.kills['after-request'] + s.kills['mid-response'];
      const taken = pc.taken + ps.taken;
      const unique = rs.unique + rc.unique;
      r.chaos = {
        messages: 2 * n,
        taken,
        delivered: unique,
        not_sent: 2 * n - taken,
        lost: Math.max(0, taken - unique),
        duplicated: rs.duplicated + rc.duplicated,
        reordered: rs.reordered + rc.reordered,
        kills,
        connections: s.connections,
        requests: s.requests,
        seconds: round((Date.now() - t0) / 1000, 1),
        c2s: { taken: pc.taken, delivered: rs.unique, duplicated: rs.duplicated, reordered: rs.reordered, send: pc.end, receive: rs.end },
        s2c: { taken: ps.taken, delivered: rc.unique, duplicated: rc.duplicated, reordered: rc.reordered, send: ps.end, receive: rc.end },
      };
      r.lost = r.chaos.lost;
      r.duplicated = r.chaos.duplicated;
    });
  }
  return r;
}

async function main(): Promise<void> {
  const c = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const results: SystemResult[] = [];
  process.stdout.write(`bench:peers: ${c.systems.length} systems, ${c.n} x 64 B each way, ${c.rtt} round trips, ${c.idle} idle sessions, ${c.chaosN} each way under ${c.killRate * 100}% kills\n`);
  // The TLS rows' certificate: made once for the run, removed when it ends (bench/tls.ts).
  const tlsDir = c.systems.some((s) => adapterNamed(s).plain !== undefined) ? makeTlsDir() : null;
  try {
    for (const s of c.systems) {
      const ts = Date.now();
      process.stdout.write(`  ${s} ... `);
      const r = await runSystem(c, s);
      results.push(r);
      process.stdout.write(`${((Date.now() - ts) / 1000).toFixed(1)} s${r.notes.length ? ` (${r.notes.join('; ')})` : ''}\n`);
    }
  } finally {
    if (tlsDir !== null) removeTlsDir(tlsDir);
  }
  const m = machine(root);
  const g = goals(results);
  const wall = round((Date.now() - t0) / 1000, 1);
  const md = markdown(results, g, m, c, wall);
  fs.mkdirSync(c.out, { recursive: true });
  fs.writeFileSync(
    path.join(c.out, 'peers.json'),
    JSON.stringify({ machine: m, config: { ...c, skip: [...c.skip], out: undefined }, wall_seconds: wall, goals: g, tls_cost: tlsCost(results), adapters: results }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(c.out, 'peers.md'), md);
  if (c.writeDocs) writeDocs(path.join(root, 'docs', 'BENCHMARKS.md'), md);
  process.stdout.write('\n' + md + '\n');
  process.stdout.write(`wrote ${path.relative(root, path.join(c.out, 'peers.json'))} and peers.md${c.writeDocs ? ', docs/BENCHMARKS.md' : ''} (${wall} s)\n`);
  process.stdout.write(jsonLine(results) + '\n');
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`bench:peers: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);

export type { Config };
