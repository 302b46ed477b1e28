/**
 * Failed logins, counted per operator name and per remote address: after `perName` failures for a
 * name, or `perAddress` from an address, within `windowMs` of the first, further attempts for that
 * name or from that address are refused (HF_ERR_RATE_LIMITED) until the window ends. A success clears
 * the name's count (not the address's: one address trying many names stays limited). Memory is
 * bounded: at most `maxKeys` names and as many addresses are tracked; past that the oldest are
 * forgotten. Time is injected (`now`), so tests run on a fake clock.
 */
import { checkInt, checkMs } from '../../../../firmware/check';
import { ErrorCode, hfError } from '../../../../firmware/errors';

export interface LoginLimitOptions {
  /** Failures for one operator name before it is refused for the rest of the window (default 5). */
  perName?: number;
  /** Failures from one remote address before it is refused for the rest of the window (default 20). */
  perAddress?: number;
  /** The window, from the first failure, ms (default 900000: 15 min). */
  windowMs?: number;
  /** Most names, and most addresses, tracked at once (default 10000). */
  maxKeys?: number;
}

export const LOGIN_LIMIT_DEFAULTS: Required<LoginLimitOptions> = { perName: 5, perAddress: 20, windowMs: 900_000, maxKeys: 10_000 };

interface Count {
  n: number;
  since: number;
}

export class LoginLimiter {
  readonly o: Required<LoginLimitOptions>;
  private readonly now: () => number;
  private readonly names = new Map<string, Count>();
  private readonly addresses = new Map<string, Count>();

  /** `now`: a clock in ms (any origin). */
  constructor(opts: LoginLimitOptions = {}, now: () => number = Date.now) {
    const o = { ...LOGIN_LIMIT_DEFAULTS, ...opts };
    checkInt('perName', o.perName, 1, 1_000_000);
    checkInt('perAddress', o.perAddress, 1, 1_000_000);
    checkMs('windowMs', o.windowMs, 1);
    checkInt('maxKeys', o.maxKeys, 1, 10_000_000);
    this.o = o;
    this.now = now;
  }

  /** How long until a login for `name` from `address` may be tried, ms (0: now). */
  retryAfterMs(name: string, address: string): number {
    const t = this.now();
    return Math.max(this.wait(this.names, name, this.o.perName, t), this.wait(this.addresses, address, this.o.perAddress, t));
  }

  /** HF_ERR_RATE_LIMITED (saying when to try again) unless a login for `name` from `address` may be tried now. */
  check(name: string, address: string): void {
    const ms = this.retryAfterMs(name, address);
    if (ms > 0) throw hfError(ErrorCode.RATE_LIMITED, `too many failed logins for ${JSON.stringify(name)} or from ${address}: try again in ${Math.ceil(ms / 1000)} s`);
  }

  /** Counts a failed login. */
  failed(name: string, address: string): void {
    const t = this.now();
    this.count(this.names, name, t);
    this.count(this.addresses, address, t);
  }

  /** A login succeeded: the name's failures are forgotten. */
  succeeded(name: string): void {
    this.names.delete(name);
  }

  private wait(m: Map<string, Count>, key: string, limit: number, t: number): number {
    const c = m.get(key);
    if (c === undefined) return 0;
    const end = c.since + this.o.windowMs;
    if (t >= end) {
      m.delete(key);
      return 0;
    }
    return c.n >= limit ? end - t : 0;
  }

  private count(m: Map<string, Count>, key: string, t: number): void {
    const c = m.get(key);
    if (c !== undefined && t < c.since + this.o.windowMs) {
      c.n++;
      return;
    }
    m.delete(key);
    if (m.size >= this.o.maxKeys) m.delete(m.keys().next().value as string);
    m.set(key, { n: 1, since: t });
  }
}
