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
 *   inter-site locality-service, locality-hash
 *                               the same with `wan-devices` (6) devices, `wan-in-flight` (1) each,
 *                               every node `wan-ms` (5) ms each way from NATS (wan.ts: a delaying
 *                               relay per node), as nodes at other sites are: the extra hop of hash
 *                               placement crosses that link twice more per request. Skipped with
 *                               --no-wan. locality_wan_rtt_ratio = hash's RTT p50 over service's.
 *
 * Every step is bounded; every process it starts is stopped by PID. On 2 cores the nodes, NATS and the load share them: the figures are of
 * this machine. Flags: --devices N (60), --in-flight N (2), --warm-ms N (1500), --measure-ms N (4000),
 * --drain-devices N (1000), --locality-devices N (60), --locality-in-flight N (2), --locality-bytes N (1024),
 * --locality-wan-ms N (none: the loopback rows with a delay too), --locality-ack-received (ackAfter received on the
 * locality nodes: their answers still wait for the store, as every answer in a cluster does), --wan-ms N (5), --wan-devices N (6), --wan-in-flight N (1),
 * --no-wan, --locality-only (only the locality rows), --drain-only (only the drain-3 row, its JSON).
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
import { WanRelay } from './wan';

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
const LOCALITY_ACK = process.argv.includes('--locality-ack-received') ? 'received' : 'standby';
const LOCALITY_WAN_MS = intFlag('locality-wan-ms', 0);
const WAN_MS = process.argv.includes('--no-wan') ? 0 : intFlag('wan-ms', 5);
const WAN_DEVICES = intFlag('wan-devices', 6);
const WAN_IN_FLIGHT = intFlag('wan-in-flight', 1);

/** A locality workload: its devices, requests in flight each, their size, and the delay each way between a node and NATS. */
interface Workload {
  devices: number;
  inFlight: number;
  bytes: number;
  wanMs: number;
}

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
  /** Devices told to move to another node (a moved item), and the distinct nodes they were on last. */
  moved: number;
  nodes: number;
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
async function locality(placement: 'service' | 'hash', natsUrl: string, devicesFile: string, targets: string[], w: Workload): Promise<LocalityRow> {
  round++;
  const prefix = `hfb${round}`;
  const procs: ChildProcess[] = [];
  const wans: WanRelay[] = [];
  let lb: Balancer | null = null;
  try {
    const addrs: string[] = [];
    for (let n = 1; n <= targets.length; n++) {
      const port = await freePort();
      let via = natsUrl;
      if (w.wanMs > 0) {
        const relay = await WanRelay.start(natsUrl.split(',')[0].replace(/^nats:\/\//, ''), w.wanMs);
        wans.push(relay);
        via = `nats://${relay.address}`;
      }
      const args = [path.join(ROOT, 'bin', 'holdfast'), 'gateway', '--echo', '--http', `127.0.0.1:${port}`, '--devices', devicesFile, '--ack-after', LOCALITY_ACK];
      args.push('--cluster', via, '--node', `n${n}`, '--cluster-mode', 'direct', '--placement', placement, '--cluster-prefix', prefix, '--node-service', `s${n}=${targets[n - 1]}`);
      for (const t of targets) args.push('--allow', t);
      procs.push((await start(args, /gateway: ready/, STEP_LIMIT_MS)).child);
      addrs.push(`127.0.0.1:${port}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    lb = await Balancer.start(addrs);
    const load = await start(
      [path.join(__dirname, 'forward-load.js'), `http://${lb.address}/v1/link`, String(w.devices), String(w.inFlight), String(w.bytes), String(WARM_MS), String(MEASURE_MS), targets.join(',')],
      /\{"msgs".*\}\n/,
      STEP_LIMIT_MS,
    );
    const r = JSON.parse(/\{"msgs".*\}/.exec(load.out())?.[0] ?? '{}') as Omit<LocalityRow, 'name'>;
    await stop(load.child);
    return { name: `locality-${placement}`, ...r };
  } finally {
    await lb?.close();
    for (const p of procs) await stop(p);
    for (const w of wans) await w.close();
  }
}

/** Both locality runs of workload `w`, their table printed; their gain and RTT ratio (hash's over service's). */
async function localityRuns(natsUrl: string, file: string, w: Workload, title: string): Promise<{ gain: number | null; rtt: number | null; service: LocalityRow; hash: LocalityRow }> {
  const echoes = await echoServers(3);
  const loc: LocalityRow[] = [];
  try {
    loc.push(await locality('service', natsUrl, file, echoes.targets, w));
    loc.push(await locality('hash', natsUrl, file, echoes.targets, w));
  } finally {
    echoes.close();
  }
  const where = w.wanMs > 0 ? `each node ${w.wanMs} ms each way from NATS (wan.ts)` : 'on loopback';
  console.log(`${title}: ${w.devices} devices on 3 nodes ${where}, each forwarding to its service (behind one node), ${w.inFlight} requests of ${w.bytes} B in flight`);
  console.log('run               msgs/s   rtt p50 ms  rtt p99 ms  sessions  connections  errors  moved');
  for (const r of loc)
    console.log(
      `${r.name.padEnd(18)}${String(r.msgs_per_s).padEnd(9)}${String(r.rtt_p50_ms).padEnd(12)}${String(r.rtt_p99_ms).padEnd(12)}${String(r.sessions).padEnd(10)}${String(r.connections).padEnd(13)}${String(r.errors).padEnd(8)}${r.moved} to ${r.nodes} nodes`,
    );
  const [ls, lh] = loc;
  const gain = lh.msgs_per_s > 0 ? Math.round((ls.msgs_per_s / lh.msgs_per_s) * 100) / 100 : null;
  const rtt = ls.rtt_p50_ms > 0 ? Math.round((lh.rtt_p50_ms / ls.rtt_p50_ms) * 100) / 100 : null;
  console.log(`${title} gain: ${gain}x messages/s with service placement over hash; hash's RTT p50 is ${rtt}x service's`);
  return { gain, rtt, service: ls, hash: lh };
}

/**
 * The locality rows: the loopback workload, then (unless --no-wan) the inter-site one, where the
 * extra hop of hash placement crosses a wide-area link; the JSON fields they give.
 */
async function localityAll(natsUrl: string, file: string): Promise<Record<string, number | null>> {
  const l = await localityRuns(natsUrl, file, { devices: LOCALITY_DEVICES, inFlight: LOCALITY_IN_FLIGHT, bytes: LOCALITY_BYTES, wanMs: LOCALITY_WAN_MS }, 'locality');
  const json: Record<string, number | null> = {
    locality_gain: l.gain,
    locality_rtt_ratio: l.rtt,
    locality_service_msgs_per_s: l.service.msgs_per_s,
    locality_hash_msgs_per_s: l.hash.msgs_per_s,
    locality_service_rtt_p50_ms: l.service.rtt_p50_ms,
    locality_hash_rtt_p50_ms: l.hash.rtt_p50_ms,
  };
  if (WAN_MS === 0) return json;
  const w = await localityRuns(natsUrl, file, { devices: WAN_DEVICES, inFlight: WAN_IN_FLIGHT, bytes: LOCALITY_BYTES, wanMs: WAN_MS }, 'inter-site locality');
  return {
    ...json,
    locality_wan_ms: WAN_MS,
    locality_wan_gain: w.gain,
    locality_wan_rtt_ratio: w.rtt,
    locality_wan_service_rtt_p50_ms: w.service.rtt_p50_ms,
    locality_wan_hash_rtt_p50_ms: w.hash.rtt_p50_ms,
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
      console.log(JSON.stringify(await localityAll(nats.urls, file)));
      return;
    }
    if (process.argv.includes('--drain-only')) {
      console.log(JSON.stringify(await run('drain-3', 3, 'relay', 'drain', nats.urls, file, DRAIN_DEVICES)));
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
    const loc = await localityAll(nats.urls, file);
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
        ...loc,
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
