/**
 * A gateway's place in a primary/standby pair, as an explicit state machine:
 *
 *   STANDBY --(synced, then the primary's connection dies)--> PRIMARY
 *      ^                                                         |
 *      +------------- (a new process, --standby-of) ------------+
 *
 * STANDBY: connects to the primary's peer address (retrying while it cannot), keeps its sessions as
 * shadows (shadows.ts) and answers devices only with HF_ERR_STANDBY. Once it held every session
 * (`synced`) and the connection dies (closed: the primary's process is gone; or heartbeats missed), it
 * takes over: epoch one above the highest it saw, every shadow restored as a live session, and it
 * serves devices from there. A standby that never synced has nothing to serve from: it keeps trying.
 * A connection refused by a bad record (HF_ERR_PEER) or refused outright is not a takeover: it
 * attaches again from fresh snapshots.
 *
 * PRIMARY: accepts a standby on its peer listener (one at a time; one from a later epoch is refused
 * with HF_ERR_EPOCH: this node was superseded) and replicates to it (replicator.ts).
 *
 * The primary with ackAfter 'standby' answers nothing a standby does not hold, so after a takeover
 * the old primary (were it only cut off) can answer no device: it holds every answer until a standby
 * confirms, and the promoted one never will. Epochs travel in every HTTP answer
 * (`x-holdfast-epoch`), so a device that saw the new primary refuses the old one's answers.
 */
import { ErrorCode, type HfError, hfError } from '../../../../firmware/errors';
import type { Log } from '../../../../hal/log';
import type { PeerLink, PeerMessage } from './peer-link';
import type { Replicator } from './replicator';
import { Shadows } from './shadows';
import type { SessionShadow } from '../../../../firmware/replica';

export const PairRole = { STANDBY: 0, PRIMARY: 1, CLOSED: 2 } as const;
export type PairRoleValue = (typeof PairRole)[keyof typeof PairRole];
export const PAIR_ROLE_NAMES = ['standby', 'primary', 'closed'] as const;
export type PairRoleName = (typeof PAIR_ROLE_NAMES)[number];

/** What a node of a pair reports of itself (logs, metrics, the management API): plain values. */
export interface PairStatus {
  role: PairRoleName;
  /** The highest epoch this node knows (Pair.epoch). */
  epoch: number;
  /** This node's name. */
  node: string;
  /** The peer: a standby's primary, a primary's attached standby; `node` while connected. */
  peer: { up: boolean; node?: string };
  /** Takeovers this node made. */
  takeovers: number;
  /** Replication records sent (as primary) and taken (as standby), snapshots, deltas and ends; only rises. */
  records: number;
  /** Answers held until a standby holds their record (primary). */
  heldAnswers: number;
  /** Records sent to the standby and not confirmed yet (primary). */
  lagRecords: number;
  /** Sessions held as shadows, and their message payload bytes (standby). */
  shadowSessions: number;
  shadowBytes: number;
}

export interface PairOptions {
  /** The pair's shared secret (≥ 16 bytes; text is UTF-8). */
  key: string | Uint8Array;
  /** This node's name (in logs and the peer's hello; default "gateway"). */
  node?: string;
  /** Where this node accepts its standby, "host:port" (both roles: a standby that takes over needs one). null: none. */
  listen?: string | null;
  /** Start as the standby of the primary whose peer listener is here, "host:port". Absent: start as primary. */
  standbyOf?: string | null;
  /** Heartbeat interval of the control connection, ms (default 50). */
  heartbeatMs?: number;
  /** Heartbeats missed before the peer counts as dead (default 4: 200 ms at the default interval). */
  heartbeatMisses?: number;
  /** First wait before a standby tries the primary again, ms (default 50), doubling up to 1000. */
  retryMs?: number;
  /** With TLS: the CAs (PEM) the standby trusts for the primary's certificate (default: the gateway's own certificate). */
  ca?: string | Buffer | (string | Buffer)[];
  /** With TLS: the name the primary's certificate must carry (default: the host of standbyOf). */
  servername?: string;
}

/** What the pair needs of the gateway and of the network (peer-conn.ts; tests give doubles). */
export interface PairHost {
  log: Log;
  replicator: Replicator;
  /** Takes every shadow over as a live session (the gateway now serves them). */
  takeOver(shadows: Iterable<SessionShadow>): number;
  /** Listens for a standby; `epoch` is this node's now (`setEpoch` follows a promotion). */
  listen(
    address: string,
    accept: (peerRole: string, peerEpoch: number) => HfError | null,
    onPeer: (p: PeerLink) => void,
    epoch: number,
  ): Promise<{ address: string; close(): unknown; setEpoch?(n: number): void }>;
  connect(address: string, epoch: number): Promise<PeerLink>;
}

export class Pair {
  role: PairRoleValue;
  /** The highest epoch this node knows: its own as primary, its primary's as standby. */
  epoch: number;
  /** Takeovers this node made. */
  takeovers = 0;
  /** Records taken as a standby (snapshots, deltas, ends), over every primary it attached to. */
  private recordsTaken = 0;
  private shadows = new Shadows();
  private listener: { address: string; close(): unknown; setEpoch?(n: number): void } | null = null;
  private retry: NodeJS.Timeout | null = null;
  private retryWait: number;
  private okQueued = false;
  private standbyPeer: PeerLink | null = null;
  /** The code the primary last refused this standby with (said once, until something changes). */
  private refusedCode: string | null = null;

  constructor(
    private readonly host: PairHost,
    readonly o: PairOptions,
  ) {
    this.role = o.standbyOf ? PairRole.STANDBY : PairRole.PRIMARY;
    this.epoch = this.role === PairRole.PRIMARY ? 1 : 0;
    this.retryWait = o.retryMs ?? 50;
  }

  /** The peer listener's bound address, once listening. */
  get peerAddress(): string | null {
    return this.listener?.address ?? null;
  }

  /** Whether this node holds every session of its primary (a standby that could take over now). */
  get synced(): boolean {
    return this.shadows.synced;
  }

  /** Sessions held as shadows (standby). */
  get shadowCount(): number {
    return this.shadows.size;
  }

  /** Bytes of message payload the shadows hold (standby). */
  get shadowBytes(): number {
    return this.shadows.bytes;
  }

  /** The number of the last record taken from the primary on this connection (standby; 0: none). */
  get lastRecord(): number {
    return this.shadows.lastN;
  }

  /** Records this node replicated: sent as primary plus taken as standby (only rises). */
  get records(): number {
    return this.host.replicator.stats.records + this.recordsTaken;
  }

  /** Whether the peer is connected: a standby's primary, or a primary's attached standby. */
  get peerUp(): boolean {
    return this.peerNode !== null;
  }

  /** The connected peer's node name (null: none connected). */
  get peerNode(): string | null {
    if (this.role === PairRole.STANDBY) return this.standbyPeer?.peerNode ?? null;
    if (this.role === PairRole.PRIMARY) return this.host.replicator.standbyNode;
    return null;
  }

  /** This node's state now (see PairStatus). */
  status(): PairStatus {
    const r = this.host.replicator;
    const node = this.peerNode;
    return {
      role: PAIR_ROLE_NAMES[this.role],
      epoch: this.epoch,
      node: this.o.node ?? 'gateway',
      peer: node === null ? { up: false } : { up: true, node },
      takeovers: this.takeovers,
      records: this.records,
      heldAnswers: r.heldAnswers,
      lagRecords: r.lag,
      shadowSessions: this.shadows.size,
      shadowBytes: this.shadows.bytes,
    };
  }

  async start(): Promise<void> {
    if (this.o.listen) {
      this.listener = await this.host.listen(
        this.o.listen,
        (peerRole, peerEpoch) => this.acceptPeer(peerRole, peerEpoch),
        (p) => this.host.replicator.attach(p),
        this.epoch,
      );
    }
    if (this.role === PairRole.STANDBY) this.connect();
    this.host.log.info('pair', { role: PAIR_ROLE_NAMES[this.role], epoch: this.epoch, peer: this.o.standbyOf ?? undefined, listen: this.listener?.address });
  }

  private acceptPeer(peerRole: string, peerEpoch: number): HfError | null {
    if (this.role !== PairRole.PRIMARY) return hfError(ErrorCode.STANDBY, 'this node is a standby itself: attach to the primary');
    if (peerRole !== 'standby') return hfError(ErrorCode.PEER, `a ${peerRole} attached where a standby was expected`);
    if (peerEpoch > this.epoch) return hfError(ErrorCode.EPOCH, `the standby saw epoch ${peerEpoch}, this primary is at ${this.epoch}: it was superseded`);
    return null;
  }

  // ---- standby ------------------------------------------------------------------------------

  private connect(): void {
    this.retry = null;
    if (this.role !== PairRole.STANDBY || !this.o.standbyOf) return;
    this.host.connect(this.o.standbyOf, this.epoch).then(
      (p) => this.attached(p),
      (e: HfError) => {
        // Not there yet is routine (debug); refused (a wrong key, an older epoch) is said once per code.
        const refused = e.code !== ErrorCode.CONNECT && e.code !== ErrorCode.CLOSED && e.code !== ErrorCode.TIMEOUT;
        if (refused && e.code !== this.refusedCode) this.host.log.warn('primary refused this standby', { peer: this.o.standbyOf, code: e.code, reason: e.message });
        else this.host.log.debug('primary not reached', { peer: this.o.standbyOf, code: e.code, reason: e.message });
        this.refusedCode = refused ? e.code : null;
        this.again();
      },
    );
  }

  private again(): void {
    if (this.role !== PairRole.STANDBY || this.retry !== null) return;
    this.retry = setTimeout(() => this.connect(), this.retryWait);
    this.retry.unref?.();
    this.retryWait = Math.min(this.retryWait * 2, 1000);
  }

  private attached(p: PeerLink): void {
    if (this.role !== PairRole.STANDBY) {
      p.close();
      return;
    }
    if (p.peerEpoch < this.epoch) {
      p.close();
      this.host.log.warn('primary of an older epoch refused', { code: ErrorCode.EPOCH, epoch: p.peerEpoch, seen: this.epoch });
      this.again();
      return;
    }
    this.epoch = p.peerEpoch;
    this.refusedCode = null;
    this.retryWait = this.o.retryMs ?? 50;
    this.shadows = new Shadows();
    const shadows = this.shadows;
    this.standbyPeer = p;
    p.on('message', (m: PeerMessage) => {
      if (this.standbyPeer !== p) return;
      try {
        shadows.take(m);
      } catch (e) {
        const err = e as HfError;
        this.host.log.warn('primary sent a bad record: attaching again', { role: 'standby', epoch: this.epoch, code: err.code, reason: err.message });
        p.send({ t: 'err', code: err.code ?? ErrorCode.PEER, message: err.message });
        this.standbyPeer = null;
        p.close();
        this.shadows = new Shadows();
        this.again();
        return;
      }
      if (m.t === 'snap' || m.t === 'delta' || m.t === 'gone') this.recordsTaken++;
      if (!this.okQueued) {
        this.okQueued = true;
        queueMicrotask(() => {
          this.okQueued = false;
          if (this.standbyPeer === p) p.send({ t: 'ok', n: shadows.lastN });
        });
      }
    });
    p.on('dead', (code: string, message: string) => {
      if (this.standbyPeer !== p) return;
      this.standbyPeer = null;
      const epoch = Math.max(this.epoch, p.peerEpoch);
      if (shadows.synced && (code === ErrorCode.CLOSED || code === ErrorCode.TIMEOUT)) this.promote(epoch, code, message);
      else {
        this.host.log.info('primary connection lost before it synced: attaching again', { role: 'standby', epoch: this.epoch, code, reason: message });
        this.again();
      }
    });
    this.host.log.info('attached to primary', { role: 'standby', epoch: this.epoch, peer: this.o.standbyOf, node: p.peerNode });
  }

  private promote(seen: number, code: string, why: string): void {
    this.role = PairRole.PRIMARY;
    this.epoch = seen + 1;
    this.listener?.setEpoch?.(this.epoch);
    this.takeovers++;
    this.host.replicator.newEpoch();
    const n = this.host.takeOver(this.shadows.all());
    this.shadows = new Shadows();
    this.host.log.warn('took over from the primary', { role: 'primary', epoch: this.epoch, takeovers: this.takeovers, sessions: n, code, reason: why });
  }

  close(): void {
    if (this.role === PairRole.CLOSED) return;
    this.role = PairRole.CLOSED;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    this.standbyPeer?.close();
    this.standbyPeer = null;
    this.listener?.close();
    this.listener = null;
    this.host.replicator.close();
    this.host.log.info('pair closed', { role: 'closed', epoch: this.epoch });
  }
}
