/**
 * The audit log: append-only, each entry chained by hash to the one before.
 *
 *   hash(n) = sha256( hash(n-1) as 32 bytes || UTF-8 of canonicalJson([seq, at, actor, action, target, detail]) )
 *
 * with hash(0) = 32 zero bytes; `at` is an ISO 8601 UTC string, `detail` a JSON object; canonicalJson
 * (canonical-json.ts) sorts keys and writes no white space. Each row keeps its own `prev_hash` beside
 * its `hash`, and a one-row table `audit_head` keeps the last entry's seq and hash, updated in the
 * same transaction as the append. `verify()` walks the chain and names the first entry that does not
 * hold: one changed in place (its hash does not match its content), a gap in seq (removed), one that
 * does not follow its predecessor (something before it rewritten, inserted or reordered), entries
 * past the head (inserted behind the log's back), or fewer entries than the head says (the last ones
 * removed). Triggers refuse UPDATE and DELETE on the log, so no code path of holdfast can change it.
 *
 * What the chain cannot show by itself: someone with write access to the file who rewrites the whole
 * tail and the head together. The head's seq and hash, which `verify()` returns and `holdfast audit
 * verify` prints, are the anchor to copy somewhere else (a ticket, another machine): a later verify
 * whose chain does not pass through that hash at that seq was rewritten.
 *
 * `export` writes one JSON object per entry with the fields above (plus `prev` and `hash`), enough to
 * check the chain with nothing but sha256 and the canonical encoding.
 */
import { createHash } from 'node:crypto';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { canonicalJson } from './canonical-json';
import { type Db, stmt } from './db';

/** The hash before the first entry (hex). */
export const GENESIS = '0'.repeat(64);

/** An entry to append. */
export interface AuditInput {
  /** Who acted: an operator's name, `token:NAME`, `cli:USER`, `device:ID`, `gateway`. 1..256 characters. */
  actor: string;
  /** What was done, e.g. `login`, `login.failed`, `job.create`, `job.outcome`, `operator.add`: a-z, 0-9, `.`, `_`, `-`; 1..64 characters. */
  action: string;
  /** What it was done to (an operator, a job id, a device id); '' for nothing. Up to 256 characters. */
  target?: string;
  /** Anything else worth keeping, as a plain JSON object (at most `maxDetailBytes` as canonical JSON). */
  detail?: Record<string, unknown>;
}

/** An entry as stored. */
export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  /** The previous entry's hash (hex; GENESIS for the first). */
  prev: string;
  /** This entry's hash (hex). */
  hash: string;
}

export interface AuditOptions {
  /** Largest `detail` taken, bytes of its canonical JSON (default 65536). */
  maxDetailBytes?: number;
}

export const AUDIT_DEFAULTS = { maxDetailBytes: 65536 } as const;

/** How the chain breaks, at the first entry that does not hold. */
export type AuditProblem = 'changed' | 'missing' | 'unchained' | 'inserted' | 'truncated';

export type AuditVerdict = { ok: true; count: number; head: { seq: number; hash: string } } | { ok: false; seq: number; problem: AuditProblem; message: string; head: { seq: number; hash: string } };

/** The hash of an entry that follows `prev` (hex). */
export function entryHash(prev: string, e: Omit<AuditEntry, 'prev' | 'hash'>): string {
  return createHash('sha256')
    .update(Buffer.from(prev, 'hex'))
    .update(canonicalJson([e.seq, e.at, e.actor, e.action, e.target, e.detail]), 'utf8')
    .digest('hex');
}

interface Row {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

const ACTION = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class AuditLog {
  private readonly db: Db;
  private readonly now: () => number;
  private readonly maxDetailBytes: number;

  /** `now`: wall time, ms since the epoch (injected for tests). */
  constructor(db: Db, opts: AuditOptions = {}, now: () => number = Date.now) {
    this.db = db;
    this.now = now;
    this.maxDetailBytes = opts.maxDetailBytes ?? AUDIT_DEFAULTS.maxDetailBytes;
  }

  /** Appends one entry (in its own write transaction, or inside the caller's) and returns it. Bad fields: HF_ERR_OPTION. */
  append(input: AuditInput): AuditEntry {
    const { actor, action } = input;
    const target = input.target ?? '';
    const detail = input.detail ?? {};
    if (typeof actor !== 'string' || actor.length === 0 || actor.length > 256) throw hfError(ErrorCode.OPTION, `audit actor must be 1..256 characters, got ${JSON.stringify(actor)}`);
    if (typeof action !== 'string' || !ACTION.test(action)) throw hfError(ErrorCode.OPTION, `audit action must be 1..64 of a-z 0-9 . _ -, got ${JSON.stringify(action)}`);
    if (typeof target !== 'string' || target.length > 256) throw hfError(ErrorCode.OPTION, `audit target must be up to 256 characters, got ${String(target).length}`);
    if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) throw hfError(ErrorCode.OPTION, 'audit detail must be a JSON object');
    const text = canonicalJson(detail);
    if (Buffer.byteLength(text) > this.maxDetailBytes) throw hfError(ErrorCode.OPTION, `audit detail is ${Buffer.byteLength(text)} bytes, more than maxDetailBytes ${this.maxDetailBytes}`);
    const at = new Date(this.now()).toISOString();
    return this.db
      .transaction((): AuditEntry => {
        const head = this.head();
        const e = { seq: head.seq + 1, at, actor, action, target, detail: JSON.parse(text) as Record<string, unknown> };
        const hash = entryHash(head.hash, e);
        stmt(this.db, 'INSERT INTO audit (seq, at, actor, action, target, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(e.seq, at, actor, action, target, text, head.hash, hash);
        stmt(this.db, 'UPDATE audit_head SET seq = ?, hash = ? WHERE one = 1').run(e.seq, hash);
        return { ...e, prev: head.hash, hash };
      })
      .immediate();
  }

  /** The last entry's seq and hash as the head table keeps them (seq 0 and GENESIS before the first). */
  head(): { seq: number; hash: string } {
    const h = stmt(this.db, 'SELECT seq, hash FROM audit_head WHERE one = 1').get() as { seq: number; hash: string } | undefined;
    return h ?? { seq: 0, hash: GENESIS };
  }

  /** The entries from `fromSeq` on, in order (read lazily: the log may be long). */
  *entries(fromSeq = 1): Generator<AuditEntry> {
    for (const r of this.db.prepare('SELECT * FROM audit WHERE seq >= ? ORDER BY seq').iterate(fromSeq) as IterableIterator<Row>) yield toEntry(r);
  }

  /** The newest entries first: at most `limit`, with a seq below `beforeSeq` when given (for paging back). */
  latest(limit: number, beforeSeq = Number.MAX_SAFE_INTEGER): AuditEntry[] {
    return (stmt(this.db, 'SELECT * FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?').all(beforeSeq, limit) as Row[]).map(toEntry);
  }

  /**
   * Walks the whole chain (see the top of this file). `ok: true` with the count and the head, or the
   * first entry that does not hold, what is wrong with it, and a message for people naming it.
   */
  verify(): AuditVerdict {
    const head = this.head();
    const bad = (seq: number, problem: AuditProblem, message: string): AuditVerdict => ({ ok: false, seq, problem, message, head });
    let expect = 1;
    let prev = GENESIS;
    for (const r of this.db.prepare('SELECT * FROM audit ORDER BY seq').iterate() as IterableIterator<Row>) {
      if (r.seq !== expect) return bad(expect, 'missing', `entry ${expect} is missing (removed): the entry after ${expect - 1} is ${r.seq}`);
      let own: string;
      try {
        own = entryHash(r.prev_hash, toEntry(r));
      } catch {
        own = '';
      }
      if (own !== r.hash) return bad(r.seq, 'changed', `entry ${r.seq} was changed: its hash does not match its content`);
      if (r.prev_hash !== prev) {
        return bad(r.seq, 'unchained', `entry ${r.seq} does not follow ${r.seq === 1 ? 'the start' : `entry ${r.seq - 1}`}: an entry up to it was rewritten, inserted or reordered`);
      }
      prev = r.hash;
      expect++;
    }
    const last = expect - 1;
    if (head.seq > last) return bad(last + 1, 'truncated', `entries ${last + 1}..${head.seq} are missing (removed from the end): the head says ${head.seq} entries, the log has ${last}`);
    if (head.seq < last) return bad(head.seq + 1, 'inserted', `entry ${head.seq + 1} was not appended through the log: the head says ${head.seq} entries, the log has ${last}`);
    if (head.hash !== prev) return bad(last, 'changed', `entry ${last} is not the one the head names: the head's hash is ${head.hash}`);
    return { ok: true, count: last, head };
  }

  /** Throws HF_ERR_AUDIT with verify()'s message when the chain does not hold. */
  check(): { count: number; head: { seq: number; hash: string } } {
    const v = this.verify();
    if (!v.ok) throw hfError(ErrorCode.AUDIT, v.message);
    return v;
  }

  /** Writes each entry from `fromSeq` on as one line of JSON (with its newline); returns the count. */
  export(write: (line: string) => void, fromSeq = 1): number {
    let n = 0;
    for (const e of this.entries(fromSeq)) {
      write(`${JSON.stringify({ seq: e.seq, at: e.at, actor: e.actor, action: e.action, target: e.target, detail: e.detail, prev: e.prev, hash: e.hash })}\n`);
      n++;
    }
    return n;
  }
}

/** The row as an entry; a detail that is not JSON (the file was edited) is HF_ERR_AUDIT naming the entry. */
function toEntry(r: Row): AuditEntry {
  let detail: Record<string, unknown>;
  try {
    detail = JSON.parse(r.detail) as Record<string, unknown>;
  } catch {
    throw hfError(ErrorCode.AUDIT, `entry ${r.seq} was changed: its detail is not JSON`);
  }
  return { seq: r.seq, at: r.at, actor: r.actor, action: r.action, target: r.target, detail, prev: r.prev_hash, hash: r.hash };
}
