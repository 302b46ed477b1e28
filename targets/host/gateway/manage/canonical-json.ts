/**
 * One text for one JSON value: object keys sorted (by UTF-16 code units, as JavaScript sorts), no
 * white space, numbers and strings as JSON.stringify writes them. Two equal values give the same
 * text, so a hash over it does not depend on the order keys were written in. Anything JSON cannot
 * carry (undefined, a function, a symbol, a bigint, NaN or an infinity, a cycle, an object of a class
 * such as a Date or a Buffer) is HF_ERR_OPTION naming where it is, rather than being dropped or
 * changed silently as JSON.stringify would.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';

export function canonicalJson(value: unknown): string {
  return encode(value, '$', new Set());
}

function encode(v: unknown, at: string, open: Set<object>): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw hfError(ErrorCode.OPTION, `${at}: ${v} has no JSON form`);
    return JSON.stringify(v);
  }
  if (typeof v !== 'object') throw hfError(ErrorCode.OPTION, `${at}: a ${typeof v} has no JSON form`);
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) throw hfError(ErrorCode.OPTION, `${at}: a ${proto?.constructor?.name ?? 'class instance'} is not plain JSON`);
  if (open.has(v)) throw hfError(ErrorCode.OPTION, `${at}: refers to itself`);
  open.add(v);
  let out: string;
  if (Array.isArray(v)) out = `[${v.map((x, i) => encode(x, `${at}[${i}]`, open)).join(',')}]`;
  else {
    const keys = Object.keys(v).sort();
    out = `{${keys.map((k) => `${JSON.stringify(k)}:${encode((v as Record<string, unknown>)[k], `${at}.${k}`, open)}`).join(',')}}`;
  }
  open.delete(v);
  return out;
}
