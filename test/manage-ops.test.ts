/**
 * The operation catalogue (firmware/manage/ops.ts): each operation's arguments typed, every refusal
 * with its code (unknown operation, bad arguments, oversize); the limits as options; the config's
 * policy (firmware/manage/policy.ts): the exec allow-list, the shell switch, allowed directories and
 * `..`; strict base64 for bytes that arrive as JSON.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromBase64, toBase64 } from '../firmware/base64';
import { collectInfo } from '../firmware/manage/info';
import { MANAGE_DEFAULTS, OPS, resolveManageLimits, validateOp } from '../firmware/manage/ops';
import { checkExec, checkPath, normalizePath, policyFromConfig } from '../firmware/manage/policy';
import { SimClock } from '../targets/sim/clock';
import { SimGpio } from '../targets/sim/gpio';
import { SimSystem } from '../targets/sim/system';
import { code, failure } from './support/errors';

test('every operation with good arguments gives typed arguments', () => {
  assert.equal(validateOp('info', undefined), { op: 'info', args: { disk: '/' } });
  assert.equal(validateOp('info', { disk: '/var' }), { op: 'info', args: { disk: '/var' } });
  assert.equal(validateOp('gpio.read', { chip: 'pinctrl-bcm2711', line: 17 }), { op: 'gpio.read', args: { chip: 'pinctrl-bcm2711', line: 17 } });
  assert.equal(validateOp('gpio.write', { chip: 'x', line: 0, value: 1 }), { op: 'gpio.write', args: { chip: 'x', line: 0, value: 1 } });
  assert.equal(validateOp('config.get', {}), { op: 'config.get', args: {} });
  assert.equal(validateOp('config.set', { config: { id: 'd1', forward: ['8080:127.0.0.1:80'] } }), { op: 'config.set', args: { config: { id: 'd1', forward: ['8080:127.0.0.1:80'] } } });
  assert.equal(validateOp('exec', { argv: ['/usr/bin/uptime', ''] }), { op: 'exec', args: { argv: ['/usr/bin/uptime', ''], shell: null, timeoutMs: MANAGE_DEFAULTS.execTimeoutMs } });
  assert.equal(validateOp('exec', { shell: 'ls | wc -l', timeoutMs: 5 }), { op: 'exec', args: { argv: null, shell: 'ls | wc -l', timeoutMs: 5 } });
  assert.equal(validateOp('file.get', { path: '/srv/a' }), { op: 'file.get', args: { path: '/srv/a' } });
  assert.equal(validateOp('file.put', { path: '/srv/a', data: new Uint8Array([1, 2]) }), { op: 'file.put', args: { path: '/srv/a', data: new Uint8Array([1, 2]), mode: 0o644 } });
  assert.equal(validateOp('file.put', { path: '/srv/a', data: 'AQI=', mode: 0o600 }), { op: 'file.put', args: { path: '/srv/a', data: new Uint8Array([1, 2]), mode: 0o600 } });
  assert.equal(validateOp('restart', null), { op: 'restart', args: {} });
  const sha = 'ab'.repeat(32);
  assert.equal(validateOp('update', { bundle: new Uint8Array(3), sha256: sha }), { op: 'update', args: { bundle: new Uint8Array(3), sha256: sha } });
  assert.is(OPS.length, 10);
});

test('the validator copies: changing the input afterwards changes nothing', () => {
  const data = new Uint8Array([1, 2, 3]);
  const put = validateOp('file.put', { path: '/a/b', data });
  data[0] = 9;
  assert.equal((put.args as { data: Uint8Array }).data, new Uint8Array([1, 2, 3]));
  const config = { a: { b: [1] } };
  const set = validateOp('config.set', { config });
  config.a.b.push(2);
  assert.equal((set.args as { config: unknown }).config, { a: { b: [1] } });
});

test('unknown operation: HF_ERR_UNKNOWN_OP naming it', () => {
  for (const op of ['shell', '', 'INFO', 'info ', 42, null, undefined, ['info']])
    assert.is(
      code(() => validateOp(op, {})),
      'HF_ERR_UNKNOWN_OP',
      String(op),
    );
  const f = failure(() => validateOp('reboot', {}));
  assert.ok(f.message.includes('"reboot"') && f.message.includes('restart'), f.message);
});

test('wrong or missing argument types: HF_ERR_BAD_ARGS naming the operation and argument', () => {
  const cases: [string, unknown, string][] = [
    ['info', [], 'arguments must be an object'],
    ['info', 'x', 'arguments must be an object'],
    ['info', { disk: 'relative' }, 'disk must be an absolute path'],
    ['info', { disks: '/' }, 'unknown argument "disks"'],
    ['gpio.read', { chip: 'x' }, 'line is missing'],
    ['gpio.read', { chip: '', line: 1 }, 'chip must not be empty'],
    ['gpio.read', { chip: 'x', line: 1.5 }, 'line must be an integer'],
    ['gpio.read', { chip: 'x', line: -1 }, 'line must be an integer'],
    ['gpio.write', { chip: 'x', line: 1, value: 2 }, 'value must be an integer in 0..1'],
    ['gpio.write', { chip: 'x', line: 1, value: true }, 'value must be an integer in 0..1'],
    ['config.get', { x: 1 }, 'it takes none'],
    ['config.set', { config: [1] }, 'config must be an object'],
    ['config.set', {}, 'config is missing'],
    ['exec', {}, 'exactly one of argv'],
    ['exec', { argv: ['a'], shell: 'a' }, 'exactly one of argv'],
    ['exec', { argv: [] }, 'argv must be a non-empty list'],
    ['exec', { argv: 'ls' }, 'argv must be a non-empty list'],
    ['exec', { argv: [''] }, 'argv[0] must not be empty'],
    ['exec', { argv: ['ls', 3] }, 'argv[1] must be a string'],
    ['exec', { argv: ['ls\0'] }, 'argv[0] must not contain NUL'],
    ['exec', { argv: ['ls'], timeoutMs: 0 }, 'timeoutMs must be an integer'],
    ['exec', { argv: ['ls'], timeoutMs: MANAGE_DEFAULTS.maxExecTimeoutMs + 1 }, 'timeoutMs must be an integer'],
    ['file.get', { path: 'etc/passwd' }, 'path must be an absolute path'],
    ['file.put', { path: '/a', data: 'not base64!' }, 'data must be bytes or base64'],
    ['file.put', { path: '/a', data: 12 }, 'data must be bytes or base64'],
    ['file.put', { path: '/a', data: new Uint8Array(1), mode: 0o1000 }, 'mode must be an integer in 0..511'],
    ['update', { bundle: new Uint8Array(1), sha256: 'AB'.repeat(32) }, 'sha256 must be 64 lowercase hex'],
  ];
  for (const [op, args, text] of cases) {
    const f = failure(() => validateOp(op, args));
    assert.is(f.code, 'HF_ERR_BAD_ARGS', `${op} ${JSON.stringify(args)}: ${f.message}`);
    assert.ok(f.message.startsWith(`${op}: `) && f.message.includes(text), `${op}: "${f.message}" should say "${text}"`);
  }
});

test('oversize arguments: HF_ERR_OVERSIZE at the bound + 1, accepted at the bound; bounds are options', () => {
  const L = resolveManageLimits({ maxFileBytes: 8, maxArgv: 3, maxTextChars: 10, maxConfigBytes: 20, maxUpdateBytes: 4 });
  assert.is(
    code(() => validateOp('file.put', { path: '/a', data: new Uint8Array(8) }, L)),
    'no error',
  );
  assert.is(
    code(() => validateOp('file.put', { path: '/a', data: new Uint8Array(9) }, L)),
    'HF_ERR_OVERSIZE',
  );
  assert.is(
    code(() => validateOp('file.put', { path: '/a', data: toBase64(new Uint8Array(9)) }, L)),
    'HF_ERR_OVERSIZE',
  );
  assert.is(
    code(() => validateOp('file.put', { path: '/a', data: 'A'.repeat(4000) }, L)),
    'HF_ERR_OVERSIZE',
    'long base64 refused before decoding',
  );
  assert.is(
    code(() => validateOp('exec', { argv: ['a', 'b', 'c'] }, L)),
    'no error',
  );
  assert.is(
    code(() => validateOp('exec', { argv: ['a', 'b', 'c', 'd'] }, L)),
    'HF_ERR_OVERSIZE',
  );
  assert.is(
    code(() => validateOp('file.get', { path: '/123456789' }, L)),
    'no error',
  );
  assert.is(
    code(() => validateOp('file.get', { path: '/1234567890' }, L)),
    'HF_ERR_OVERSIZE',
  );
  assert.is(
    code(() => validateOp('config.set', { config: { k: 'x'.repeat(17) } }, L)),
    'HF_ERR_OVERSIZE',
  );
  assert.is(
    code(() => validateOp('update', { bundle: new Uint8Array(5), sha256: '0'.repeat(64) }, L)),
    'HF_ERR_OVERSIZE',
  );
  assert.ok(failure(() => validateOp('exec', { argv: ['a', 'b', 'c', 'd'] }, L)).message.includes('maxArgv 3'));
});

test('limits: defaults, unknown names and ranges refused with HF_ERR_OPTION', () => {
  assert.equal(resolveManageLimits(), MANAGE_DEFAULTS);
  assert.is(
    code(() => resolveManageLimits({ maxFileBytes: -1 })),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => resolveManageLimits({ nope: 1 } as never)),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => resolveManageLimits({ execTimeoutMs: 20, maxExecTimeoutMs: 10 })),
    'HF_ERR_OPTION',
  );
  assert.is(resolveManageLimits({ maxArgv: 2 }).maxArgv, 2);
});

test('policy: exec allow-list by program or by exact argv; shell only when the config says so', () => {
  const p = policyFromConfig({ manage: { exec: ['/usr/bin/uptime', ['/bin/systemctl', 'restart', 'app']], files: ['/srv/app/'] } });
  const ex = (argv: string[]) => code(() => checkExec(p, { argv, shell: null, timeoutMs: 1 }));
  assert.is(ex(['/usr/bin/uptime']), 'no error');
  assert.is(ex(['/usr/bin/uptime', '-p']), 'no error');
  assert.is(ex(['/bin/systemctl', 'restart', 'app']), 'no error');
  assert.is(ex(['/bin/systemctl', 'stop', 'app']), 'HF_ERR_NOT_ALLOWED');
  assert.is(ex(['/bin/systemctl', 'restart', 'app', 'x']), 'HF_ERR_NOT_ALLOWED');
  assert.is(ex(['uptime']), 'HF_ERR_NOT_ALLOWED', 'argv[0] exactly as the config writes it');
  assert.is(ex(['/bin/rm', '-rf', '/']), 'HF_ERR_NOT_ALLOWED');
  assert.ok(failure(() => checkExec(p, { argv: ['/bin/rm'], shell: null, timeoutMs: 1 })).message.includes('"/bin/rm" is not on the device config\'s allow-list'));
  assert.is(
    code(() => checkExec(p, { argv: null, shell: 'uptime', timeoutMs: 1 })),
    'HF_ERR_NOT_ALLOWED',
  );
  const sh = policyFromConfig({ manage: { shell: true } });
  assert.is(
    code(() => checkExec(sh, { argv: null, shell: 'uptime', timeoutMs: 1 })),
    'no error',
  );
  assert.is(
    code(() => checkExec(policyFromConfig({}), { argv: ['/usr/bin/uptime'], shell: null, timeoutMs: 1 })),
    'HF_ERR_NOT_ALLOWED',
    'no manage section: nothing',
  );
});

test('policy: paths only under allowed directories, normalized, `..` cannot climb out', () => {
  const p = policyFromConfig({ manage: { files: ['/srv/app/', '/etc//app'] } });
  assert.equal(p.files, ['/srv/app', '/etc/app']);
  assert.is(checkPath(p, 'file.put', '/srv/app/a.txt'), '/srv/app/a.txt');
  assert.is(checkPath(p, 'file.put', '/srv/app/x/../b'), '/srv/app/b');
  assert.is(checkPath(p, 'file.put', '/srv//app/./c'), '/srv/app/c');
  for (const bad of ['/srv/app', '/srv/app/', '/srv/app/..', '/srv/app/../etc/passwd', '/srv/application/x', '/etc/passwd', '/srv/app/../../../etc/shadow', '/'])
    assert.is(
      code(() => checkPath(p, 'file.put', bad)),
      'HF_ERR_NOT_ALLOWED',
      bad,
    );
  const f = failure(() => checkPath(p, 'file.put', '/srv/app/../etc/passwd'));
  assert.ok(f.message.includes('(/srv/etc/passwd)') && f.message.includes('/srv/app, /etc/app'), f.message);
  assert.is(normalizePath('/../..'), '/');
  assert.is(normalizePath('/a/b/../../c/'), '/c');
  assert.is(
    code(() => checkPath(policyFromConfig({}), 'file.get', '/srv/app/a')),
    'HF_ERR_NOT_ALLOWED',
  );
});

test('policy: a manage section of the wrong shape is HF_ERR_BAD_ARGS', () => {
  for (const m of [1, [], { exec: 'ls' }, { exec: [1] }, { exec: [[]] }, { exec: [['']] }, { shell: 'yes' }, { files: ['rel'] }, { files: '/x' }, { other: 1 }])
    assert.is(
      code(() => policyFromConfig({ manage: m })),
      'HF_ERR_BAD_ARGS',
      JSON.stringify(m),
    );
});

test('base64: round trips, strict about alphabet, padding and unused bits', () => {
  for (let n = 0; n < 20; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
    const s = toBase64(b);
    assert.is(s, Buffer.from(b).toString('base64'));
    assert.equal(fromBase64(s), b);
  }
  for (const bad of ['A', 'AB', 'AB=', 'A===', 'AB=A', 'AB-_', 'AR==', 'AAB=', 'AA A', '====']) assert.is(fromBase64(bad), null, bad);
});

test('info: every reading, and a reading the board cannot give as its code', () => {
  const clock = new SimClock();
  const r = collectInfo(new SimSystem(clock), new SimGpio({ chips: [] }), '/', { target: 'sim' });
  assert.is(r.target, 'sim');
  assert.is(r.model, 'holdfast sim board');
  assert.is(typeof r.cpu_temperature_c, 'number');
  assert.equal(r.gpio_chips, { error: 'HF_ERR_UNSUPPORTED', message: 'no GPIO on this simulated board (configured without chips)' });
});

test.run();
