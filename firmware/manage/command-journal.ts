/**
 * The device's record of management command ids, so that it executes each at most once across
 * reconnects and restarts (docs/PROTOCOL.md section 14.3). Appended through hal/Storage as records
 *
 *   [type u8][body length u32 BE][body][CRC-32 of type, length and body, u32 BE]
 *
 *   1 STARTED   body = CBOR {"id", "op"}: the command is about to run
 *   2 DONE      body = CBOR {"id", "op", "answer": {"ok": map} | {"error": {code, message}}}
 *
 * A record torn by a power cut fails its CRC and is ignored with everything after it. Opening the
 * journal answers every id that STARTED without a DONE with HF_ERR_INTERRUPTED (it was running when
 * the device stopped: it is not run again), unless the opener's `settle` knows better (an update's
 * answer is found after the restart it caused: update-record.ts), and rewrites the journal as one
 * whole value (atomic), which also drops a torn tail. Past `2 × keepIds` records it is rewritten the same way with the newest
 * `keepIds` ids. An answer larger than `maxKeptAnswerBytes` is kept as HF_ERR_ANSWER_NOT_KEPT.
 */
import { decodeValue, encodeValue } from '../cbor-value';
import { checkInt } from '../check';
import { crc32 } from '../crc32';
import { ErrorCode, hfError } from '../errors';
import { getU32, putU32 } from '../journal';
import type { Storage } from '../../hal/storage';
import { type AnswerError, errorOf } from './command';
import { isPlainObject } from './ops';

export interface CommandJournalOptions {
  /** Storage key (default "manage"). */
  key?: string;
  /** Command ids remembered, the newest (default 256). */
  keepIds?: number;
  /** Largest answer kept to answer a repeated id with, bytes of CBOR (default 8192). */
  maxKeptAnswerBytes?: number;
}

export const COMMAND_JOURNAL_DEFAULTS = { keepIds: 256, maxKeptAnswerBytes: 8192 };

/**
 * Asked on opening for each id that started and has no answer: its answer (recorded now), 'running'
 * (it goes on in this process: `done` answers it later), or null for HF_ERR_INTERRUPTED.
 */
export type SettleStarted = (id: string, op: string) => AnswerBody | 'running' | null;

/** What an answer is without its id. */
export type AnswerBody = { ok: Record<string, unknown> } | { error: AnswerError };

export interface JournalEntry {
  op: string;
  /** null while the command runs in this process. */
  answer: AnswerBody | null;
}

const Rec = { STARTED: 1, DONE: 2 } as const;
const HEAD = 5;
const TAIL = 4;

export class CommandJournal {
  readonly key: string;
  readonly keepIds: number;
  readonly maxKeptAnswerBytes: number;
  /** Ids that were running when the device last stopped (answered HF_ERR_INTERRUPTED on open). */
  readonly interrupted: string[] = [];
  private readonly storage: Storage;
  private readonly entries = new Map<string, JournalEntry>();
  /** Records appended since the journal was last written whole. */
  private appended = 0;

  /** Opens (or creates) the journal in `storage`. Throws HF_ERR_STORAGE if the medium fails. */
  constructor(storage: Storage, opts: CommandJournalOptions = {}, settle?: SettleStarted) {
    this.storage = storage;
    this.key = opts.key ?? 'manage';
    this.keepIds = checkInt('keepIds', opts.keepIds ?? COMMAND_JOURNAL_DEFAULTS.keepIds, 1, 1 << 20);
    this.maxKeptAnswerBytes = checkInt('maxKeptAnswerBytes', opts.maxKeptAnswerBytes ?? COMMAND_JOURNAL_DEFAULTS.maxKeptAnswerBytes, 64, 1 << 24);
    this.load();
    for (const [id, e] of this.entries) {
      if (e.answer !== null) continue;
      const settled = settle?.(id, e.op) ?? null;
      if (settled === 'running') continue;
      if (settled !== null) {
        e.answer = settled;
        continue;
      }
      e.answer = { error: errorOf(ErrorCode.INTERRUPTED, `the device stopped while command ${id} (${e.op}) ran; it was not run again`) };
      this.interrupted.push(id);
    }
    this.rewrite();
  }

  /** The record of `id`, or undefined if the journal has none (never seen, or too old to keep). */
  get(id: string): JournalEntry | undefined {
    const e = this.entries.get(id);
    return e === undefined ? undefined : { op: e.op, answer: e.answer };
  }

  /** Ids remembered now. */
  get size(): number {
    return this.entries.size;
  }

  /** Records that `id` is about to run; on storage before this returns. */
  started(id: string, op: string): void {
    if (this.entries.has(id)) throw hfError(ErrorCode.STATE, `command ${id} is in the journal already`);
    this.append(Rec.STARTED, { id, op });
    this.entries.set(id, { op, answer: null });
    this.trim();
  }

  /** Records the answer of `id` (started or not); returns what was kept (the answer, or HF_ERR_ANSWER_NOT_KEPT). */
  done(id: string, op: string, answer: AnswerBody): AnswerBody {
    let kept = answer;
    let body = encodeValue({ id, op, answer });
    if (body.length > this.maxKeptAnswerBytes) {
      kept = {
        error: errorOf(ErrorCode.ANSWER_NOT_KEPT, `command ${id} (${op}) ran before; its answer of ${body.length} bytes was over maxKeptAnswerBytes ${this.maxKeptAnswerBytes} and was not kept`),
      };
      body = encodeValue({ id, op, answer: kept });
    }
    this.appendBody(Rec.DONE, body);
    const e = this.entries.get(id);
    if (e !== undefined) e.answer = kept;
    else this.entries.set(id, { op, answer: kept });
    this.trim();
    return kept;
  }

  private append(type: number, v: unknown): void {
    this.appendBody(type, encodeValue(v));
  }

  private appendBody(type: number, body: Uint8Array): void {
    this.storage.append(this.key, frame(type, body), 0, HEAD + body.length + TAIL);
    this.appended++;
  }

  /** Forgets the oldest ids past keepIds; rewrites the journal when it has grown past twice that. */
  private trim(): void {
    if (this.entries.size > this.keepIds) {
      for (const [id, e] of this.entries) {
        if (this.entries.size <= this.keepIds) break;
        if (e.answer !== null) this.entries.delete(id); // one still running stays until it is answered
      }
    }
    if (this.appended > 2 * this.keepIds) this.rewrite();
  }

  /** Writes every remembered id as one whole value (atomic). */
  private rewrite(): void {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (const [id, e] of this.entries) {
      const f = e.answer === null ? frame(Rec.STARTED, encodeValue({ id, op: e.op })) : frame(Rec.DONE, encodeValue({ id, op: e.op, answer: e.answer }));
      parts.push(f);
      n += f.length;
    }
    const all = new Uint8Array(n);
    let p = 0;
    for (const f of parts) {
      all.set(f, p);
      p += f.length;
    }
    this.storage.write(this.key, all);
    this.appended = 0;
  }

  private load(): void {
    const b = this.storage.read(this.key);
    if (b === null) return;
    let p = 0;
    while (p + HEAD + TAIL <= b.length) {
      const type = b[p];
      const len = getU32(b, p + 1);
      if (p + HEAD + len + TAIL > b.length || crc32(b, p, HEAD + len) !== getU32(b, p + HEAD + len)) break;
      const v = record(b.subarray(p + HEAD, p + HEAD + len), type);
      if (v === null) break;
      if (type === Rec.STARTED) {
        if (!this.entries.has(v.id)) this.entries.set(v.id, { op: v.op, answer: null });
      } else {
        this.entries.delete(v.id);
        this.entries.set(v.id, { op: v.op, answer: v.answer });
      }
      p += HEAD + len + TAIL;
    }
    while (this.entries.size > this.keepIds) this.entries.delete(this.entries.keys().next().value as string);
  }
}

function frame(type: number, body: Uint8Array): Uint8Array {
  const f = new Uint8Array(HEAD + body.length + TAIL);
  f[0] = type;
  putU32(f, 1, body.length);
  f.set(body, HEAD);
  putU32(f, HEAD + body.length, crc32(f, 0, HEAD + body.length));
  return f;
}

/** A record's body, or null when it is not one this version wrote (the journal is read up to it). */
function record(body: Uint8Array, type: number): { id: string; op: string; answer: AnswerBody } | null {
  let v: unknown;
  try {
    v = decodeValue(body);
  } catch {
    return null;
  }
  if (!isPlainObject(v) || typeof v.id !== 'string' || typeof v.op !== 'string') return null;
  if (type === Rec.STARTED) return { id: v.id, op: v.op, answer: { ok: {} } };
  if (type !== Rec.DONE || !isPlainObject(v.answer)) return null;
  const a = v.answer;
  if (isPlainObject(a.ok)) return { id: v.id, op: v.op, answer: { ok: a.ok } };
  if (isPlainObject(a.error) && typeof a.error.code === 'string' && typeof a.error.message === 'string')
    return { id: v.id, op: v.op, answer: { error: { code: a.error.code, message: a.error.message } } };
  return null;
}
