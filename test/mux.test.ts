/** Mux over a loopback channel pair: streams, refusals, half-close, reset, credit, backpressure, close. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromHex } from '../firmware/bytes';
import { ErrorCode } from '../firmware/errors';
import { Mux, type MuxStream } from '../targets/host/app/mux';
import { channels, collect, errorOf, muxes, nextEvent, own, random, sha256, sleep, until, within } from './support/bounded';
import { code } from './support/errors';

/** Accepts every stream and echoes it back (half-close passes through). */
function echo(m: Mux): void {
  m.on('stream', (s: MuxStream) => {
    s.on('error', () => {}); // the tests look at the opener's side
    s.accept();
    s.pipe(s);
  });
}

test(
  'open, accept, echo both ways; plain messages ride alongside',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer);
    echo(gw);
    const got: string[] = [];
    gw.on('message', (m: Buffer) => {
      got.push(m.toString());
      gw.send(Buffer.from('re:' + m.toString()));
    });
    const replies: string[] = [];
    dev.on('message', (m: Buffer) => replies.push(m.toString()));
    const s = dev.open('127.0.0.1', 9);
    own(defer, s);
    assert.is(s.id, 1);
    const connected = nextEvent(s, 'connect');
    const data = random(700_000);
    const back = collect(s);
    dev.send(Buffer.from('one'));
    s.write(Buffer.alloc(0));
    s.end(data);
    dev.send(Buffer.from('two'));
    await connected;
    assert.is(sha256(await back), sha256(data));
    await until(() => replies.length === 2);
    assert.equal(got, ['one', 'two']);
    assert.equal(replies, ['re:one', 're:two']);
    assert.is(s.bytesWritten, data.length);
    assert.is(s.bytesRead, data.length);
  }),
);

test(
  'the gateway opens even ids, the device odd; the listener sees the target',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer);
    const seen = nextEvent<MuxStream>(dev, 'stream');
    let target = '';
    dev.once('stream', (s: MuxStream, t: string) => {
      target = t;
      s.accept();
      s.end('from device');
    });
    const s = gw.open('::1', 22);
    own(defer, s);
    const text = collect(s);
    s.end();
    const inc = await seen;
    own(defer, inc);
    assert.is(s.id, 2);
    assert.is(inc.id, 2);
    assert.is(target, '[::1]:22');
    assert.is(inc.host, '::1');
    assert.is(inc.port, 22);
    assert.is((await text).toString(), 'from device');
  }),
);

test(
  'refusals carry their code; with no listener an OPEN is HF_ERR_FORBIDDEN',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer);
    const a = dev.open('127.0.0.1', 1);
    own(defer, a);
    assert.is((await errorOf(a)).code, 'HF_ERR_FORBIDDEN');
    gw.on('stream', (s: MuxStream) => setTimeout(() => s.refuse(ErrorCode.CONNECT, `${s.target}: ECONNREFUSED`), 10));
    const b = dev.open('127.0.0.1', 2);
    own(defer, b);
    b.write('waits for OPEN_OK, then fails');
    const e = await errorOf(b);
    assert.is(e.code, 'HF_ERR_CONNECT');
    assert.match(e.message, '127.0.0.1:2: ECONNREFUSED');
    await until(() => dev.size === 0 && gw.size === 0);
  }),
);

test(
  'half-close per stream: the opener ends, still reads the reply; the stream is then gone on both sides',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer);
    gw.on('stream', (s: MuxStream) => {
      s.accept();
      own(defer, s);
      collect(s).then((q) => s.end(`got ${q.length} bytes`));
    });
    const s = dev.open('127.0.0.1', 7);
    own(defer, s);
    const closed = nextEvent(s, 'close');
    const reply = collect(s);
    s.end(random(100_000));
    assert.is((await reply).toString(), 'got 100000 bytes');
    await closed;
    assert.not.ok(s.errored);
    await until(() => dev.size === 0 && gw.size === 0);
  }),
);

test(
  'destroy(err) resets the stream: the peer gets the code; other streams go on',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer);
    const incoming: MuxStream[] = [];
    gw.on('stream', (s: MuxStream) => {
      incoming.push(s);
      own(defer, s);
      s.accept();
      if (s.port === 2) s.pipe(s);
    });
    const a = dev.open('127.0.0.1', 1);
    const b = dev.open('127.0.0.1', 2);
    own(defer, a, b);
    a.write('x');
    await until(() => incoming.length === 2);
    const peerErr = errorOf(incoming[0]);
    a.reset(ErrorCode.TIMEOUT, 'the device gave up');
    const e = await peerErr;
    assert.is(e.code, 'HF_ERR_TIMEOUT');
    assert.is(e.message, 'the device gave up');
    // a plain Error's code is not a mux code: the RESET says HF_ERR_CLOSED
    const c = dev.open('127.0.0.1', 3);
    own(defer, c);
    c.write('y');
    await until(() => incoming.length === 3);
    const peerErr2 = errorOf(incoming[2]);
    c.destroy(Object.assign(new Error('gone'), { code: 'ECONNRESET' }));
    assert.is((await peerErr2).code, 'HF_ERR_CLOSED');
    const data = random(200_000);
    const back = collect(b);
    b.end(data);
    assert.is(sha256(await back), sha256(data));
  }),
);

test(
  'a reader that does not read stops its stream at its credit; another stream keeps moving',
  within(8000, async (defer) => {
    const credit = 65536;
    const { dev, gw } = await muxes(defer, { mux: { credit } });
    const served: MuxStream[] = [];
    gw.on('stream', (s: MuxStream) => {
      s.accept();
      own(defer, s);
      served.push(s);
    });
    const slow = dev.open('127.0.0.1', 1);
    const fast = dev.open('127.0.0.1', 2);
    own(defer, slow, fast);
    slow.pause(); // nobody reads it
    await until(() => served.length === 2);
    const big = random(1 << 20);
    let slowDone = false;
    served[0].end(big, () => (slowDone = true));
    const fastData = random(3 << 20);
    const fastGot = collect(fast);
    served[1].end(fastData);
    assert.is(sha256(await fastGot), sha256(fastData));
    await sleep(50);
    assert.is(slow.bytesRead, credit, 'the slow stream got exactly its credit');
    assert.ok(slow.readableLength <= credit);
    assert.not.ok(slowDone, "the slow stream's writer is still waiting");
    // now read it: the rest flows
    const rest = collect(slow);
    slow.resume();
    assert.is(sha256(await rest), sha256(big));
    await until(() => slowDone);
  }),
);

test(
  'a channel that refuses messages: writers wait, control frames stay few, every stream arrives whole',
  within(10000, async (defer) => {
    const { dev, gw } = await muxes(defer, { client: { outSlots: 4, outBytes: 32768 }, server: { outSlots: 4, outBytes: 32768 }, mux: { maxFrame: 8192, credit: 32768 } });
    echo(gw);
    const n = 12;
    let maxQueued = 0;
    let blocked = 0;
    type Inside = { control: unknown[]; blocked: boolean };
    const iv = setInterval(() => {
      const [d, g] = [dev as unknown as Inside, gw as unknown as Inside];
      maxQueued = Math.max(maxQueued, d.control.length, g.control.length);
      if (d.blocked || g.blocked) blocked++;
    }, 1);
    defer(() => clearInterval(iv));
    const runs = Array.from({ length: n }, async () => {
      const s = dev.open('127.0.0.1', 7);
      own(defer, s);
      const data = random(150_000 + Math.floor(Math.random() * 50_000));
      const back = collect(s);
      s.end(data);
      assert.is(sha256(await back), sha256(data));
    });
    await Promise.all(runs);
    assert.ok(blocked > 0, 'the channel pushed back');
    assert.ok(maxQueued <= 4 * n, `at most ${maxQueued} control frames queued`);
  }),
);

test(
  'plain messages: send() false when the channel is full, then drain',
  within(5000, async (defer) => {
    const { dev, gw } = await muxes(defer, { client: { outSlots: 4, outBytes: 16384 } });
    let got = 0;
    gw.on('message', () => got++);
    let sent = 0;
    let refusals = 0;
    while (sent < 200) {
      if (dev.send(new Uint8Array(1000))) sent++;
      else {
        refusals++;
        await nextEvent(dev, 'drain');
      }
    }
    await until(() => got === 200);
    assert.ok(refusals > 0);
    assert.is(
      code(() => dev.send(new Uint8Array(16384))),
      'HF_ERR_TOO_BIG',
    );
  }),
);

test(
  'a peer that breaks the protocol fails the mux with the code',
  within(5000, async (defer) => {
    const { device, gateway } = await channels(defer);
    const gw = new Mux(gateway, { role: 'gateway' });
    own(defer, gw);
    const closed = nextEvent<Error & { code: string }>(gw, 'close');
    device.send(fromHex('04 00000004 68')); // DATA on a stream never opened
    assert.is((await closed).code, 'HF_ERR_PROTOCOL');
    await until(() => gateway.closed);
  }),
);

test(
  'close(): every stream is reset on both sides, the session ends cleanly, twice is fine',
  within(5000, async (defer) => {
    const { dev, gw, device, gateway } = await muxes(defer);
    const far: MuxStream[] = [];
    gw.on('stream', (s: MuxStream) => {
      own(defer, s);
      far.push(s);
      s.accept();
    });
    const near = [dev.open('127.0.0.1', 1), dev.open('127.0.0.1', 2)];
    own(defer, ...near);
    await until(() => far.length === 2);
    const farErrs = far.map(errorOf);
    const closes = [nextEvent(dev, 'close'), nextEvent(gw, 'close')];
    dev.close();
    dev.close();
    assert.ok(near.every((s) => s.destroyed));
    for (const e of await Promise.all(farErrs)) assert.is(e.code, 'HF_ERR_CLOSED');
    const [de, ge] = await Promise.all(closes);
    assert.is(de, undefined);
    assert.is(ge, undefined);
    assert.ok(device.closed && gateway.closed);
    assert.is(
      code(() => dev.open('127.0.0.1', 1)),
      'HF_ERR_CLOSED',
    );
    assert.is(
      code(() => dev.send(new Uint8Array(1))),
      'HF_ERR_CLOSED',
    );
    gw.close();
  }),
);

test(
  'bad arguments and options are HF_ERR_OPTION; maxStreams refuses with HF_ERR_LIMIT',
  within(5000, async (defer) => {
    const { device, gateway } = await channels(defer);
    assert.is(
      code(() => new Mux(device, { role: 'device', credit: 0 })),
      'HF_ERR_OPTION',
    );
    assert.is(
      code(() => new Mux(device, {} as { role: 'device' })),
      'HF_ERR_OPTION',
    );
    const dev = new Mux(device, { role: 'device', maxStreams: 1 });
    const gw = new Mux(gateway, { role: 'gateway', maxStreams: 2 });
    own(defer, dev, gw);
    echo(gw);
    assert.is(
      code(() => dev.open('bad host', 1)),
      'HF_ERR_OPTION',
    );
    assert.is(
      code(() => dev.open('h', 70000)),
      'HF_ERR_OPTION',
    );
    const a = dev.open('127.0.0.1', 1);
    const b = dev.open('127.0.0.1', 1);
    own(defer, a, b);
    assert.is((await errorOf(b)).code, 'HF_ERR_LIMIT');
    const c = gw.open('127.0.0.1', 1); // the device side is full: it refuses
    own(defer, c);
    assert.is((await errorOf(c)).code, 'HF_ERR_LIMIT');
  }),
);

test.run();
