/** channelStream: a Duplex over a whole channel (splitting, backpressure both ways, half-close, errors). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { channelStream } from '../targets/host/app/stream';
import { channels, collect, errorOf, nextEvent, own, random, sha256, sleep, until, within } from './support/bounded';
import { code } from './support/errors';

test(
  'writes are cut into messages of at most maxChunk; bytes arrive whole and in order',
  within(5000, async (defer) => {
    const { device, gateway } = await channels(defer);
    const a = channelStream(device, { maxChunk: 1000 });
    const b = channelStream(gateway);
    own(defer, a, b);
    const sizes: number[] = [];
    gateway.on('message', (m: Buffer) => sizes.push(m.length));
    const data = random(300_000);
    const got = collect(b);
    a.write(data.subarray(0, 2500));
    a.end(data.subarray(2500));
    const back = await got;
    assert.is(sha256(back), sha256(data));
    assert.ok(Math.max(...sizes) <= 1000, `largest message ${Math.max(...sizes)}`);
    assert.equal(sizes.slice(0, 3), [1000, 1000, 500]);
  }),
);

test(
  'a full out-ring holds the write callback until drain; 3 MB crosses a tiny ring intact',
  within(8000, async (defer) => {
    const { device, gateway } = await channels(defer, { client: { outSlots: 4, outBytes: 16384 } });
    const a = channelStream(device, { maxChunk: 4096 });
    const b = channelStream(gateway);
    own(defer, a, b);
    const data = random(3 << 20);
    const got = collect(b);
    let refused = 0;
    const send = device.send.bind(device);
    device.send = (m: Uint8Array) => {
      const ok = send(m);
      if (!ok) refused++;
      return ok;
    };
    a.end(data);
    assert.is(sha256(await got), sha256(data));
    assert.ok(refused > 0, 'the channel pushed back');
  }),
);

/**
 * After paused delivery the link re-advertises its receive window once half its message slots or
 * half its bytes opened (firmware/endpoint.ts deliver()): small and large messages both resume.
 */
function pausedReader(maxChunk: number) {
  return within(8000, async (defer) => {
    const { device, gateway } = await channels(defer);
    const a = channelStream(device, { maxChunk });
    const b = channelStream(gateway, { highWaterMark: 1024 });
    own(defer, a, b);
    const data = random(2 << 20);
    let acked = 0;
    const chunks = 128;
    const step = data.length / chunks;
    for (let i = 0; i < chunks; i++) a.write(data.subarray(i * step, (i + 1) * step), () => (acked += step));
    a.end();
    await sleep(150);
    // nobody reads b: what got through is bounded by the rings (256 KiB each way) and b's buffers
    assert.ok(acked < 1 << 20, `writer stalled at ${acked} bytes`);
    assert.ok(b.readableLength <= 300_000, `reader buffered ${b.readableLength}`);
    const got = await collect(b);
    assert.is(sha256(got), sha256(data));
  });
}

test('a reader that stops pauses the channel; the writer waits, nothing is lost', pausedReader(1024));
test('the same with 16 KiB messages (the window reopens on bytes, not only on slots)', pausedReader(16384));

test(
  'half-close: one side ends, still reads the answer; then both streams close cleanly',
  within(5000, async (defer) => {
    const { device, gateway } = await channels(defer);
    const a = channelStream(device);
    const b = channelStream(gateway);
    own(defer, a, b);
    const closed = [nextEvent(a, 'close'), nextEvent(b, 'close')];
    b.on('data', () => {});
    b.once('end', () => b.end('reply after end'));
    const reply = collect(a);
    a.end('question');
    assert.is((await reply).toString(), 'reply after end');
    await Promise.all(closed);
    await until(() => device.closed && gateway.closed);
    assert.ok(!a.errored && !b.errored);
  }),
);

test(
  'destroy(err) destroys the channel with that reason',
  within(5000, async (defer) => {
    const { device, gateway } = await channels(defer);
    const a = channelStream(device);
    const b = channelStream(gateway);
    own(defer, b);
    const err = errorOf(a);
    const closed = nextEvent<Error>(device, 'close');
    a.write('some');
    a.destroy(new Error('local failure'));
    assert.is((await err).message, 'local failure');
    const e = (await closed) as Error & { code: string };
    assert.is(e.code, 'HF_ERR_CLOSED');
    assert.match(e.message, 'local failure');
  }),
);

/** LinkBase.abort() tells the peer (an error item on one last bundle): its stream errors at once. */
test(
  'destroy(err): the peer stream errors with HF_ERR_CLOSED',
  within(5000, async (defer) => {
    const { device, gateway } = await channels(defer);
    const a = channelStream(device);
    const b = channelStream(gateway);
    own(defer, a);
    const err = errorOf(b);
    a.destroy(new Error('local failure'));
    assert.is((await err).code, 'HF_ERR_CLOSED');
  }),
);

test(
  'a stream over an already closed channel errors; bad options are HF_ERR_OPTION',
  within(5000, async (defer) => {
    const { device } = await channels(defer);
    assert.is(
      code(() => channelStream(device, { maxChunk: 0 })),
      'HF_ERR_OPTION',
    );
    assert.is(
      code(() => channelStream(device, { highWaterMark: 1.5 })),
      'HF_ERR_OPTION',
    );
    device.destroy();
    await until(() => device.closed);
    const s = channelStream(device);
    assert.is((await errorOf(s)).code, 'HF_ERR_CLOSED');
  }),
);

test.run();
