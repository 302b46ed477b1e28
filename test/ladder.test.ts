/**
 * The transport ladder (firmware/ladder.ts): every transition of its diagram, driven by hand on a fake
 * clock, with the port's actions recorded in order; backoff, option validation and nextDeadline.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LADDER_DEFAULTS, Ladder, type LadderOptions, type LadderPort, RUNG_NAMES, Rung } from '../firmware/ladder';
import { code, message } from './support/errors';

/** Small, distinct numbers so every deadline says which option it came from. */
const OPTS: LadderOptions = { directTimeoutMs: 100, directSilenceMs: 500, reprobeMs: 1000, reprobeMaxMs: 5000, reconnectMs: 20 };

/** A ladder on a fake clock whose port records each action as a string. */
class Rig {
  now = 10_000;
  readonly actions: string[] = [];
  readonly ladder: Ladder;

  constructor(hasTcp = true, opts: LadderOptions = OPTS) {
    const port: LadderPort = {
      connect: () => this.actions.push('connect'),
      disconnect: () => this.actions.push('disconnect'),
      useDirect: () => this.actions.push('useDirect'),
      useHttp: (reason) => this.actions.push(`useHttp ${reason}`),
    };
    this.ladder = new Ladder(hasTcp, port, opts);
  }

  /** The actions since the last call. */
  take(): string[] {
    return this.actions.splice(0);
  }

  /** Moves the clock to `t` and fires the timer if it is due (as a driver would). */
  at(t: number): void {
    this.now = t;
    if (this.ladder.nextDeadline() <= t) this.ladder.onTimer(t);
  }

  /** Moves the clock to the ladder's deadline and fires it. */
  fire(): number {
    const d = this.ladder.nextDeadline();
    assert.ok(Number.isFinite(d), 'a deadline is set');
    this.at(d);
    return d;
  }

  get state(): number {
    return this.ladder.state;
  }

  /** start, connected, heard: on DIRECT. */
  toDirect(): void {
    this.ladder.start(this.now);
    this.now += 10;
    this.ladder.connected(this.now);
    this.now += 10;
    this.ladder.heard(this.now);
    assert.is(this.state, Rung.DIRECT);
    this.take();
  }
}

test('defaults and rung names', () => {
  assert.equal(LADDER_DEFAULTS, { directTimeoutMs: 3000, directSilenceMs: 45000, reprobeMs: 30000, reprobeMaxMs: 600000, reconnectMs: 1000 });
  const l = new Ladder(true, { connect() {}, disconnect() {}, useDirect() {}, useHttp() {} });
  assert.equal(l.o, LADDER_DEFAULTS);
  assert.is.not(l.o, LADDER_DEFAULTS, 'the ladder has its own copy');
  assert.is(l.state, Rung.IDLE);
  assert.is(l.nextDeadline(), Infinity);
  assert.is(l.moves, 0);
  assert.not.ok(l.onDirect);
  assert.is(RUNG_NAMES.length, Object.keys(Rung).length);
  assert.is(RUNG_NAMES[Rung.DIRECT], 'tcp');
  assert.is(RUNG_NAMES[Rung.FALLBACK], 'http');
  assert.is(RUNG_NAMES[Rung.HTTP_ONLY], 'http');
});

test('start without a TCP address: HTTP_ONLY, useHttp once, no deadline, and it stays there', () => {
  const r = new Rig(false);
  r.ladder.start(r.now);
  assert.is(r.state, Rung.HTTP_ONLY);
  assert.equal(r.take(), ['useHttp no tcp address']);
  assert.is(r.ladder.nextDeadline(), Infinity);
  assert.not.ok(r.ladder.onDirect);
  // Nothing moves it: a second start, stray TCP events, timers far in the future.
  r.ladder.start(r.now);
  r.ladder.connected(r.now);
  r.ladder.heard(r.now);
  r.ladder.lost(r.now, 'x');
  r.ladder.onTimer(r.now + 1e9);
  assert.is(r.state, Rung.HTTP_ONLY);
  assert.equal(r.take(), []);
  assert.is(r.ladder.nextDeadline(), Infinity);
  assert.is(r.ladder.moves, 0);
  // stop: nothing to disconnect.
  r.ladder.stop();
  assert.is(r.state, Rung.STOPPED);
  assert.equal(r.take(), []);
});

test('start with TCP: connect, TRYING, deadline now + directTimeoutMs; a second start is ignored', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  assert.is(r.state, Rung.TRYING);
  assert.equal(r.take(), ['connect']);
  assert.is(r.ladder.nextDeadline(), 10_000 + 100);
  assert.not.ok(r.ladder.onDirect);
  r.ladder.start(r.now + 5);
  assert.equal(r.take(), []);
  assert.is(r.ladder.nextDeadline(), 10_100);
});

test('connected: VERIFYING and useDirect; the deadline stays at connect start + directTimeoutMs', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.take();
  r.ladder.connected(10_030);
  assert.is(r.state, Rung.VERIFYING);
  assert.equal(r.take(), ['useDirect']);
  assert.ok(r.ladder.onDirect);
  assert.is(r.ladder.moves, 1);
  assert.is(r.ladder.nextDeadline(), 10_100, 'connect plus the first frame back share directTimeoutMs');
});

test('heard: VERIFYING -> DIRECT, no action, deadline now + directSilenceMs; each frame pushes it on', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.ladder.connected(10_030);
  r.take();
  r.ladder.heard(10_050);
  assert.is(r.state, Rung.DIRECT);
  assert.equal(r.take(), []);
  assert.ok(r.ladder.onDirect);
  assert.is(r.ladder.moves, 1);
  assert.is(r.ladder.nextDeadline(), 10_550);
  r.ladder.heard(10_400);
  assert.is(r.ladder.nextDeadline(), 10_900);
  // The timer at the old deadline does nothing.
  r.at(10_550);
  assert.is(r.state, Rung.DIRECT);
  assert.equal(r.take(), []);
});

test('connect timeout: TRYING past directTimeoutMs -> disconnect, useHttp, FALLBACK after reprobeMs', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.take();
  r.at(10_099);
  assert.is(r.state, Rung.TRYING, 'not yet');
  r.ladder.onTimer(10_099); // early timer calls are ignored too
  assert.equal(r.take(), []);
  r.at(10_100);
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), ['disconnect', 'useHttp no tcp connection within 100 ms']);
  assert.is(r.ladder.nextDeadline(), 10_100 + 1000);
  assert.is(r.ladder.moves, 0, 'the session never was on TCP');
  assert.not.ok(r.ladder.onDirect);
});

test('verify timeout: VERIFYING past directTimeoutMs -> disconnect, useHttp, FALLBACK, and a move back', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.ladder.connected(10_020);
  r.take();
  r.at(10_100);
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), ['disconnect', 'useHttp nothing heard on tcp within 100 ms']);
  assert.is(r.ladder.nextDeadline(), 11_100);
  assert.is(r.ladder.moves, 2, 'onto TCP and back');
});

test('lost while TRYING: useHttp (no disconnect), FALLBACK after reprobeMs', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.take();
  r.ladder.lost(10_005, 'ECONNREFUSED');
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), ['useHttp tcp failed: ECONNREFUSED']);
  assert.is(r.ladder.nextDeadline(), 10_005 + 1000);
  assert.is(r.ladder.moves, 0);
});

test('lost while VERIFYING: useHttp, FALLBACK after reprobeMs', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.ladder.connected(10_010);
  r.take();
  r.ladder.lost(10_020, 'ECONNRESET');
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), ['useHttp tcp failed: ECONNRESET']);
  assert.is(r.ladder.nextDeadline(), 11_020);
  assert.is(r.ladder.moves, 2);
});

test('lost while DIRECT: useHttp, FALLBACK after reconnectMs (not the backoff)', () => {
  const r = new Rig();
  r.toDirect();
  r.ladder.lost(20_000, 'EOF');
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), ['useHttp tcp lost: EOF']);
  assert.is(r.ladder.nextDeadline(), 20_000 + 20);
  assert.is(r.ladder.moves, 2);
});

test('DIRECT silent past directSilenceMs: disconnect, useHttp naming the silence, FALLBACK after reconnectMs', () => {
  const r = new Rig();
  r.toDirect(); // last heard at 10_020
  assert.is(r.ladder.nextDeadline(), 10_520);
  r.at(10_519);
  assert.is(r.state, Rung.DIRECT);
  r.at(10_520);
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), ['disconnect', 'useHttp tcp silent for 500 ms']);
  assert.is(r.ladder.nextDeadline(), 10_540);
  // A late timer reports the real silence.
  const s = new Rig();
  s.toDirect();
  s.at(10_777);
  assert.equal(s.take(), ['disconnect', 'useHttp tcp silent for 757 ms']);
  assert.is(s.ladder.nextDeadline(), 10_797);
});

test('reprobe: FALLBACK at its deadline -> TRYING (connect), then the whole way back to DIRECT', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  r.ladder.lost(10_000, 'refused');
  r.take();
  r.at(10_999);
  assert.is(r.state, Rung.FALLBACK);
  assert.equal(r.take(), []);
  r.at(11_000);
  assert.is(r.state, Rung.TRYING);
  assert.equal(r.take(), ['connect'], 'the session stays on HTTP while TCP is tried');
  assert.is(r.ladder.nextDeadline(), 11_100);
  r.ladder.connected(11_010);
  assert.equal(r.take(), ['useDirect']);
  r.ladder.heard(11_020);
  assert.is(r.state, Rung.DIRECT);
  assert.is(r.ladder.nextDeadline(), 11_520);
  assert.is(r.ladder.moves, 1);
});

test('failed probes back off reprobeMs, doubling up to reprobeMaxMs, whichever way they fail', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  const waits: number[] = [];
  // Alternate the ways a probe fails: refused, connect timeout, verify timeout, lost while verifying.
  for (let i = 0; i < 8; i++) {
    assert.is(r.state, Rung.TRYING, `probe ${i}`);
    const t0 = r.now;
    switch (i % 4) {
      case 0:
        r.ladder.lost(t0 + 1, 'refused');
        break;
      case 1:
        r.fire();
        break;
      case 2:
        r.ladder.connected(t0 + 1);
        r.fire();
        break;
      default:
        r.ladder.connected(t0 + 1);
        r.ladder.lost(t0 + 2, 'reset');
    }
    assert.is(r.state, Rung.FALLBACK);
    const failedAt = i % 4 === 0 ? t0 + 1 : i % 4 === 3 ? t0 + 2 : t0 + 100;
    waits.push(r.ladder.nextDeadline() - failedAt);
    r.fire();
  }
  assert.equal(waits, [1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000]);
});

test('the backoff resets after a success (DIRECT), but not after a mere connect (VERIFYING)', () => {
  const r = new Rig();
  r.ladder.start(r.now);
  // Three failures: next wait would be 5000 (capped from 8000).
  for (let i = 0; i < 3; i++) {
    r.ladder.lost(r.now, 'refused');
    r.fire();
  }
  // A connect that is never heard from does not count as a success.
  r.ladder.connected(r.now);
  r.ladder.lost(r.now + 1, 'reset');
  assert.is(r.ladder.nextDeadline() - (r.now + 1), 5000);
  r.fire();
  // A real success resets it.
  r.ladder.connected(r.now);
  r.ladder.heard(r.now + 1);
  assert.is(r.state, Rung.DIRECT);
  r.ladder.lost(r.now + 2, 'EOF');
  assert.is(r.ladder.nextDeadline() - (r.now + 2), 20, 'a working connection dropped: reconnectMs');
  r.fire();
  assert.is(r.state, Rung.TRYING);
  r.ladder.lost(r.now, 'refused');
  assert.is(r.ladder.nextDeadline() - r.now, 1000, 'back to reprobeMs');
  r.fire();
  r.ladder.lost(r.now, 'refused');
  assert.is(r.ladder.nextDeadline() - r.now, 2000);
});

test('retarget (moved to another gateway): from any rung, FALLBACK after reconnectMs, the backoff starts over; nothing when idle, HTTP_ONLY or stopped', () => {
  const rungs: [string, (r: Rig) => void][] = [
    ['trying', (r) => r.ladder.start(r.now)],
    [
      'verifying',
      (r) => {
        r.ladder.start(r.now);
        r.ladder.connected(r.now);
      },
    ],
    ['direct', (r) => r.toDirect()],
    [
      'http after failed probes',
      (r) => {
        r.ladder.start(r.now);
        for (let i = 0; i < 3; i++) {
          r.ladder.lost(r.now, 'refused');
          r.fire();
        }
        r.ladder.lost(r.now, 'refused');
      },
    ],
  ];
  for (const [name, setUp] of rungs) {
    const r = new Rig();
    setUp(r);
    r.take();
    r.ladder.retarget(r.now, 'moved to B');
    assert.is(r.state, Rung.FALLBACK, name);
    assert.equal(r.take(), ['useHttp moved to B'], name);
    assert.is(r.ladder.nextDeadline() - r.now, 20, `${name}: reconnectMs, not the backoff`);
    r.fire();
    assert.is(r.state, Rung.TRYING, name);
    r.ladder.lost(r.now, 'refused');
    assert.is(r.ladder.nextDeadline() - r.now, 1000, `${name}: the new gateway's first failed probe waits reprobeMs`);
  }
  const idle = new Rig();
  idle.ladder.retarget(idle.now, 'moved');
  assert.is(idle.state, Rung.IDLE);
  const only = new Rig(false);
  only.ladder.start(only.now);
  only.take();
  only.ladder.retarget(only.now, 'moved');
  assert.is(only.state, Rung.HTTP_ONLY);
  assert.equal(only.take(), []);
  const stopped = new Rig();
  stopped.toDirect();
  stopped.ladder.stop();
  stopped.take();
  stopped.ladder.retarget(stopped.now, 'moved');
  assert.is(stopped.state, Rung.STOPPED);
  assert.equal(stopped.take(), []);
});

test('reconnectMs 0: a dropped connection is retried at once', () => {
  const r = new Rig(true, { ...OPTS, reconnectMs: 0 });
  r.toDirect();
  r.ladder.lost(r.now, 'EOF');
  assert.is(r.ladder.nextDeadline(), r.now);
  r.at(r.now);
  assert.is(r.state, Rung.TRYING);
  assert.equal(r.take(), ['useHttp tcp lost: EOF', 'connect']);
});

test('stop(): disconnects when TRYING, VERIFYING or DIRECT; not when on HTTP; nothing after; idempotent', () => {
  const cases: [string, (r: Rig) => void, string[]][] = [
    ['idle', () => {}, []],
    ['trying', (r) => r.ladder.start(r.now), ['disconnect']],
    [
      'verifying',
      (r) => {
        r.ladder.start(r.now);
        r.ladder.connected(r.now);
      },
      ['disconnect'],
    ],
    ['direct', (r) => r.toDirect(), ['disconnect']],
    [
      'fallback',
      (r) => {
        r.ladder.start(r.now);
        r.ladder.lost(r.now, 'x');
      },
      [],
    ],
  ];
  for (const [name, setup, expected] of cases) {
    const r = new Rig();
    setup(r);
    r.take();
    r.ladder.stop();
    assert.is(r.state, Rung.STOPPED, name);
    assert.equal(r.take(), expected, name);
    assert.is(r.ladder.nextDeadline(), Infinity, name);
    assert.not.ok(r.ladder.onDirect, name);
    // Idempotent, and every later event is ignored.
    r.ladder.stop();
    r.ladder.start(r.now);
    r.ladder.connected(r.now);
    r.ladder.heard(r.now);
    r.ladder.lost(r.now, 'late');
    r.ladder.onTimer(r.now + 1e9);
    assert.is(r.state, Rung.STOPPED, name);
    assert.equal(r.take(), [], `${name}: no actions after stop`);
    assert.is(r.ladder.nextDeadline(), Infinity, name);
  }
});

test('events in the wrong state are ignored', () => {
  // IDLE: nothing but start does anything.
  const idle = new Rig();
  idle.ladder.connected(1);
  idle.ladder.heard(1);
  idle.ladder.lost(1, 'x');
  idle.ladder.onTimer(1e12);
  assert.is(idle.state, Rung.IDLE);
  assert.equal(idle.take(), []);
  assert.is(idle.ladder.nextDeadline(), Infinity);

  // TRYING: heard (no connection yet) changes nothing.
  const trying = new Rig();
  trying.ladder.start(trying.now);
  trying.take();
  trying.ladder.heard(trying.now + 1);
  assert.is(trying.state, Rung.TRYING);
  assert.is(trying.ladder.nextDeadline(), trying.now + 100);
  assert.equal(trying.take(), []);

  // VERIFYING / DIRECT: a second connected changes nothing.
  const verifying = new Rig();
  verifying.ladder.start(verifying.now);
  verifying.ladder.connected(verifying.now);
  verifying.take();
  verifying.ladder.connected(verifying.now + 1);
  assert.is(verifying.state, Rung.VERIFYING);
  assert.equal(verifying.take(), []);
  assert.is(verifying.ladder.moves, 1);
  const direct = new Rig();
  direct.toDirect();
  const d = direct.ladder.nextDeadline();
  direct.ladder.connected(direct.now + 1);
  assert.is(direct.state, Rung.DIRECT);
  assert.is(direct.ladder.nextDeadline(), d);
  assert.equal(direct.take(), []);

  // FALLBACK: connected, heard, lost (a late report from the closed connection) change nothing.
  const fb = new Rig();
  fb.ladder.start(fb.now);
  fb.ladder.lost(fb.now, 'refused');
  fb.take();
  const due = fb.ladder.nextDeadline();
  fb.ladder.connected(fb.now + 1);
  fb.ladder.heard(fb.now + 2);
  fb.ladder.lost(fb.now + 3, 'late');
  assert.is(fb.state, Rung.FALLBACK);
  assert.equal(fb.take(), []);
  assert.is(fb.ladder.nextDeadline(), due);
  assert.is(fb.ladder.moves, 0);
  // An early timer in FALLBACK does not probe.
  fb.ladder.onTimer(due - 1);
  assert.is(fb.state, Rung.FALLBACK);
  assert.equal(fb.take(), []);
});

test('nextDeadline at each step of a full cycle', () => {
  const r = new Rig();
  const seen: [string, number][] = [];
  const note = (what: string): void => void seen.push([what, r.ladder.nextDeadline()]);
  note('idle');
  r.ladder.start(0);
  note('trying');
  r.ladder.connected(40);
  note('verifying');
  r.ladder.heard(60);
  note('direct');
  r.ladder.heard(300);
  note('direct, heard again');
  r.at(800);
  note('fallback after silence');
  r.at(820);
  note('trying again');
  r.ladder.lost(830, 'refused');
  note('fallback after refused');
  r.at(1830);
  note('trying a third time');
  r.at(1930);
  note('fallback after connect timeout');
  r.ladder.stop();
  note('stopped');
  assert.equal(seen, [
    ['idle', Infinity],
    ['trying', 100],
    ['verifying', 100],
    ['direct', 560],
    ['direct, heard again', 800],
    ['fallback after silence', 820],
    ['trying again', 920],
    ['fallback after refused', 1830],
    ['trying a third time', 1930],
    ['fallback after connect timeout', 1930 + 2000],
    ['stopped', Infinity],
  ]);
  assert.equal(r.take(), [
    'connect',
    'useDirect',
    'disconnect',
    'useHttp tcp silent for 500 ms',
    'connect',
    'useHttp tcp failed: refused',
    'connect',
    'disconnect',
    'useHttp no tcp connection within 100 ms',
  ]);
});

test('options: accepted at their bounds, and the caller’s object is not changed', () => {
  const opts = { directTimeoutMs: 1, directSilenceMs: 1, reprobeMs: 1, reprobeMaxMs: 1, reconnectMs: 0 };
  const copy = { ...opts };
  const r = new Rig(true, opts);
  assert.equal(r.ladder.o, opts);
  assert.equal(opts, copy);
  // reprobeMaxMs equal to reprobeMs: no doubling.
  r.ladder.start(0);
  r.ladder.lost(0, 'x');
  assert.is(r.ladder.nextDeadline(), 1);
  r.at(1);
  r.ladder.lost(1, 'x');
  assert.is(r.ladder.nextDeadline(), 2);
  // An undefined option takes the default.
  const d = new Rig(true, { directTimeoutMs: undefined, reconnectMs: 5 });
  assert.is(d.ladder.o.directTimeoutMs, 3000);
  assert.is(d.ladder.o.reconnectMs, 5);
  assert.is(
    code(() => new Rig(true, { directSilenceMs: 86_400_000 })),
    'no error',
  );
});

test('options: unknown names and out-of-range values are HF_ERR_OPTION naming the option and value', () => {
  const bad: [unknown, string][] = [
    [{ directTimeout: 5 }, 'directTimeout'],
    [{ toString: 5 }, 'toString'],
    [{ constructor: 5 }, 'constructor'],
    [JSON.parse('{"__proto__": 5}'), '__proto__'],
    [{ directTimeoutMs: 0 }, 'directTimeoutMs'],
    [{ directTimeoutMs: -1 }, 'directTimeoutMs'],
    [{ directTimeoutMs: NaN }, 'directTimeoutMs'],
    [{ directTimeoutMs: Infinity }, 'directTimeoutMs'],
    [{ directTimeoutMs: '100' }, 'directTimeoutMs'],
    [{ directTimeoutMs: null }, 'directTimeoutMs'],
    [{ directTimeoutMs: 86_400_001 }, 'directTimeoutMs'],
    [{ directSilenceMs: 0 }, 'directSilenceMs'],
    [{ reprobeMs: 0 }, 'reprobeMs'],
    [{ reprobeMaxMs: 29_999 }, 'reprobeMaxMs'],
    [{ reprobeMs: 5000, reprobeMaxMs: 4999 }, 'reprobeMaxMs'],
    [{ reconnectMs: -1 }, 'reconnectMs'],
    [{ reconnectMs: 1e12 }, 'reconnectMs'],
  ];
  for (const [opts, name] of bad) {
    const make = (): unknown => new Rig(true, opts as LadderOptions);
    assert.is(code(make), 'HF_ERR_OPTION', JSON.stringify(opts));
    assert.ok(message(make).includes(name), `${message(make)} names ${name}`);
  }
  assert.ok(message(() => new Rig(true, { reconnectMs: -7 })).includes('-7'), 'the message shows the value');
});

test.run();
