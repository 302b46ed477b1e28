/** The mux frame codec and MuxTable: the hex examples of docs/MUX.md, bad input, ids and credit. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, toHex } from '../firmware/bytes';
import { type MuxFrame, MuxOp, MuxTable, MuxWriter, StreamState, decodeFrame, encodeFrame, formatTarget, parseTarget, resolveMuxLimits } from '../firmware/mux';
import { code } from './support/errors';

const doc = readFileSync(join(__dirname, '..', 'docs', 'MUX.md'), 'utf8');
const te = new TextEncoder();

/** Table rows of the section that starts with `heading`: the cells of each body row. */
function rows(heading: string): string[][] {
  const at = doc.indexOf(heading);
  assert.ok(at >= 0, `docs/MUX.md has "${heading}"`);
  const out: string[][] = [];
  for (const line of doc.slice(at + heading.length).split('\n')) {
    if (line.startsWith('#')) break;
    if (!line.startsWith('|') || line.startsWith('|---') || line.startsWith('| name')) continue;
    out.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return out;
}

/** Hex from the doc: backticks and spaces dropped, `xx*N` repeated. */
function docHex(cell: string): Uint8Array {
  const h = cell.replace(/`/g, '').replace(/([0-9a-f]{2})\*(\d+)/g, (_, b: string, n: string) => b.repeat(Number(n)));
  return fromHex(h);
}

const GOOD: Record<string, MuxFrame> = {
  open: { op: MuxOp.OPEN, id: 1, credit: 262144, target: '127.0.0.1:5432' },
  'open-ok': { op: MuxOp.OPEN_OK, id: 1, credit: 65536 },
  data: { op: MuxOp.DATA, id: 1, data: te.encode('hello') },
  credit: { op: MuxOp.CREDIT, id: 1, credit: 4096 },
  end: { op: MuxOp.END, id: 1 },
  'open-v6': { op: MuxOp.OPEN, id: 2, credit: 1024, target: '[::1]:22' },
  'open-fail': { op: MuxOp.OPEN_FAIL, id: 3, code: 'HF_ERR_FORBIDDEN', message: 'db:5432' },
  reset: { op: MuxOp.RESET, id: 5, code: 'HF_ERR_CLOSED', message: '' },
  message: { op: MuxOp.MESSAGE, id: 0, data: te.encode('hi') },
  start: { op: MuxOp.START, id: 0, epoch: 0x0badcafe },
};

function plain(f: MuxFrame): unknown {
  return 'data' in f ? { ...f, data: [...f.data] } : f;
}

/** The device-side table the bad-frame examples are received by (docs/MUX.md 8.2). */
function deviceTable(): MuxTable {
  const t = new MuxTable({ role: 'device' });
  assert.is(t.open(4), 1);
  t.receive(fromHex('02 00000001 00000010'));
  return t;
}

function snapshot(t: MuxTable): string {
  return JSON.stringify([t.size, t.get(1), t.get(2), t.get(3)]);
}

test('every well-formed example of docs/MUX.md decodes as documented and encodes back to the same hex', () => {
  const seen = rows('### 8.1');
  assert.equal(seen.map((r) => r[0]).sort(), Object.keys(GOOD).sort());
  for (const [name, , hex] of seen) {
    const b = docHex(hex);
    assert.equal(plain(decodeFrame(b)), plain(GOOD[name]), name);
    assert.is(toHex(encodeFrame(GOOD[name])), toHex(b), name);
  }
});

test('every bad example of docs/MUX.md gives its code and leaves the table unchanged', () => {
  const seen = rows('### 8.2');
  assert.ok(seen.length >= 15);
  for (const [name, , hex, want] of seen) {
    const t = deviceTable();
    const before = snapshot(t);
    assert.is(
      code(() => t.receive(docHex(hex))),
      want.replace(/`/g, ''),
      name,
    );
    assert.is(snapshot(t), before, `${name}: state unchanged`);
  }
});

test('a frame over maxFrame is HF_ERR_LIMIT; exactly maxFrame decodes', () => {
  const limits = resolveMuxLimits({ maxFrame: 64 });
  const w = new MuxWriter(limits);
  assert.is(w.maxData, 59);
  const ok = w.data(1, new Uint8Array(59)).slice();
  assert.is(ok.length, 64);
  assert.is(decodeFrame(ok, limits).op, MuxOp.DATA);
  const over = new Uint8Array(65);
  over[0] = MuxOp.DATA;
  over[4] = 1;
  assert.is(
    code(() => decodeFrame(over, limits)),
    'HF_ERR_LIMIT',
  );
  assert.is(
    code(() => w.data(1, new Uint8Array(60))),
    'HF_ERR_TOO_BIG',
  );
  assert.is(
    code(() => w.message(new Uint8Array(60))),
    'HF_ERR_TOO_BIG',
  );
});

test('targets: one spelling per target; bad ones named', () => {
  assert.equal(parseTarget('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  assert.equal(parseTarget('[::1]:65535'), { host: '::1', port: 65535 });
  assert.is(formatTarget('::1', 22), '[::1]:22');
  assert.is(formatTarget('db.local', 5432), 'db.local:5432');
  for (const bad of ['h:080', 'h:65536', 'h:', ':80', 'a b:1', '::1:22', 'h:1x', 'ü:1'])
    assert.is(
      code(() => parseTarget(bad)),
      'HF_ERR_BUNDLE',
      bad,
    );
  assert.is(
    code(() => parseTarget('a'.repeat(300) + ':1')),
    'HF_ERR_LIMIT',
  );
  assert.is(
    code(() => formatTarget('h', 0)),
    'HF_ERR_BUNDLE',
  );
  // exactly maxTarget is fine, one more is not
  assert.is(
    code(() => parseTarget('a'.repeat(252) + ':22')),
    'no error',
  );
  assert.is(
    code(() => parseTarget('a'.repeat(253) + ':22')),
    'HF_ERR_LIMIT',
  );
});

test('an error message too long for the frame is cut at a character boundary', () => {
  const limits = resolveMuxLimits({ maxFrame: 64 });
  const w = new MuxWriter(limits);
  const f = w.reset(7, 'HF_ERR_CONNECT', 'é'.repeat(100));
  assert.ok(f.length <= 64);
  const d = decodeFrame(f.slice(), limits);
  assert.ok(d.op === MuxOp.RESET && /^é+$/.test(d.message));
  assert.is(
    code(() => w.reset(7, 'not a code', 'x')),
    'HF_ERR_OPTION',
  );
});

test('ids: device odd, gateway even, never reused; the opener parity is checked on OPEN', () => {
  const dev = new MuxTable({ role: 'device' });
  const gw = new MuxTable({ role: 'gateway' });
  assert.equal([dev.open(10), dev.open(10), dev.open(10)], [1, 3, 5]);
  assert.equal([gw.open(10), gw.open(10)], [2, 4]);
  const w = new MuxWriter();
  assert.is(gw.receive(w.open(1, 10, 'h:1').slice())!.op, MuxOp.OPEN);
  assert.is(gw.get(1)!.state, StreamState.ACCEPTING);
  assert.is(
    code(() => gw.receive(w.open(1, 10, 'h:1').slice())),
    'HF_ERR_PROTOCOL',
  ); // reused id
  assert.is(
    code(() => gw.receive(w.open(2, 10, 'h:1').slice())),
    'HF_ERR_PROTOCOL',
  ); // gateway parity
  assert.is(
    code(() => dev.receive(w.open(7, 10, 'h:1').slice())),
    'HF_ERR_PROTOCOL',
  ); // device parity
});

test('a stream lives until END went both ways; frames for a closed id are ignored', () => {
  const dev = new MuxTable({ role: 'device' });
  const gw = new MuxTable({ role: 'gateway' });
  const w = new MuxWriter();
  const id = dev.open(100);
  gw.receive(w.open(id, 100, 'h:1').slice());
  gw.accept(id, 50);
  dev.receive(w.openOk(id, 50).slice());
  assert.is(dev.sendable(id, 1000), 50);
  dev.sent(id, 50);
  gw.receive(w.data(id, new Uint8Array(50)).slice());
  assert.is(dev.sendable(id, 1000), 0);
  assert.is(
    code(() => dev.sent(id, 1)),
    'HF_ERR_PROTOCOL',
  );
  gw.grant(id, 20);
  dev.receive(w.credit(id, 20).slice());
  assert.is(dev.sendable(id, 8), 8);
  dev.end(id);
  gw.receive(w.end(id).slice());
  assert.is(dev.sendable(id, 8), 0, 'nothing after END');
  assert.is(
    code(() => gw.receive(w.data(id, new Uint8Array(1)).slice())),
    'HF_ERR_PROTOCOL',
  );
  gw.end(id);
  dev.receive(w.end(id).slice());
  assert.is(dev.size + gw.size, 0);
  // stale frames on the closed id: ignored, not errors
  assert.is(dev.receive(w.credit(id, 5).slice()), null);
  assert.is(gw.receive(w.reset(id, 'HF_ERR_CLOSED', '').slice()), null);
});

test('RESET crossing DATA and OPEN_OK: the late frames are ignored', () => {
  const dev = new MuxTable({ role: 'device' });
  const w = new MuxWriter();
  const id = dev.open(100);
  dev.reset(id); // gave up before OPEN_OK arrived
  assert.is(dev.receive(w.openOk(id, 10).slice()), null);
  assert.is(dev.receive(w.data(id, new Uint8Array(3)).slice()), null);
  assert.is(
    code(() => dev.receive(w.openOk(id + 2, 10).slice())),
    'HF_ERR_PROTOCOL',
    'never opened',
  );
});

test('DATA before OPEN_OK, and refusing, follow the states', () => {
  const gw = new MuxTable({ role: 'gateway' });
  const w = new MuxWriter();
  gw.receive(w.open(1, 100, 'h:1').slice());
  assert.is(
    code(() => gw.receive(w.data(1, new Uint8Array(1)).slice())),
    'HF_ERR_PROTOCOL',
  );
  assert.is(
    code(() => gw.sent(1, 1)),
    'HF_ERR_PROTOCOL',
  );
  gw.refuse(1);
  assert.is(gw.size, 0);
  assert.is(
    code(() => gw.accept(1, 1)),
    'HF_ERR_CLOSED',
  );
});

test('maxStreams bounds the streams this side opens', () => {
  const t = new MuxTable({ role: 'device', maxStreams: 2 });
  t.open(1);
  t.open(1);
  assert.is(
    code(() => t.open(1)),
    'HF_ERR_LIMIT',
  );
});

test('options are validated and name the bad value', () => {
  assert.is(
    code(() => new MuxTable({ role: 'server' as 'device' })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new MuxTable({ role: 'device', maxFrame: 32 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new MuxTable({ role: 'device', maxFrame: 65537 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new MuxTable({ role: 'device', maxStreams: 0 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => new MuxTable({ role: 'device', maxFrame: 64, maxTarget: 200 })),
    'HF_ERR_OPTION',
  );
});

test('START: a device mux that starts over (docs/MUX.md 2a)', () => {
  const w = new MuxWriter(resolveMuxLimits());
  const gw = new MuxTable({ role: 'gateway' });
  assert.is(gw.receive(w.start(7).slice())?.op, MuxOp.START, 'the first START');
  gw.receive(w.open(1, 100, 'h:1').slice());
  gw.accept(1, 100);
  assert.is(gw.size, 1);
  assert.is(
    code(() => gw.receive(w.open(1, 100, 'h:1').slice())),
    'HF_ERR_PROTOCOL',
    'id 1 again, same mux: refused',
  );
  gw.receive(w.start(9).slice());
  assert.is(gw.size, 0, 'a second START: the previous streams are gone');
  assert.is(gw.receive(w.open(1, 100, 'h:1').slice())?.op, MuxOp.OPEN, 'and device ids start over');

  const dev = new MuxTable({ role: 'device' });
  dev.starting(42);
  assert.is(dev.receive(w.data(4, te.encode('x')).slice()), null, 'before the answer: a frame of the old mux is ignored');
  assert.is(dev.receive(w.start(41).slice()), null, 'an answer to another START is ignored');
  assert.is(dev.receive(w.data(6, te.encode('x')).slice()), null, 'still waiting');
  assert.is(dev.receive(w.start(42).slice())?.op, MuxOp.START, 'the answer');
  assert.is(
    code(() => dev.receive(w.data(8, te.encode('x')).slice())),
    'HF_ERR_PROTOCOL',
    'after it, unknown ids are errors again',
  );
});

test.run();
