/**
 * Field checks for decoded CBOR messages of the gateways' own protocols (the pair's control
 * connection, the cluster's control channel): each names the message kind and field, and throws the
 * protocol's stable code.
 */
import { type ErrorCodeValue, hfError } from '../../../firmware/errors';

export type Obj = Record<string, unknown>;

/** How a value is named in an error: its length or kind, never its contents in full. */
export function shown(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'a map';
}

export function isMap(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export interface FieldChecks {
  bad(t: string, field: string, why: string): Error;
  uint(o: Obj, t: string, field: string): number;
  bytes(o: Obj, t: string, field: string, min: number, max: number): Uint8Array;
  text(o: Obj, t: string, field: string, min: number, max: number): string;
}

/** Checks whose errors carry `code` and start with `what` (e.g. "peer message"). */
export function fieldChecks(code: ErrorCodeValue, what: string): FieldChecks {
  const bad = (t: string, field: string, why: string): Error => hfError(code, `${what} ${t}: ${field} ${why}`);
  return {
    bad,
    uint(o, t, field) {
      const v = o[field];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(t, field, `must be an unsigned integer up to 2^53-1, got ${shown(v)}`);
      return v;
    },
    bytes(o, t, field, min, max) {
      const v = o[field];
      if (!(v instanceof Uint8Array)) throw bad(t, field, `must be a byte string, got ${shown(v)}`);
      if (v.length < min || v.length > max) throw bad(t, field, min === max ? `must be ${min} bytes, got ${v.length}` : `must be ${min}..${max} bytes, got ${v.length}`);
      return v;
    },
    text(o, t, field, min, max) {
      const v = o[field];
      if (typeof v !== 'string') throw bad(t, field, `must be a string, got ${shown(v)}`);
      if (v.length < min || v.length > max) throw bad(t, field, `must be ${min}..${max} characters, got ${v.length}`);
      return v;
    },
  };
}
