/**
 * Process logs (targets/node/log.ts): text and JSON lines to a capturing `out`, level filtering, how
 * field values are rendered, and option validation.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, hfError } from '../firmware/errors';
import { type LogOptions, createLog, silentLog } from '../targets/node/log';
import { failure } from './support/errors';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A log whose lines are kept (each write must be exactly one line ending in a newline). */
function capture(opts: LogOptions = {}) {
  const lines: string[] = [];
  const log = createLog({
    ...opts,
    out: {
      write(s: string) {
        assert.ok(s.endsWith('\n') && s.indexOf('\n') === s.length - 1, `one line per write: ${JSON.stringify(s)}`);
        lines.push(s.slice(0, -1));
      },
    },
  });
  return { log, lines };
}

/** A text line without its timestamp (checked to be ISO 8601). */
function body(line: string): string {
  const i = line.indexOf(' ');
  assert.ok(ISO.test(line.slice(0, i)), `timestamp in ${JSON.stringify(line)}`);
  return line.slice(i + 1);
}

test('text: timestamp, padded level, name, event, then fields', () => {
  const before = Date.now();
  const { log, lines } = capture({ name: 'device' });
  log.info('transport tcp', { gateway: '127.0.0.1:8081' });
  log.warn('session failed', { code: 'HF_ERR_TIMEOUT', unacknowledged: 3 });
  log.error('stopped');
  log.info('no fields either', {});
  assert.is(lines.length, 4);
  assert.is(body(lines[0]), 'info  device: transport tcp  gateway=127.0.0.1:8081');
  assert.is(body(lines[1]), 'warn  device: session failed  code=HF_ERR_TIMEOUT unacknowledged=3');
  assert.is(body(lines[2]), 'error device: stopped');
  assert.is(body(lines[3]), 'info  device: no fields either');
  const t = Date.parse(lines[0].slice(0, 24));
  assert.ok(t >= before - 1 && t <= Date.now() + 1, 'the time is now');
});

test('text: the default name is holdfast and the default format is text', () => {
  const { log, lines } = capture();
  log.info('hello');
  assert.is(body(lines[0]), 'info  holdfast: hello');
});

test('text: field values', () => {
  const { log, lines } = capture({ name: 'n' });
  const err = hfError(ErrorCode.AUTH, 'bad proof');
  log.info('e', {
    plain: 'a-b_c.d:1/2@x+y',
    spaced: 'two words',
    quote: 'say "hi"',
    empty: '',
    newline: 'a\nb',
    n: 42,
    neg: -1.5,
    yes: true,
    nil: null,
    gone: undefined,
    err,
    plainErr: new Error('disk full'),
    obj: { a: 1 },
    list: [1, 'x'],
  });
  assert.is(
    body(lines[0]),
    'info  n: e  plain=a-b_c.d:1/2@x+y spaced="two words" quote="say \\"hi\\"" empty="" newline="a\\nb" n=42 neg=-1.5 yes=true nil=null ' +
      'err="HF_ERR_AUTH" plainErr="disk full" obj={"a":1} list=[1,"x"]',
  );
  // Only undefined fields: nothing after the event.
  log.info('f', { a: undefined });
  assert.is(body(lines[1]), 'info  n: f');
});

test('json: one object per line with t, level, name, event and the fields', () => {
  const { log, lines } = capture({ name: 'gateway', format: 'json' });
  log.info('listening', { http: 'http://127.0.0.1:8080/', tcp: '127.0.0.1:8081', sessions: 2, gone: undefined });
  const o = JSON.parse(lines[0]);
  assert.ok(ISO.test(o.t), o.t);
  assert.equal({ ...o, t: 'T' }, { t: 'T', level: 'info', name: 'gateway', event: 'listening', http: 'http://127.0.0.1:8080/', tcp: '127.0.0.1:8081', sessions: 2 });
  assert.equal(Object.keys(o).slice(0, 4), ['t', 'level', 'name', 'event']);
  log.warn('x');
  assert.equal({ ...JSON.parse(lines[1]), t: 'T' }, { t: 'T', level: 'warn', name: 'gateway', event: 'x' });
});

test('json: Errors as code and message, bytes as hex (Uint8Array and Buffer alike)', () => {
  const { log, lines } = capture({ format: 'json' });
  log.error('failed', {
    err: hfError(ErrorCode.STORAGE, 'write /x: ENOSPC'),
    plain: new Error('boom'),
    bytes: new Uint8Array([0, 1, 0xab, 0xff]),
    buf: Buffer.from('0aff', 'hex'),
    nested: { sid: new Uint8Array([0xde, 0xad]) },
    empty: new Uint8Array(0),
    view: new Uint8Array([9, 8, 7, 6]).subarray(1, 3),
  });
  const o = JSON.parse(lines[0]);
  assert.equal(o.err, { code: 'HF_ERR_STORAGE', message: 'write /x: ENOSPC' });
  assert.equal(o.plain, { message: 'boom' });
  assert.is(o.bytes, '0001abff');
  assert.is(o.buf, '0aff');
  assert.equal(o.nested, { sid: 'dead' });
  assert.is(o.empty, '');
  assert.is(o.view, '0807');
});

test('level filtering: the chosen level and above', () => {
  const all = ['debug', 'info', 'warn', 'error'] as const;
  for (const [i, level] of all.entries()) {
    for (const format of ['text', 'json'] as const) {
      const { log, lines } = capture({ level, format });
      for (const lv of all) log[lv](`at ${lv}`);
      const got = lines.map((l) => (format === 'json' ? JSON.parse(l).level : body(l).split(' ')[0]));
      assert.equal(got, all.slice(i), `${format} at ${level}`);
    }
  }
  // The default is info.
  const { log, lines } = capture();
  log.debug('hidden');
  log.info('shown');
  assert.is(lines.length, 1);
});

test('bad format or level is HF_ERR_OPTION naming the value', () => {
  const bad: [LogOptions, string][] = [
    [{ format: 'xml' as never }, 'xml'],
    [{ format: 'TEXT' as never }, 'TEXT'],
    [{ level: 'verbose' as never }, 'verbose'],
    [{ level: 'INFO' as never }, 'INFO'],
    [{ level: '' as never }, 'level'],
    [{ level: 'toString' as never }, 'toString'],
    [{ level: 'constructor' as never }, 'constructor'],
    [{ level: '__proto__' as never }, '__proto__'],
  ];
  for (const [opts, shown] of bad) {
    const f = failure(() => createLog({ ...opts, out: { write() {} } }));
    assert.is(f.code, 'HF_ERR_OPTION', JSON.stringify(opts));
    assert.ok(f.message.includes(shown), `${f.message} shows ${shown}`);
  }
});

test('silentLog writes nothing and accepts anything', () => {
  silentLog.debug('a');
  silentLog.info('b', { x: 1 });
  silentLog.warn('c');
  silentLog.error('d', { err: new Error('e') });
});

test.run();
