/**
 * Which node serves each open session, by session id, for every node of the cluster: a request
 * that names a session (not a hello) can reach any node behind a balancer, and that node relays it
 * to the owner. Kept in the directory's bucket under `s.<session id hex>` (value: the node's name;
 * '' once the session ended or moved away), and in a local map kept current by a watch of those keys,
 * so a lookup is a map read; one the watch has not brought yet is read from the bucket.
 */
import { ErrorCode, isHfError } from '../../../../firmware/errors';
import type { Log } from '../../../../hal/log';
import { KvConflict } from './directory';

/** What the index needs of the bucket besides the directory's compare-and-set. */
export interface IndexKv {
  get(key: string): Promise<{ value: Uint8Array; revision: number } | null>;
  put(key: string, value: Uint8Array): Promise<void>;
  /** Writes a key whose revision is `revision`; rejects (KvConflict) otherwise. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  /** Calls `each` for every key under `prefix` now and for every later change (null: deleted); resolves to a stop function. */
  watch(prefix: string, each: (key: string, value: Uint8Array | null) => void): Promise<() => void>;
}

const PREFIX = 's.';
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export class SessionIndex {
  private readonly owners = new Map<string, string>();
  private stop: (() => void) | null = null;

  constructor(
    private readonly kv: IndexKv,
    private readonly self: string,
    private readonly log: Log,
  ) {}

  /** Starts the watch (every current entry first). */
  async start(): Promise<void> {
    this.stop = await this.kv.watch(PREFIX, (key, value) => {
      const sid = key.slice(PREFIX.length);
      const node = value === null ? '' : fromUtf8.decode(value);
      if (node === '') this.owners.delete(sid);
      else this.owners.set(sid, node);
    });
  }

  /** Session `sid` (hex) is served here now. */
  opened(sid: string): void {
    this.owners.set(sid, this.self);
    this.write(sid, this.self);
  }

  /**
   * Session `sid` ended here (or left): it is nobody's until another node says it serves it. Only an
   * entry that still names this node is cleared (a compare-and-set): one that another node wrote
   * since (it took the session over) stays.
   */
  ended(sid: string): void {
    if (this.owners.get(sid) === this.self) this.owners.delete(sid);
    const key = PREFIX + sid;
    this.kv
      .get(key)
      .then((got) => (got !== null && fromUtf8.decode(got.value) === this.self ? this.kv.update(key, utf8.encode(''), got.revision) : 0))
      .catch((e) => {
        if (!(e instanceof KvConflict)) this.log.warn('session index not cleared', { session: sid.slice(0, 8), code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message });
      });
  }

  private write(sid: string, node: string): void {
    this.kv
      .put(PREFIX + sid, utf8.encode(node))
      .catch((e) => this.log.warn('session index not written', { session: sid.slice(0, 8), node: node || undefined, code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message }));
  }

  /** The node serving `sid` (null: none known): from the map, or read from the bucket when the watch has not told yet. */
  ownerOf(sid: string): string | Promise<string | null> {
    const known = this.owners.get(sid);
    if (known !== undefined) return known;
    return this.kv.get(PREFIX + sid).then((got) => {
      const node = got === null ? '' : fromUtf8.decode(got.value);
      return node === '' ? null : node;
    });
  }

  close(): void {
    this.stop?.();
    this.stop = null;
  }
}
