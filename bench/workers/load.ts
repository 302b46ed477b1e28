/**
 * The devices of bench:workers, in a process of their own: `count` devices (every other one on
 * direct TCP, the rest on HTTP) against a gateway run with `--echo`, each keeping `inFlight` mux
 * messages of 64 bytes in flight (a message goes out as soon as the echo of an earlier one came
 * back). Once every session is open (or after 30 s), and `warmMs` more, echoes and their round
 * trips are counted for `measureMs`; then it prints one
 * JSON line {msgs, ms, msgs_per_s, rtt_p50_ms, rtt_p99_ms, sessions} and exits.
 * Usage: load.js HTTP_ADDR TCP_ADDR KEY COUNT IN_FLIGHT WARM_MS MEASURE_MS
 */
import { connect } from '../../targets/host/device/device';
import { Mux } from '../../targets/host/app/mux';

const [http, tcp, key, countS, inFlightS, warmS, measureS] = process.argv.slice(2);
const count = Number(countS);
const inFlight = Number(inFlightS);
const warmMs = Number(warmS);
const measureMs = Number(measureS);
const LINK = { outSlots: 64, outBytes: 16384, inSlots: 64, inBytes: 16384, maxMessage: 1024, maxBundleBytes: 16384 };

let measuring = false;
let msgs = 0;
const rtts: number[] = [];
let open = 0;
const chans: { destroy(): void }[] = [];

function message(): Buffer {
  const b = Buffer.alloc(64);
  b.writeDoubleBE(performance.now(), 0);
  return b;
}

for (let i = 0; i < count; i++) {
  const ch = connect({ gateway: `http://${http}`, ...(i % 2 === 1 ? { tcp } : {}), id: `bench-${i}`, key, link: LINK });
  chans.push(ch);
  ch.on('error', () => {});
  ch.once('open', () => open++);
  const mux = new Mux(ch, { role: 'device' });
  mux.on('error', () => {});
  mux.on('message', (m: Buffer) => {
    if (measuring) {
      msgs++;
      rtts.push(performance.now() - m.readDoubleBE(0));
    }
    mux.send(message());
  });
  for (let k = 0; k < inFlight; k++) mux.send(message());
}

const OPEN_LIMIT_MS = 30_000;
const started = performance.now();
const opening = setInterval(() => {
  if (open < count && performance.now() - started < OPEN_LIMIT_MS) return;
  clearInterval(opening);
  setTimeout(measure, warmMs);
}, 50);

function measure(): void {
  measuring = true;
  const t0 = performance.now();
  setTimeout(() => {
    measuring = false;
    const ms = performance.now() - t0;
    rtts.sort((a, b) => a - b);
    const q = (p: number): number => (rtts.length === 0 ? -1 : Math.round(rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))] * 100) / 100);
    process.stdout.write(`${JSON.stringify({ msgs, ms: Math.round(ms), msgs_per_s: Math.round((msgs * 1000) / ms), rtt_p50_ms: q(0.5), rtt_p99_ms: q(0.99), sessions: open })}\n`);
    for (const c of chans) c.destroy();
    process.exit(0);
  }, measureMs);
}
