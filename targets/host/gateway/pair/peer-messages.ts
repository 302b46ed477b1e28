/**
 * Validation of a received control-connection message (a decoded frame, peer-frames.ts) against the
 * PeerMessage union of peer-link.ts. Anything else throws HF_ERR_PEER naming the field.
 *
 * Bounds: node 1..128 characters; nonce 16..64 bytes; proof exactly 32 bytes; sid 1..64 bytes;
 * n and epoch unsigned integers up to 2^53-1; err code 1..64 characters, message up to 4096; the
 * `d` of a delta an array (its contents are the replica's to check, firmware/replica.ts checkDelta).
 * Fields a kind does not have are ignored.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { fieldChecks, isMap, shown } from '../../net/field-checks';
import type { PeerMessage } from './peer-link';

export const NODE_MAX_CHARS = 128;
export const NONCE_MIN_BYTES = 16;
export const NONCE_MAX_BYTES = 64;
export const PROOF_BYTES = 32;
export const SID_MAX_BYTES = 64;
const CODE_MAX_CHARS = 64;
const ERR_MESSAGE_MAX_CHARS = 4096;

const { bad, uint, bytes, text } = fieldChecks(ErrorCode.PEER, 'peer message');

/** Returns `v` as the message it is (a new object holding only its kind's fields), or throws HF_ERR_PEER. */
export function checkPeerMessage(v: unknown): PeerMessage {
  if (!isMap(v)) throw hfError(ErrorCode.PEER, `peer message must be a map, got ${shown(v)}`);
  const t = v.t;
  if (typeof t !== 'string') throw hfError(ErrorCode.PEER, `peer message: t must be a string, got ${shown(t)}`);
  switch (t) {
    case 'hello': {
      const role = v.role;
      if (role !== 'primary' && role !== 'standby') throw bad(t, 'role', `must be "primary" or "standby", got ${shown(role)}`);
      return { t, role, node: text(v, t, 'node', 1, NODE_MAX_CHARS), nonce: bytes(v, t, 'nonce', NONCE_MIN_BYTES, NONCE_MAX_BYTES), epoch: uint(v, t, 'epoch') };
    }
    case 'proof':
      return { t, proof: bytes(v, t, 'proof', PROOF_BYTES, PROOF_BYTES) };
    case 'hb':
      return { t, epoch: uint(v, t, 'epoch') };
    case 'err':
      return { t, code: text(v, t, 'code', 1, CODE_MAX_CHARS), message: text(v, t, 'message', 0, ERR_MESSAGE_MAX_CHARS) };
    case 'snap': {
      const sid = bytes(v, t, 'sid', 1, SID_MAX_BYTES);
      const n = uint(v, t, 'n');
      const b = v.bytes;
      if (!(b instanceof Uint8Array)) throw bad(t, 'bytes', `must be a byte string, got ${shown(b)}`);
      return { t, sid, n, bytes: b };
    }
    case 'delta': {
      const sid = bytes(v, t, 'sid', 1, SID_MAX_BYTES);
      const n = uint(v, t, 'n');
      if (!Array.isArray(v.d)) throw bad(t, 'd', `must be an array, got ${shown(v.d)}`);
      return { t, sid, n, d: v.d };
    }
    case 'gone': {
      const sid = bytes(v, t, 'sid', 1, SID_MAX_BYTES);
      return { t, n: uint(v, t, 'n'), sid };
    }
    case 'synced':
    case 'ok':
      return { t, n: uint(v, t, 'n') };
    default:
      throw hfError(ErrorCode.PEER, `peer message: t ${shown(t)} is not a known kind`);
  }
}
