/**
 * What the workers' main process reads before a handoff (targets/host/gateway/workers/): the first
 * bytes of HTTP requests and TCP frames fed in every split, the session key of a hello and of a
 * session's bundle (the worked examples of docs/PROTOCOL.md 12, as hex), the placement policies,
 * and the directory of sessions.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Directory } from '../targets/host/gateway/workers/directory';
import { FirstBytes, FirstBytesState, type FrontKind } from '../targets/host/gateway/workers/first-bytes';
import { leastLoaded, place, placementPolicy, rendezvous } from '../targets/host/gateway/workers/placement';
import { SessionKeys } from '../targets/host/gateway/workers/session-key';
import { code } from './support/errors';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// docs/PROTOCOL.md 12, "hello": device dev-1, no session id.
const HELLO = hex(`a5 00 01 02 01 03 00 05 82 19 04 00 1a 00 04 00
00 07 81 82 01 a8 62 69 64 65 64 65 76 2d 31 61
6e 07 65 6e 6f 6e 63 65 d8 40 50 00 01 02 03 04
05 06 07 08 09 0a 0b 0c 0d 0e 0f 65 70 72 6f 6f
66 d8 40 40 63 73 65 71 00 63 6f 66 66 00 63 6c
69 6d 85 19 02 00 1a 00 04 00 00 1a 00 01 00 00
08 04 64 72 69 6e 67 82 19 04 00 1a 00 04 00 00`);
// docs/PROTOCOL.md 12, "data": session a0a1...af.
const DATA = hex(`a6 00 01 01 50 a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa
ab ac ad ae af 02 02 03 03 05 82 19 03 ff 1a 00
03 ff fc 06 81 84 00 00 44 74 3d 32 31 44 74 3d
32 32`);
const SID = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf';
const LIMITS = { maxHeadBytes: 1024, maxBodyBytes: 4096 };

function httpRequest(body: Buffer, extra = ''): Buffer {
  return Buffer.concat([Buffer.from(`POST /v1/link HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/cbor\r\nContent-Length: ${body.length}\r\n${extra}\r\n`), body]);
}

function tcpFrame(body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length);
  return Buffer.concat([h, body]);
}

/** Feeds `bytes` in pieces of `step` bytes; returns the reader and the count of pushes it took to be DONE. */
function feed(kind: FrontKind, bytes: Buffer, step: number): { r: FirstBytes; pushes: number } {
  const r = new FirstBytes(kind, LIMITS);
  let pushes = 0;
  for (let at = 0; at < bytes.length && r.state !== FirstBytesState.DONE; at += step) {
    r.push(bytes.subarray(at, at + step));
    pushes++;
  }
  return { r, pushes };
}

test('first bytes: an HTTP request and a TCP frame in every split give the bundle, and keep every byte', () => {
  for (const [kind, bytes, body] of [
    ['http', httpRequest(HELLO), HELLO],
    ['tcp', tcpFrame(DATA), DATA],
  ] as [FrontKind, Buffer, Buffer][]) {
    for (const step of [1, 2, 3, 7, 64, bytes.length]) {
      const { r } = feed(kind, bytes, step);
      assert.is(r.state, FirstBytesState.DONE, `${kind} in pieces of ${step}`);
      assert.equal(Buffer.from(r.bundle as Uint8Array), body, `${kind} in pieces of ${step}: the bundle`);
      assert.equal(r.read, bytes, `${kind} in pieces of ${step}: every byte kept`);
    }
  }
});

test('first bytes: bytes past the first request are kept for the worker; not DONE one byte short', () => {
  const two = Buffer.concat([httpRequest(DATA), httpRequest(DATA)]);
  const r = new FirstBytes('http', LIMITS);
  assert.is(r.push(two.subarray(0, httpRequest(DATA).length - 1)), FirstBytesState.BODY);
  assert.is(r.push(two.subarray(httpRequest(DATA).length - 1)), FirstBytesState.DONE);
  assert.equal(r.read, two);
  const t = new FirstBytes('tcp', LIMITS);
  assert.is(t.push(tcpFrame(DATA).subarray(0, 3)), FirstBytesState.HEAD);
  assert.is(t.push(tcpFrame(DATA).subarray(3, 4)), FirstBytesState.BODY);
});

test('first bytes: what cannot be routed is DONE without a bundle (the worker answers it)', () => {
  const none = (kind: FrontKind, b: Buffer): void => {
    const r = new FirstBytes(kind, LIMITS);
    assert.is(r.push(b), FirstBytesState.DONE, b.toString('latin1').slice(0, 40));
    assert.is(r.bundle, null);
  };
  none('http', Buffer.from('POST /v1/link HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'));
  none('http', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  none('http', Buffer.from(`POST /v1/link HTTP/1.1\r\nContent-Length: ${LIMITS.maxBodyBytes + 1}\r\n\r\n`));
  none('http', Buffer.from(`POST /v1/link HTTP/1.1\r\nX: ${'a'.repeat(LIMITS.maxHeadBytes)}`));
  none('tcp', hex('00000000'));
  none('tcp', hex('00001001')); // 4097 > maxBodyBytes
  const at = new FirstBytes('tcp', LIMITS);
  at.push(hex('00001000')); // exactly maxBodyBytes: read
  assert.is(at.state, FirstBytesState.BODY);
});

test('session keys: a hello gives its device, a bundle its session id, anything else none', () => {
  const k = new SessionKeys({});
  assert.equal(k.of(HELLO), { kind: 'hello', device: 'dev-1', labels: {} });
  assert.equal(k.of(DATA), { kind: 'sid', sid: SID });
  assert.equal(k.of(null), { kind: 'none' });
  assert.equal(k.of(hex('a0')), { kind: 'none' }, 'a bundle with neither');
  assert.equal(k.of(hex('ff ff ff')), { kind: 'none' }, 'not CBOR');
  // Inside a larger buffer (a view at an offset), as the reader hands it.
  const r = feed('http', httpRequest(DATA), 5).r;
  assert.equal(k.of(r.bundle), { kind: 'sid', sid: SID });
});

test('placement: rendezvous hashing is stable, spreads, and moves only the devices of a worker that left', () => {
  const all = [0, 1, 2, 3].map((slot) => ({ slot, sessions: 0 }));
  const counts = [0, 0, 0, 0];
  const before = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const s = rendezvous(`pi-${i}`, all);
    assert.is(rendezvous(`pi-${i}`, all), s);
    counts[s]++;
    before.set(`pi-${i}`, s);
  }
  for (const n of counts) assert.ok(n > 800 && n < 1200, `spread ${counts}`);
  const three = all.filter((c) => c.slot !== 2);
  for (const [dev, s] of before) {
    const now = rendezvous(dev, three);
    if (s !== 2) assert.is(now, s, `${dev} stays on ${s}`);
    else assert.ok(now !== 2);
  }
  assert.is(rendezvous('x', []), -1);
  assert.is(leastLoaded([]), -1);
  assert.is(
    leastLoaded([
      { slot: 0, sessions: 3 },
      { slot: 1, sessions: 1 },
      { slot: 2, sessions: 1 },
    ]),
    1,
  );
  assert.is(
    place('least-loaded', 'pi-1', [
      { slot: 0, sessions: 3 },
      { slot: 1, sessions: 1 },
    ]),
    1,
  );
  assert.is(
    place('hash', null, [
      { slot: 0, sessions: 3 },
      { slot: 1, sessions: 1 },
    ]),
    1,
    'no device: least loaded',
  );
  assert.is(placementPolicy('hash'), 'hash');
  assert.is(
    code(() => placementPolicy('label')),
    'HF_ERR_OPTION',
  );
});

test('directory: sessions by id and by device, counted per worker, dropped with their worker', () => {
  const d = new Directory(2);
  d.opened(0, 's1', 'pi-1');
  d.opened(1, 's2', 'pi-2');
  d.opened(0, 's3', 'pi-1'); // pi-1's newer session replaces the older one on the same worker
  assert.is(d.slotOfSession('s1'), 0);
  assert.is(d.slotOfDevice('pi-1'), 0);
  assert.is(d.sessions(0), 2);
  d.ended(0, 's1', 'pi-1');
  assert.is(d.slotOfDevice('pi-1'), 0, 'the end of the older session leaves the newer one');
  d.ended(1, 's3', 'pi-1');
  assert.is(d.slotOfSession('s3'), 0, 'an end from another worker changes nothing');
  assert.is(d.dropSlot(0), 1);
  assert.is(d.slotOfDevice('pi-1'), -1);
  assert.is(d.slotOfSession('s3'), -1);
  assert.is(d.sessions(0), 0);
  assert.is(d.size, 1);
});

test("directory: a reload's new slots count from 0; a session moved reports its end on the old slot, then opens on the new", () => {
  const d = new Directory(2);
  d.opened(1, 's2', 'pi-2');
  assert.equal(d.sessionsOn(1), [{ sid: 's2', device: 'pi-2' }]);
  assert.equal(d.sessionsOn(3), []);
  assert.is(d.sessions(3), 0, 'a slot of the next generation');
  d.ended(1, 's2', 'pi-2');
  d.opened(3, 's2', 'pi-2');
  assert.is(d.slotOfSession('s2'), 3);
  assert.is(d.slotOfDevice('pi-2'), 3);
  assert.is(d.sessions(3), 1);
  assert.is(d.sessions(1), 0);
  assert.is(d.dropSlot(1), 0, "the old slot's exit takes nothing of the moved session");
  assert.is(d.slotOfSession('s2'), 3);
});

test.run();
