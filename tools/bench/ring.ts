/**
 * `npm run bench:ring`: the per-message path, measured.
 *
 * holdfast: payload -> out-ring -> BundleWriter -> bytes -> BundleReader -> in-ring -> application,
 * then the acknowledgement bundle back -> out-ring release. Two real Endpoints, 64-message bundles.
 *
 * baseline, same run, same payloads: what the same pipeline looks like written plainly: an Array
 * push/shift queue of payload copies, bundles encoded and decoded with cbor-x, an Array in-queue,
 * acknowledgement by count.
 *
 * Each is warmed up, then measured over MESSAGES messages while a PerformanceObserver counts GC
 * events. The last line is one JSON object.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { encode, decode } from 'cbor-x';
import { Endpoint } from '../../firmware/endpoint';
import { limitsOf } from '../../firmware/control';
import { resolveOptions } from '../../firmware/options';

const MESSAGES = Number(process.env.MESSAGES ?? 10_000_000);
const WARMUP = Math.min(500_000, MESSAGES / 10);
const SIZE = Number(process.env.SIZE ?? 64);
const BUNDLE = 64;
/** Messages per measured chunk (between chunks the GC observer gets its entries). */
const CHUNK = 100_000;

let gcEvents = 0;
const obs = new PerformanceObserver((list) => {
  gcEvents += list.getEntries().length;
});

function payload(): Uint8Array {
  const p = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) p[i] = (i * 7) & 0xff;
  return p;
}

/** A pipeline moves `n` more messages per call; `sum` is a checksum of what was consumed. */
interface Pipeline {
  run(n: number): void;
  sum(): number;
}

/** The holdfast path. */
function holdfast(): Pipeline {
  const o = resolveOptions({ outSlots: 1024, outBytes: 1 << 20, inSlots: 1024, inBytes: 1 << 20, maxMessages: BUNDLE, maxMessage: 4096 });
  const a = new Endpoint(o, 0, 0);
  const b = new Endpoint(o, 0, 0);
  a.setPeerLimits(limitsOf(o));
  b.setPeerLimits(limitsOf(o));
  const src = payload();
  let sum = 0;
  const consume = (buf: Uint8Array, off: number, len: number): boolean => {
    sum = (sum + buf[off + len - 1] + len) | 0;
    return true;
  };
  let now = 0;
  return {
    sum: () => sum,
    run(n: number): void {
      let sent = 0;
      while (sent < n) {
        // The application fills the out-ring (send returns false when full).
        while (sent < n && a.send(src, 0, SIZE)) sent++;
        // Bundles flow until everything sent is acknowledged.
        while (!a.out.isEmpty) {
          now++; // an integer clock: a double in a closure would be boxed anew on every write
          const len = a.writeBundle(null, 1, now, null, true);
          b.apply(b.parse(a.writer.buf, 0, len), now, consume);
          b.deliver(consume, now);
          const alen = b.writeBundle(null, 1, now, null, false);
          a.apply(a.parse(b.writer.buf, 0, alen), now);
        }
      }
    },
  };
}

/** The plain baseline. */
function baseline(): Pipeline {
  const outQ: Uint8Array[] = [];
  const inQ: Uint8Array[] = [];
  const src = payload();
  let sum = 0;
  let seq = 0;
  return { sum: () => sum, run };
  function run(n: number): void {
    let sent = 0;
    while (sent < n) {
      while (sent < n && outQ.length < 1024) {
        outQ.push(src.slice(0, SIZE));
        sent++;
      }
      while (outQ.length > 0) {
        const msgs = outQ.slice(0, BUNDLE);
        const body = encode({ sid: null, rn: 1, ack: seq, seq, msgs });
        const got = decode(body) as { seq: number; msgs: Uint8Array[] };
        for (const m of got.msgs) inQ.push(m);
        let consumed = 0;
        while (inQ.length > 0) {
          const m = inQ.shift() as Uint8Array;
          sum = (sum + m[m.length - 1] + m.length) | 0;
          consumed++;
        }
        const ack = decode(encode({ ack: got.seq + consumed })) as { ack: number };
        for (let k = seq; k < ack.ack; k++) outQ.shift();
        seq = ack.ack;
      }
    }
  }
}

/**
 * Warms a pipeline up, then moves MESSAGES messages through it in chunks, yielding to the event loop
 * between chunks so the GC observer's entries are delivered; only time inside the chunks counts.
 */
async function measure(name: string, make: () => Pipeline): Promise<{ rate: number; gc: number; sum: number }> {
  const p = make();
  p.run(WARMUP);
  if (global.gc) global.gc();
  await tick();
  gcEvents = 0;
  obs.observe({ entryTypes: ['gc'] });
  let ns = 0n;
  for (let done = 0; done < MESSAGES; done += CHUNK) {
    const t0 = process.hrtime.bigint();
    p.run(Math.min(CHUNK, MESSAGES - done));
    ns += process.hrtime.bigint() - t0;
    await tick();
  }
  await tick();
  obs.disconnect();
  const s = Number(ns) / 1e9;
  const rate = MESSAGES / s;
  console.log(`${name.padEnd(10)} ${MESSAGES} x ${SIZE} B in ${s.toFixed(2)} s: ${Math.round(rate).toLocaleString('en-US')} msg/s, ${gcEvents} GC events`);
  return { rate, gc: gcEvents, sum: p.sum() };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function main(): Promise<void> {
  const hf = await measure('holdfast', holdfast);
  const base = await measure('baseline', baseline);
  if (hf.sum !== base.sum) {
    console.error(`checksums differ: holdfast ${hf.sum}, baseline ${base.sum}`);
    process.exit(1);
  }
  console.log(`ratio ${(hf.rate / base.rate).toFixed(2)}x (goal >= 3x), GC events ${hf.gc} (goal 0; baseline ${base.gc})`);
  console.log(JSON.stringify({ ops_per_s: Math.round(hf.rate), baseline_ops_per_s: Math.round(base.rate), gc_events: hf.gc, baseline_gc_events: base.gc, messages: MESSAGES, message_bytes: SIZE }));
}

void main();
