/**
 * Validation of control-connection messages (targets/host/gateway/pair/peer-messages.ts): each kind
 * at its bounds is accepted, everything malformed is HF_ERR_PEER naming the field.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHfError } from '../firmware/errors';
import { checkPeerMessage } from '../targets/host/gateway/pair/peer-messages';

const b = (n: number): Uint8Array => new Uint8Array(n).fill(1);
const MAX = Number.MAX_SAFE_INTEGER;

const valid: Record<string, unknown>[] = [
  { t: 'hello', role: 'primary', node: 'a', nonce: b(16), epoch: 0 },
  { t: 'hello', role: 'standby', node: 'n'.repeat(128), nonce: b(64), epoch: MAX },
  { t: 'proof', proof: b(32) },
  { t: 'hb', epoch: 3 },
  { t: 'err', code: 'HF_ERR_AUTH', message: '' },
  { t: 'snap', sid: b(1), n: 0, bytes: b(0) },
  { t: 'delta', sid: b(64), n: MAX, d: [0] },
  { t: 'ok', n: 12 },
  { t: 'synced', n: 3 },
  { t: 'gone', n: 4, sid: b(8) },
];

test('each kind, at its bounds, is accepted as it is', () => {
  for (const v of valid) assert.equal(checkPeerMessage(v), v, String(v.t));
  assert.equal(checkPeerMessage({ t: 'hb', epoch: 1, extra: 2 }), { t: 'hb', epoch: 1 }, 'fields of other kinds are left out');
});

function refused(v: unknown, field: string): void {
  try {
    checkPeerMessage(v);
  } catch (e) {
    assert.ok(isHfError(e), String(e));
    assert.is(e.code, 'HF_ERR_PEER');
    assert.ok(e.message.includes(field), `${e.message} names ${field}`);
    return;
  }
  assert.unreachable(`${JSON.stringify(v)} was accepted`);
}

test('malformed messages are HF_ERR_PEER naming the field', () => {
  refused(null, 'map');
  refused([1], 'map');
  refused(b(3), 'map');
  refused({}, 't');
  refused({ t: 3 }, 't');
  refused({ t: 'bye' }, 'not a known kind');
  const hello = valid[0];
  refused({ ...hello, role: 'leader' }, 'role');
  refused({ ...hello, role: undefined }, 'role');
  refused({ ...hello, node: '' }, 'node');
  refused({ ...hello, node: 'n'.repeat(129) }, 'node');
  refused({ ...hello, node: 5 }, 'node');
  refused({ ...hello, nonce: b(15) }, 'nonce');
  refused({ ...hello, nonce: b(65) }, 'nonce');
  refused({ ...hello, nonce: 'abcdefabcdefabcdef' }, 'nonce');
  refused({ ...hello, epoch: -1 }, 'epoch');
  refused({ ...hello, epoch: 1.5 }, 'epoch');
  refused({ ...hello, epoch: MAX + 1 }, 'epoch');
  refused({ ...hello, epoch: '1' }, 'epoch');
  refused({ t: 'hello', role: 'primary', node: 'a', nonce: b(16) }, 'epoch');
  refused({ t: 'proof', proof: b(31) }, 'proof');
  refused({ t: 'proof', proof: b(33) }, 'proof');
  refused({ t: 'proof' }, 'proof');
  refused({ t: 'hb' }, 'epoch');
  refused({ t: 'hb', epoch: Number.NaN }, 'epoch');
  refused({ t: 'err', code: '', message: 'x' }, 'code');
  refused({ t: 'err', code: 'HF_ERR_X' }, 'message');
  refused({ t: 'snap', sid: b(0), n: 0, bytes: b(1) }, 'sid');
  refused({ t: 'snap', sid: b(65), n: 0, bytes: b(1) }, 'sid');
  refused({ t: 'snap', sid: b(1), n: -3, bytes: b(1) }, 'n');
  refused({ t: 'snap', sid: b(1), n: 0, bytes: [1] }, 'bytes');
  refused({ t: 'delta', sid: b(1), n: 0, d: { l: {} } }, 'd');
  refused({ t: 'delta', sid: b(1), n: 0, d: null }, 'd');
  refused({ t: 'delta', sid: b(1), n: 0, d: b(2) }, 'd');
  refused({ t: 'delta', sid: b(1), n: 0.5, d: [0] }, 'n');
  refused({ t: 'ok', n: -1 }, 'n');
  refused({ t: 'synced' }, 'n');
  refused({ t: 'gone', n: 1 }, 'sid');
  refused({ t: 'gone', sid: b(1) }, 'n');
});

test.run();
