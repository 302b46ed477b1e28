/**
 * A gateway's part in a cluster (cluster-node.ts does the NATS side): which requests it serves and
 * which it relays, and what it tells the rest of the cluster about its sessions.
 *
 *  - A hello is placed by the placement policy over the live nodes (the device's id and the labels of
 *    its hello). Placed here, it is served here; placed on another node, the request is relayed to
 *    that node, which opens the session (its state starts there: nothing to migrate yet).
 *  - A bundle of a session open here is served here. One of a session another node serves (the
 *    session index says which) is relayed to it and its answer sent back as it is: the device sees
 *    one unbroken session, whatever node its request reached.
 *  - In 'direct' mode a node answering relayed requests of a session, or serving its direct TCP
 *    connection through another node's pipe, puts a moved item (its URL and TCP address) on the
 *    session's bundles until the device's requests or frames reach it directly.
 *  - Each session opened here claims its device in the directory (a new epoch) and its id in the
 *    index; one that ended gives both up.
 *
 * A relay that fails (the owner died, NATS is down) answers 503 HF_ERR_NATS: the device sends the
 * request again, and by then the owner is live again or its sessions were taken over elsewhere.
 */
import type { Duplex } from 'node:stream';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import type { ServerLink } from '../../../../firmware/server-link';
import type { Log } from '../../../../hal/log';
import type { RelayedAnswer } from '../http-front';
import type { PipedSocket } from './pipe-stream';
import { SessionKeys } from '../workers/session-key';
import type { WireLimits } from '../../../../firmware/wire';
import type { AnswerMessage, DrainedMessage, HandoffMessage, RelayMessage } from './cluster-messages';
import { type ClusterNode, type ClusterOptions, ClusterNode as Node } from './cluster-node';
import type { RebalanceOptions } from './cluster-options';
import { MEMBERS_DEFAULTS, type NodeInfo } from './members';
import { type OwnedSession, rebalanceOptions, sessionsToMove } from './rebalance';
import type { SessionShadow } from '../../../../firmware/replica';
import type { Replicator } from '../pair/replicator';
import { Replication } from './replication';
import { openStore } from './store';
import { DeviceSubjects } from './device-subjects';

/** What the cluster needs of its gateway. */
export interface ClusterGatewayHost {
  readonly log: Log;
  /** The link URL and TCP address devices reach this gateway at ('' none). */
  url(): string;
  tcp(): string;
  sessions(): number;
  /** The open session with id `sid` (hex), if any. */
  session(sid: string): ServerLink | undefined;
  /** Serves a relayed HTTP request here. */
  serveRelayed(body: Uint8Array, from: string): Promise<RelayedAnswer>;
  /** Serves a direct TCP connection another node relays (its pipe playing the socket, `head` read first); throws HF_ERR_UNSUPPORTED without a TCP front. */
  adoptTcp(socket: PipedSocket, head: Buffer): void;
  holdMs: number;
  limits: WireLimits;
  /** The gateway's replicator (its records go to the cluster's store); null: nothing is replicated. */
  replicator: Replicator | null;
  /** Serves these sessions from now on (a dead node's); returns how many. */
  takeOver(shadows: Iterable<SessionShadow>): number;
  /** The ids (hex) of the sessions open here. */
  sessionIds(): string[];
  /** Drops session `sid` here without a word to its device and returns its handoff bytes (Gateway.releaseSession). */
  release(sid: string): Promise<Uint8Array>;
  /**
   * Serves a session another node released here (Gateway.adoptSession), with the ids of the messages
   * sent to it by id that it kept (device-subjects.ts); returns its id (hex).
   */
  adoptHere(bytes: Uint8Array, ids?: readonly string[]): string;
  /** A `.down` message for `device` (DeviceInboxes.take); null: no session of it here. */
  takeDown(device: string, msgId: string, bytes: Uint8Array): Promise<void> | null;
}

export interface DrainOptions {
  /** Sessions handed at once (default 16). */
  concurrency?: number;
  /** The drain gives up after this, ms (default 60000): what is left stays here. */
  timeoutMs?: number;
}

/** What became of the sessions a drain or a rebalance handed (handAll). */
interface Handed {
  moved: number;
  /** Handoffs that failed (the session is served here again), and sessions placed here. */
  failed: number;
  /** Sessions that ended, were mid-handoff, or stay by placement. */
  skipped: number;
  /** Sessions not begun (time up, or stopped). */
  left: number;
  /** ms each move took. */
  times: number[];
}

export class GatewayCluster {
  private readonly keys: SessionKeys;
  /** Directory epochs of the sessions open here, by link. */
  private readonly epochs = new Map<ServerLink, number>();
  /** Sessions told to move here (a moved item on their bundles) until the device comes directly. */
  private readonly announced = new Set<ServerLink>();
  /** Set while a relayed hello is served: the session it opens is told to come here. */
  private relayedHello = false;
  /** Sessions being handed to another node (by id): their end here is not an end (directory, index). */
  private readonly moving = new Set<string>();
  /** Sessions picked for a handoff (by id), from the pick to its end: none is picked twice. */
  private readonly handing = new Set<string>();
  /** The first few reasons handoffs failed in drains and rebalances (status, the bench). */
  readonly failures = new Set<string>();
  /** Set while a handed session is adopted: its directory epoch (claimed already). */
  private adopting: number | null = null;

  /** The node's replication to the store (null: the gateway replicates nothing). */
  replication: Replication | null = null;
  /** The devices' `.up` and `.down` subjects (null: option deviceSubjects off). */
  deviceSubjects: DeviceSubjects | null = null;
  /** The message ids of sessions being handed away (by session id), from their end here to the handoff. */
  private readonly leaving = new Map<string, string[]>();

  /** The rebalance options, checked, defaults filled in. */
  private readonly rebalanceO: Required<RebalanceOptions>;
  /** The rebalances, one after another (each waits for those before it). */
  private rebalances: Promise<void> = Promise.resolve();
  /** The handoffs of the rebalance under way (null: none): a drain waits for them. */
  private rebalancing: Promise<Handed> | null = null;
  /** Pauses under way (a rebalance's delay, its rate), woken by close. */
  private readonly pauses = new Set<() => void>();

  /** Set once the first join (replication included) is done: until then handoffs are refused. */
  private ready = false;
  /** Set while a fenced node rejoins as a new incarnation. */
  private rejoining = false;
  private closed = false;

  private constructor(
    public node: ClusterNode,
    private readonly host: ClusterGatewayHost,
    private readonly o: ClusterOptions,
  ) {
    this.keys = new SessionKeys(host.limits);
    this.rebalanceO = rebalanceOptions(o.rebalance, o.heartbeatMs ?? MEMBERS_DEFAULTS.heartbeatMs);
  }

  static async start(o: ClusterOptions, host: ClusterGatewayHost): Promise<GatewayCluster> {
    const self = new GatewayCluster(null as unknown as ClusterNode, host, o);
    await self.join();
    self.ready = true;
    return self;
  }

  /** Joins the cluster as a new incarnation: its node, and its replication when the gateway replicates. */
  private async join(): Promise<void> {
    const { o, host } = this;
    const node = await Node.start(o, {
      url: host.url(),
      tcp: host.tcp(),
      log: host.log,
      sessions: () => host.sessions(),
      relayTimeoutMs: host.holdMs + 10_000,
      adopt: (m) => this.adopt(m),
      adoptTcp: (socket, head) => host.adoptTcp(socket, head),
      drain: () => this.drain(),
      relayed: (m, from) => this.relayed(m, from.node),
    });
    this.node = node;
    node.on('joined', (n) => this.joined(node, n));
    if (host.replicator !== null) {
      try {
        const store = await openStore(node.connection, o.prefix ?? 'holdfast', o.replicas ?? 1);
        this.replication = new Replication(
          store,
          node,
          host.replicator,
          { log: host.log, takeOver: (s) => host.takeOver(s), fenced: () => void this.fenced() },
          { compactAfterRecords: o.compactAfterRecords },
        );
        await this.replication.start();
      } catch (e) {
        await node.close();
        throw e;
      }
    }
    if (o.deviceSubjects === true) {
      const ds = new DeviceSubjects(node.connection, o.prefix ?? 'holdfast', { log: host.log, take: (d, id, b) => host.takeDown(d, id, b) }, o.requestTimeoutMs ?? 5000);
      // The sessions served here already (taken over as the node joined, or opened while it rejoined):
      // the gateway told no cluster part of them.
      for (const sid of host.sessionIds()) {
        const link = host.session(sid);
        if (link !== undefined && !link.isFinished) ds.opened(link.deviceId);
      }
      this.deviceSubjects = ds;
    }
  }

  /**
   * This node was judged dead (a stall longer than the heartbeat window) and its sessions taken over:
   * they are another node's now. Each is dropped here without a word to its device (its later requests
   * close unanswered, the device moves on and reaches the heir), and the node joins again as a new
   * incarnation, empty.
   */
  private async fenced(): Promise<void> {
    if (this.rejoining || this.closed) return;
    this.rejoining = true;
    try {
      // Answers held for records the store refused must never go out: what they carry is not stored
      // (the heir has the session as it was before them), and a later attach would release them.
      this.host.replicator?.close();
      const sids = this.host.sessionIds();
      for (const sid of sids) await this.host.release(sid).catch(() => {});
      this.replication?.close();
      this.replication = null;
      this.deviceSubjects?.close();
      this.deviceSubjects = null;
      await this.node.close();
      if (this.closed) return;
      await this.join();
      this.host.log.warn('rejoined the cluster after being fenced', { node: this.node.name, incarnation: this.node.incarnation, dropped: sids.length });
    } catch (e) {
      this.host.log.error('rejoining the cluster failed', { code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message });
    } finally {
      this.rejoining = false;
    }
  }

  get name(): string {
    return this.node.name;
  }

  /**
   * Where a direct TCP connection whose first frame is `bundle` goes: null to be served here, else
   * the live node that serves its session (or is placed to, for a hello). The same choice as relay's.
   */
  tcpOwner(bundle: Uint8Array): string | null | Promise<string | null> {
    const key = this.keys.of(bundle);
    if (key.kind === 'hello') {
      const to = this.node.place(key.device, key.labels);
      return to === this.node.name ? null : to;
    }
    if (key.kind !== 'sid' || this.host.session(key.sid) !== undefined) return null;
    const other = (o: string | null): string | null => (o === null || o === this.node.name || !this.node.members.isLive(o) ? null : o);
    const owner = this.node.index.ownerOf(key.sid);
    return typeof owner === 'string' ? other(owner) : owner.then(other);
  }

  /** Hands a direct TCP connection to node `to` (cluster/pipes.ts); rejects with its refusal. */
  relayTcp(to: string, socket: Duplex, head: Buffer, addr: string): Promise<void> {
    return this.node.pipes.relayTcp(to, socket, head, addr);
  }

  /** null: serve `body` here; else the answer of the node that serves it (relayed). */
  relay(body: Uint8Array, from: string): Promise<RelayedAnswer | null> | null {
    const key = this.keys.of(body);
    if (key.kind === 'hello') {
      const to = this.node.place(key.device, key.labels);
      return to === this.node.name ? null : this.send(to, body, from);
    }
    if (key.kind !== 'sid' || this.host.session(key.sid) !== undefined) return null;
    const owner = this.node.index.ownerOf(key.sid);
    if (typeof owner === 'string') return this.toOwner(owner, body, from);
    return owner.then((o) => (o === null ? this.serveHere(body, from) : this.toOwner(o, body, from)));
  }

  /**
   * A request of a session the index says `owner` serves. A live owner gets it relayed; a dead one's
   * sessions are being taken over (its heir claims them in the index): null, answered 503 for the
   * device to send again. The index naming this node (a session that just ended here): served here.
   */
  private toOwner(owner: string, body: Uint8Array, from: string): Promise<RelayedAnswer | null> | null {
    if (owner === this.node.name) return null;
    if (!this.node.members.isLive(owner)) return Promise.resolve(null);
    return this.send(owner, body, from);
  }

  /** The index had not heard of the session and the bucket names no live owner: served (refused) here. */
  private serveHere(body: Uint8Array, from: string): Promise<RelayedAnswer> {
    return this.host.serveRelayed(body, from);
  }

  private async send(to: string, body: Uint8Array, from: string): Promise<RelayedAnswer> {
    const a = await this.node.relay(to, body, from);
    return { status: a.status, code: a.code, body: a.body };
  }

  /** A request relayed here by node `from`. */
  private async relayed(m: RelayMessage, _from: string): Promise<AnswerMessage> {
    const key = this.keys.of(m.body);
    if (this.node.mode === 'direct' && key.kind === 'sid') this.announce(this.host.session(key.sid), true);
    this.relayedHello = key.kind === 'hello';
    let answer: Promise<RelayedAnswer>;
    try {
      answer = this.host.serveRelayed(m.body, m.addr);
    } finally {
      this.relayedHello = false;
    }
    const a = await answer;
    return { t: 'answer', status: a.status, code: a.code, body: a.body };
  }

  /** A request of `link` reached this gateway directly: it no longer needs telling where to go. */
  direct(link: ServerLink): void {
    if (this.announced.size > 0) this.announce(link, false);
  }

  /**
   * A frame of `link` came on a direct TCP connection: `piped`, through another node (in 'direct'
   * mode the device is told to connect here itself, as for relayed requests), else straight here.
   */
  tcpFrame(link: ServerLink, piped: boolean): void {
    if (!piped) this.direct(link);
    else if (this.node.mode === 'direct') this.announce(link, true);
  }

  private announce(link: ServerLink | undefined, on: boolean): void {
    if (link === undefined || this.announced.has(link) === on) return;
    if (on) this.announced.add(link);
    else this.announced.delete(link);
    link.announceMove(on ? [this.host.url(), this.host.tcp()] : null);
  }

  /**
   * Another node hands a session here (a drain, a rebalance): the directory first (a compare-and-set
   * from the epoch the sender holds: a stale one is refused HF_ERR_EPOCH and nothing changes), then
   * the session itself. Resolves with the new epoch.
   */
  private async adopt(m: HandoffMessage): Promise<number> {
    // Not joined yet (the gateway does not know its cluster part, replication not started): not yet.
    if (!this.ready || this.rejoining) throw hfError(ErrorCode.BUSY, `${this.node.name} is still joining the cluster`);
    const e = await this.node.directory.claim(m.device, this.node.name, this.node.incarnation, new Uint8Array(0), m.epoch);
    this.adopting = e.epoch;
    try {
      this.host.adoptHere(m.snap, m.ids);
    } finally {
      this.adopting = null;
    }
    return e.epoch;
  }

  /**
   * Hands every session of this node to the others, placed by the policy over the nodes that are not
   * draining, `concurrency` at a time; a handoff that fails serves the session here again. This node
   * takes no new session from the start (its heartbeats say draining), and a rebalance under way
   * stops (its handoffs in flight end first). Resolves with the counts.
   */
  async drain(o: DrainOptions = {}): Promise<DrainedMessage> {
    const t0 = Date.now();
    this.node.announceDraining();
    this.host.log.info('draining', { node: this.node.name, sessions: this.host.sessions() });
    // The others hear of it within a heartbeat; until then they may still place a hello here.
    await Promise.all([this.pause(2 * (this.o.heartbeatMs ?? 200)), this.rebalancing]);
    const r = await this.handAll(this.host.sessionIds(), {
      concurrency: Math.max(1, o.concurrency ?? 16),
      until: t0 + (o.timeoutMs ?? 60_000),
      to: (link) => this.node.place(link.deviceId, link.labels),
    });
    const failed = r.failed + r.left;
    const ms = Date.now() - t0;
    r.times.sort((a, b) => a - b);
    const q = (p: number): number => (r.times.length === 0 ? 0 : r.times[Math.min(r.times.length - 1, Math.floor(r.times.length * p))]);
    this.host.log.info('drained', { node: this.node.name, moved: r.moved, failed, ms, p50: q(0.5), p99: q(0.99) });
    return { t: 'drained', moved: r.moved, failed, ms, p50: q(0.5), p99: q(0.99) };
  }

  /**
   * Node `joined` joined the cluster as `node` sees it: once the delay has passed, the sessions of
   * this node placement puts on it now (rebalance.ts) are handed to it, at most `perSecond` started
   * a second. Rebalances run one after another; one stops when the joined node dies or drains, this
   * node drains, closes or rejoins.
   */
  private joined(node: ClusterNode, joined: NodeInfo): void {
    if (!this.rebalanceO.enabled) return;
    const at = Date.now();
    this.rebalances = this.rebalances
      .then(() => this.rebalance(node, joined, at))
      .catch((e) => this.host.log.warn('rebalance failed', { node: node.name, to: joined.node, code: isHfError(e) ? e.code : ErrorCode.STATE, reason: (e as Error).message }));
  }

  private async rebalance(node: ClusterNode, joined: NodeInfo, at: number): Promise<void> {
    const { perSecond, concurrency, delayMs } = this.rebalanceO;
    /** Why the rebalance stops now (null: it goes on). */
    const stop = (): string | null => {
      if (this.closed || this.node !== node) return 'closed';
      if (node.draining) return 'draining';
      if (node.members.incarnationOf(joined.node) !== joined.incarnation) return 'joined node gone';
      if (node.members.info(joined.node)?.draining === true) return 'joined node draining';
      return null;
    };
    await this.pause(at + delayMs - Date.now());
    if (stop() !== null) return;
    const owned: OwnedSession[] = [];
    for (const sid of this.host.sessionIds()) {
      const link = this.host.session(sid);
      if (link !== undefined && !link.isFinished && !this.handing.has(sid)) owned.push({ sid, device: link.deviceId, labels: link.labels });
    }
    const picked = sessionsToMove(node.placement, owned, node.name, joined.node, node.openNodes());
    if (picked.length === 0) return;
    const t0 = Date.now();
    this.host.log.info('rebalancing', { node: node.name, to: joined.node, sessions: picked.length, of: owned.length, perSecond });
    let why: string | null = null;
    const handing = this.handAll(
      picked.map((s) => s.sid),
      {
        concurrency,
        perSecond,
        stop: () => {
          why ??= stop();
          return why !== null;
        },
        // Placed on the joined node still (a node that joined since may take it instead); least-loaded
        // counts change with every move: the pick stands.
        to: (link) => (node.placement.policy === 'least-loaded' || node.place(link.deviceId, link.labels) === joined.node ? joined.node : null),
      },
    );
    this.rebalancing = handing;
    let r: Handed;
    try {
      r = await handing;
    } finally {
      if (this.rebalancing === handing) this.rebalancing = null;
    }
    this.host.log.info('rebalanced', { node: node.name, to: joined.node, moved: r.moved, failed: r.failed, skipped: r.skipped, left: r.left, ms: Date.now() - t0, stopped: why ?? undefined });
  }

  /**
   * Hands the sessions `sids` away, each to the node `to` names (null: it stays, skipped),
   * `concurrency` at a time, at most `perSecond` started a second (none: no limit), until `until`
   * (ms since the epoch) or `stop` says so: what is not begun by then is `left`.
   */
  private async handAll(sids: readonly string[], o: { concurrency: number; perSecond?: number; until?: number; stop?: () => boolean; to: (link: ServerLink) => string | null }): Promise<Handed> {
    const r: Handed = { moved: 0, failed: 0, skipped: 0, left: 0, times: [] };
    const queue = [...sids];
    const t0 = Date.now();
    const gapMs = o.perSecond === undefined ? 0 : 1000 / o.perSecond;
    let begun = 0;
    const stopped = (): boolean => (o.until !== undefined && Date.now() >= o.until) || o.stop?.() === true;
    const worker = async (): Promise<void> => {
      while (queue.length > 0 && !stopped()) {
        // Taken before its turn comes: no turn is waited for with nothing to hand in it.
        const sid = queue.shift() as string;
        if (gapMs > 0) {
          await this.pause(t0 + begun++ * gapMs - Date.now());
          if (stopped()) {
            queue.push(sid);
            return;
          }
        }
        r[await this.handOne(sid, o.to, r.times)]++;
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    r.left = queue.length;
    return r;
  }

  /**
   * Hands session `sid` to the node `to` names for it: released here, a handoff request with this
   * node's directory epoch (once more from the directory's, when that moved on and still names this
   * node), adopted there. A handoff that fails serves the session here again ('failed'); `to` naming
   * this node is 'failed' too. A session that ended, is mid-handoff already, or that `to` leaves
   * here (null) is 'skipped'. Pushes the ms a move took onto `times`.
   */
  private async handOne(sid: string, to: (link: ServerLink) => string | null, times: number[]): Promise<'moved' | 'failed' | 'skipped'> {
    const began = Date.now();
    const link = this.host.session(sid);
    if (link === undefined || link.isFinished || this.handing.has(sid)) return 'skipped';
    const dest = to(link);
    if (dest === null) return 'skipped';
    if (dest === this.node.name) return 'failed';
    this.handing.add(sid);
    try {
      return await this.handTo(sid, link, dest, began, times);
    } finally {
      this.handing.delete(sid);
    }
  }

  private async handTo(sid: string, link: ServerLink, to: string, began: number, times: number[]): Promise<'moved' | 'failed' | 'skipped'> {
    const device = link.deviceId;
    // The epoch this node holds the device at: from its claim, else (a claim still on its way)
    // as the directory says, when it names this node.
    let epoch = this.epochs.get(link);
    if (epoch === undefined) {
      const e = await this.node.directory.lookup(device).catch(() => null);
      epoch = e !== null && e.node === this.node.name ? e.epoch : 0;
    }
    this.moving.add(sid);
    let bytes: Uint8Array;
    try {
      bytes = await this.host.release(sid);
    } catch {
      this.moving.delete(sid);
      this.leaving.delete(sid);
      return 'skipped'; // it ended meanwhile
    }
    // Its message ids (device-subjects.ts), kept as it was dropped here: they go with it.
    const ids = this.leaving.get(sid) ?? [];
    this.leaving.delete(sid);
    try {
      try {
        await this.node.handOff(to, device, epoch, bytes, ids);
      } catch (e) {
        // The directory moved on from the epoch this node knew (its own claim landed late): once
        // more from what the directory says, if it still names this node.
        if (!isHfError(e) || e.code !== ErrorCode.EPOCH) throw e;
        const now = await this.node.directory.lookup(device);
        if (now === null || now.node !== this.node.name) throw e;
        await this.node.handOff(to, device, now.epoch, bytes, ids);
      }
      times.push(Date.now() - began);
      return 'moved';
    } catch (e) {
      this.host.log.warn('handoff failed; the session stays here', { device, to, code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message });
      if (this.failures.size < 8) this.failures.add(`${isHfError(e) ? e.code : 'error'}: ${(e as Error).message}`);
      this.adopting = epoch;
      try {
        this.host.adoptHere(bytes, ids);
      } finally {
        this.adopting = null;
      }
      return 'failed';
    } finally {
      this.moving.delete(sid);
    }
  }

  /** Resolves after `ms` (at once for none), or when the cluster closes. */
  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.pauses.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.pauses.add(done);
    });
  }

  /** A session opened here (before its welcome is written). */
  opened(link: ServerLink, sid: string): void {
    if (this.relayedHello && this.node.mode === 'direct') this.announce(link, true);
    this.deviceSubjects?.opened(link.deviceId);
    this.node.index.opened(sid);
    if (this.adopting !== null) {
      // Handed here: its directory entry is claimed already (adopt), at this epoch.
      this.epochs.set(link, this.adopting);
      return;
    }
    this.node.directory.claim(link.deviceId, this.node.name, this.node.incarnation, link.sid, null).then(
      (e) => {
        if (!link.isFinished) this.epochs.set(link, e.epoch);
      },
      (e) => this.host.log.warn('directory claim failed', { device: link.deviceId, code: isHfError(e) ? e.code : ErrorCode.NATS, reason: (e as Error).message }),
    );
  }

  /** A session of this gateway ended (or was handed away); `ids`: its message ids (device-subjects.ts). */
  ended(link: ServerLink, sid: string, ids: string[] = []): void {
    this.announced.delete(link);
    this.deviceSubjects?.ended(link.deviceId);
    if (this.moving.has(sid)) {
      if (ids.length > 0) this.leaving.set(sid, ids);
      this.epochs.delete(link); // the receiver claims the directory and the index
      return;
    }
    this.node.index.ended(sid);
    const epoch = this.epochs.get(link);
    this.epochs.delete(link);
    if (epoch !== undefined) void this.node.directory.release(link.deviceId, this.node.name, epoch).catch(() => {});
  }

  close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.pauses]) wake();
    this.replication?.close();
    this.deviceSubjects?.close();
    return this.node.close();
  }
}
