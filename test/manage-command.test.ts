/**
 * Management commands and replies on the wire (firmware/manage/command.ts, docs/PROTOCOL.md section
 * 14): the bytes of each item written out in hex, round trips, and every malformed envelope refused
 * with HF_ERR_COMMAND naming what is wrong.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeValue } from '../firmware/cbor-value';
import { decodeCommand, decodeReply, encodeCommand, encodeReply, errorOf, MAX_ERROR_MESSAGE } from '../firmware/manage/command';
import { failure } from './support/errors';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// {"v": 1, "id": "j1.d1", "op": "info", "args": {}, "deadlineMs": 5000}
const COMMAND_HEX = 'a5 6176 01 626964 656a312e6431 626f70 64696e666f 6461726773 a0 6a646561646c696e654d73 191388';

test('command: the bytes of section 14', () => {
  assert.is(hex(encodeCommand({ id: 'j1.d1', op: 'info', args: {}, deadlineMs: 5000 })), COMMAND_HEX.replace(/ /g, ''));
  assert.equal(decodeCommand(unhex(COMMAND_HEX)), { id: 'j1.d1', op: 'info', args: {}, deadlineMs: 5000 });
});

test('replies: accepted, ok and error, in bytes and back', () => {
  const accepted = 'a3 6176 01 626964 656a312e6431 686163636570746564 f5'.replace(/ /g, '');
  assert.is(hex(encodeReply({ id: 'j1.d1', accepted: true })), accepted);
  assert.equal(decodeReply(unhex(accepted)), { id: 'j1.d1', accepted: true });
  const ok = 'a3 6176 01 626964 656a312e6431 626f6b a1 6576616c7565 01';
  assert.is(hex(encodeReply({ id: 'j1.d1', ok: { value: 1 } })), ok.replace(/ /g, ''));
  assert.equal(decodeReply(unhex(ok)), { id: 'j1.d1', ok: { value: 1 } });
  const err = 'a3 6176 01 626964 656a312e6431 656572726f72 a2 64636f6465 7248465f4552525f4e4f545f414c4c4f574544 676d657373616765 626e6f';
  assert.is(hex(encodeReply({ id: 'j1.d1', error: { code: 'HF_ERR_NOT_ALLOWED', message: 'no' } })), err.replace(/ /g, ''));
  assert.equal(decodeReply(unhex(err)), { id: 'j1.d1', error: { code: 'HF_ERR_NOT_ALLOWED', message: 'no' } });
});

test('round trips: bytes in args and results stay bytes; args absent means none', () => {
  const c = { id: 'a:b-c_d.e', op: 'file.put', args: { path: '/srv/x', data: new Uint8Array([0, 255]) }, deadlineMs: 0xffffffff };
  assert.equal(decodeCommand(encodeCommand(c)), c);
  assert.equal(decodeCommand(encodeValue({ v: 1, id: 'x', op: 'info', deadlineMs: 1 })).args, {});
  const r = { id: 'x', ok: { stdout: new Uint8Array([104, 105]), exitCode: 0 } };
  assert.equal(decodeReply(encodeReply(r)), r);
});

test('malformed commands: HF_ERR_COMMAND naming the key', () => {
  const base = { v: 1, id: 'c1', op: 'info', args: {}, deadlineMs: 10 };
  const cases: [unknown, string][] = [
    [[1], 'command must be a map'],
    ['info', 'command must be a map'],
    [{ ...base, id: undefined }, 'command id must be'],
    [{ v: 1, op: 'info', args: {}, deadlineMs: 10 }, 'id is missing'],
    [{ ...base, id: '' }, 'command id must be'],
    [{ ...base, id: 'a b' }, 'command id must be'],
    [{ ...base, id: 'x'.repeat(129) }, 'command id must be'],
    [{ ...base, id: 7 }, 'got number'],
    [{ ...base, v: 2 }, 'version must be 1'],
    [{ ...base, op: 1 }, 'op must be non-empty text'],
    [{ ...base, op: '' }, 'op must be non-empty text'],
    [{ ...base, args: [1] }, 'args must be a map'],
    [{ ...base, deadlineMs: undefined }, 'deadlineMs must be an integer'],
    [{ v: 1, id: 'c1', op: 'info', args: {} }, 'deadlineMs is missing'],
    [{ ...base, deadlineMs: 0 }, 'deadlineMs must be an integer'],
    [{ ...base, deadlineMs: 1.5 }, 'deadlineMs must be an integer'],
    [{ ...base, deadlineMs: 2 ** 32 }, 'deadlineMs must be an integer'],
    [{ ...base, extra: 1 }, 'unknown key "extra"'],
  ];
  for (const [v, text] of cases) {
    const f = failure(() => decodeCommand(encodeValue(v)));
    assert.is(f.code, 'HF_ERR_COMMAND', `${JSON.stringify(v)}: ${f.message}`);
    assert.ok(f.message.includes(text), `"${f.message}" should say "${text}"`);
  }
  for (const bytes of ['', 'a5', 'ff', 'a1 6161 01 00', COMMAND_HEX + '00']) assert.is(failure(() => decodeCommand(unhex(bytes))).code, 'HF_ERR_COMMAND', bytes);
  assert.ok(failure(() => decodeCommand(unhex('a5'))).message.startsWith('command is not one CBOR item'));
});

test('malformed replies: HF_ERR_COMMAND', () => {
  const cases: [unknown, string][] = [
    [{ v: 1, id: 'r' }, 'needs exactly one of accepted, ok, error (has none)'],
    [{ v: 1, id: 'r', ok: {}, error: { code: 'HF_ERR_X', message: '' } }, 'has ok, error'],
    [{ v: 1, id: 'r', accepted: 1 }, 'accepted must be true'],
    [{ v: 1, id: 'r', ok: 1 }, 'ok must be a map'],
    [{ v: 1, id: 'r', error: 'HF_ERR_X' }, 'error must be a map'],
    [{ v: 1, id: 'r', error: { code: 'ERR_X', message: '' } }, 'error code must be HF_ERR_'],
    [{ v: 1, id: 'r', error: { code: 'HF_ERR_X' } }, 'error message must be text'],
    [{ v: 1, id: 'r', error: { code: 'HF_ERR_X', message: 'm'.repeat(MAX_ERROR_MESSAGE + 1) } }, 'at most 1024'],
    [{ v: 1, id: 'r', error: { code: 'HF_ERR_X', message: '', more: 1 } }, 'unknown key "more"'],
    [{ v: 1, id: 'r', ok: {}, stage: 1 }, 'unknown key "stage"'],
  ];
  for (const [v, text] of cases) {
    const f = failure(() => decodeReply(encodeValue(v)));
    assert.is(f.code, 'HF_ERR_COMMAND', `${JSON.stringify(v).slice(0, 80)}: ${f.message}`);
    assert.ok(f.message.includes(text), `"${f.message.slice(0, 100)}" should say "${text}"`);
  }
});

test('error answers: long messages are cut to the limit, codes are checked', () => {
  const e = errorOf('HF_ERR_OP_FAILED', 'x'.repeat(5000));
  assert.is(e.message.length, MAX_ERROR_MESSAGE);
  assert.ok(e.message.endsWith('...'));
  assert.is(failure(() => errorOf('nope', '')).code, 'HF_ERR_COMMAND');
  assert.is(failure(() => encodeCommand({ id: 'bad id', op: 'info', args: {}, deadlineMs: 1 })).code, 'HF_ERR_COMMAND');
});

test.run();
