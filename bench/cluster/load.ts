/**
 * The devices of bench:cluster, in a process of their own: `count` devices over HTTP (the cluster
 * relays HTTP) against gateways run with `--echo`, each keeping `inFlight` mux messages of 64 bytes
 * in flight. Every message carries its device's running number: the echoes are checked for order
 * (a number below the next expected is a duplicate, above it a loss). Once every session is open (or
 * after 30 s) and `warmMs` more, echoes and round trips are counted for `measureMs`; with KILL_AT_MS
 * it then prints "kill" (the bench kills or drains a node), goes on for AFTER_MS, and then until every
 * device's echoes caught up with what it sent (or 30 s), so nothing acknowledged may be missing. Prints one JSON line {msgs, ms,
 * msgs_per_s, rtt_p50_ms, rtt_p99_ms, sessions, sent, echoed, lost (= skipped, numbers jumped over, + pending,
 * sent and not echoed by the end), skipped, pending, duplicated, closed} and exits.
 * Usage: load.js GATEWAY_URL COUNT IN_FLIGHT WARM_MS MEASURE_MS KILL(0|1) AFTER_MS [LABEL_SITES]
 */
import { connect } from '../../targets/host/device/device';
import { Mux } from '../../targets/host/app/mux';

const [url, countS, inFlightS, warmS, measureS, killS, afterS, sitesS] = process.argv.slice(2);
const count = Number(countS);
const inFlight = Number(inFlightS);
const warmMs = Number(warmS);
const measureMs = Number(measureS);
const kill = killS === '1';
const afterMs = Number(afterS);
const sites = Number(sitesS ?? '0');
const LINK = { outSlots: 64, outBytes: 16384, inSlots: 64, inBytes: 16384, maxMessage: 1024, maxBundleBytes: 16384, deadAfterMs: 60_000 };

let measuring = false;
let msgs = 0;
const rtts: number[] = [];
let open = 0;
let lost = 0;
let duplicated = 0;
let closed = 0;
const sent: number[] = [];
const next: number[] = [];
const muxes: Mux[] = [];
const chans: { destroy(): void }[] = [];

function message(d: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeDoubleBE(performance.now(), 0);
  b.writeUInt32BE(sent[d]++, 8);
  return b;
}

for (let i = 0; i < count; i++) {
  sent.push(0);
  next.push(0);
  const labels = sites > 0 ? { site: `s${1 + (i % sites)}` } : undefined;
  const ch = connect({ gateway: url, id: `bench-${i}`, key: 'k-bench-cluster', link: LINK, labels, failures: { warnIntervalMs: 600_000 } });
  chans.push(ch);
  ch.on('error', () => {});
  ch.on('close', () => closed++);
  ch.once('open', () => open++);
  const mux = new Mux(ch, { role: 'device' });
  muxes.push(mux);
  mux.on('error', () => {});
  mux.on('message', (m: Buffer) => {
    const n = m.readUInt32BE(8);
    if (n < next[i]) duplicated++;
    else {
      if (n > next[i]) lost += n - next[i];
      next[i] = n + 1;
    }
    if (measuring) {
      msgs++;
      rtts.push(performance.now() - m.readDoubleBE(0));
    }
    if (!stopping) mux.send(message(i));
  });
  for (let k = 0; k < inFlight; k++) mux.send(message(i));
}

let stopping = false;
const OPEN_LIMIT_MS = 30_000;
const started = performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

void (async () => {
  while (open < count && performance.now() - started < OPEN_LIMIT_MS) await sleep(50);
  await sleep(warmMs);
  measuring = true;
  const t0 = performance.now();
  await sleep(measureMs);
  measuring = false;
  const ms = performance.now() - t0;
  if (kill) {
    process.stdout.write('kill\n');
    await sleep(afterMs);
  }
  stopping = true;
  const until = performance.now() + 30_000;
  while (performance.now() < until && next.some((n, d) => n < sent[d])) await sleep(50);
  rtts.sort((a, b) => a - b);
  const q = (p: number): number => (rtts.length === 0 ? 0 : Math.round(rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * p))] * 1000) / 1000);
  const echoed = next.reduce((a, b) => a + b, 0);
  const total = sent.reduce((a, b) => a + b, 0);
  process.stdout.write(
    `${JSON.stringify({ msgs, ms: Math.round(ms), msgs_per_s: Math.round((msgs / ms) * 1000), rtt_p50_ms: q(0.5), rtt_p99_ms: q(0.99), sessions: open, sent: total, echoed, lost: lost + (total - echoed), skipped: lost, pending: total - echoed, duplicated, closed })}\n`,
  );
  for (const c of chans) c.destroy();
  setTimeout(() => process.exit(0), 200);
})();
