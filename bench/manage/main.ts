/**
 * `npm run bench:manage` (through bench/manage/run.js): the management API's click-to-result latency
 * and one job's fan-out, against a real gateway with real device sessions, on 127.0.0.1.
 *
 *   gateway process (gateway.ts)  Gateway with HTTP and direct TCP listeners, management attached to
 *                                 every session, the API with an operator's token; its RSS is read
 *                                 from /proc/PID/status
 *   devices process (devices.ts)  every device a session of its own (connect() + Mux +
 *                                 serveManagement over a simulated board)
 *   this process                  the operator's script: POST /api/jobs with the token, the outcome
 *                                 from the event stream (GET /api/events), confirmed by GET /api/jobs/ID
 *
 * 1. Latency: `info` on one online device over direct TCP, then on one over HTTP: --rounds rounds each
 *    (after --warmup unmeasured), one at a time, each from the POST to the outcome's event; p50/p99.
 * 2. Fan-out: the fleet (--devices N, default 10000) opens over direct TCP, --concurrency at a time,
 *    within --open-s; one job (--op, default info) to the first 1,000 and then to every online fleet
 *    device, timed from the POST until every outcome is recorded (the last final event), then confirmed
 *    by GET; each within --fanout-s.
 * 3. Latency again with the fleet open (a quarter of --rounds per transport), then the gateway's RSS
 *    after a GC with every session open.
 *
 * Everything is bounded: each phase by its own limit, the whole run by --max-s (default 900), and
 * run.js bounds the process once more. Prints the tables and, as its last line, one JSON object.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Child, errorText } from '../ipc';
import { nowMs } from '../flow';
import { ApiClient } from './api-client';
import { fleetId, LATENCY_HTTP, LATENCY_TCP } from './link';
import { type FanoutResult, goalLines, jsonLine, type LatencyResult, type ManageResult, table } from './report';
import { flagNumber } from '../flag-number';

interface Config {
  devices: number;
  rounds: number;
  warmup: number;
  roundsS: number;
  concurrency: number;
  openS: number;
  fanoutS: number;
  maxS: number;
  op: 'info' | 'config.get';
  cpuProf: string | null;
  linkKib: number;
  heapSnapshot: string | null;
}

function usage(): string {
  return [
    'usage: npm run bench:manage -- [--devices N | --quick] [--rounds N] [--warmup N] [--concurrency N]',
    '         [--op info|config.get] [--open-s S] [--fanout-s S] [--max-s S] [--link-kib K] [--cpu-prof DIR]',
    '--devices N: fleet sessions opened for the fan-out (default 10000; --quick: 1000, 100 rounds)',
    '--rounds N: measured latency rounds per transport (default 200, at most --rounds-s each: default 60)',
    '--concurrency N: fleet sessions opening at once (default 200); --open-s: longest the fleet may take to open (default 600)',
    '--fanout-s: longest one fan-out may take (default 120); --max-s: the whole run (default 900)',
    '--link-kib K: ring bytes of every session each way, KiB, a power of two (default 32; see bench/manage/link.ts)',
    '--heap-snapshot FILE: a heap snapshot of the gateway with every session open, into FILE',
    '--cpu-prof DIR: write a CPU profile of the gateway process into DIR (node --cpu-prof)',
    '',
  ].join('\n');
}

function parseArgs(argv: string[]): Config {
  const c: Config = { devices: 10000, rounds: 200, warmup: 30, roundsS: 60, concurrency: 200, openS: 600, fanoutS: 120, maxS: 900, op: 'info', cpuProf: null, linkKib: 32, heapSnapshot: null };
  const num = flagNumber;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--devices') c.devices = Math.round(num(a, argv[++i], 1));
    else if (a === '--quick') {
      c.devices = 1000;
      c.rounds = 100;
    } else if (a === '--rounds') c.rounds = Math.round(num(a, argv[++i], 1));
    else if (a === '--warmup') c.warmup = Math.round(num(a, argv[++i], 0));
    else if (a === '--rounds-s') c.roundsS = num(a, argv[++i], 1);
    else if (a === '--concurrency') c.concurrency = Math.round(num(a, argv[++i], 1));
    else if (a === '--open-s') c.openS = num(a, argv[++i], 1);
    else if (a === '--fanout-s') c.fanoutS = num(a, argv[++i], 1);
    else if (a === '--max-s') c.maxS = num(a, argv[++i], 10);
    else if (a === '--op') {
      const op = argv[++i];
      if (op !== 'info' && op !== 'config.get') throw new Error(`--op: info or config.get, got ${String(op)}`);
      c.op = op;
    } else if (a === '--link-kib') {
      c.linkKib = Math.round(num(a, argv[++i], 4));
      if ((c.linkKib & (c.linkKib - 1)) !== 0) throw new Error(`--link-kib: a power of two, got ${c.linkKib}`);
    } else if (a === '--heap-snapshot') c.heapSnapshot = path.resolve(argv[++i] ?? 'gateway.heapsnapshot');
    else if (a === '--cpu-prof') c.cpuProf = path.resolve(argv[++i] ?? '.');
    else if (a === '--help' || a === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (--help lists them)`);
  }
  return c;
}

/**
 * Where a process's resident memory lives, MiB, from /proc/PID/smaps: `brk` is the C heap of the main
 * thread ([heap]), `anon` every other anonymous mapping (V8's heap pages, other threads' malloc
 * arenas, large malloc blocks such as the ring chunks), `file` mapped files (the node binary, libraries).
 */

function residentSplit(pid: number | undefined): ManageResult['resident'] {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const kib = { brk: 0, anon: 0, file: 0, other: 0 };
  let into: keyof typeof kib = 'other';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head !== null) {
      const name = head[1];
      into = name === '[heap]' ? 'brk' : name === '' ? 'anon' : name.startsWith('/') ? 'file' : 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null) kib[into] += Number(rss[1]);
  }
  return { brkMb: kib.brk / 1024, anonMb: kib.anon / 1024, fileMb: kib.file / 1024, otherMb: kib.other / 1024 };
}

/** VmRSS and VmHWM of a process, MiB (null where /proc does not say). */
function rssOf(pid: number | undefined): { rss: number | null; hwm: number | null } {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string): number | null => {
      const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s);
      return m === null ? null : Number(m[1]) / 1024;
    };
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return { rss: null, hwm: null };
  }
}

/** The open-files limit of this process (children inherit it). */
function openFilesLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = nowMs() + ms;
  while (!(await cond())) {
    if (nowMs() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const jobOf = (body: Record<string, unknown>, what: string): { id: string; targets: number } => {
  const job = body.job as { id: string; states: Record<string, number> } | undefined;
  if (job === undefined) throw new Error(`${what}: POST /api/jobs answered without a job: ${JSON.stringify(body).slice(0, 300)}`);
  return { id: job.id, targets: Object.values(job.states).reduce((a, b) => a + b, 0) };
};

async function latency(api: ApiClient, c: Config, transport: 'tcp' | 'http', deadline: number, fleetOnline: number, rounds: number): Promise<LatencyResult> {
  const device = transport === 'tcp' ? LATENCY_TCP : LATENCY_HTTP;
  const res: LatencyResult = { transport, fleetOnline, rounds: 0, event: [], confirmed: [], failures: 0 };
  if (api.streamClosed) await api.listen(); // a large fan-out's events make the gateway drop the stream
  const end = Math.min(deadline, nowMs() + c.roundsS * 1000);
  for (let i = 0; i < c.warmup + rounds && nowMs() < end; i++) {
    const t0 = nowMs();
    const job = jobOf(await api.request('POST', '/api/jobs', { op: 'info', args: {}, selector: `id=${device}` }), `info on ${device}`);
    const at = await api.finals(job.id, 1, 10_000);
    const got = await api.request('GET', `/api/jobs/${job.id}`);
    const t2 = nowMs();
    const targets = (got.targets ?? []) as { state: string }[];
    const ok = at !== null && targets.length === 1 && targets[0].state === 'succeeded';
    api.forget(job.id);
    if (i < c.warmup) continue;
    res.rounds++;
    if (!ok) {
      res.failures++;
      continue;
    }
    res.event.push((at as number) - t0);
    res.confirmed.push(t2 - t0);
  }
  return res;
}

/**
 * One job to every device `selector` matches: from the POST until the store has every outcome. The
 * job's per-state counts are polled with GET /api/jobs?limit=4 (no targets in it: one small answer
 * however many devices), one request after another; the figure is the time of the first answer
 * showing none pending. The event stream's final events are counted beside it.
 */
async function fanout(api: ApiClient, c: Config, selector: string, deadline: number): Promise<FanoutResult> {
  const t0 = nowMs();
  const job = jobOf(await api.request('POST', '/api/jobs', { op: c.op, args: {}, selector }), `fan-out ${selector}`);
  const end = Math.min(deadline, t0 + c.fanoutS * 1000);
  let at: number | null = null;
  let states: Record<string, number> = {};
  while (nowMs() < end) {
    const got = await api.request('GET', '/api/jobs?limit=4', undefined, 60_000);
    const j = ((got.jobs ?? []) as { id: string; states: Record<string, number> }[]).find((x) => x.id === job.id);
    if (j === undefined) throw new Error(`GET /api/jobs: job ${job.id} is not among the latest`);
    states = j.states;
    if ((states.queued ?? 0) + (states.sent ?? 0) + (states.running ?? 0) === 0) {
      at = nowMs();
      break;
    }
    await sleep(5);
  }
  const events = api.seen(job.id);
  api.forget(job.id);
  const final = Object.entries(states)
    .filter(([s]) => !['queued', 'sent', 'running'].includes(s))
    .reduce((a, [, n]) => a + n, 0);
  return {
    devices: job.targets,
    op: c.op,
    seconds: at === null ? null : (at - t0) / 1000,
    final,
    notSucceeded: final - (states.succeeded ?? 0),
    events: events.final,
    streamDropped: api.streamClosed,
  };
}

async function main(): Promise<void> {
  const c = parseArgs(process.argv.slice(2));
  const tStart = nowMs();
  const deadline = tStart + c.maxS * 1000;
  const limit = openFilesLimit();
  if (limit !== null && limit < c.devices + 256) process.stdout.write(`warning: the open-files limit is ${limit}, under the ${c.devices} sockets each process needs (raise it with ulimit -n)\n`);
  const dir = __dirname;
  if (c.cpuProf !== null) fs.mkdirSync(c.cpuProf, { recursive: true });
  const gw = new Child('gateway', path.join(dir, 'gateway.js'), [], c.cpuProf === null ? [] : ['--cpu-prof', '--cpu-prof-dir', c.cpuProf]);
  const dev = new Child('devices', path.join(dir, 'devices.js'), [], ['--max-old-space-size=4096']);
  let api: ApiClient | null = null;
  try {
    const g = await gw.call<{ http: string; tcp: string; console: string; token: string }>('start', { fleet: c.devices, linkKib: c.linkKib }, 60_000);
    process.stdout.write(`gateway: http ${g.http}, tcp ${g.tcp}, api ${g.console}; ${c.devices} fleet devices known; link rings ${c.linkKib} KiB each way\n`);
    api = new ApiClient(g.console, g.token, nowMs);
    await api.listen();
    const a = api;
    const onlineIds = async (sel: string): Promise<number> => {
      const r = await a.request('GET', `/api/devices?selector=${encodeURIComponent(sel)}`, undefined, 60_000);
      return ((r.devices ?? []) as unknown[]).length;
    };
    for (const [id, transport] of [
      [LATENCY_TCP, 'tcp'],
      [LATENCY_HTTP, 'http'],
    ] as const) {
      const o = await dev.call<{ opened: number }>('open', { ids: [id], transport, gateway: g.http, tcp: g.tcp, concurrency: 1, deadlineMs: 20_000, linkKib: c.linkKib }, 30_000);
      if (o.opened !== 1) throw new Error(`${id} did not open over ${transport}`);
    }
    await until('the latency devices online', async () => (await onlineIds('group=lat-tcp|lat-http,online')) === 2, 20_000);
    await sleep(300); // the info each device is asked for when it comes online
    gw.call('gc', {}, 10_000).catch(() => {});
    await sleep(200);
    const rssBase = rssOf(gw.pid).rss;

    const lat: LatencyResult[] = [];
    for (const t of ['tcp', 'http'] as const) {
      process.stdout.write(`latency over ${t}: ${c.rounds} rounds ...\n`);
      lat.push(await latency(a, c, t, deadline, 0, c.rounds));
    }

    process.stdout.write(`opening ${c.devices} fleet sessions over direct TCP, ${c.concurrency} at a time (at most ${c.openS} s) ...\n`);
    const openLimit = Math.max(1000, Math.min(c.openS * 1000, deadline - nowMs() - c.fanoutS * 2000));
    const ids = Array.from({ length: c.devices }, (_, i) => fleetId(i));
    const opened = await dev.call<{ opened: number; asked: number; ms: number; timedOut: boolean }>(
      'open',
      { ids, transport: 'tcp', gateway: g.http, tcp: g.tcp, concurrency: c.concurrency, deadlineMs: openLimit, linkKib: c.linkKib },
      openLimit + 30_000,
    );
    process.stdout.write(`opened ${opened.opened} of ${opened.asked} in ${(opened.ms / 1000).toFixed(1)} s${opened.timedOut ? ' (open limit reached)' : ''}\n`);
    // The gateway asks every device that comes online for its info: let that settle before timing.
    let online = 0;
    const settleEnd = nowMs() + 60_000;
    while (nowMs() < settleEnd) {
      online = await onlineIds('group=fleet,online');
      if (online >= opened.opened) break;
      await sleep(200);
    }
    await sleep(Math.min(5000, 500 + opened.opened / 4));

    const fan: FanoutResult[] = [];
    const sels = online > 1000 ? ['group=fleet,batch=0,online', 'group=fleet,online'] : ['group=fleet,online'];
    for (const sel of sels) {
      if (nowMs() > deadline - 5000) break;
      process.stdout.write(`fan-out: ${c.op} to ${sel} ...\n`);
      fan.push(await fanout(a, c, sel, deadline));
      await sleep(500);
    }
    // Click to result again, now with the fleet's sessions open beside the device (a quarter of the rounds).
    for (const t of ['tcp', 'http'] as const) {
      if (nowMs() > deadline - 5000) break;
      process.stdout.write(`latency over ${t} with ${online} fleet sessions open: ${Math.ceil(c.rounds / 4)} rounds ...\n`);
      lat.push(await latency(a, c, t, deadline, online, Math.ceil(c.rounds / 4)));
    }
    const mem = await gw.call<
      NodeJS.MemoryUsage & { spaces: { name: string; sizeMb: number; usedMb: number }[]; ringsLentMb: number; ringBlocksLent: number; ringBlocksPeak: number; ringBlocksMade: number }
    >('gc', {}, 30_000);
    await sleep(200);
    const rss = rssOf(gw.pid);
    const resident = residentSplit(gw.pid);
    if (c.heapSnapshot !== null) process.stdout.write(`gateway heap snapshot: ${await gw.call<string>('snapshot', { file: c.heapSnapshot }, 300_000)}\n`);
    const sessions = await gw.call<{ sessions: number }>('sessions', {}, 10_000);
    const devCount = await dev.call<{ rss: number }>('count', {}, 10_000);
    const result: ManageResult = {
      latency: lat,
      fanout: fan,
      open: { asked: opened.asked, opened: opened.opened, seconds: opened.ms / 1000, timedOut: opened.timedOut, concurrency: c.concurrency },
      rssBaseMb: rssBase,
      rssMb: rss.rss,
      rssPeakMb: rss.hwm,
      resident,
      sessions: sessions.sessions,
      devicesRssMb: devCount.rss / 1048576,
      gatewayMemory: {
        heapTotalMb: mem.heapTotal / 1048576,
        heapUsedMb: mem.heapUsed / 1048576,
        externalMb: mem.external / 1048576,
        arrayBuffersMb: mem.arrayBuffers / 1048576,
        ringsLentMb: mem.ringsLentMb,
        ringBlocksLent: mem.ringBlocksLent,
        ringBlocksPeak: mem.ringBlocksPeak,
        ringBlocksMade: mem.ringBlocksMade,
        spaces: mem.spaces,
      },
    };
    process.stdout.write(`\n${table(result)}\n\nGoals:\n${goalLines(result)}\n\nthe whole run took ${((nowMs() - tStart) / 1000).toFixed(1)} s\n`);
    api.close();
    api = null;
    await dev.stop(10_000);
    await gw.stop(30_000);
    if (c.cpuProf !== null) process.stdout.write(`gateway CPU profile written to ${c.cpuProf}\n`);
    process.stdout.write(`${jsonLine(result)}\n`);
  } finally {
    api?.close();
    await dev.stop(5000).catch(() => {});
    await gw.stop(5000).catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:manage: ${errorText(e)}\n`);
    process.exit(1);
  },
);
