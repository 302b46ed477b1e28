/**
 * The device key's sources (tools/cli/key.ts) and the check on files of secrets: a file group or
 * others may read or write is refused with HF_ERR_OPTION naming its mode, the bits and the fix,
 * unless --insecure-key-file (then a warning); modes are not checked on Windows.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkSecretFile, deviceKey } from '../tools/cli/key';
import { code, message } from './support/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-key-'));

function file(name: string, text: string, mode: number): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
}

test('--key, then --key-file (its first line), then HOLDFAST_KEY', () => {
  const f = file('a.key', 'from-file\nsecond line\n', 0o600);
  assert.equal(deviceKey({ key: 'flag' }, {}), { key: 'flag', from: '--key' });
  assert.equal(deviceKey({ 'key-file': f }, { HOLDFAST_KEY: 'env' }), { key: 'from-file', from: `--key-file ${f}` });
  assert.equal(deviceKey({}, { HOLDFAST_KEY: 'env' }), { key: 'env', from: 'HOLDFAST_KEY' });
  assert.is(
    code(() => deviceKey({}, {})),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => deviceKey({ key: '' }, {})),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => deviceKey({ 'key-file': file('empty.key', '\n', 0o600) }, {})),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => deviceKey({ 'key-file': path.join(dir, 'none') }, {})),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => deviceKey({ 'key-file': dir }, {})),
    'HF_ERR_OPTION',
  );
});

test('0600 and 0400 pass; every group or other bit is refused, naming the mode, the bits and chmod 600', () => {
  assert.is(checkSecretFile('key-file', file('ok.key', 'k', 0o600), false), null);
  assert.is(checkSecretFile('key-file', file('ro.key', 'k', 0o400), false), null);
  for (const mode of [0o640, 0o604, 0o644, 0o620, 0o666, 0o601, 0o700 | 0o070]) {
    const f = file(`m${mode.toString(8)}.key`, 'k', mode);
    assert.is(
      code(() => checkSecretFile('key-file', f, false)),
      'HF_ERR_OPTION',
      mode.toString(8),
    );
    const m = message(() => checkSecretFile('key-file', f, false));
    const oct = (n: number): string => `0${n.toString(8).padStart(3, '0')}`;
    assert.is(m, `--key-file ${f}: mode ${oct(mode)}, group or others may read it (bits ${oct(mode & 0o077)}); fix: chmod 600 ${f} (or give --insecure-key-file)`);
    assert.is(checkSecretFile('key-file', f, true), `--key-file ${f}: mode ${oct(mode)}, group or others may read it (bits ${oct(mode & 0o077)}); fix: chmod 600 ${f} (taken: --insecure-key-file)`);
  }
});

test('deviceKey refuses a key file others can read; --insecure-key-file takes it with a warning', () => {
  const f = file('loose.key', 'loose\n', 0o644);
  assert.is(
    code(() => deviceKey({ 'key-file': f }, {})),
    'HF_ERR_OPTION',
  );
  assert.match(
    message(() => deviceKey({ 'key-file': f }, {})),
    'chmod 600',
  );
  const k = deviceKey({ 'key-file': f, 'insecure-key-file': true }, {});
  assert.is(k.key, 'loose');
  assert.match(k.warning ?? '', /mode 0644, .*; fix: chmod 600 \S+ \(taken: --insecure-key-file\)$/);
  assert.is(deviceKey({ 'key-file': file('tight.key', 'tight\n', 0o600), 'insecure-key-file': true }, {}).warning, undefined, 'no warning for a private file');
  // Where file modes mean nothing there is nothing to check.
  assert.is(deviceKey({ 'key-file': f }, {}, 'win32').key, 'loose');
});

test('a file the check cannot stat passes it (reading it then says why)', () => {
  assert.is(checkSecretFile('devices', path.join(dir, 'missing.json'), false), null);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
