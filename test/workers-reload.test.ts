/**
 * The session move of a reload (targets/host/gateway/workers/reload.ts) over a fake main process:
 * each session is held while it moves and let go after, at most moveConcurrency at once; one that
 * ended meanwhile is gone, one refused or lost is counted and logged; sessions opened during the
 * move are moved by a later round; nothing starts after moveMs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MoveReport } from '../targets/host/gateway/workers/messages';
import { type MoveHost, type MovingSession, moveSessions } from '../targets/host/gateway/workers/reload';
import { silentLog } from '../targets/node/log';

type Released = Extract<MoveReport, { t: 'released' }>;
type Adopted = Extract<MoveReport, { t: 'adopted' }>;

/** A main process with sessions on old slots 0 and 1 and new slots 2 and 3; answers after `delayMs` of fake time. */
class FakeMain implements MoveHost {
  clock = 0;
  readonly log = silentLog;
  readonly on = new Map<string, MovingSession>();
  readonly adopted = new Map<string, number>();
  readonly held = new Set<string>();
  readonly events: string[] = [];
  maxAtOnce = 0;
  private busy = 0;
  /** Per session id: what release answers (default: its bytes). */
  releaseAnswer = new Map<string, Partial<Released>>();
  adoptFails = new Set<string>();
  /** Sessions that open on an old slot while the first release is answered. */
  lateOpen: MovingSession[] = [];
  constructor(
    count: number,
    readonly delayMs = 10,
  ) {
    for (let i = 0; i < count; i++) this.on.set(`s${i}`, { slot: i % 2, sid: `s${i}`, device: `d${i}` });
  }
  now(): number {
    return this.clock;
  }
  remaining(): MovingSession[] {
    return [...this.on.values()];
  }
  place(device: string): number {
    return 2 + (Number(device.slice(1)) % 2);
  }
  moving(s: MovingSession, on: boolean): void {
    this.events.push(`${on ? 'hold' : 'free'} ${s.sid}`);
    if (on) this.held.add(s.sid);
    else this.held.delete(s.sid);
  }
  private async later(): Promise<void> {
    this.busy++;
    this.maxAtOnce = Math.max(this.maxAtOnce, this.busy);
    await new Promise((r) => setImmediate(r));
    this.clock += this.delayMs;
    this.busy--;
  }
  async release({ slot, sid }: MovingSession): Promise<Released> {
    await this.later();
    for (const s of this.lateOpen.splice(0)) this.on.set(s.sid, s);
    const a = this.releaseAnswer.get(sid);
    assert.ok(this.held.has(sid), `${sid} is held while it is released`);
    assert.is(this.on.get(sid)?.slot, slot);
    if (a !== undefined) {
      if (a.code === 'HF_ERR_UNKNOWN_SESSION') this.on.delete(sid);
      return { t: 'released', id: 0, bytes: null, ...a };
    }
    this.on.delete(sid); // its end reported by the old worker
    return { t: 'released', id: 0, bytes: new Uint8Array([1, 2, 3]) };
  }
  async adopt(slot: number, bytes: Uint8Array): Promise<Adopted> {
    await this.later();
    assert.equal([...bytes], [1, 2, 3]);
    const sid = [...this.held].find((s) => !this.adopted.has(s) && !this.on.has(s)) ?? '?';
    if (this.adoptFails.has(sid)) return { t: 'adopted', id: 0, sid: null, code: 'HF_ERR_HANDOFF', reason: 'refused' };
    this.adopted.set(sid, slot);
    return { t: 'adopted', id: 0, sid };
  }
}

test('every session moves to the slot placement names, held while it moves, at most moveConcurrency at once', async () => {
  const m = new FakeMain(50);
  const r = await moveSessions(m, { moveConcurrency: 8, moveMs: 60_000 });
  assert.equal({ moved: r.moved, gone: r.gone, failed: r.failed, left: r.left }, { moved: 50, gone: 0, failed: 0, left: 0 });
  assert.is(m.adopted.size, 50);
  for (const [sid, slot] of m.adopted) assert.is(slot, 2 + (Number(sid.slice(1)) % 2), sid);
  assert.ok(m.maxAtOnce <= 8 && m.maxAtOnce >= 2, `at once: ${m.maxAtOnce}`);
  assert.is(m.held.size, 0, 'every hold let go');
  assert.is(m.events.filter((e) => e.startsWith('hold')).length, 50);
  assert.ok(r.ms > 0);
  assert.ok(r.maxSessionMs >= 20 && r.maxSessionMs <= r.ms, `longest held ${r.maxSessionMs} ms`);
});

test('ended meanwhile: gone; not released or not adopted: failed; the holds are let go either way', async () => {
  const m = new FakeMain(6);
  m.releaseAnswer.set('s1', { code: 'HF_ERR_UNKNOWN_SESSION', reason: 'session has ended' });
  m.releaseAnswer.set('s2', { code: 'HF_ERR_TIMEOUT', reason: 'no answer' });
  m.adoptFails.add('s3');
  const r = await moveSessions(m, { moveConcurrency: 1, moveMs: 60_000 });
  assert.equal({ moved: r.moved, gone: r.gone, failed: r.failed, left: r.left }, { moved: 3, gone: 1, failed: 2, left: 1 });
  assert.ok(m.on.has('s2'), 'a session not released stays on its old worker (it ends with it)');
  assert.is(m.held.size, 0);
});

test('sessions opened on an old worker during the move are moved by a later round', async () => {
  const m = new FakeMain(4);
  m.lateOpen = [
    { slot: 0, sid: 'late1', device: 'd10' },
    { slot: 1, sid: 'late2', device: 'd11' },
  ];
  const r = await moveSessions(m, { moveConcurrency: 2, moveMs: 60_000 });
  assert.is(r.moved, 6);
  assert.ok(m.adopted.has('late1') && m.adopted.has('late2'));
  assert.is(r.left, 0);
});

test('no move starts after moveMs: the rest is left on the old workers', async () => {
  const m = new FakeMain(40, 100);
  const r = await moveSessions(m, { moveConcurrency: 2, moveMs: 1000 });
  assert.ok(r.moved > 0 && r.moved < 40, `moved ${r.moved}`);
  assert.is(r.left, 40 - r.moved);
  assert.ok(r.ms <= 1000 + 2 * 200, `${r.ms} ms: no more than the moves in flight past the bound`);
  assert.is(m.held.size, 0);
});

test.run();
