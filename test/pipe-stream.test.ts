/**
 * A cluster pipe's byte stream (targets/host/gateway/cluster/pipe-stream.ts), two ends wired to
 * each other in memory: bytes both ways with half-close, flow control by bytes (a slow reader
 * bounds what is in flight), a missing frame or a reset ends the stream with a code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PipeFrame, PipeStream } from '../targets/host/gateway/cluster/pipe-stream';
import { collect, errorOf, random, sha256, within } from './support/bounded';

/** Two ends; frames cross on the next turn (as NATS delivers them), `tap` sees each on its way. */
function pair(o: { windowBytes?: number; frameBytes?: number } = {}, tap: (from: 'a' | 'b', f: Uint8Array) => boolean = () => true): { a: PipeStream; b: PipeStream } {
  const ends: { a?: PipeStream; b?: PipeStream } = {};
  const a = new PipeStream('a', (f) => tap('a', f) && setImmediate(() => ends.b?.receive(f)), o);
  const b = new PipeStream('b', (f) => tap('b', f) && setImmediate(() => ends.a?.receive(f)), o);
  ends.a = a;
  ends.b = b;
  return { a, b };
}

test(
  'bytes both ways, each with its own end',
  within(5000, async () => {
    const { a, b } = pair({ windowBytes: 64 * 1024, frameBytes: 4096 });
    const up = random(1 << 20);
    const down = random(300_000);
    const gotAtB = collect(b);
    const gotAtA = collect(a);
    a.end(up);
    b.end(down);
    assert.is(sha256(await gotAtB), sha256(up));
    assert.is(sha256(await gotAtA), sha256(down));
  }),
);

test(
  'a reader that does not read: the writer stops at the window, and goes on once it reads',
  within(5000, async () => {
    let inFlight = 0;
    let most = 0;
    const { a, b } = pair({ windowBytes: 32 * 1024, frameBytes: 1024 }, (from, f) => {
      if (from === 'a' && f[0] === PipeFrame.DATA) inFlight += f.byteLength - 5;
      if (from === 'b' && f[0] === PipeFrame.CREDIT) inFlight -= new DataView(f.buffer, f.byteOffset).getUint32(1);
      most = Math.max(most, inFlight);
      return true;
    });
    b.pause();
    const data = random(1 << 20);
    let done = false;
    a.write(data, () => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.not.ok(done, 'the write waits for credit');
    // At most the window is uncredited; the reader holds its buffer (64 KiB) and the window.
    assert.ok(most <= 32 * 1024, `in flight at most the window (${most})`);
    assert.ok(b.readableLength <= 64 * 1024 + 32 * 1024, `buffered at the reader ${b.readableLength}`);
    const got = collect(b);
    b.resume();
    a.end();
    assert.is(sha256(await got), sha256(data));
    assert.ok(done);
    assert.ok(most <= 32 * 1024, `in flight at most the window (${most})`);
  }),
);

test(
  'a frame lost on the way resets the stream with HF_ERR_NATS; the other end learns it',
  within(5000, async () => {
    let n = 0;
    const { a, b } = pair({ frameBytes: 1024 }, (from, f) => !(from === 'a' && f[0] === PipeFrame.DATA && n++ === 3));
    const errB = errorOf(b);
    const errA = errorOf(a);
    b.resume();
    a.write(random(10_000));
    const e = await errB;
    assert.is(e.code, 'HF_ERR_NATS');
    assert.match(e.message, /frame 4 where 3 was due/);
    const ea = await errA;
    assert.is(ea.code, 'HF_ERR_NATS', 'the reset carries the code');
    assert.match(ea.message, /reset by the peer/);
  }),
);

test(
  'destroyed with a code: the peer ends with that code; a clean end both ways sends no reset',
  within(5000, async () => {
    const sent: number[] = [];
    const { a, b } = pair({}, (from, f) => {
      if (from === 'a') sent.push(f[0]);
      return true;
    });
    const e = errorOf(b);
    a.on('error', () => {});
    a.destroy(Object.assign(new Error('target refused'), { code: 'HF_ERR_CONNECT' }));
    assert.is((await e).code, 'HF_ERR_CONNECT');
    assert.equal(sent, [PipeFrame.RESET]);
    const c = pair({}, (from, f) => {
      if (from === 'a') sent.push(f[0]);
      return true;
    });
    sent.length = 0;
    c.b.resume();
    c.a.resume();
    c.a.end(Buffer.from('x'));
    c.b.end();
    await Promise.all([new Promise((r) => c.a.once('close', r)), new Promise((r) => c.b.once('close', r))]);
    assert.equal(sent, [PipeFrame.DATA, PipeFrame.END], 'no reset after a clean end');
    const d = pair();
    const ed = errorOf(d.b);
    d.a.on('error', () => {});
    d.b.receive(new Uint8Array([9, 0, 0, 0, 0]));
    assert.is((await ed).code, 'HF_ERR_PEER', 'an unknown frame kind');
  }),
);

test.run();
