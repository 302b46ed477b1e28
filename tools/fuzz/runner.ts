/**
 * The fuzz loop: input i of seed S is made from its own Prng (seeded from S and i), so any input
 * replays alone (`--only i`). Target i is `targets[i % targets.length]`. Each input must be taken or
 * refused with a coded HfError (anything else is a failure), within `maxInputMs`; a valid input left
 * as generated must be taken by its decoder. Every `checkEvery` inputs and at the end, a real session
 * must run through the gateway and the heap (after a collection) must stay within `maxHeapGrowthMb`
 * of the first check's. The loop stops at the first failure, or after `maxSeconds`.
 *
 * Replays of the gateway target are as exact as the gateway lets them be: it picks session ids at
 * random, so a replayed session bundle is the same input for a new session id (and tag).
 */
import { setImmediate as turn } from 'node:timers/promises';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Prng } from '../../targets/sim/prng';
import { GatewayHarness } from './gateway-harness';
import { DECODER_TARGETS, type Input, type Target, gatewayTarget } from './targets';

export interface FuzzOptions {
  /** Seed of the run (a u32). */
  seed: number;
  /** Inputs to run (default 1000000). */
  count?: number;
  /** Run input INDEX alone (replay of one failure). */
  only?: number;
  /** Longest one input may take, ms (default 50); a slower one is timed again and fails if slow twice. */
  maxInputMs?: number;
  /** Longest the run may take, seconds (default 900); then it stops with what it did (not a failure). */
  maxSeconds?: number;
  /** Inputs between two checks of a real session and of the heap (default 10000). */
  checkEvery?: number;
  /** Inputs between two turns of the event loop, so the gateway's timers and deferred work run (default 64). */
  yieldEvery?: number;
  /** Most the heap may grow past its size at the first check, MiB (default 128). */
  maxHeapGrowthMb?: number;
  /** Share of inputs that are mutated; the rest go in as generated (default 0.9). */
  mutateRate?: number;
  /** Where progress lines go (default: nowhere). */
  log?: (line: string) => void;
}

export const FUZZ_DEFAULTS = { count: 1000000, maxInputMs: 50, maxSeconds: 900, checkEvery: 10000, yieldEvery: 64, maxHeapGrowthMb: 128, mutateRate: 0.9 };

export interface TargetStats {
  inputs: number;
  taken: number;
  /** Refusals by error code. */
  rejects: Record<string, number>;
}

export interface FuzzFailure {
  seed: number;
  index: number;
  target: string;
  reason: string;
  /** The input's bytes, hex ('' for a failed check, which has no single input). */
  hex: string;
  stack?: string;
}

export interface FuzzReport {
  seed: number;
  inputs: number;
  elapsedMs: number;
  /** Whether every input asked for ran (false: stopped by maxSeconds or a failure). */
  complete: boolean;
  stoppedBy: 'done' | 'maxSeconds' | 'failure';
  targets: Record<string, TargetStats>;
  /** The slowest input (an input over maxInputMs counts with the faster of its two timings). */
  slowest: { index: number; target: string; ms: number; bytes: number } | null;
  /** Inputs over maxInputMs at first that were fast enough when timed again. */
  retimed: number;
  checks: number;
  /** Slowest real-session check, ms. */
  slowestCheckMs: number;
  heapMb: { first: number; max: number; last: number };
  failure: FuzzFailure | null;
}

/** The seed of input `i` of run `seed` (a 32-bit mix of both). */
export function inputSeed(seed: number, i: number): number {
  let x = (seed + Math.imul(i + 1, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

let collect: (() => void) | null = null;
/** A full collection, so heap sizes compare (V8's gc, exposed at run time). */
function gc(): void {
  if (collect === null) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}

function heapMb(): number {
  gc();
  return Math.round((process.memoryUsage().heapUsed / (1 << 20)) * 10) / 10;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const o = { ...FUZZ_DEFAULTS, ...opts };
  const log = opts.log ?? (() => {});
  const h = await GatewayHarness.start();
  const targets: Target[] = [...DECODER_TARGETS, gatewayTarget(h)];
  const stats: Record<string, TargetStats> = {};
  for (const t of targets) stats[t.name] = { inputs: 0, taken: 0, rejects: {} };
  const report: FuzzReport = {
    seed: o.seed,
    inputs: 0,
    elapsedMs: 0,
    complete: false,
    stoppedBy: 'done',
    targets: stats,
    slowest: null,
    retimed: 0,
    checks: 0,
    slowestCheckMs: 0,
    heapMb: { first: 0, max: 0, last: 0 },
    failure: null,
  };
  const t0 = performance.now();
  const first = opts.only ?? 0;
  const end = opts.only !== undefined ? opts.only + 1 : o.count;
  const fail = (index: number, target: string, reason: string, input: Input | null, e?: unknown): void => {
    report.failure = { seed: o.seed, index, target, reason, hex: input === null ? '' : hex(input.bytes), ...(e instanceof Error && e.stack ? { stack: e.stack } : {}) };
    report.stoppedBy = 'failure';
  };
  const check = async (index: number): Promise<void> => {
    try {
      report.slowestCheckMs = Math.max(report.slowestCheckMs, Math.round(await h.checkSession()));
    } catch (e) {
      fail(index, 'gateway', `the gateway no longer serves a real session: ${(e as Error).message}`, null, e);
      return;
    }
    report.checks++;
    const mb = heapMb();
    if (report.checks === 1) report.heapMb.first = mb;
    report.heapMb.max = Math.max(report.heapMb.max, mb);
    report.heapMb.last = mb;
    if (mb > report.heapMb.first + o.maxHeapGrowthMb) fail(index, 'memory', `heap at ${mb} MiB, ${o.maxHeapGrowthMb} MiB over the ${report.heapMb.first} MiB of the first check`, null);
  };
  try {
    for (let i = first; i < end && report.failure === null; i++) {
      const t = targets[i % targets.length];
      const p = new Prng(inputSeed(o.seed, i));
      let input: Input;
      try {
        input = t.make(p, o.mutateRate);
      } catch (e) {
        fail(i, t.name, `making the input failed: ${(e as Error).message}`, null, e);
        break;
      }
      let code: string | null;
      let ms: number;
      const s = performance.now();
      try {
        code = t.run(input);
        ms = performance.now() - s;
      } catch (e) {
        fail(i, t.name, `uncoded exception: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, input, e);
        break;
      }
      if (ms > o.maxInputMs) {
        // Timed again (a collection or another process may have stopped the first run).
        const again = performance.now();
        try {
          t.run(input);
        } catch {
          // the first run said how it ends
        }
        const ms2 = performance.now() - again;
        if (ms2 > o.maxInputMs) {
          fail(i, t.name, `took ${ms.toFixed(1)} ms and ${ms2.toFixed(1)} ms again, limit ${o.maxInputMs} ms`, input);
          break;
        }
        report.retimed++;
        ms = Math.min(ms, ms2);
      }
      const st = stats[t.name];
      st.inputs++;
      report.inputs++;
      if (code === null) st.taken++;
      else st.rejects[code] = (st.rejects[code] ?? 0) + 1;
      if (input.valid && code !== null) {
        fail(i, t.name, `a valid input, not mutated, was refused: ${code}`, input);
        break;
      }
      if (report.slowest === null || ms > report.slowest.ms) report.slowest = { index: i, target: t.name, ms: Math.round(ms * 1000) / 1000, bytes: input.bytes.length };
      const k = i - first + 1;
      if (k % o.yieldEvery === 0) await turn();
      if (k % o.checkEvery === 0) {
        await check(i);
        log(`${k} inputs, ${Math.round((performance.now() - t0) / 1000)} s, heap ${report.heapMb.last} MiB`);
      }
      if (performance.now() - t0 > o.maxSeconds * 1000) {
        report.stoppedBy = 'maxSeconds';
        log(`stopped after ${o.maxSeconds} s (--max-seconds) at input ${i + 1} of ${end}: ${report.inputs} inputs ran`);
        break;
      }
    }
    if (report.failure === null) {
      await turn();
      await check(end - 1);
    }
  } finally {
    await h.close();
  }
  report.complete = report.failure === null && report.stoppedBy === 'done';
  report.elapsedMs = Math.round(performance.now() - t0);
  return report;
}
