/**
 * `npm run bench:cluster`: gateway nodes (`holdfast gateway --echo --cluster ... --ack-after
 * standby`, each a process of its own) on a NATS server with JetStream that the bench starts on
 * loopback, behind the project's round-robin TCP balancer, driven by one load process (load.ts:
 * `devices` devices over HTTP, `in-flight` 64-byte messages each, every echo checked for order).
 *
 *   alone                       one gateway without a cluster (ackAfter received): the baseline
 *   nodes-1, nodes-2, nodes-3   messages/s and RTT with 1, 2 and 3 nodes (direct mode: devices are
 *                               moved to their session's node)
 *   relay-3                     3 nodes in relay mode (every request through the balancer, relayed
 *                               over NATS to its session's node): relay_overhead = its RTT p50 over
 *                               nodes-3's
 *   kill-3                      3 nodes in relay mode, node 3 killed with SIGKILL mid-run: messages
 *                               lost (sent and never echoed) and duplicated
 *   drain-3                     3 nodes in relay mode, `drain-devices` devices (1,000), node 2
 *                               drained (`holdfast ctl drain n2`) mid-run (the load goes on for at
 *                               least 10 s after): the drain's time, one handoff's p50/p99, messages
 *                               lost and duplicated
 *
 *   locality-service, locality-hash
 *                               the locality workload: 3 services (TCP echoes), service s<n> behind
 *                               node n (`--node-service s<n>=HOST:PORT`); each device names one
 *                               (label service=s<k>) and forwards a port to it, `locality-in-flight`
 *                               requests of `locality-bytes` in flight on one connection. `service`
 *                               placement puts each device on the node its service is behind; `hash`
 *                               (content-blind, spread like round-robin) puts two in three elsewhere,
 *                               whose bytes take one more hop: a pipe over NATS through the node
 *                               the service is behind. locality_gain = service msgs/s over hash's.
 *
 * Every step is bounded; every process it starts is stopped by PID. On 2 cores the nodes, NATS and the load share them: the figures are of
 * this machine. Flags: --devices N (60), --in-flight N (2), --warm-ms N (1500), --measure-ms N (4000),
 * --drain-devices N (1000), --locality-devices N (60), --locality-in-flight N (2), --locality-bytes N (1024).
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { intFlag } from '../flag-number';
import { freePort, ROOT, start, stop } from '../procs';
import { Balancer } from '../../test/support/balancer';
import { startNats } from '../../test/support/nats';

const KEY = 'k-bench-cluster';
const STEP_LIMIT_MS = 90_000;

const DEVICES = intFlag('devices', 60);
const IN_FLIGHT = intFlag('in-flight', 2);
const WARM_MS = intFlag('warm-ms', 1500);
const MEASURE_MS = intFlag('measure-ms', 4000);
const DRAIN_DEVICES = intFlag('drain-devices', 1000);
const LOCALITY_DEVICES = intFlag('locality-devices', 60);
const LOCALITY_IN_FLIGHT = intFlag('locality-in-flight', 2);
const LOCALITY_BYTES = intFlag('locality-bytes', 1024);

interface Result {
  msgs_per_s: number;
  rtt_p50_ms: number;
  rtt_p99_ms: number;
  sessions: number;
  sent: number;
  echoed: number;
  lost: number;
  duplicated: number;
  closed: number;
}

interface Row extends Result {
  name: string;
  nodes: number;
  /** drain-3: the ctl's line. */
  drain?: { moved: number; stay: number; ms: number; p50: number; p99: number };
}

let round = 0;

async function run(name: string, nodes: number, mode: 'direct' | 'relay' | 'none', action: 'none' | 'kill' | 'drain', natsUrl: string, devicesFile: string, devices = DEVICES): Promise<Row> {
  const kill = action !== 'none';
  round++;
  const prefix = `hfb${round}`;
  const procs: ChildProcess[] = [];
  let lb: Balancer | null = null;
  try {
    const addrs: string[] = [];
    for (let n = 1; n <= nodes; n++) {
      const port = await freePort();
      const args = [path.join(ROOT, 'bin', 'holdfast'), 'gateway', '--echo', '--http', `127.0.0.1:${port}`, '--devices', devicesFile];
      if (mode !== 'none') args.push('--ack-after', 'standby', '--cluster', natsUrl, '--node', `n${n}`, '--cluster-mode', mode, '--placement', 'hash', '--cluster-prefix', prefix);
      const p = await start(args, /gateway: ready/, STEP_LIMIT_MS);
      procs.push(p.child);
      addrs.push(`127.0.0.1:${port}`);
    }
    // Every node hears the others within a few heartbeats.
    await new Promise((r) => setTimeout(r, 1000));
    let url = `http://${addrs[0]}/v1/link`;
    if (nodes > 1) {
      lb = await Balancer.start(addrs);
      url = `http://${lb.address}/v1/link`;
    }
    const load = await start(
      [
        path.join(__dirname, 'load.js'),
        url,
        String(devices),
        String(IN_FLIGHT),
        String(WARM_MS),
        String(MEASURE_MS),
        kill ? '1' : '0',
        String(action === 'drain' ? Math.max(MEASURE_MS, 10_000) : MEASURE_MS),
      ],
      kill ? /^kill$/m : /\{"msgs".*\}\n/,
      STEP_LIMIT_MS,
    );
    let drain: Row['drain'];
    if (action === 'drain') {
      const ctl = await start([path.join(ROOT, 'bin', 'holdfast'), 'ctl', 'drain', 'n2', '--cluster', natsUrl, '--cluster-prefix', prefix], /^drained .*\)$/m, STEP_LIMIT_MS);
      const m = /drained n2: (\d+) sessions moved, (\d+) stay, in (\d+) ms \(one handoff: p50 (\d+) ms, p99 (\d+) ms\)/.exec(ctl.out());
      if (m === null) throw new Error(`ctl drain: ${ctl.out()}`);
      drain = { moved: Number(m[1]), stay: Number(m[2]), ms: Number(m[3]), p50: Number(m[4]), p99: Number(m[5]) };
      await stop(ctl.child);
    }
    if (action === 'kill') await stop(procs[procs.length - 1], 'SIGKILL');
    if (kill) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the load did not finish after the kill')), STEP_LIMIT_MS);
        const check = setInterval(() => {
          if (/\{"msgs".*\}\n/.test(load.out())) {
            clearInterval(check);
            clearTimeout(t);
            resolve();
          }
        }, 50);
      });
    }
    const r = JSON.parse(/\{"msgs".*\}/.exec(load.out())?.[0] ?? '{}') as Result;
    await stop(load.child);
    return { name, nodes, ...r, drain };
  } finally {
    await lb?.close();
    for (const p of procs) await stop(p);
  }
}

interface LocalityRow {
  name: string;
  msgs_per_s: number;
  rtt_p50_ms: number;
  rtt_p99_ms: number;
  sessions: number;
  connections: number;
  errors: number;
}

/** The services of the locality runs: TCP echoes on loopback, one per node. */
async function echoServers(n: number): Promise<{ targets: string[]; close(): void }> {
  const servers: net.Server[] = [];
  const targets: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer((c) => {
      c.setNoDelay(true);
      c.on('error', () => {});
      c.pipe(c);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
    targets.push(`127.0.0.1:${(s.address() as net.AddressInfo).port}`);
  }
  return {
    targets,
    close: () => {
      for (const s of servers) s.close();
    },
  };
}

/** One locality run: 3 nodes in direct mode, service s<n> behind node n, `placement` the policy. */
async function locality(placement: 'service' | 'hash', natsUrl: string, devicesFile: string, targets: string[]): Promise<LocalityRow> {
  round++;
  const prefix = `hfb${round}`;
  const procs: ChildProcess[] = [];
  let lb: Balancer | null = null;
  try {
    const addrs: string[] = [];
    for (let n = 1; n <= targets.length; n++) {
      const port = await freePort();
      const args = [path.join(ROOT, 'bin', 'holdfast'), 'gateway', '--echo', '--http', `127.0.0.1:${port}`, '--devices', devicesFile, '--ack-after', 'standby'];
      args.push('--cluster', natsUrl, '--node', `n${n}`, '--cluster-mode', 'direct', '--placement', placement, '--cluster-prefix', prefix, '--node-service', `s${n}=${targets[n - 1]}`);
      for (const t of targets) args.push('--allow', t);
      procs.push((await start(args, /gateway: ready/, STEP_LIMIT_MS)).child);
      addrs.push(`127.0.0.1:${port}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    lb = await Balancer.start(addrs);
    const load = await start(
      [
        path.join(__dirname, 'forward-load.js'),
        `http://${lb.address}/v1/link`,
        String(LOCALITY_DEVICES),
        String(LOCALITY_IN_FLIGHT),
        String(LOCALITY_BYTES),
        String(WARM_MS),
        String(MEASURE_MS),
        targets.join(','),
      ],
      /\{"msgs".*\}\n/,
      STEP_LIMIT_MS,
    );
    const r = JSON.parse(/\{"msgs".*\}/.exec(load.out())?.[0] ?? '{}') as Omit<LocalityRow, 'name'>;
    await stop(load.child);
    return { name: `locality-${placement}`, ...r };
  } finally {
    await lb?.close();
    for (const p of procs) await stop(p);
  }
}

/** Both locality runs, their table printed; the JSON fields they give. */
async function localityRuns(natsUrl: string, file: string): Promise<{ json: Record<string, number | null> }> {
  const echoes = await echoServers(3);
  const loc: LocalityRow[] = [];
  try {
    loc.push(await locality('service', natsUrl, file, echoes.targets));
    loc.push(await locality('hash', natsUrl, file, echoes.targets));
  } finally {
    echoes.close();
  }
  console.log(`locality: ${LOCALITY_DEVICES} devices on 3 nodes, each forwarding to its service (behind one node), ${LOCALITY_IN_FLIGHT} requests of ${LOCALITY_BYTES} B in flight`);
  console.log('run               msgs/s   rtt p50 ms  rtt p99 ms  sessions  connections  errors');
  for (const r of loc)
    console.log(
      `${r.name.padEnd(18)}${String(r.msgs_per_s).padEnd(9)}${String(r.rtt_p50_ms).padEnd(12)}${String(r.rtt_p99_ms).padEnd(12)}${String(r.sessions).padEnd(10)}${String(r.connections).padEnd(13)}${r.errors}`,
    );
  const [ls, lh] = loc;
  const localityGain = lh.msgs_per_s > 0 ? Math.round((ls.msgs_per_s / lh.msgs_per_s) * 100) / 100 : null;
  const localityRtt = ls.rtt_p50_ms > 0 ? Math.round((lh.rtt_p50_ms / ls.rtt_p50_ms) * 100) / 100 : null;
  console.log(`locality gain: ${localityGain}x messages/s with service placement over hash; hash's RTT p50 is ${localityRtt}x service's`);
  return {
    json: {
      locality_gain: localityGain,
      locality_rtt_ratio: localityRtt,
      locality_service_msgs_per_s: ls.msgs_per_s,
      locality_hash_msgs_per_s: lh.msgs_per_s,
      locality_service_rtt_p50_ms: ls.rtt_p50_ms,
      locality_hash_rtt_p50_ms: lh.rtt_p50_ms,
    },
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bench-cluster-'));
  const nats = await startNats();
  try {
    const file = path.join(dir, 'devices.json');
    const keys: Record<string, string> = {};
    for (let i = 0; i < Math.max(DEVICES, DRAIN_DEVICES, LOCALITY_DEVICES); i++) keys[`bench-${i}`] = KEY;
    fs.writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
    if (process.argv.includes('--locality-only')) {
      const r = await localityRuns(nats.urls, file);
      console.log(JSON.stringify(r.json));
      return;
    }
    const rows: Row[] = [];
    rows.push(await run('alone', 1, 'none', 'none', nats.urls, file));
    rows.push(await run('nodes-1', 1, 'direct', 'none', nats.urls, file));
    rows.push(await run('nodes-2', 2, 'direct', 'none', nats.urls, file));
    rows.push(await run('nodes-3', 3, 'direct', 'none', nats.urls, file));
    rows.push(await run('relay-3', 3, 'relay', 'none', nats.urls, file));
    rows.push(await run('kill-3', 3, 'relay', 'kill', nats.urls, file));
    rows.push(await run('drain-3', 3, 'relay', 'drain', nats.urls, file, DRAIN_DEVICES));
    console.log(
      `bench:cluster  ${DEVICES} devices over HTTP, ${IN_FLIGHT} in flight each, ackAfter standby (the store is JetStream), ${os.availableParallelism?.() ?? os.cpus().length} cores, measured ${MEASURE_MS} ms`,
    );
    console.log('run       nodes  msgs/s   rtt p50 ms  rtt p99 ms  sessions  sent     echoed   lost  dup  closed');
    for (const r of rows)
      console.log(
        `${r.name.padEnd(10)}${String(r.nodes).padEnd(7)}${String(r.msgs_per_s).padEnd(9)}${String(r.rtt_p50_ms).padEnd(12)}${String(r.rtt_p99_ms).padEnd(12)}${String(r.sessions).padEnd(10)}${String(r.sent).padEnd(9)}${String(r.echoed).padEnd(9)}${String(r.lost).padEnd(6)}${String(r.duplicated).padEnd(5)}${r.closed}`,
      );
    const by = (n: string): Row => rows.find((r) => r.name === n) as Row;
    const dr = by('drain-3').drain as NonNullable<Row['drain']>;
    console.log(`drain of n2 (${DRAIN_DEVICES} devices on 3 nodes): ${dr.moved} sessions moved, ${dr.stay} stayed, in ${dr.ms} ms; one handoff p50 ${dr.p50} ms, p99 ${dr.p99} ms`);
    const loc = await localityRuns(nats.urls, file);
    console.log(
      JSON.stringify({
        nodes: [1, 2, 3].map((n) => ({ n, msgs_per_s: by(`nodes-${n}`).msgs_per_s, rtt_p50_ms: by(`nodes-${n}`).rtt_p50_ms, rtt_p99_ms: by(`nodes-${n}`).rtt_p99_ms })),
        relay_overhead: Math.round((by('relay-3').rtt_p50_ms / by('nodes-3').rtt_p50_ms) * 100) / 100,
        handoff_p99_ms: dr.p99,
        drain_1000_s: Math.round((dr.ms / 1000) * (1000 / Math.max(1, dr.moved)) * 1000) / 1000,
        drain_lost: by('drain-3').lost,
        drain_duplicated: by('drain-3').duplicated,
        kill_lost: by('kill-3').lost,
        kill_duplicated: by('kill-3').duplicated,
        ...loc.json,
        alone_msgs_per_s: by('alone').msgs_per_s,
        alone_rtt_p50_ms: by('alone').rtt_p50_ms,
        handoff_p50_ms: dr.p50,
        drain_moved: dr.moved,
        drain_ms: dr.ms,
      }),
    );
  } finally {
    await nats.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(`bench:cluster: ${e.message}`);
  process.exit(1);
});
