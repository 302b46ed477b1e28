/**
 * A cluster node's replication: its Replicator (pair/replicator.ts, the same records a pair's
 * standby gets) writes to the store (store-link.ts) under this incarnation's subject, so every
 * answer waits until its session's state is in JetStream; and when a node dies, its heir (rendezvous
 * hashing of the dead node's name over the live nodes: every node agrees without asking) takes its
 * sessions over:
 *
 *   FENCING   a fence on the dead incarnation's subject: should it still be alive (paused, cut off
 *             from the others), its next write fails and it answers nothing more
 *   READING   the subject up to the fence, as shadows (store.ts readShadows)
 *   ADOPTING  the gateway restores every session (as a pair's standby does) and claims them in the
 *             directory and the index; this node's own subject starts a new generation holding them
 *   PURGING   once that generation is stored, the dead incarnation's subject is purged
 *
 * Compaction: once a generation holds `compactAfterRecords` records, a new one starts (a snapshot of
 * every session), and the older records are purged once it is stored.
 */
import { ErrorCode, isHfError } from '../../../../firmware/errors';
import type { SessionShadow } from '../../../../firmware/replica';
import type { Log } from '../../../../hal/log';
import type { Replicator } from '../pair/replicator';
import { rendezvousOf, hash32 } from '../placement/policies';
import type { ClusterNode } from './cluster-node';
import type { NodeInfo } from './members';
import { StoreLink } from './store-link';
import { fence, lastSequence, purge, readShadows, replSubject, type Store } from './store';

export interface ReplicationOptions {
  /** Records in a generation after which a new one starts (default 100000). */
  compactAfterRecords?: number;
  /** After the store failed, tries again this often, ms (default 250). */
  retryMs?: number;
}

export interface ReplicationHost {
  log: Log;
  /** Serves these sessions from now on (the gateway's takeover); returns how many. */
  takeOver(shadows: Iterable<SessionShadow>): number;
  /** This node's subject was fenced: another node serves its sessions now. */
  fenced(): void;
}

export class Replication {
  private link: StoreLink | null = null;
  private readonly subject: string;
  private readonly compactAfter: number;
  private readonly retryMs: number;
  private recordsAtStart = 0;
  private compacting = false;
  private closed = false;
  /** Takeovers done (for status and tests): the dead incarnation's subject and sessions restored. */
  readonly takeovers: { from: string; sessions: number; records: number; ms: number }[] = [];

  constructor(
    private readonly store: Store,
    private readonly node: ClusterNode,
    private readonly replicator: Replicator,
    private readonly host: ReplicationHost,
    o: ReplicationOptions = {},
  ) {
    this.subject = replSubject(store, node.name, node.incarnation);
    this.compactAfter = o.compactAfterRecords ?? 100_000;
    this.retryMs = o.retryMs ?? 250;
    node.on('dead', (n) => void this.onDead(n));
  }

  /** Starts the first generation (no session yet: record 1 is `synced`). */
  async start(): Promise<void> {
    await this.attach(await lastSequence(this.store, this.subject));
  }

  /** A new generation on this node's subject, after sequence `after`. */
  private async attach(after: number): Promise<void> {
    const link = new StoreLink(this.store.js, this.subject, after, { maxPartBytes: this.store.maxPartBytes });
    this.link = link;
    this.recordsAtStart = this.replicator.stats.records;
    link.on('dead', (code: string, message: string) => {
      if (this.link !== link || this.closed) return;
      if (code === ErrorCode.EPOCH) {
        this.host.log.error('this node was fenced: another node serves its sessions now', { node: this.node.name, reason: message });
        this.host.fenced();
        return;
      }
      this.host.log.warn('replication store lost; answers wait until it is back', { code, reason: message });
      this.reattachSoon(link);
    });
    this.replicator.attach(link);
  }

  /**
   * The store failed a write (NATS down or restarting): a new generation once it takes writes again,
   * from the subject's last sequence as the store has it. Held answers wait for it.
   */
  private reattachSoon(dead: StoreLink): void {
    setTimeout(() => {
      if (this.closed || this.link !== dead) return;
      lastSequence(this.store, this.subject, true).then(
        (seq) => {
          if (this.closed || this.link !== dead) return;
          void this.attach(seq);
          this.host.log.info('replication store back', { subject: this.subject });
        },
        () => this.reattachSoon(dead),
      );
    }, this.retryMs);
  }

  /** After each turn's records: starts a new generation when this one grew past its bound. */
  maybeCompact(): void {
    if (this.compacting || this.closed || this.replicator.stats.records - this.recordsAtStart < this.compactAfter) return;
    void this.compact();
  }

  /** A new generation with every session's snapshot; then what came before it is purged. */
  private async compact(): Promise<void> {
    const old = this.link;
    if (old === null) return;
    this.compacting = true;
    try {
      await this.idle(old);
      if (this.closed || this.link !== old) return;
      const start = old.lastSequence + 1;
      await this.attach(old.lastSequence);
      await this.stored();
      await purge(this.store, this.subject, start);
    } catch (e) {
      this.host.log.warn('replication compaction failed', { code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message });
    } finally {
      this.compacting = false;
    }
  }

  /** Resolves once `link` has nothing on its way (bounded: 5 s). */
  private async idle(link: StoreLink): Promise<void> {
    const until = Date.now() + 5000;
    while (link.busy && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
  }

  /** Resolves once the current generation's records so far are stored (bounded: 10 s). */
  private async stored(): Promise<void> {
    const until = Date.now() + 10_000;
    while (this.replicator.lag > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  }

  /** Which live node inherits a dead node's sessions (the same answer on every node). */
  heirOf(dead: string): string {
    const live = this.node.live().filter((n) => n.node !== dead);
    return rendezvousOf(dead, live, (n) => hash32(n.node, 0x51ed270b))?.node ?? this.node.name;
  }

  private async onDead(n: NodeInfo): Promise<void> {
    if (this.closed || this.heirOf(n.node) !== this.node.name) return;
    const subject = replSubject(this.store, n.node, n.incarnation);
    const t0 = Date.now();
    try {
      const upTo = await fence(this.store, subject, this.node.name);
      const { shadows, records } = await readShadows(this.store, subject, upTo);
      const sessions = shadows === null ? 0 : this.host.takeOver(shadows.all());
      const ms = Date.now() - t0;
      this.takeovers.push({ from: subject, sessions, records, ms });
      this.host.log.info('took over a dead node', { node: n.node, sessions, records, ms });
      // This node's next generation holds them; then the dead one's records can go.
      const link = this.link;
      if (link !== null && !this.closed) {
        await this.idle(link);
        await this.attach(link.lastSequence);
        await this.stored();
      }
      await purge(this.store, subject);
    } catch (e) {
      this.host.log.error('takeover of a dead node failed', { node: n.node, code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message });
    }
  }

  close(): void {
    this.closed = true;
    this.link = null;
  }
}
