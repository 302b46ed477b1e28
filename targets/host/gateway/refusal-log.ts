/**
 * The gateway's refusals as warnings a person can read: per source address, kind (request, frame,
 * connection) and code, the first is logged at once and the rest are summed up once per
 * `summaryIntervalMs` ("refused 40000 requests from 127.0.0.1 in the last 30 s: HF_ERR_AUTH (unknown
 * device or wrong key)"). Memory is bounded: at most `maxSources` counters; refusals beyond them are
 * counted under "other sources".
 */
import { checkMs, checkInt } from '../../../firmware/check';
import type { HfError } from '../../../firmware/errors';
import type { Log } from '../../../hal/log';

export interface RefusalLogOptions {
  /** Refusals of one kind from one source address with one code are summed up over this long, ms (default 30000); the first is logged at once. */
  summaryIntervalMs?: number;
  /** Most counters (source address, kind and code) kept at once (default 1000); refusals beyond them count under "other sources". */
  maxSources?: number;
}

export const REFUSAL_LOG_DEFAULTS: Required<RefusalLogOptions> = { summaryIntervalMs: 30000, maxSources: 1000 };

/** What a refusal code means, in a few words. */
const WORDS: Record<string, string> = {
  HF_ERR_AUTH: 'unknown device or wrong key, or a replayed hello',
  HF_ERR_BUSY: 'over a limit: too many sessions, connections or hellos',
  HF_ERR_LIMIT: 'too large',
  HF_ERR_UNKNOWN_SESSION: 'no such session (the gateway restarted, or the session ended)',
  HF_ERR_TIMEOUT: 'too slow before proving a key',
};

interface Counter {
  what: string;
  from: string;
  code: string;
  /** Refusals not logged yet. */
  count: number;
  since: number;
  reason: string;
}

export class RefusalLog {
  readonly o: Required<RefusalLogOptions>;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly counters = new Map<string, Counter>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(log: Log, now: () => number, opts: RefusalLogOptions = {}) {
    const o = { ...REFUSAL_LOG_DEFAULTS, ...opts };
    checkMs('summaryIntervalMs', o.summaryIntervalMs, 1);
    checkInt('maxSources', o.maxSources, 1, 1 << 20);
    this.o = o;
    this.log = log;
    this.now = now;
  }

  /** One refusal of a `what` (request, frame, connection) from address `from`. */
  refused(what: string, from: string, err: HfError): void {
    let key = `${what} ${from} ${err.code}`;
    let c = this.counters.get(key);
    if (c === undefined && this.counters.size >= this.o.maxSources) {
      key = `${what} * ${err.code}`;
      c = this.counters.get(key);
      from = 'other sources';
    }
    if (c !== undefined) {
      c.count++;
      c.reason = err.message;
      return;
    }
    this.counters.set(key, { what, from, code: err.code, count: 0, since: this.now(), reason: err.message });
    this.log.warn(`refused a ${what} from ${from}: ${err.code} (${WORDS[err.code] ?? 'not a valid bundle'})`, { reason: err.message });
    if (this.timer === null) {
      this.timer = setInterval(() => this.flush(false), this.o.summaryIntervalMs);
      this.timer.unref();
    }
  }

  /** Logs the sums; forgets counters quiet for a whole interval (all of them when `all`). */
  flush(all: boolean): void {
    const now = this.now();
    for (const [key, c] of this.counters) {
      if (c.count > 0) {
        const s = Math.max(1, Math.round((now - c.since) / 1000));
        this.log.warn(`refused ${c.count} ${c.what}${c.count === 1 ? '' : 's'} from ${c.from} in the last ${s} s: ${c.code} (${WORDS[c.code] ?? 'not a valid bundle'})`, { last: c.reason });
        c.count = 0;
        c.since = now;
        if (!all) continue;
      } else if (!all && now - c.since < this.o.summaryIntervalMs) continue;
      this.counters.delete(key);
    }
    if (this.counters.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Logs what is left and stops the timer. */
  close(): void {
    this.flush(true);
  }
}
