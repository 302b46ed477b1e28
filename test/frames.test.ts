/**
 * TCP framing (targets/host/net/frames.ts): `[length u32 BE][body]`, built by `frame()` and reassembled by
 * FrameReader from chunks cut anywhere; zero and over-limit lengths are HF_ERR_LIMIT.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FRAME_HEAD, FrameReader, epochFrame, frame } from '../targets/host/net/frames';
import { code, message } from './support/errors';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

/** Feeds chunks, returns the frames as hex. */
function feed(r: FrameReader, chunks: Buffer[]): string[] {
  const got: string[] = [];
  for (const c of chunks) r.push(c, (b) => got.push(b.toString('hex')));
  return got;
}

test('frame(): big-endian u32 length, then the body', () => {
  assert.is(FRAME_HEAD, 4);
  assert.is(frame(hex('a1 b2 c3'), 3).toString('hex'), '00000003' + 'a1b2c3');
  assert.is(frame(hex('ff'), 1).toString('hex'), '00000001' + 'ff');
  const big = Buffer.alloc(0x010203, 0x5a);
  const f = frame(big, big.length);
  assert.is(f.subarray(0, 4).toString('hex'), '00010203');
  assert.is(f.length, 4 + 0x010203);
  assert.ok(f.subarray(4).equals(big));
});

test('frame(): only body[0, len) is framed, and it is a copy', () => {
  const body = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const f = frame(body, 2);
  assert.is(f.toString('hex'), '00000002' + '0102');
  body[0] = 99;
  assert.is(f.toString('hex'), '00000002' + '0102', 'the link may reuse its buffer');
  assert.is(frame(body, 0).toString('hex'), '00000000');
});

test('one frame in one chunk; several frames in one chunk', () => {
  const r = new FrameReader(1024);
  assert.equal(feed(r, [hex('00000002 abcd')]), ['abcd']);
  assert.is(r.buffered, 0);
  const three = Buffer.concat([frame(hex('01'), 1), frame(hex('0203'), 2), frame(hex('040506'), 3)]);
  assert.equal(feed(r, [three]), ['01', '0203', '040506']);
  assert.is(r.buffered, 0);
  // Two frames and the start of a third.
  assert.equal(feed(r, [hex('00000001 aa 00000001 bb 000000')]), ['aa', 'bb']);
  assert.is(r.buffered, 3);
  assert.equal(feed(r, [hex('02 cc')]), []);
  assert.is(r.buffered, 1, 'header taken, one body byte of two');
  assert.equal(feed(r, [hex('dd 00000001 ee')]), ['ccdd', 'ee']);
  assert.is(r.buffered, 0);
});

test('frames split at every byte boundary, and fed one byte at a time', () => {
  const bodies = ['01', 'a0a1a2a3a4a5a6a7', '77'.repeat(300), 'fe'];
  const stream = Buffer.concat(bodies.map((b) => frame(hex(b), b.length / 2)));
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader(1024);
    const got = feed(r, [stream.subarray(0, cut), stream.subarray(cut)]);
    assert.equal(got, bodies, `cut at ${cut}`);
    assert.is(r.buffered, 0);
  }
  // Two cuts at a time over the first two frames' bytes (and everything after).
  const head = frame(hex(bodies[0]), 1).length + frame(hex(bodies[1]), 8).length;
  for (let a = 0; a <= head; a++) {
    for (let b = a; b <= head + 2; b++) {
      const r = new FrameReader(1024);
      assert.equal(feed(r, [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]), bodies, `cuts ${a}, ${b}`);
    }
  }
  const r = new FrameReader(1024);
  const got: string[] = [];
  const buffered: number[] = [];
  for (let i = 0; i < stream.length; i++) {
    r.push(stream.subarray(i, i + 1), (b) => got.push(b.toString('hex')));
    buffered.push(r.buffered);
  }
  assert.equal(got, bodies);
  // After the 1st byte of a 4-byte header, 1 byte is buffered; after the 4th, 0 (the header was taken).
  assert.equal(buffered.slice(0, 5), [1, 2, 3, 0, 0]);
});

test('empty chunks change nothing', () => {
  const r = new FrameReader(16);
  const got = feed(r, [Buffer.alloc(0), hex('0000'), Buffer.alloc(0), hex('0002'), Buffer.alloc(0), hex('1122'), Buffer.alloc(0)]);
  assert.equal(got, ['1122']);
  assert.is(r.buffered, 0);
});

test('a frame body is the bytes of its own frame only, and stays valid after more pushes', () => {
  const r = new FrameReader(16);
  const kept: Buffer[] = [];
  r.push(hex('00000002 0102 0000'), (b) => kept.push(b));
  r.push(hex('0002 0304'), (b) => kept.push(b));
  assert.equal(
    kept.map((b) => b.toString('hex')),
    ['0102', '0304'],
  );
  assert.is(kept[0].length, 2);
});

test('maxFrame is allowed; maxFrame + 1 and 0 are HF_ERR_LIMIT, as soon as the header is complete', () => {
  const r = new FrameReader(4);
  assert.equal(feed(r, [frame(hex('01020304'), 4)]), ['01020304']);
  const over = new FrameReader(4);
  assert.is(
    code(() => over.push(hex('00000005'), () => {})),
    'HF_ERR_LIMIT',
    'the body need not arrive',
  );
  assert.ok(message(() => new FrameReader(4).push(hex('00000005'), () => {})).includes('5'), 'the message shows the length');
  assert.is(
    code(() => new FrameReader(4).push(hex('ffffffff'), () => {})),
    'HF_ERR_LIMIT',
  );
  assert.is(
    code(() => new FrameReader(4).push(hex('80000000'), () => {})),
    'HF_ERR_LIMIT',
  );
  const zero = new FrameReader(4);
  assert.is(
    code(() => zero.push(hex('00000000'), () => {})),
    'HF_ERR_LIMIT',
  );
  assert.ok(message(() => new FrameReader(4).push(hex('00000000'), () => {})).includes('0 bytes'));
  // A bad header after good frames in the same chunk: the good ones are delivered first.
  const got: string[] = [];
  const mixed = new FrameReader(4);
  const c = code(() => mixed.push(hex('00000001 aa 00000009'), (b) => got.push(b.toString('hex'))));
  assert.is(c, 'HF_ERR_LIMIT');
  assert.equal(got, ['aa']);
  // A header split across chunks is checked once it is whole.
  const split = new FrameReader(4);
  assert.is(
    code(() => split.push(hex('0000'), () => {})),
    'no error',
  );
  assert.is(
    code(() => split.push(hex('0100'), () => {})),
    'HF_ERR_LIMIT',
  );
});

test('buffered counts bytes held for a partial frame', () => {
  const r = new FrameReader(100);
  assert.is(r.buffered, 0);
  r.push(hex('00'), () => {});
  assert.is(r.buffered, 1);
  r.push(hex('00000a'), () => {});
  assert.is(r.buffered, 0, 'the header is taken once whole');
  r.push(hex('0102030405'), () => {});
  assert.is(r.buffered, 5);
  let n = 0;
  r.push(hex('060708090a 000000'), () => n++);
  assert.is(n, 1);
  assert.is(r.buffered, 3);
});

test('epoch frames (a length of 0, then a u32 epoch): told to takeEpochs at every split, between frames; without it a length of 0 is HF_ERR_LIMIT', () => {
  assert.is(epochFrame(7).toString('hex'), '0000000000000007');
  const stream = Buffer.concat([epochFrame(3), frame(hex('aabb'), 2), epochFrame(0xfffffffe), frame(hex('cc'), 1)]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader(16);
    const got: string[] = [];
    r.takeEpochs((e) => got.push(`epoch ${e}`));
    for (const part of [stream.subarray(0, cut), stream.subarray(cut)]) r.push(part, (b) => got.push(b.toString('hex')));
    assert.equal(got, ['epoch 3', 'aabb', 'epoch 4294967294', 'cc'], `cut at ${cut}`);
    assert.is(r.buffered, 0);
  }
  assert.is(
    code(() => new FrameReader(16).push(epochFrame(3), () => {})),
    'HF_ERR_LIMIT',
  );
});

test.run();
