/**
 * The devices the gateway knows, as rows of `holdfast.db`: their labels (what selectors such as
 * `site=berlin,class=pi4` match), what each last reported about itself (its `info`), and when it was
 * first and last seen. Which devices may connect stays in the devices file; this is what the console
 * shows and selects from, kept across restarts.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { canonicalJson } from './canonical-json';
import { type Db, stmt } from './db';

export interface Device {
  id: string;
  labels: Record<string, string>;
  /** What the device last reported (its `info` operation's result), {} before it reported. */
  info: Record<string, unknown>;
  /** ms since the epoch; null while it has never opened a session. */
  firstSeen: number | null;
  lastSeen: number | null;
}

/** Label keys: a letter or digit, then letters, digits, `.`, `_`, `-`, `/`; 1..63 characters. Values: up to 256 characters. */
export const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

interface Row {
  id: string;
  labels: string;
  info: string;
  first_seen: number | null;
  last_seen: number | null;
}

function checkId(id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > 128) throw hfError(ErrorCode.OPTION, `device id must be 1..128 characters, got ${JSON.stringify(id)}`);
}

export class DeviceStore {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Makes sure each id has a row (the devices file's devices, before any of them connected). */
  ensure(ids: readonly string[]): void {
    for (const id of ids) checkId(id);
    const add = stmt(this.db, 'INSERT OR IGNORE INTO devices (id) VALUES (?)');
    this.db.transaction(() => {
      for (const id of ids) add.run(id);
    })();
  }

  /** The device was seen at `at` (ms since the epoch): a session opened or a bundle came; `info`, when given, replaces what it reported. */
  seen(id: string, at: number, info?: Record<string, unknown>): void {
    checkId(id);
    const text = info === undefined ? null : canonicalJson(info);
    stmt(
      this.db,
      `INSERT INTO devices (id, info, first_seen, last_seen) VALUES (?, COALESCE(?, '{}'), ?, ?)
         ON CONFLICT (id) DO UPDATE SET info = COALESCE(?, info), first_seen = COALESCE(first_seen, excluded.first_seen), last_seen = MAX(COALESCE(last_seen, 0), excluded.last_seen)`,
    ).run(id, text, at, at, text);
  }

  /** Replaces the device's labels (keys per LABEL_KEY, string values up to 256 characters). A bad one: HF_ERR_OPTION. */
  setLabels(id: string, labels: Record<string, string>): void {
    checkId(id);
    if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) throw hfError(ErrorCode.OPTION, `labels of ${id} must be an object of strings`);
    for (const [k, v] of Object.entries(labels)) {
      if (!LABEL_KEY.test(k)) throw hfError(ErrorCode.OPTION, `label key ${JSON.stringify(k)} of ${id}: 1..63 of letters, digits and . _ - /, starting with a letter or digit`);
      if (typeof v !== 'string' || v.length > 256) throw hfError(ErrorCode.OPTION, `label ${k} of ${id} must be a string of up to 256 characters`);
    }
    const text = canonicalJson(labels);
    stmt(this.db, 'INSERT INTO devices (id, labels) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET labels = excluded.labels').run(id, text);
  }

  /** The device, or null. */
  get(id: string): Device | null {
    const r = stmt(this.db, 'SELECT * FROM devices WHERE id = ?').get(id) as Row | undefined;
    return r === undefined ? null : toDevice(r);
  }

  /** Every device, by id. */
  list(): Device[] {
    return (stmt(this.db, 'SELECT * FROM devices ORDER BY id').all() as Row[]).map(toDevice);
  }
}

function toDevice(r: Row): Device {
  return { id: r.id, labels: JSON.parse(r.labels), info: JSON.parse(r.info), firstSeen: r.first_seen, lastSeen: r.last_seen };
}
