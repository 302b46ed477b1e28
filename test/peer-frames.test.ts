/**
 * Framing of the pair's control connection (targets/host/gateway/pair/peer-frames.ts): a 3-frame
 * stream split at every byte gives the same values; the maxFrameBytes bound (at, over) and bad CBOR
 * are HF_ERR_PEER; a broken decoder stays broken. A batch of frames is the same bytes as the frames one
 * by one.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHfError } from '../firmware/errors';
import { PeerFrameBatch, PeerFrameDecoder, encodePeerFrame } from '../targets/host/gateway/pair/peer-frames';

const values = [{ t: 'hb', epoch: 7 }, { t: 'snap', sid: new Uint8Array([1, 2, 3]), n: 0, bytes: new Uint8Array(300).fill(9) }, 'x'];
const stream = Buffer.concat(values.map((v) => encodePeerFrame(v)));

function throwsPeer(fn: () => unknown, part: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isHfError(e), String(e));
    assert.is(e.code, 'HF_ERR_PEER');
    assert.ok(e.message.includes(part), e.message);
    return;
  }
  assert.unreachable(`expected HF_ERR_PEER (${part})`);
}

test('a frame is a 4-byte big-endian length and the CBOR value', () => {
  assert.is(encodePeerFrame('x').toString('hex'), '000000026178');
  assert.equal(new PeerFrameDecoder().push(Buffer.from('000000026178', 'hex')), ['x']);
});

test('three frames split at every byte (and at every pair of bytes) come out whole and in order', () => {
  for (let i = 0; i <= stream.length; i++) {
    const d = new PeerFrameDecoder();
    const got = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i))];
    assert.equal(got, values, `split at ${i}`);
    assert.is(d.buffered, 0);
  }
  for (let i = 0; i < stream.length; i += 7) {
    for (let j = i; j <= stream.length; j += 5) {
      const d = new PeerFrameDecoder();
      const got = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i, j)), ...d.push(stream.subarray(j))];
      assert.equal(got, values, `split at ${i} and ${j}`);
    }
  }
  const d = new PeerFrameDecoder();
  const one: unknown[] = [];
  for (const b of stream) one.push(...d.push(Uint8Array.of(b)));
  assert.equal(one, values, 'one byte at a time');
});

test('maxFrameBytes: a frame at the bound is read, one byte over is HF_ERR_PEER naming the length, from its header alone', () => {
  const at = encodePeerFrame(new Uint8Array(100));
  const len = at.readUInt32BE(0);
  assert.is(new PeerFrameDecoder({ maxFrameBytes: len }).push(at).length, 1);
  const d = new PeerFrameDecoder({ maxFrameBytes: len - 1 });
  throwsPeer(() => d.push(at.subarray(0, 4)), `${len} bytes`);
  throwsPeer(() => d.push(at.subarray(4)), `${len} bytes`);
  throwsPeer(() => new PeerFrameDecoder().push(Buffer.from('04000001', 'hex')), '67108865');
  try {
    new PeerFrameDecoder({ maxFrameBytes: 0 });
    assert.unreachable();
  } catch (e) {
    assert.ok(isHfError(e) && e.code === 'HF_ERR_OPTION' && e.message.includes('maxFrameBytes'));
  }
});

test('a body that is not one CBOR value is HF_ERR_PEER', () => {
  throwsPeer(() => new PeerFrameDecoder().push(Buffer.from('00000001ff', 'hex')), 'not one CBOR value'); // a break alone
  throwsPeer(() => new PeerFrameDecoder().push(Buffer.from('000000026278', 'hex')), 'not one CBOR value'); // text of 2 bytes, 1 there
  throwsPeer(() => new PeerFrameDecoder().push(Buffer.from('00000003617800', 'hex')), 'not one CBOR value'); // a byte after the item
  throwsPeer(() => new PeerFrameDecoder().push(Buffer.from('00000000', 'hex')), 'not one CBOR value'); // empty
  throwsPeer(() => new PeerFrameDecoder().push(Buffer.from('00000003a10101', 'hex')), 'not one CBOR value'); // a map key not text
});

test('a batch is the frames one after another; a value it cannot encode leaves it as it was', () => {
  const b = new PeerFrameBatch();
  assert.is(b.bytes, 0);
  b.add(values[0]);
  assert.throws(() => b.add(new Map()));
  b.add(values[1]);
  b.add(values[2]);
  assert.is(b.bytes, stream.length);
  assert.equal(b.take(), stream);
  assert.is(b.bytes, 0, 'empty after take');
  // Past the first buffer's size (it grows) and back.
  const big = { t: 'snap', sid: new Uint8Array([1]), n: 1, bytes: new Uint8Array(10_000).fill(3) };
  b.add(big);
  b.add('x');
  assert.equal(b.take(), Buffer.concat([encodePeerFrame(big), encodePeerFrame('x')]));
  b.add('x');
  b.clear();
  assert.is(b.bytes, 0);
});

test.run();
