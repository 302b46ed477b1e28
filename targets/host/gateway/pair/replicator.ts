/**
 * The primary's side of replication: every session's records (firmware/replica.ts) go to the
 * attached standby, numbered in order, and the answers of sessions with ackAfter 'standby' wait until
 * the standby said it holds the record their state is in (output commit: a device never sees, and so
 * never drops its copy on the strength of, anything the standby does not have).
 *
 * When a standby attaches it gets every live session's snapshot, then `synced`; from then on a record
 * per answer (a snapshot for a session it has not seen, a delta otherwise) and `gone` for a session
 * that ended. Its `ok n` releases every held answer whose record is numbered n or lower.
 *
 * Without a standby: a primary that never had one in its epoch (a pair's first start, or a standby
 * just promoted, whose predecessor is fenced by its own held answers) answers alone ("solo"): nobody
 * else can serve its sessions. Once a standby synced, a lost standby may have taken over (the
 * primary cannot tell a dead standby from a cut connection), so from then on held answers wait for
 * the next standby to attach and sync, as a synchronous standby makes a database wait: nothing is
 * acknowledged that only this machine holds while another may be serving.
 */
import { ErrorCode, isHfError } from '../../../../firmware/errors';
import { ReplicaCursor } from '../../../../firmware/replica';
import type { ServerLink } from '../../../../firmware/server-link';
import type { Log } from '../../../../hal/log';
import type { PeerLink, PeerMessage } from './peer-link';

/** An answer held until the standby holds record `n` (WAITING: until a standby synced). */
interface Held {
  n: number;
  run: () => void;
}

const WAITING = -1;

export interface ReplicatorStats {
  /** Records sent (snapshots, deltas, ends), over every standby this node had. */
  records: number;
  /** Of them, whole snapshots. */
  snapshots: number;
  /** Answers that were held, released. */
  released: number;
}

export class Replicator {
  private peer: PeerLink | null = null;
  private readonly cursors = new Map<ServerLink, ReplicaCursor>();
  /** Number of the last record sent on this connection. */
  private n = 0;
  /** The standby holds every record up to this. */
  private okN = 0;
  /** Whether the attached standby has every live session (its `synced` was sent). */
  private synced = false;
  private readonly held: Held[] = [];
  private head = 0;
  /** No standby ever synced in this epoch: answers go out without one (see above). */
  private solo = true;
  readonly stats: ReplicatorStats = { records: 0, snapshots: 0, released: 0 };

  constructor(
    private readonly links: () => Iterable<ServerLink>,
    private readonly now: () => number,
    private readonly log: Log,
    /** This node's epoch now (for the logs). */
    private readonly epoch: () => number = () => 0,
  ) {}

  /** Whether this primary answers without a standby (no standby synced yet in its epoch). */
  get alone(): boolean {
    return this.solo;
  }

  /** This node became primary in a new epoch (a takeover): it answers alone until a standby syncs. */
  newEpoch(): void {
    this.solo = true;
  }

  /** Whether a standby is attached and has every session. */
  get hasStandby(): boolean {
    return this.peer !== null && this.synced;
  }

  /** The attached standby's node name (null: none attached). */
  get standbyNode(): string | null {
    return this.peer?.peerNode ?? null;
  }

  /** Records sent to the attached standby that it has not confirmed yet (0 without one). */
  get lag(): number {
    return this.n - this.okN;
  }

  /** Answers held now, waiting for a standby to confirm their record (or to attach and sync). */
  get heldAnswers(): number {
    return this.held.length - this.head;
  }

  /**
   * A standby attached (authenticated, epoch checked): it gets every live session's snapshot, then
   * `synced`. A standby attached before is let go.
   */
  attach(peer: PeerLink): void {
    if (this.peer !== null) this.peer.close();
    this.detached();
    this.peer = peer;
    peer.on('message', (m) => {
      if (this.peer === peer && m.t === 'ok') this.ok(m.n);
    });
    peer.on('dead', (code, message) => {
      if (this.peer !== peer) return;
      this.log.warn('standby lost', { role: 'primary', epoch: this.epoch(), node: peer.peerNode, code, reason: message, held: this.held.length - this.head });
      this.detached();
    });
    let sessions = 0;
    for (const link of this.links()) {
      if (link.isFinished) continue;
      this.record(link);
      sessions++;
    }
    this.n++;
    this.post(peer, { t: 'synced', n: this.n });
    this.synced = true;
    this.solo = false;
    for (let i = this.head; i < this.held.length; i++) if (this.held[i].n === WAITING) this.held[i].n = this.n;
    this.log.info('standby attached', { role: 'primary', epoch: this.epoch(), node: peer.peerNode, sessions, records: this.n });
  }

  private detached(): void {
    this.peer = null;
    this.synced = false;
    this.cursors.clear();
    // What the lost standby did not confirm waits for the next one.
    for (let i = this.head; i < this.held.length; i++) this.held[i].n = WAITING;
    this.n = 0;
    this.okN = 0;
  }

  /**
   * Sends `link`'s next record (its state as it is now); returns the record's number, or WAITING
   * when no standby is attached.
   */
  record(link: ServerLink): number {
    const peer = this.peer;
    if (peer === null) return WAITING;
    let c = this.cursors.get(link);
    if (c === undefined) {
      c = new ReplicaCursor();
      this.cursors.set(link, c);
    }
    const r = c.next(link, this.now());
    const n = ++this.n;
    this.stats.records++;
    if (r.kind === 'snap') {
      this.stats.snapshots++;
      this.post(peer, { t: 'snap', n, sid: link.sid, bytes: r.bytes });
    } else this.post(peer, { t: 'delta', n, sid: link.sid, d: r.delta });
    return n;
  }

  /**
   * Sends `m`; a connection that died since its last event (its 'dead' not yet emitted) takes
   * nothing: its 'dead' follows and detaches it. Above the connection's high-water mark the record
   * is still queued (the socket buffers it): answers held for the standby bound how far it runs ahead.
   */
  private post(peer: PeerLink, m: PeerMessage): void {
    try {
      peer.send(m);
    } catch (e) {
      if (!isHfError(e) || e.code !== ErrorCode.CLOSED) throw e; // dead: 'dead' follows
    }
  }

  /** Session `link` ended: the standby forgets it. */
  ended(link: ServerLink): void {
    if (!this.cursors.delete(link) || this.peer === null) return;
    this.n++;
    this.stats.records++;
    this.post(this.peer, { t: 'gone', n: this.n, sid: link.sid });
  }

  /** Runs `run` once the standby holds record `n` (at once if it does already). */
  hold(n: number, run: () => void): void {
    if (n === WAITING && this.solo && this.head === this.held.length) {
      run();
      return;
    }
    if (n !== WAITING && n <= this.okN && this.head === this.held.length) {
      run();
      return;
    }
    this.held.push({ n, run });
  }

  private ok(n: number): void {
    if (n > this.n) return; // not a number this connection sent: ignored
    if (n > this.okN) this.okN = n;
    const held = this.held;
    while (this.head < held.length) {
      const h = held[this.head];
      if (h.n === WAITING || h.n > this.okN) break;
      held[this.head++] = undefined as unknown as Held;
      this.stats.released++;
      h.run();
    }
    if (this.head === held.length) {
      held.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > held.length) {
      held.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Lets the standby go (shutdown). Held answers are dropped: their devices send again elsewhere. */
  close(): void {
    this.peer?.close();
    this.detached();
    this.held.length = 0;
    this.head = 0;
  }
}
