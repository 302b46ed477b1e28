/**
 * Both ends of management together, on fake time and in memory: the gateway's per-device job state
 * (firmware/manage/job-state.ts) driving commands as bytes (command.ts) into the device's executor
 * (executor.ts over the sim target). Whatever is lost, re-sent, or restarted on either side, the
 * program runs once and the job ends with the device's answer. Then a seeded fuzz of untrusted
 * input: random CBOR for commands and random arguments for every operation are refused only with
 * stable codes (the seed is printed on failure).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeValue, encodeValue } from '../firmware/cbor-value';
import { isHfError } from '../firmware/errors';
import { decodeCommand, decodeReply, encodeCommand, encodeReply } from '../firmware/manage/command';
import { Executor } from '../firmware/manage/executor';
import { DeviceJob } from '../firmware/manage/job-state';
import { OPS, validateOp } from '../firmware/manage/ops';
import type { Management, RunRequest, RunResult } from '../hal/management';
import { SimClock } from '../targets/sim/clock';
import { SimGpio } from '../targets/sim/gpio';
import { SimManagement } from '../targets/sim/manage';
import { Prng } from '../targets/sim/prng';
import { MemoryStorage } from '../targets/sim/storage';
import { SimSystem } from '../targets/sim/system';

function device(): { m: SimManagement; gate: Management; release: () => void } {
  const m = new SimManagement({
    system: new SimSystem(new SimClock()),
    gpio: new SimGpio(),
    config: { manage: { exec: ['/usr/local/bin/deploy'] } },
    programs: { '/usr/local/bin/deploy': () => ({ stdout: 'deployed' }) },
  });
  let release = () => {};
  const gate: Management = Object.create(m);
  gate.run = (req: RunRequest): Promise<RunResult> =>
    new Promise((resolve) => {
      release = () => resolve(m.run(req));
    });
  return { m, gate, release: () => release() };
}

/** The gateway's side: sends the job's command as bytes and feeds the device's replies back. */
async function deliver(job: DeviceJob, ex: Executor, now: number, id: string): Promise<{ done: Promise<void> }> {
  const bytes = encodeCommand({ id, op: 'exec', args: { argv: ['/usr/local/bin/deploy'] }, deadlineMs: job.deadlineMs() });
  assert.is(job.sent(now), 'applied');
  const replies: Uint8Array[] = [];
  const done = ex
    .execute(decodeCommand(bytes), (cid) => replies.push(encodeReply({ id: cid, accepted: true })))
    .then((a) => {
      replies.push(encodeReply(a));
    });
  await Promise.resolve();
  for (const r of replies.splice(0)) apply(job, now, decodeReply(r));
  return {
    done: done.then(() => {
      for (const r of replies.splice(0)) apply(job, now + 1, decodeReply(r));
    }),
  };
}

function apply(job: DeviceJob, now: number, r: ReturnType<typeof decodeReply>): void {
  if ('accepted' in r) job.accepted(now);
  else if ('ok' in r) job.succeeded(now, r.ok);
  else job.failed(now, r.error);
}

test('the device drops off while running; the re-sent id gets the same run: once, succeeded', async () => {
  const d = device();
  const ex = new Executor(d.gate, new MemoryStorage());
  const job = new DeviceJob(0, 60_000, { timeoutMs: 30_000 });
  const first = await deliver(job, ex, 10, 'job7.dev1');
  assert.is(job.state, 'running');
  job.disconnected(20); // the answer of the first send is lost with the session
  assert.is(job.state, 'queued');
  const second = await deliver(job, ex, 30, 'job7.dev1');
  d.release();
  await first.done;
  await second.done;
  assert.is(job.state, 'succeeded');
  assert.is(new TextDecoder().decode(job.outcome?.result?.stdout as Uint8Array), 'deployed');
  assert.is(d.m.ran.length, 1, 'ran once');
  assert.is(job.sends, 2);
});

test('the gateway restarts mid-job and the device restarts mid-command: one outcome, nothing run twice', async () => {
  const storage = new MemoryStorage();
  const d = device();
  const before = new Executor(d.gate, storage);
  const job = new DeviceJob(0, 60_000, { timeoutMs: 30_000 });
  await deliver(job, before, 10, 'job8.dev1');
  assert.is(job.state, 'running');
  // Both sides stop: the gateway keeps the job's snapshot, the device its journal.
  const stored = JSON.parse(JSON.stringify(job.snapshot()));
  const back = DeviceJob.restore(stored);
  assert.is(back.recovered(5_000), 'applied');
  const d2 = device();
  const after = new Executor(d2.m, storage);
  await await deliver(back, after, 6_000, 'job8.dev1');
  assert.is(back.state, 'failed');
  assert.is(back.outcome?.error?.code, 'HF_ERR_INTERRUPTED');
  assert.is(d2.m.ran.length, 0, 'not run again after the restart');
  assert.is(d.m.ran.length, 0, 'the first run never finished');
});

const SEEDS = process.env.SOAK ? 20_000 : 1_000;
const CODES = new Set(['HF_ERR_COMMAND', 'HF_ERR_UNKNOWN_OP', 'HF_ERR_BAD_ARGS', 'HF_ERR_OVERSIZE']);

/** A random value of the kinds CBOR carries, small and nested a little. */
function randomValue(rng: Prng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 6 : 9)) {
    case 0:
      return rng.int(3) - 1 + (rng.chance(0.2) ? 0.5 : 0);
    case 1:
      return ['', 'info', 'exec', '/srv/x', 'a'.repeat(rng.int(10)), 'HF_ERR_X', '..', 'gpio.read'][rng.int(8)];
    case 2:
      return rng.chance(0.5);
    case 3:
      return null;
    case 4:
      return new Uint8Array(rng.int(5));
    case 5:
      return rng.int(100_000);
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = ['v', 'id', 'op', 'args', 'deadlineMs', 'argv', 'shell', 'path', 'data', 'chip', 'line', 'value', 'config', 'disk', 'mode', 'timeoutMs', 'x'];
      for (let i = rng.int(5); i > 0; i--) o[keys[rng.int(keys.length)]] = randomValue(rng, depth + 1);
      return o;
    }
  }
}

test(`fuzz: ${SEEDS} random commands and arguments are refused only with stable codes`, () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rng = new Prng(seed);
    try {
      for (const v of [randomValue(rng), { v: 1, id: 'f1', op: OPS[rng.int(OPS.length)], args: randomValue(rng), deadlineMs: 1 + rng.int(10) }]) {
        const bytes = encodeValue(v);
        if (rng.chance(0.3)) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
        let cmd: ReturnType<typeof decodeCommand> | null = null;
        try {
          cmd = decodeCommand(bytes);
        } catch (e) {
          assert.ok(isHfError(e) && e.code === 'HF_ERR_COMMAND', `decode: ${String(e)}`);
        }
        if (cmd === null) continue;
        try {
          const op = validateOp(cmd.op, cmd.args);
          // What the validator lets through encodes again (it is all plain data).
          decodeValue(encodeValue(op.args));
        } catch (e) {
          assert.ok(isHfError(e) && CODES.has(e.code), `validate: ${String(e)}`);
        }
      }
    } catch (e) {
      console.error(`manage fuzz failed at seed ${seed} (replay: this seed alone)`);
      throw e;
    }
  }
});

test.run();
