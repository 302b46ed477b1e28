/**
 * The devices of bench:cluster's locality runs, in a process of their own: `count` devices over
 * HTTP, device i labelled service=s<1 + i % services> and forwarding a local port to that service's
 * target (TARGETS, comma-separated, in service order). Once every session is open and `warmMs`
 * more (the moves to their nodes done), each device opens one connection to its forwarded port and
 * keeps `inFlight` requests of `size` bytes in flight; the service echoes them. A request counts once
 * its whole echo is back (the bytes checked). Counts for `measureMs`, then prints one JSON line
 * {msgs, ms, msgs_per_s, rtt_p50_ms, rtt_p99_ms, sessions, connections, errors} and exits.
 * Usage: forward-load.js GATEWAY_URL COUNT IN_FLIGHT SIZE WARM_MS MEASURE_MS TARGETS
 */
import * as net from 'node:net';
import { connect } from '../../targets/host/device/device';
import { forwardPorts } from '../../targets/host/app/forward';
import { Mux } from '../../targets/host/app/mux';
import { parseTarget } from '../../firmware/mux-frame';

const [url, countS, inFlightS, sizeS, warmS, measureS, targetsS] = process.argv.slice(2);
const count = Number(countS);
const inFlight = Number(inFlightS);
const size = Number(sizeS);
const warmMs = Number(warmS);
const measureMs = Number(measureS);
const targets = targetsS.split(',').map((t) => parseTarget(t));
const LINK = { outSlots: 64, outBytes: 256 * 1024, inSlots: 64, inBytes: 256 * 1024, maxMessage: 16384, maxBundleBytes: 256 * 1024, deadAfterMs: 60_000 };

let measuring = false;
let stopping = false;
let msgs = 0;
let open = 0;
let connections = 0;
let errors = 0;
/** Each device's last gateway URL, set for the devices told to move to another node (a moved item). */
const at: string[] = [];
const rtts: number[] = [];
const chans: { destroy(): void }[] = [];
const sockets: net.Socket[] = [];
const muxes: Mux[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (let i = 0; i < count; i++) {
  const svc = i % targets.length;
  const ch = connect({ gateway: url, id: `bench-${i}`, key: 'k-bench-cluster', link: LINK, labels: { service: `s${svc + 1}` }, failures: { warnIntervalMs: 600_000 } });
  chans.push(ch);
  ch.on('error', () => {});
  ch.once('open', () => open++);
  ch.on('gateway', (to: string) => {
    at[i] = to;
  });
  const mux = new Mux(ch, { role: 'device' });
  mux.on('error', () => {});
  muxes.push(mux);
}

/** One connection through device i's forwarded port: requests of `size` bytes, each echoed whole. */
async function drive(i: number): Promise<void> {
  const t = targets[i % targets.length];
  const fwd = await forwardPorts(muxes[i], [{ localPort: 0, host: t.host, port: t.port }]);
  const sock = net.connect({ host: '127.0.0.1', port: fwd.ports[0] });
  sockets.push(sock);
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  connections++;
  sock.on('error', () => errors++);
  const starts: number[] = [];
  let pending = 0;
  const request = (): void => {
    const b = Buffer.alloc(size, i & 0xff);
    starts.push(performance.now());
    sock.write(b);
  };
  sock.on('data', (d: Buffer) => {
    pending += d.byteLength;
    while (pending >= size) {
      pending -= size;
      const t0 = starts.shift() as number;
      if (measuring) {
        msgs++;
        rtts.push(performance.now() - t0);
      }
      if (!stopping) request();
    }
  });
  for (let k = 0; k < inFlight; k++) request();
}

void (async () => {
  const started = performance.now();
  while (open < count && performance.now() - started < 30_000) await sleep(50);
  await sleep(warmMs);
  await Promise.all(
    muxes.map((_, i) =>
      drive(i).catch(() => {
        errors++;
      }),
    ),
  );
  await sleep(warmMs);
  measuring = true;
  const t0 = performance.now();
  await sleep(measureMs);
  measuring = false;
  stopping = true;
  const ms = performance.now() - t0;
  rtts.sort((a, b) => a - b);
  const q = (p: number): number => (rtts.length === 0 ? 0 : Math.round(rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * p))] * 1000) / 1000);
  const told = at.filter((u) => u !== undefined);
  process.stdout.write(
    `${JSON.stringify({ msgs, ms: Math.round(ms), msgs_per_s: Math.round((msgs / ms) * 1000), rtt_p50_ms: q(0.5), rtt_p99_ms: q(0.99), sessions: open, connections, errors, moved: told.length, nodes: new Set(told).size })}\n`,
  );
  for (const s of sockets) s.destroy();
  for (const c of chans) c.destroy();
  setTimeout(() => process.exit(0), 200);
})();
