/**
 * The per-(job, device) state machine (firmware/manage/job-state.ts) on fake time: a table of every
 * event in every state (what it does and what it leaves), the deadlines, snapshots, and a seeded
 * property test that random event sequences end in exactly one final state and never leave it
 * (the seed is printed on failure; SOAK=1 runs more seeds).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { changed, DeviceJob, type EventResult, FINAL_STATES, isFinal, JobState, type JobStateValue } from '../firmware/manage/job-state';
import { Prng } from '../targets/sim/prng';
import { code } from './support/errors';

const EXPIRES = 1_000_000;
const TIMEOUT = 10_000;
const T = 100; // every event of the table happens at this time (before both deadlines)

type Ev = 'sent' | 'accepted' | 'ok' | 'error' | 'deviceTimeout' | 'cancel' | 'disconnected' | 'recovered' | 'timer';
const EVENTS: Ev[] = ['sent', 'accepted', 'ok', 'error', 'deviceTimeout', 'cancel', 'disconnected', 'recovered', 'timer'];

function fire(j: DeviceJob, ev: Ev, now: number): EventResult {
  switch (ev) {
    case 'sent':
      return j.sent(now);
    case 'accepted':
      return j.accepted(now);
    case 'ok':
      return j.succeeded(now, { value: 1 });
    case 'error':
      return j.failed(now, { code: 'HF_ERR_NOT_ALLOWED', message: 'no' });
    case 'deviceTimeout':
      return j.failed(now, { code: 'HF_ERR_CMD_TIMEOUT', message: 'killed after 5000 ms' });
    case 'cancel':
      return j.cancel(now);
    case 'disconnected':
      return j.disconnected(now);
    case 'recovered':
      return j.recovered(now);
    case 'timer':
      return j.onTimer(now);
  }
}

/** Starting points: a name, and the events (at time 1, 2, ...) that lead there. */
const STARTS: Record<string, Ev[]> = {
  queued: [],
  'queued again': ['sent', 'disconnected'],
  sent: ['sent'],
  running: ['sent', 'accepted'],
  succeeded: ['sent', 'ok'],
  failed: ['sent', 'error'],
  'timed-out': ['sent', 'deviceTimeout'],
  cancelled: ['cancel'],
};

function start(name: string): DeviceJob {
  const j = new DeviceJob(0, EXPIRES, { timeoutMs: TIMEOUT });
  STARTS[name].forEach((ev, i) => {
    assert.is(fire(j, ev, i + 1), 'applied', `${name}: ${ev}`);
  });
  return j;
}

const A = 'applied';
const I = 'ignored';
const F = 'ignored-final';
// [start][event] -> [result, state after]
const TABLE: Record<string, Record<Ev, [EventResult, JobStateValue]>> = {
  queued: {
    sent: [A, 'sent'],
    accepted: [I, 'queued'],
    ok: [I, 'queued'],
    error: [I, 'queued'],
    deviceTimeout: [I, 'queued'],
    cancel: [A, 'cancelled'],
    disconnected: [I, 'queued'],
    recovered: [I, 'queued'],
    timer: [I, 'queued'],
  },
  'queued again': {
    sent: [A, 'sent'],
    accepted: [A, 'running'],
    ok: [A, 'succeeded'],
    error: [A, 'failed'],
    deviceTimeout: [A, 'timed-out'],
    cancel: [A, 'cancelled'],
    disconnected: [I, 'queued'],
    recovered: [I, 'queued'],
    timer: [I, 'queued'],
  },
  sent: {
    sent: [I, 'sent'],
    accepted: [A, 'running'],
    ok: [A, 'succeeded'],
    error: [A, 'failed'],
    deviceTimeout: [A, 'timed-out'],
    cancel: [A, 'cancelled'],
    disconnected: [A, 'queued'],
    recovered: [A, 'queued'],
    timer: [I, 'sent'],
  },
  running: {
    sent: [I, 'running'],
    accepted: [I, 'running'],
    ok: [A, 'succeeded'],
    error: [A, 'failed'],
    deviceTimeout: [A, 'timed-out'],
    cancel: [A, 'cancelled'],
    disconnected: [A, 'queued'],
    recovered: [A, 'queued'],
    timer: [I, 'running'],
  },
};
for (const fin of ['succeeded', 'failed', 'timed-out', 'cancelled'] as const) {
  TABLE[fin] = Object.fromEntries(EVENTS.map((e) => [e, [F, fin]])) as Record<Ev, [EventResult, JobStateValue]>;
}

test('every event in every state: what it does and the state it leaves', () => {
  let n = 0;
  for (const [from, row] of Object.entries(TABLE)) {
    for (const ev of EVENTS) {
      const j = start(from);
      const before = j.outcome;
      const [want, after] = row[ev];
      assert.is(fire(j, ev, T), want, `${from} --${ev}--> result`);
      assert.is(j.state, after, `${from} --${ev}--> state`);
      if (want !== A) assert.equal(j.outcome, before, `${from} --${ev}: an ignored event changes nothing`);
      n++;
    }
  }
  assert.is(n, 8 * EVENTS.length);
});

test('outcomes: result, codes, and whether the command may have run', () => {
  const ok = start('succeeded').outcome;
  assert.equal(ok, { state: 'succeeded', at: 2, result: { value: 1 }, error: null, mayHaveRun: true });
  assert.equal(start('failed').outcome?.error, { code: 'HF_ERR_NOT_ALLOWED', message: 'no' });
  assert.equal(start('timed-out').outcome?.error?.code, 'HF_ERR_CMD_TIMEOUT');
  const never = start('cancelled').outcome;
  assert.is(never?.error?.code, 'HF_ERR_CANCELLED');
  assert.is(never?.mayHaveRun, false, 'cancelled before sending: certainly did not run');
  const j = start('running');
  j.cancel(T, 'alice');
  assert.is(j.outcome?.mayHaveRun, true);
  assert.ok(j.outcome?.error?.message.includes('alice') && j.outcome.error.message.includes('may have run'), j.outcome?.error?.message);
});

test('deadlines: the command timeout while sent or running, the expiry while queued', () => {
  const j = new DeviceJob(0, EXPIRES, { timeoutMs: TIMEOUT });
  assert.is(j.nextDeadline(), EXPIRES);
  assert.ok(j.wantsSend);
  j.sent(500);
  assert.is(j.nextDeadline(), 500 + TIMEOUT);
  assert.is(j.deadlineMs(), TIMEOUT);
  j.accepted(600);
  assert.is(j.nextDeadline(), 500 + TIMEOUT, 'accepting does not extend the timeout');
  assert.is(j.onTimer(500 + TIMEOUT - 1), 'ignored');
  assert.is(j.state, 'running');
  assert.is(j.onTimer(500 + TIMEOUT), 'applied');
  assert.is(j.state, 'timed-out');
  assert.equal(j.outcome?.error, { code: 'HF_ERR_CMD_TIMEOUT', message: `no answer within ${TIMEOUT} ms of sending` });
  assert.is(j.nextDeadline(), Infinity);
  assert.is(j.onTimer(EXPIRES), 'ignored-final');

  const q = new DeviceJob(0, 5000, { timeoutMs: TIMEOUT });
  assert.is(q.onTimer(4999), 'ignored');
  assert.is(q.onTimer(5000), 'applied');
  assert.equal([q.state, q.outcome?.error?.code, q.outcome?.mayHaveRun], ['expired', 'HF_ERR_EXPIRED', false]);

  // Sent, then the device went away: back in the queue, where the expiry governs again.
  const r = new DeviceJob(0, 5000, { timeoutMs: TIMEOUT });
  r.sent(10);
  r.disconnected(20);
  assert.is(r.nextDeadline(), 5000);
  r.onTimer(5000);
  assert.equal([r.state, r.outcome?.mayHaveRun], ['expired', true]);

  assert.is(new DeviceJob(10, 10).state, 'expired', 'made at its expiry: expired at once');
});

test('a deadline that passed is applied before a late event', () => {
  const j = new DeviceJob(0, EXPIRES, { timeoutMs: TIMEOUT });
  j.sent(0);
  assert.is(j.succeeded(TIMEOUT, { late: true }), 'deadline', 'the answer came at the timeout: the timeout is what changed, to be recorded');
  assert.is(j.state, 'timed-out');
  assert.ok(changed('deadline') && changed('applied') && !changed('ignored') && !changed('ignored-final'));
  assert.is(j.succeeded(TIMEOUT + 1, { late: true }), 'ignored-final');
  const q = new DeviceJob(0, 100);
  assert.is(q.sent(100), 'deadline');
  assert.is(q.state, 'expired');
  assert.is(q.sends, 0);
});

test('re-sends after a disconnect and after a gateway restart keep counting sends', () => {
  const j = new DeviceJob(0, EXPIRES, { timeoutMs: TIMEOUT });
  j.sent(1);
  j.disconnected(2);
  assert.ok(j.wantsSend);
  j.sent(3);
  j.accepted(4);
  const restored = DeviceJob.restore(JSON.parse(JSON.stringify(j.snapshot())));
  assert.is(restored.state, 'running');
  assert.is(restored.recovered(5), 'applied');
  assert.is(restored.state, 'queued');
  restored.sent(6);
  assert.is(restored.sends, 3);
  assert.is(restored.nextDeadline(), 6 + TIMEOUT, 'the timeout counts from the latest send');
  restored.succeeded(7, { ok: 1 });
  assert.is(restored.state, 'succeeded');
  assert.is(j.state, 'running', 'the snapshot was a copy');
});

test('options and times are checked', () => {
  assert.is(
    code(() => new DeviceJob(0, 10, { timeoutMs: 0 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new DeviceJob(0, 10, { nope: 1 } as never)),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new DeviceJob(0, Number.NaN)),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new DeviceJob(0, 10).sent(Number.NaN)),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => DeviceJob.restore({ ...new DeviceJob(0, 10).snapshot(), state: 'lost' as JobStateValue })),
    'HF_ERR_STATE',
  );
  assert.is(new DeviceJob(0, 10 ** 9).deadlineMs(), 60000, 'the default timeout');
});

const SEEDS = process.env.SOAK ? 50_000 : 2_000;

test(`property: ${SEEDS} random event sequences end in exactly one final state and never leave it`, () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rng = new Prng(seed);
    try {
      const expires = 1 + rng.int(50_000);
      const timeoutMs = 1 + rng.int(20_000);
      let j = rng.int(4) === 0 ? DeviceJob.restore(new DeviceJob(0, expires, { timeoutMs }).snapshot()) : new DeviceJob(0, expires, { timeoutMs });
      let now = 0;
      let finals = 0;
      let finalState: JobStateValue | null = null;
      const steps = rng.int(40);
      const watch = (r: EventResult, what: string) => {
        if (finalState !== null) {
          assert.is(r, 'ignored-final', `${what} after ${finalState}`);
          assert.is(j.state, finalState, `${what} left ${finalState}`);
        } else if (j.final) {
          finals++;
          finalState = j.state;
        }
      };
      for (let i = 0; i < steps; i++) {
        now += rng.int(3000);
        const ev = EVENTS[rng.int(EVENTS.length)];
        watch(fire(j, ev, now), ev);
        if (rng.int(8) === 0) {
          // A gateway restart: the stored job comes back and is recovered.
          const back = DeviceJob.restore(JSON.parse(JSON.stringify(j.snapshot())));
          assert.equal(back.snapshot(), j.snapshot());
          j = back;
          watch(j.recovered(now), 'recovered');
        }
      }
      // Then time runs on: the driver calls onTimer at each deadline until none is left.
      for (let k = 0; k < 4 && j.nextDeadline() !== Infinity; k++) {
        now = Math.max(now, j.nextDeadline());
        watch(j.onTimer(now), 'timer');
      }
      assert.ok(j.final, `ends final, is ${j.state}`);
      assert.is(j.nextDeadline(), Infinity);
      assert.is(finals, 1, 'entered a final state exactly once');
      assert.ok(FINAL_STATES.includes(j.state) && isFinal(j.state));
      assert.is(j.outcome?.state, j.state);
      assert.is((j.outcome?.result === null) !== (j.outcome?.error === null), true, 'a result or an error, not both');
      assert.is(j.outcome?.state === JobState.SUCCEEDED, j.outcome?.result !== null);
    } catch (e) {
      console.error(`job-state property failed at seed ${seed} (replay: this seed alone)`);
      throw e;
    }
  }
});

test.run();
