/** Option validation helpers: each throws HF_ERR_OPTION naming the option and the value it got. */
import { ErrorCode, hfError } from './errors';

export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw hfError(ErrorCode.OPTION, `${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

export function checkPow2(name: string, v: unknown, min: number, max: number): number {
  const n = checkInt(name, v, min, max);
  if ((n & (n - 1)) !== 0) throw hfError(ErrorCode.OPTION, `${name} must be a power of two, got ${n}`);
  return n;
}

/** A duration in milliseconds: finite, >= min. */
export function checkMs(name: string, v: unknown, min: number, max = 86_400_000): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw hfError(ErrorCode.OPTION, `${name} must be a number of milliseconds in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** Distance from b forward to a on the u32 circle. */
export function dist(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** True if u32 sequence a is before b (within half the circle; the point opposite b is not before it). */
export function before(a: number, b: number): boolean {
  const d = (b - a) >>> 0;
  return d !== 0 && d < 0x80000000;
}

/**
 * True if u32 a lies in the half circle behind b: `dist(a, b) >= 2^31`, the sign bit of a - b. The
 * same as `before(a, b)` except at the point opposite b, which counts as behind; `!behind(a, b)` is
 * "a is b or ahead of it".
 */
export function behind(a: number, b: number): boolean {
  return (a - b) >>> 0 >= 0x80000000;
}
