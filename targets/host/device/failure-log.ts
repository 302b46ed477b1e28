/**
 * Warnings a person can see when the gateway cannot be reached, answers with an error or does not
 * answer: the reason in plain words, the code and when the next try is. Rate-limited per kind of
 * failure: the first of a kind is logged at once, then at most one line per `warnIntervalMs` with the
 * count of those not logged meanwhile ("N more since ..."). When an answer comes again, one info
 * line says after how many failures.
 */
import type { HfError } from '../../../firmware/errors';
import { checkMs } from '../../../firmware/check';
import type { Log } from '../../../hal/log';

export interface FailureLogOptions {
  /** At most one warning per kind of failure this often, ms (default 30000); the first of a kind is logged at once. */
  warnIntervalMs?: number;
}

export const FAILURE_LOG_DEFAULTS: Required<FailureLogOptions> = { warnIntervalMs: 30000 };

/** Plain words for a failure to reach or hear the gateway, and the kind it is counted under. */
export function describeFailure(err: HfError): { kind: string; words: string } {
  const m = err.message;
  if (err.code === 'HF_ERR_CONNECT') {
    if (/ECONNREFUSED/.test(m)) return { kind: 'refused', words: 'cannot reach the gateway: connection refused (nothing listens there?)' };
    if (/ENOTFOUND|EAI_AGAIN|EAI_NONAME/.test(m)) return { kind: 'dns', words: 'cannot reach the gateway: its name does not resolve (DNS)' };
    if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(m)) return { kind: 'unreachable', words: 'cannot reach the gateway: no route or the connection timed out' };
    if (/cut off|ECONNRESET|EPIPE|socket hang up/.test(m)) return { kind: 'cut', words: 'the connection to the gateway was cut before its answer' };
    return { kind: 'connect', words: 'cannot reach the gateway' };
  }
  if (err.code === 'HF_ERR_HTTP') return { kind: 'http', words: 'the gateway (or a proxy) answered with an error, not a bundle' };
  if (err.code === 'HF_ERR_TIMEOUT') return { kind: 'timeout', words: 'the gateway does not answer' };
  if (err.code === 'HF_ERR_LIMIT') return { kind: 'limit', words: "the gateway's answer is too large" };
  return { kind: `bad:${err.code}`, words: "the gateway's answer is not a bundle this device can read" };
}

interface Kind {
  lastWarn: number;
  /** Failures of this kind not logged since lastWarn. */
  more: number;
}

export class FailureLog {
  readonly o: Required<FailureLogOptions>;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly kinds = new Map<string, Kind>();
  /** Failures since the gateway last answered. */
  failures = 0;
  /** The latest failure (kept after the gateway answers again; null: none yet). */
  last: HfError | null = null;
  private firstAt = 0;

  constructor(log: Log, now: () => number, opts: FailureLogOptions = {}) {
    const o = { ...FAILURE_LOG_DEFAULTS, ...opts };
    checkMs('warnIntervalMs', o.warnIntervalMs, 0);
    this.o = o;
    this.log = log;
    this.now = now;
  }

  /** A failure; `nextMs`: when the next try is, from now (Infinity or NaN: not known). */
  failed(err: HfError, nextMs: number): void {
    const now = this.now();
    if (this.failures++ === 0) this.firstAt = now;
    this.last = err;
    const { kind, words } = describeFailure(err);
    const k = this.kinds.get(kind);
    if (k !== undefined && now - k.lastWarn < this.o.warnIntervalMs) {
      k.more++;
      return;
    }
    const more = k === undefined || k.more === 0 ? undefined : `${k.more} more since ${Math.round((now - k.lastWarn) / 1000)} s ago`;
    this.kinds.set(kind, { lastWarn: now, more: 0 });
    this.log.warn(words, { code: err.code, reason: err.message, next_try: Number.isFinite(nextMs) ? `in ${(Math.max(0, nextMs) / 1000).toFixed(1)} s` : 'with the next request', more });
  }

  /** The gateway answered: an info line when failures came before. */
  answered(): void {
    if (this.failures === 0) return;
    this.log.info(`gateway reachable again after ${this.failures} failure${this.failures === 1 ? '' : 's'}`, { down_s: Math.round((this.now() - this.firstAt) / 1000) });
    this.failures = 0;
    this.kinds.clear();
  }
}
