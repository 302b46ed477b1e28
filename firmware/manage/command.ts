/**
 * Management commands and their replies on the wire (docs/PROTOCOL.md section 14): one CBOR map per
 * message, encoded with cbor-value.ts, text keys.
 *
 *   command   {"v": 1, "id": text, "op": text, "args": map, "deadlineMs": uint}     gateway -> device
 *   accepted  {"v": 1, "id": text, "accepted": true}                               device -> gateway
 *   answer    {"v": 1, "id": text, "ok": map}                                      device -> gateway
 *           | {"v": 1, "id": text, "error": {"code": text, "message": text}}
 *
 * `id` names the command for good: the device runs an id at most once and answers a repeated one from
 * its record (executor.ts). `deadlineMs` is how long the device may spend on it from receipt, ms.
 * Decoding checks the envelope only (the operation and its arguments are ops.ts's): bytes that are not
 * one CBOR item, a missing, unknown or mistyped key, a bad id or version -> HF_ERR_COMMAND, naming the
 * key (a CBOR failure is kept as `cause`).
 */
import { decodeValue, encodeValue } from '../cbor-value';
import { ErrorCode, hfError } from '../errors';
import { isPlainObject } from './ops';

export const COMMAND_VERSION = 1;
/** Ids: 1..128 characters of letters, digits and `.`, `_`, `:`, `-`. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** Longest error message carried in an answer, characters (longer ones are cut). */
export const MAX_ERROR_MESSAGE = 1024;
const CODE_PATTERN = /^HF_ERR_[A-Z0-9_]{1,57}$/;
/** Longest deadline a command may carry, ms (about 49 days: u32). */
export const MAX_DEADLINE_MS = 0xffffffff;

export interface Command {
  id: string;
  /** The operation's name, unchecked here (ops.ts validates it). */
  op: string;
  /** The operation's arguments, unchecked here. */
  args: Record<string, unknown>;
  deadlineMs: number;
}

export interface AnswerError {
  code: string;
  message: string;
}

export type Answer = { id: string; ok: Record<string, unknown> } | { id: string; error: AnswerError };

export type Reply = { id: string; accepted: true } | Answer;

export function encodeCommand(c: Command): Uint8Array {
  checkId(c.id);
  if (typeof c.op !== 'string') throw hfError(ErrorCode.COMMAND, `command ${c.id}: op must be text`);
  checkDeadline(c.id, c.deadlineMs);
  return encodeValue({ v: COMMAND_VERSION, id: c.id, op: c.op, args: c.args, deadlineMs: c.deadlineMs });
}

/** The command in `buf`, its envelope checked (see the file comment). Nothing refers to `buf` afterwards. */
export function decodeCommand(buf: Uint8Array): Command {
  const m = envelope(buf, 'command', ['v', 'id', 'op', 'args', 'deadlineMs']);
  const id = m.id as string;
  if (typeof m.op !== 'string' || m.op === '') throw hfError(ErrorCode.COMMAND, `command ${id}: op must be non-empty text`);
  const args = m.args === undefined ? {} : m.args;
  if (!isPlainObject(args)) throw hfError(ErrorCode.COMMAND, `command ${id}: args must be a map`);
  if (!Object.hasOwn(m, 'deadlineMs')) throw hfError(ErrorCode.COMMAND, `command ${id}: deadlineMs is missing`);
  checkDeadline(id, m.deadlineMs);
  return { id, op: m.op, args, deadlineMs: m.deadlineMs as number };
}

export function encodeReply(r: Reply): Uint8Array {
  checkId(r.id);
  if ('accepted' in r) return encodeValue({ v: COMMAND_VERSION, id: r.id, accepted: true });
  if ('ok' in r) return encodeValue({ v: COMMAND_VERSION, id: r.id, ok: r.ok });
  return encodeValue({ v: COMMAND_VERSION, id: r.id, error: errorOf(r.error.code, r.error.message) });
}

/** A reply (accepted or answer) in `buf`, checked as the file comment says. */
export function decodeReply(buf: Uint8Array): Reply {
  const m = envelope(buf, 'reply', ['v', 'id', 'accepted', 'ok', 'error']);
  const id = m.id as string;
  const kinds = ['accepted', 'ok', 'error'].filter((k) => Object.hasOwn(m, k));
  if (kinds.length !== 1) throw hfError(ErrorCode.COMMAND, `reply ${id}: needs exactly one of accepted, ok, error (has ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
  if (kinds[0] === 'accepted') {
    if (m.accepted !== true) throw hfError(ErrorCode.COMMAND, `reply ${id}: accepted must be true`);
    return { id, accepted: true };
  }
  if (kinds[0] === 'ok') {
    if (!isPlainObject(m.ok)) throw hfError(ErrorCode.COMMAND, `reply ${id}: ok must be a map`);
    return { id, ok: m.ok };
  }
  const e = m.error;
  if (!isPlainObject(e)) throw hfError(ErrorCode.COMMAND, `reply ${id}: error must be a map`);
  for (const k of Object.keys(e)) if (k !== 'code' && k !== 'message') throw hfError(ErrorCode.COMMAND, `reply ${id}: error has an unknown key ${JSON.stringify(k.slice(0, 64))}`);
  if (typeof e.code !== 'string' || !CODE_PATTERN.test(e.code))
    throw hfError(ErrorCode.COMMAND, `reply ${id}: error code must be HF_ERR_ and capitals, got ${JSON.stringify(String(e.code).slice(0, 64))}`);
  if (typeof e.message !== 'string' || e.message.length > MAX_ERROR_MESSAGE) throw hfError(ErrorCode.COMMAND, `reply ${id}: error message must be text of at most ${MAX_ERROR_MESSAGE} characters`);
  return { id, error: { code: e.code, message: e.message } };
}

/** An error answer's body: the code as given, the message cut to MAX_ERROR_MESSAGE. */
export function errorOf(code: string, message: string): AnswerError {
  if (!CODE_PATTERN.test(code)) throw hfError(ErrorCode.COMMAND, `error code must be HF_ERR_ and capitals, got ${JSON.stringify(code.slice(0, 64))}`);
  return { code, message: message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE - 3) + '...' : message };
}

/** Decodes one map, checks `v`, `id` and that every key is one of `keys`. */
function envelope(buf: Uint8Array, what: string, keys: string[]): Record<string, unknown> {
  let v: unknown;
  try {
    v = decodeValue(buf);
  } catch (e) {
    throw hfError(ErrorCode.COMMAND, `${what} is not one CBOR item (${(e as Error).message})`, e);
  }
  if (!isPlainObject(v)) throw hfError(ErrorCode.COMMAND, `${what} must be a map`);
  if (!Object.hasOwn(v, 'id')) throw hfError(ErrorCode.COMMAND, `${what}: id is missing`);
  checkId(v.id);
  const id = v.id as string;
  if (v.v !== COMMAND_VERSION) throw hfError(ErrorCode.COMMAND, `${what} ${id}: version must be ${COMMAND_VERSION}, got ${JSON.stringify(v.v)}`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw hfError(ErrorCode.COMMAND, `${what} ${id}: unknown key ${JSON.stringify(k.slice(0, 64))}`);
  return v;
}

function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 64)) : typeof id;
    throw hfError(ErrorCode.COMMAND, `command id must be 1..128 of [A-Za-z0-9._:-], got ${shown}`);
  }
}

function checkDeadline(id: string, d: unknown): void {
  if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_DEADLINE_MS) throw hfError(ErrorCode.COMMAND, `command ${id}: deadlineMs must be an integer in 1..2^32-1, got ${String(d)}`);
}
