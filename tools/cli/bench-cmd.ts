/**
 * `bench`: measures, on the board itself, against a gateway run with `--bench`: the bundle's size,
 * its cold start against `node -e 0` on the same Node, round trips (p50/p99), messages per second
 * each way, and the process's resident memory. A table for people; with --json the last line is one
 * JSON object.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ErrorCode, hfError } from '../../firmware/errors';
import { connect, type DeviceChannel } from '../../targets/host/device/device';
import { createLog, type LogLevel } from '../../targets/node/log';
import { Mux } from '../../targets/host/app/mux';
import { type Flag, parseArgs, usage } from './args';
import { command, DATA, parseCommand } from './bench-proto';

const FLAGS: Flag[] = [
  { name: 'gateway', meta: 'URL', help: "the gateway's HTTP URL (the gateway runs with --bench)" },
  { name: 'tcp', meta: 'HOST:PORT', help: "the gateway's direct TCP address (for --transport tcp)" },
  { name: 'transport', meta: 'http|tcp', help: 'what to measure (default http)' },
  { name: 'id', meta: 'ID', help: 'device id' },
  { name: 'key', meta: 'KEY', help: 'secret key (or HOLDFAST_KEY)' },
  { name: 'messages', type: 'number', help: 'messages each way for the rate (default 20000)' },
  { name: 'size', type: 'number', help: 'bytes per message (default 64)' },
  { name: 'rtt-samples', type: 'number', help: 'round trips timed (default 1000)' },
  { name: 'start-runs', type: 'number', help: 'cold starts timed, median taken (default 5; 0: skip)' },
  { name: 'json', type: 'bool', help: 'end with one JSON line' },
  { name: 'log-level', meta: 'LEVEL', help: 'log level (default warn)' },
];

const ABOUT = 'Measures holdfast on this machine against a gateway run with --bench.';

/** Median wall time of `runs` runs of node with `args`, ms. */
function startMs(args: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore', timeout: 60_000 });
    if (r.status !== 0) throw hfError(ErrorCode.UNSUPPORTED, `node ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (n: number, d = 3): number => Number(n.toFixed(d));

export async function benchCommand(argv: string[]): Promise<number> {
  const { values: v, help } = parseArgs(argv, FLAGS);
  if (help) {
    process.stdout.write(usage('bench --gateway URL --id ID --key KEY [--transport http|tcp] [--tcp HOST:PORT] [--json]', ABOUT, FLAGS));
    return 0;
  }
  const transport = (v.transport as string | undefined) ?? 'http';
  if (transport !== 'http' && transport !== 'tcp') throw hfError(ErrorCode.OPTION, `--transport must be http or tcp, got ${transport}`);
  if (typeof v.gateway !== 'string' || typeof v.id !== 'string') throw hfError(ErrorCode.OPTION, '--gateway and --id are required');
  if (transport === 'tcp' && typeof v.tcp !== 'string') throw hfError(ErrorCode.OPTION, '--transport tcp needs --tcp HOST:PORT');
  const key = (v.key as string | undefined) ?? process.env.HOLDFAST_KEY;
  if (!key) throw hfError(ErrorCode.OPTION, '--key or HOLDFAST_KEY is required');
  const n = (v.messages as number | undefined) ?? 20_000;
  const size = Math.max(2, (v.size as number | undefined) ?? 64);
  const samples = (v['rtt-samples'] as number | undefined) ?? 1000;
  const runs = (v['start-runs'] as number | undefined) ?? 5;
  const script = process.argv[1];

  const bundleBytes = statSync(__filename).size;
  // --start-runs 0 skips this (where node cannot start itself, e.g. under qemu-user without binfmt:
  // the caller then times the starts from outside).
  const nodeStart = runs > 0 ? startMs(['-e', '0'], runs) : null;
  const bundleStart = runs > 0 ? startMs([script, '--help'], runs) : null;

  const log = createLog({ name: 'bench', level: (v['log-level'] as LogLevel) ?? 'warn' });
  const ch: DeviceChannel = connect({ gateway: v.gateway, tcp: transport === 'tcp' ? (v.tcp as string) : null, id: v.id, key, log });
  const mux = new Mux(ch, { role: 'device' });
  mux.on('error', () => {});
  const failed = new Promise<never>((_, reject) => ch.on('close', (e?: Error) => reject(e ?? hfError(ErrorCode.CLOSED, 'session closed during the bench'))));
  failed.catch(() => {});
  const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, failed]);
  await race(new Promise<void>((r) => ch.once('open', () => r())));
  if (ch.transport !== transport) throw hfError(ErrorCode.CONNECT, `the session is on ${ch.transport}, not ${transport}`);

  // Every reply goes to whoever waits for it next.
  let onMessage: (m: Buffer) => void = () => {};
  mux.on('message', (m: Buffer) => onMessage(m));
  const send = async (m: Buffer): Promise<void> => {
    while (!mux.send(m)) await race(new Promise((r) => mux.once('drain', r)));
  };
  const reply = (want: (m: Buffer) => boolean): Promise<Buffer> =>
    race(
      new Promise<Buffer>((resolve) => {
        onMessage = (m) => {
          if (want(m)) resolve(m);
        };
      }),
    );

  // Round trips: one message out, its echo back, one at a time.
  const payload = Buffer.alloc(size, 0x62);
  payload[0] = DATA;
  const rtts: number[] = [];
  for (let i = 0; i < samples + 20; i++) {
    const t0 = performance.now();
    const back = reply((m) => m[0] === DATA);
    await send(payload);
    await back;
    if (i >= 20) rtts.push(performance.now() - t0); // the first ones warm up
  }
  rtts.sort((a, b) => a - b);

  // Device -> gateway.
  const ready = reply((m) => parseCommand(m)?.[0] === 'ready');
  await send(command(`c2s ${n}`));
  await ready;
  const done = reply((m) => parseCommand(m)?.[0] === 'done');
  const c0 = performance.now();
  for (let i = 0; i < n; i++) await send(payload);
  await done;
  const c2s = n / ((performance.now() - c0) / 1000);

  // Gateway -> device.
  let got = 0;
  const all = race(
    new Promise<void>((resolve) => {
      onMessage = (m) => {
        if (m[0] === DATA && ++got === n) resolve();
      };
    }),
  );
  const s0 = performance.now();
  await send(command(`s2c ${n} ${size}`));
  await all;
  const s2c = n / ((performance.now() - s0) / 1000);
  // Under qemu-user the kernel's accounting is the emulator's: Node reads 0 there. No reading, no number.
  const rssBytes = process.memoryUsage().rss;
  const rss = rssBytes > 0 ? rssBytes / 1048576 : null;
  mux.close();
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      ch.destroy();
      resolve();
    }, 3000);
    ch.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });

  const result = {
    bundle_bytes: bundleBytes,
    start_ms: bundleStart === null ? null : round(bundleStart, 1),
    node_start_ms: nodeStart === null ? null : round(nodeStart, 1),
    rtt_p50_ms: round(pct(rtts, 50)),
    rtt_p99_ms: round(pct(rtts, 99)),
    c2s_msgs_per_s: Math.round(c2s),
    s2c_msgs_per_s: Math.round(s2c),
    rss_mb: rss === null ? null : round(rss, 1),
    transport,
    message_bytes: size,
    messages: n,
    node: process.version,
    arch: process.arch,
  };
  const rows: [string, string][] = [
    ['bundle', `${result.bundle_bytes} bytes`],
    ['cold start', result.start_ms === null ? 'not measured' : `${result.start_ms} ms (node -e 0: ${result.node_start_ms} ms)`],
    ['round trip', `p50 ${result.rtt_p50_ms} ms, p99 ${result.rtt_p99_ms} ms (${samples} x ${size} B)`],
    ['device -> gateway', `${result.c2s_msgs_per_s} msg/s (${n} x ${size} B)`],
    ['gateway -> device', `${result.s2c_msgs_per_s} msg/s`],
    ['resident memory', result.rss_mb === null ? 'not available here' : `${result.rss_mb} MB`],
  ];
  process.stdout.write(`holdfast bench: ${transport} on node ${process.version} ${process.arch}\n`);
  for (const [k, val] of rows) process.stdout.write(`  ${k.padEnd(18)} ${val}\n`);
  if (v.json === true) process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}
