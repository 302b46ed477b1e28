/**
 * `npm run bench:workers`: the CLI gateway with `--echo` (`holdfast gateway`, one process), with
 * `--workers 2` (each HTTP response closes its connection) and with `--workers 2 --worker-keep-alive`
 * (the "workers_2" figures of the last line; "workers_2_close_msgs_per_s" the other), in the same run, each driven by the same load process (load.ts: 200 devices, half on
 * HTTP and half on direct TCP, ping-pong with a few messages in flight). Prints a table, then one
 * JSON line {"workers_1_msgs_per_s", "workers_2_msgs_per_s", "ratio", "rtt_p50_ms_1", "rtt_p50_ms_2",
 * "handoff_us", ...}. handoff_us: what a handoff adds to a new connection as a device sees it: the
 * median time from connect to the answer of its first frame (a hello of a device the gateway does
 * not know, refused), over `probes` connections one after another on the idle gateway, with 2
 * workers minus with 1. The load runs `rounds` times for each (alternating), and the best round of
 * each is reported (the machine is shared: the best is the least disturbed). Every step is bounded;
 * every process it starts is stopped by PID. On 2 cores the load process shares them with the
 * gateway, so the figures are of this machine, not of the design's ceiling.
 * Flags: --devices N (200), --in-flight N (4), --warm-ms N (2000), --measure-ms N (4000), --rounds N (2),
 * --probes N (200).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { intFlag } from '../flag-number';
import { freePort, ROOT, start, stop } from '../procs';

const KEY = 'k-bench-workers';

const DEVICES = intFlag('devices', 200);
const IN_FLIGHT = intFlag('in-flight', 4);
const WARM_MS = intFlag('warm-ms', 2000);
const MEASURE_MS = intFlag('measure-ms', 4000);
const ROUNDS = intFlag('rounds', 2);
const PROBES = intFlag('probes', 200);
// docs/PROTOCOL.md 12, "hello": device dev-1 (not in the bench's devices file: refused with HF_ERR_AUTH).
const HELLO = Buffer.from(
  'a500010201030005821904001a0004000007818201a8626964656465762d31616e07656e6f6e6365d84050000102030405060708090a0b0c0d0e0f6570726f6f66d840406373657100636f666600636c696d851902001a000400001a0001000008046472696e67821904001a00040000',
  'hex',
);
const STEP_LIMIT_MS = 60_000;

interface Row {
  workers: number;
  /** --worker-keep-alive (HTTP connections stay in their worker). */
  keepAlive: boolean;
  msgs_per_s: number;
  rtt_p50_ms: number;
  rtt_p99_ms: number;
  sessions: number;
  /** Median ms from connect to the answer of a first frame (probes). */
  first_frame_ms: number;
}

/** Opens `n` connections one after another, each sending a hello frame; the median ms from connect to its answer. */
async function probe(port: number, n: number): Promise<number> {
  const frame = Buffer.alloc(4 + HELLO.length);
  frame.writeUInt32BE(HELLO.length, 0);
  HELLO.copy(frame, 4);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    times.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => s.write(frame));
        const t = setTimeout(() => {
          s.destroy();
          reject(new Error('no answer to a probe within 5 s'));
        }, 5000);
        s.once('data', () => {
          clearTimeout(t);
          resolve(performance.now() - t0);
          s.destroy();
        });
        s.on('error', () => {});
      }),
    );
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function run(workers: number, keepAlive: boolean, devicesFile: string): Promise<Row> {
  const [http, tcp] = [await freePort(), await freePort()];
  const gwArgs = [path.join(ROOT, 'bin', 'holdfast'), 'gateway', '--echo', '--http', `127.0.0.1:${http}`, '--tcp', `127.0.0.1:${tcp}`, '--devices', devicesFile];
  if (workers > 1) gwArgs.push('--workers', String(workers));
  if (keepAlive) gwArgs.push('--worker-keep-alive');
  const gw = await start(gwArgs, /gateway: ready/, STEP_LIMIT_MS);
  try {
    const load = await start(
      [path.join(__dirname, 'load.js'), `127.0.0.1:${http}`, `127.0.0.1:${tcp}`, KEY, String(DEVICES), String(IN_FLIGHT), String(WARM_MS), String(MEASURE_MS)],
      /\{"msgs".*\}\n/,
      STEP_LIMIT_MS,
    );
    const r = JSON.parse(/\{"msgs".*\}/.exec(load.out())?.[0] ?? '{}');
    await stop(load.child);
    const firstFrameMs = await probe(tcp, PROBES);
    await stop(gw.child);
    return { workers, keepAlive, msgs_per_s: r.msgs_per_s, rtt_p50_ms: r.rtt_p50_ms, rtt_p99_ms: r.rtt_p99_ms, sessions: r.sessions, first_frame_ms: firstFrameMs };
  } finally {
    await stop(gw.child);
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bench-workers-'));
  try {
    const file = path.join(dir, 'devices.json');
    const keys: Record<string, string> = {};
    for (let i = 0; i < DEVICES; i++) keys[`bench-${i}`] = KEY;
    fs.writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
    const rows: Row[] = [];
    for (let i = 0; i < ROUNDS; i++) rows.push(await run(1, false, file), await run(2, false, file), await run(2, true, file));
    console.log(
      `bench:workers  ${DEVICES} devices (half HTTP, half TCP), ${IN_FLIGHT} in flight each, ${os.availableParallelism?.() ?? os.cpus().length} cores, measured ${MEASURE_MS} ms, ${ROUNDS} rounds`,
    );
    console.log('workers          msgs/s   rtt p50 ms  rtt p99 ms  sessions  first frame ms (median of probes)');
    for (const r of rows)
      console.log(
        `${(String(r.workers) + (r.workers > 1 ? (r.keepAlive ? ' keep-alive' : ' close') : '')).padEnd(17)}${String(r.msgs_per_s).padEnd(9)}${String(r.rtt_p50_ms).padEnd(12)}${String(r.rtt_p99_ms).padEnd(12)}${String(r.sessions).padEnd(10)}${r.first_frame_ms.toFixed(3)}`,
      );
    const best = (w: number, k: boolean): Row => rows.filter((r) => r.workers === w && r.keepAlive === k).reduce((x, y) => (y.msgs_per_s > x.msgs_per_s ? y : x));
    const median = (w: number): number => {
      const l = rows
        .filter((r) => r.workers === w)
        .map((r) => r.first_frame_ms)
        .sort((x, y) => x - y);
      return l[Math.floor(l.length / 2)];
    };
    const [a, b, closeRow] = [best(1, false), best(2, true), best(2, false)];
    console.log(
      JSON.stringify({
        workers_1_msgs_per_s: a.msgs_per_s,
        workers_2_msgs_per_s: b.msgs_per_s,
        ratio: Math.round((b.msgs_per_s / a.msgs_per_s) * 100) / 100,
        rtt_p50_ms_1: a.rtt_p50_ms,
        rtt_p50_ms_2: b.rtt_p50_ms,
        rtt_p99_ms_1: a.rtt_p99_ms,
        rtt_p99_ms_2: b.rtt_p99_ms,
        workers_2_close_msgs_per_s: closeRow.msgs_per_s,
        handoff_us: Math.round((median(2) - median(1)) * 1000),
      }),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(`bench:workers: ${e.message}`);
  process.exit(1);
});
