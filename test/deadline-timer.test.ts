/**
 * DeadlineTimer (firmware/deadline-timer.ts) on the sim clock: one timer at the earliest deadline,
 * kept when the deadline moves later (keepEarlier) or moved to it exactly, re-set after each call,
 * silent after stop(); and on the Node clock, that a pending timer keeps a process alive.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DeadlineTimer, type DeadlineTimerOptions } from '../firmware/deadline-timer';
import { SimClock } from '../targets/sim/clock';

/**
 * A machine with one settable deadline: the timer calls it, it records when, and what was due is
 * done (a call before the deadline, as keepEarlier allows, finds nothing due and changes nothing).
 */
function machine(clock: SimClock, opts?: DeadlineTimerOptions) {
  const m = { deadline: Infinity, calls: [] as number[] };
  const t = new DeadlineTimer(
    clock,
    () => m.deadline,
    (now) => {
      m.calls.push(now);
      if (m.deadline <= now) m.deadline = Infinity;
    },
    opts,
  );
  return { m, t };
}

test('keepEarlier: an earlier timer stays when the deadline moves later; the early call finds nothing and the timer is set again', () => {
  const clock = new SimClock(0);
  const { m, t } = machine(clock);
  m.deadline = 100;
  t.arm();
  assert.is(t.setFor, 100);
  m.deadline = 250; // an acknowledgement pushed the deadline out
  t.arm();
  assert.is(t.setFor, 100, 'not churned: the earlier timer stays');
  clock.runUntil(100);
  assert.equal(m.calls, [100], 'fired early, at the old deadline');
  assert.is(t.setFor, 250, 'and set again for the real one');
  clock.runUntil(300);
  assert.equal(m.calls, [100, 250]);
  assert.is(t.setFor, Infinity, 'nothing more to wait for');
});

test('keepEarlier: a deadline that moves earlier moves the timer; delays round up to whole ms, at least minDelayMs', () => {
  const clock = new SimClock(0);
  const { m, t } = machine(clock, { minDelayMs: 5 });
  m.deadline = 100;
  t.arm();
  m.deadline = 10.2;
  t.arm();
  assert.is(t.setFor, 10.2);
  clock.runUntil(10.5);
  assert.equal(m.calls, [], 'not before the rounded-up millisecond');
  clock.runUntil(11);
  assert.equal(m.calls, [11]);
  m.deadline = clock.now() + 1; // closer than minDelayMs
  t.arm();
  clock.runUntil(15);
  assert.equal(m.calls, [11], 'held off to minDelayMs');
  clock.runUntil(16);
  assert.equal(m.calls, [11, 16]);
});

test('exact: the timer sits at the deadline itself, earlier or later, fractional or not', () => {
  const clock = new SimClock(0);
  const { m, t } = machine(clock, { keepEarlier: false });
  m.deadline = 100;
  t.arm();
  m.deadline = 250.5;
  t.arm();
  assert.is(t.setFor, 250.5);
  clock.runUntil(1000);
  assert.equal(m.calls, [250.5], 'one call, at the moved deadline, none at the old one');
});

test('a deadline already past fires on the next turn of the clock, not inside arm()', () => {
  const clock = new SimClock(50);
  const { m, t } = machine(clock, { keepEarlier: false });
  m.deadline = 10;
  t.arm();
  assert.equal(m.calls, [], 'never from inside the call that set it');
  clock.runUntil(50);
  assert.equal(m.calls, [50]);
});

test('stop(): no call after it, arm() does nothing, stop() twice is fine', () => {
  const clock = new SimClock(0);
  const { m, t } = machine(clock);
  m.deadline = 20;
  t.arm();
  t.stop();
  t.stop();
  t.arm();
  clock.runUntil(100);
  assert.equal(m.calls, []);
  assert.is(t.setFor, Infinity);
});

test('a machine that stops its own timer from inside the call is not set again', () => {
  const clock = new SimClock(0);
  const calls: number[] = [];
  // The deadline stays put: only stop() keeps the timer from firing again and again.
  const t: DeadlineTimer = new DeadlineTimer(
    clock,
    () => 5,
    (now) => {
      calls.push(now);
      t.stop(); // the session finished and its driver dropped it
    },
  );
  t.arm();
  clock.runUntil(100);
  assert.equal(calls, [5], 'no second call');
});

test('on the Node clock a pending timer keeps the process running until it fires', () => {
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'node_modules', 'tsx', 'dist', 'cjs', 'index.cjs'))});
const { DeadlineTimer } = require(${JSON.stringify(path.join(__dirname, '..', 'firmware', 'deadline-timer.ts'))});
const { hostClock } = require(${JSON.stringify(path.join(__dirname, '..', 'targets', 'node', 'clock.ts'))});
const start = hostClock.now();
const t = new DeadlineTimer(hostClock, () => start + 150, () => { process.stdout.write('fired ' + Math.round(hostClock.now() - start)); t.stop(); });
t.arm();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.is(r.status, 0, r.stderr);
  const ms = Number(/fired (\d+)/.exec(r.stdout)?.[1] ?? -1);
  assert.ok(ms >= 149, `the process lived until the timer fired (${r.stdout || 'no output: it exited first'})`);
});

test.run();
