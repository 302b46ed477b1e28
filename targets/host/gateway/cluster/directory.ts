/**
 * The cluster's session directory: device -> the node that owns its session, under an epoch, in a
 * JetStream key-value bucket (one key per device). Every change is a compare-and-set on the key's
 * revision, so each (device, epoch) is written once: two nodes racing for a device both read epoch
 * e, one writes e+1, the other's write fails on the revision and it reads again (and sees it lost,
 * or tries e+2). A session is never owned by two nodes in the same epoch. An entry is never deleted:
 * a session that ended leaves its key with no owner, so the next claim still counts up from it.
 *
 *   key    d.<device id as base64url>  (KV keys allow only A-Z a-z 0-9 - _ = . /)
 *   value  CBOR {node, inc, epoch, sid}  node '' and sid empty: nobody owns it now
 *
 * `claim` with `expect` null takes the device whatever its entry says (a hello: the device itself
 * asks for a new session, the old one is over wherever it was); with `expect` a number, only if the
 * entry is still at that epoch (a handoff: a stale sender gets HF_ERR_EPOCH and changes nothing).
 */
import { decodeValue, encodeValue } from '../../../../firmware/cbor-value';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';

/** Who owns a device's session. */
export interface DirEntry {
  /** The owning node ('' nobody). */
  node: string;
  /** The owner's incarnation. */
  inc: number;
  /** Counts up with every change of owner, never down. */
  epoch: number;
  /** The session's id (empty: none). */
  sid: Uint8Array;
}

/** What the directory needs of a key-value bucket (NATS KV; a map in unit tests). */
export interface KvLike {
  /** The key's value and revision, null if it has none. */
  get(key: string): Promise<{ value: Uint8Array; revision: number } | null>;
  /** Writes a key that has no value; throws KvConflict if it has one. Returns the new revision. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes a key whose revision is `revision`; throws KvConflict otherwise. Returns the new revision. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
}

/** A compare-and-set lost: the key changed since it was read. */
export class KvConflict extends Error {}

export interface DirectoryOptions {
  /** Most attempts of one claim when others keep winning the race (default 8). */
  maxAttempts?: number;
}

export function deviceKey(device: string): string {
  return `d.${Buffer.from(device, 'utf8').toString('base64url')}`;
}

const NOBODY = new Uint8Array(0);

function encodeEntry(e: DirEntry): Uint8Array {
  return encodeValue({ node: e.node, inc: e.inc, epoch: e.epoch, sid: e.sid });
}

function decodeEntry(b: Uint8Array, key: string): DirEntry {
  let v: unknown;
  try {
    v = decodeValue(b);
  } catch (e) {
    throw hfError(ErrorCode.STATE, `directory entry ${key} is not CBOR`, e);
  }
  const o = v as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || typeof o.node !== 'string' || !Number.isSafeInteger(o.inc) || !Number.isSafeInteger(o.epoch) || !(o.sid instanceof Uint8Array)) {
    throw hfError(ErrorCode.STATE, `directory entry ${key} is not {node, inc, epoch, sid}`);
  }
  return { node: o.node, inc: o.inc as number, epoch: o.epoch as number, sid: o.sid };
}

export class SessionDirectory {
  private readonly maxAttempts: number;

  constructor(
    private readonly kv: KvLike,
    o: DirectoryOptions = {},
  ) {
    this.maxAttempts = o.maxAttempts ?? 8;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) throw hfError(ErrorCode.OPTION, `maxAttempts must be a positive integer, got ${this.maxAttempts}`);
  }

  /** The device's entry (null: it never had one). */
  async lookup(device: string): Promise<DirEntry | null> {
    const key = deviceKey(device);
    const got = await this.kv.get(key);
    return got === null ? null : decodeEntry(got.value, key);
  }

  /**
   * Makes `node` (incarnation `inc`) the owner of `device`'s session `sid` at the next epoch; returns
   * the new entry. `expect` (see above): null takes it whatever the entry says; a number only from
   * that epoch (HF_ERR_EPOCH otherwise, nothing written).
   */
  async claim(device: string, node: string, inc: number, sid: Uint8Array, expect: number | null): Promise<DirEntry> {
    return this.write(device, expect, (prev) => ({ node, inc, epoch: prev + 1, sid }));
  }

  /**
   * `node` no longer owns `device`'s session at `epoch` (it ended there): the entry says nobody,
   * at the next epoch. Returns false (and writes nothing) when the entry moved on already.
   */
  async release(device: string, node: string, epoch: number): Promise<boolean> {
    try {
      await this.write(device, epoch, (prev, cur) => {
        if (cur === null || cur.node !== node) throw hfError(ErrorCode.EPOCH, 'not the owner');
        return { node: '', inc: 0, epoch: prev + 1, sid: NOBODY };
      });
      return true;
    } catch (e) {
      if (isHfError(e) && e.code === ErrorCode.EPOCH) return false;
      throw e;
    }
  }

  private async write(device: string, expect: number | null, next: (prev: number, cur: DirEntry | null) => DirEntry): Promise<DirEntry> {
    const key = deviceKey(device);
    for (let attempt = 1; ; attempt++) {
      const got = await this.kv.get(key);
      const cur = got === null ? null : decodeEntry(got.value, key);
      const prev = cur === null ? 0 : cur.epoch;
      if (expect !== null && prev !== expect) throw hfError(ErrorCode.EPOCH, `${JSON.stringify(device)} is at epoch ${prev} in the directory, not ${expect}`);
      const e = next(prev, cur);
      try {
        if (got === null) await this.kv.create(key, encodeEntry(e));
        else await this.kv.update(key, encodeEntry(e), got.revision);
        return e;
      } catch (err) {
        if (!(err instanceof KvConflict)) throw err;
        if (attempt >= this.maxAttempts) throw hfError(ErrorCode.BUSY, `${JSON.stringify(device)}: directory entry kept changing (${attempt} attempts)`);
      }
    }
  }
}

/** An in-memory KvLike (tests, and a cluster of one without NATS). */
export class MemoryKv implements KvLike {
  private readonly m = new Map<string, { value: Uint8Array; revision: number }>();
  private rev = 0;

  async get(key: string): Promise<{ value: Uint8Array; revision: number } | null> {
    return this.m.get(key) ?? null;
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    if (this.m.has(key)) throw new KvConflict(`${key} exists`);
    this.m.set(key, { value, revision: ++this.rev });
    return this.rev;
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    if (this.m.get(key)?.revision !== revision) throw new KvConflict(`${key} is not at revision ${revision}`);
    this.m.set(key, { value, revision: ++this.rev });
    return this.rev;
  }
}
