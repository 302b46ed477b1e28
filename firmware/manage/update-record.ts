/**
 * The device's record of an `update` in progress, and how its answer is found after the restart.
 *
 * The command id of an update is journaled as started (command-journal.ts) before the bundle is
 * staged; the process that ran it then restarts without answering. Beside the journal, through
 * hal/Storage under UPDATE_KEY, it writes this record first:
 *
 *   CBOR {"v": 1, "id": text, "sha256": text, "previous": text | null}
 *
 * (the command id, the bundle asked for, the bundle that ran when it was asked). The process that
 * comes up next, whichever bundle it is, reads the record and what the launcher says
 * (hal/Management's UpdateStatus) and answers the id with `resolveUpdate` instead of the journal's
 * generic HF_ERR_INTERRUPTED:
 *
 *   running the new bundle, trial over        -> ok {sha256, previous}
 *   running the new bundle, still on trial    -> wait: answered ok once a session opened (the trial ends)
 *   the launcher rolled the new bundle back   -> HF_ERR_ROLLED_BACK, with the launcher's reason
 *   anything else (no launcher any more, the  -> HF_ERR_INTERRUPTED (the journal's answer: the update
 *   bundle never got as far as a trial)          stopped before it was tried; it is not run again)
 *
 * Pure: no I/O here; the executor reads and writes the record (executor.ts).
 */
import { decodeValue, encodeValue } from '../cbor-value';
import { ErrorCode } from '../errors';
import type { UpdateStatus } from '../../hal/management';
import { errorOf } from './command';
import type { AnswerBody } from './command-journal';
import { isPlainObject } from './ops';

/** The storage key of the record (beside the command journal's "manage"). */
export const UPDATE_KEY = 'update';

export interface PendingUpdate {
  /** The command id of the update. */
  id: string;
  /** The bundle asked for. */
  sha256: string;
  /** The bundle that ran when it was asked, or null if the launcher did not say. */
  previous: string | null;
}

const SHA = /^[0-9a-f]{64}$/;

export function encodePendingUpdate(p: PendingUpdate): Uint8Array {
  return encodeValue({ v: 1, id: p.id, sha256: p.sha256, previous: p.previous });
}

/** The record in `b`, or null when `b` is not one this version wrote (then no update is pending). */
export function decodePendingUpdate(b: Uint8Array): PendingUpdate | null {
  let v: unknown;
  try {
    v = decodeValue(b);
  } catch {
    return null;
  }
  if (!isPlainObject(v) || v.v !== 1 || typeof v.id !== 'string' || typeof v.sha256 !== 'string' || !SHA.test(v.sha256)) return null;
  if (v.previous !== null && (typeof v.previous !== 'string' || !SHA.test(v.previous))) return null;
  return { id: v.id, sha256: v.sha256, previous: v.previous };
}

/** What the process that came up makes of a pending update (see the file comment). */
export type UpdateResolution = { kind: 'answer'; answer: AnswerBody } | { kind: 'await-session'; answer: AnswerBody } | { kind: 'interrupted' };

/** The first 12 hex digits of a sha256, for messages. */
export function shortSha(sha: string | null): string {
  return sha === null ? 'none' : sha.slice(0, 12);
}

export function resolveUpdate(p: PendingUpdate, status: UpdateStatus | null): UpdateResolution {
  if (status === null) return { kind: 'interrupted' };
  const ok: AnswerBody = { ok: { sha256: p.sha256, previous: p.previous } };
  if (status.running === p.sha256) return status.trial ? { kind: 'await-session', answer: ok } : { kind: 'answer', answer: ok };
  const last = status.last;
  if (last !== null && last.sha256 === p.sha256 && last.result === 'rolled-back') {
    const msg = `update to ${shortSha(p.sha256)} was rolled back to ${shortSha(status.running)}: ${last.reason}`;
    return { kind: 'answer', answer: { error: errorOf(ErrorCode.ROLLED_BACK, msg) } };
  }
  return { kind: 'interrupted' };
}
