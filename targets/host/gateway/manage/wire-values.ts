/**
 * Between the API's JSON and the management channel's CBOR: byte arguments arrive as base64 text and
 * go to the device as byte strings (`file.put` data, `update` bundle: a third smaller on the wire, and
 * the device does not decode them again); byte results (`file.get` data, `exec` stdout and stderr) come
 * back as byte strings and are stored and shown as base64 text. Everything else passes as it is.
 */
import { fromBase64, toBase64 } from '../../../../firmware/base64';
import { ErrorCode, hfError } from '../../../../firmware/errors';

/** Which argument of an operation is bytes. */
const BYTE_ARGS: Record<string, string> = { 'file.put': 'data', update: 'bundle' };

/** `args` (already validated by ops.ts) with its byte argument as bytes, for encodeCommand. */
export function argsToWire(op: string, args: Record<string, unknown>): Record<string, unknown> {
  const k = BYTE_ARGS[op];
  if (k === undefined || typeof args[k] !== 'string') return args;
  const bytes = fromBase64(args[k] as string);
  if (bytes === null) throw hfError(ErrorCode.BAD_ARGS, `${op}: ${k} must be base64 text`);
  return { ...args, [k]: bytes };
}

/** A value from the device made plain JSON: byte strings become base64 text (recursively). */
export function toJsonValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return toBase64(v);
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJsonValue(x);
    return out;
  }
  if (typeof v === 'bigint') return Number(v);
  return v;
}
