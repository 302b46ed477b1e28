/**
 * The event stream's parts on fake time and a fake response: the batcher (a target changed twice in
 * the window sent once, with its latest state; one batch per job; never flushed from inside `add`),
 * the framing of a batch (split at maxBatchTargets: capacity-1, capacity, capacity+1), and one
 * reader's backlog (straight to the socket while there is room; then whole events wait, a job's
 * batches merge, a device's events are replaced; 'drain' empties it in order; over maxBacklogBytes
 * the stream is destroyed once). Bad hub options: HF_ERR_OPTION.
 */
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SseHub } from '../targets/host/gateway/manage/sse';
import { type BatchTimer, TargetBatcher, type TargetChange } from '../targets/host/gateway/manage/sse-batch';
import { SseClient, targetsEvents } from '../targets/host/gateway/manage/sse-client';
import { code } from './support/errors';

class FakeTimer implements BatchTimer {
  fns: (() => void)[] = [];
  set(fn: () => void): unknown {
    this.fns.push(fn);
    return fn;
  }
  clear(h: unknown): void {
    this.fns = this.fns.filter((f) => f !== h);
  }
  fire(): void {
    for (const f of this.fns.splice(0)) f();
  }
}

/** A response whose socket never sends: each write waits in `writableLength` until `drain()`. */
class FakeRes extends EventEmitter {
  writableLength = 0;
  written: string[] = [];
  destroyed = false;
  write(text: string): boolean {
    this.written.push(text);
    this.writableLength += text.length;
    return this.writableLength < 16_384;
  }
  end(): void {}
  destroy(): void {
    this.destroyed = true;
  }
  drain(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
}

const change = (deviceId: string, state: string): TargetChange => ({ deviceId, state: state as TargetChange['state'], at: 1, sends: 1 });
const ev = (jobId: string, deviceId: string, state: string) => ({ jobId, ...change(deviceId, state) });

test('batcher: per job, each target once with its latest state, flushed by the timer only', () => {
  const t = new FakeTimer();
  const out: [string, TargetChange[]][] = [];
  const b = new TargetBatcher(0, (job, changes) => out.push([job, changes]), t);
  b.add(ev('j1', 'a', 'sent'));
  b.add(ev('j1', 'b', 'sent'));
  b.add(ev('j2', 'a', 'sent'));
  b.add(ev('j1', 'a', 'succeeded'));
  assert.equal(out, [], 'nothing from inside add');
  assert.is(t.fns.length, 1, 'one timer for the window');
  assert.is(b.size, 3);
  t.fire();
  assert.equal(
    out.map(([job, cs]) => [job, cs.map((c) => `${c.deviceId}:${c.state}`)]),
    [
      ['j1', ['a:succeeded', 'b:sent']],
      ['j2', ['a:sent']],
    ],
  );
  assert.not.ok('jobId' in out[0][1][0], 'the batch names the job, its targets do not');
  assert.is(b.size, 0);
  b.add(ev('j1', 'c', 'sent'));
  b.close();
  assert.is(t.fns.length, 0, 'close stops the timer');
});

test('framing: split at maxBatchTargets (capacity-1, capacity, capacity+1)', () => {
  const cs = (n: number): string[] => Array.from({ length: n }, (_, i) => JSON.stringify(change(`d${i}`, 'sent')));
  for (const [n, want] of [
    [2, [2]],
    [3, [3]],
    [4, [3, 1]],
    [7, [3, 3, 1]],
  ] as [number, number[]][]) {
    const evs = targetsEvents('j1', cs(n), 3);
    assert.equal(
      evs.map((e) => {
        assert.ok(e.startsWith('event: targets\ndata: ') && e.endsWith('\n\n'), e);
        const d = JSON.parse(e.slice('event: targets\ndata: '.length));
        assert.is(d.job, 'j1');
        return d.targets.length;
      }),
      want,
      `${n} targets`,
    );
  }
});

function client(bounds: Partial<{ maxBufferBytes: number; maxBacklogBytes: number; maxBatchTargets: number }> = {}) {
  const res = new FakeRes();
  const drops: SseClient[] = [];
  const c = new SseClient(
    res as unknown as ServerResponse,
    () => true,
    { maxBufferBytes: 100, maxBacklogBytes: 10_000, maxBatchTargets: 2, ...bounds },
    (x) => drops.push(x),
  );
  return { res, c, drops };
}

const json = (entries: [string, string][]): Map<string, string> => new Map(entries.map(([d, s]) => [d, JSON.stringify(change(d, s))]));

function parsed(res: FakeRes): string[] {
  return res.written.map((w) => {
    const name = /^event: (\S+)/.exec(w)?.[1];
    const data = JSON.parse(w.slice(w.indexOf('data: ') + 6));
    if (name === 'targets') return `targets ${data.job} ${data.targets.map((t: TargetChange) => `${t.deviceId}:${t.state}`).join(',')}`;
    return `${name} ${data.id}`;
  });
}

test('a reader keeping up: events straight to the socket', () => {
  const { res, c } = client();
  c.send('event: device\ndata: {"id":"a"}\n\n', 'device:a');
  c.sendTargets('j1', json([['a', 'sent']]));
  assert.equal(parsed(res), ['device a', 'targets j1 a:sent']);
  assert.not.ok(c.behind);
});

test('a slow reader: whole events wait, batches of a job merge, a device is replaced; drain empties it in order, split', () => {
  const { res, c, drops } = client();
  c.send(`event: device\ndata: {"id":"x","pad":"${'p'.repeat(120)}"}\n\n`);
  assert.ok(res.writableLength > 100, 'the socket is full');
  c.sendTargets(
    'j1',
    json([
      ['a', 'sent'],
      ['b', 'sent'],
      ['c', 'sent'],
    ]),
  );
  c.send('event: device\ndata: {"id":"a","v":1}\n\n', 'device:a');
  c.sendTargets('j2', json([['a', 'sent']]));
  c.sendTargets(
    'j1',
    json([
      ['a', 'succeeded'],
      ['d', 'sent'],
    ]),
  );
  c.send('event: device\ndata: {"id":"a","v":2}\n\n', 'device:a');
  assert.is(res.written.length, 1, 'the rest waits');
  assert.ok(c.behind);
  for (let i = 0; i < 10 && c.behind; i++) res.drain();
  assert.not.ok(c.behind);
  assert.equal(parsed(res).slice(1), ['targets j1 a:succeeded,b:sent', 'targets j1 c:sent,d:sent', 'device a', 'targets j2 a:sent']);
  assert.ok(res.written[3].includes('"v":2'), 'the latest of the device');
  assert.equal(drops, []);
  assert.ok(c.peakBacklogBytes > 0);
});

test('a backlog over maxBacklogBytes: destroyed, reported once, nothing more written', () => {
  const { res, c, drops } = client({ maxBacklogBytes: 500 });
  c.send(`event: device\ndata: {"id":"x","pad":"${'p'.repeat(120)}"}\n\n`);
  const many: [string, string][] = Array.from({ length: 20 }, (_, i) => [`d${i}`, 'sent']);
  c.sendTargets('j1', json(many));
  assert.ok(res.destroyed);
  assert.is(drops.length, 1);
  c.sendTargets('j1', json(many));
  c.send('event: job\ndata: {"id":"j1"}\n\n');
  res.drain();
  assert.is(drops.length, 1);
  assert.is(res.written.length, 1);
});

test('a batch bigger than the backlog to a reader keeping up: what fits goes now, only the rest counts', () => {
  const { res, c, drops } = client({ maxBufferBytes: 100_000, maxBacklogBytes: 100 });
  const many: [string, string][] = Array.from({ length: 50 }, (_, i) => [`d${i}`, 'sent']);
  c.sendTargets('j1', json(many));
  assert.equal(drops, []);
  assert.is(res.written.length, 25);
});

test('hub options: whole numbers in range, else HF_ERR_OPTION', () => {
  assert.is(
    code(() => new SseHub({ maxBufferBytes: 1000 })),
    'HF_ERR_OPTION',
    'under the stream high-water mark',
  );
  assert.is(
    code(() => new SseHub({ maxBatchTargets: 0 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new SseHub({ batchMs: 1.5 })),
    'HF_ERR_OPTION',
  );
  const h = new SseHub({ batchMs: 5, maxBatchTargets: 10 });
  assert.is(h.size, 0);
  h.close();
});

test.run();
