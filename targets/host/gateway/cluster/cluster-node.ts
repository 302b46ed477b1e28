/**
 * One gateway's place in a cluster on NATS: its heartbeats and the others' (members.ts), its
 * control channel, the session directory (directory.ts on a JetStream bucket, nats-kv.ts), and
 * placement (placement/policies.ts) over the live nodes.
 *
 * Subjects (prefix `holdfast` by default):
 *   <prefix>.cluster.hb          every node's heartbeats and leaves (cluster-messages.ts)
 *   <prefix>.node.<name>.ctl     requests to node <name> (handoff), answered ok or err
 *   <prefix>.node.<name>.relay   devices' HTTP requests relayed to node <name>, answered `answer`
 *   <prefix>.dev.<token>.up/.down messages from and to a device (device-subjects.ts, option deviceSubjects)
 *
 * A control request from a node that is not a live member (or from an incarnation other than the
 * live one) is refused HF_ERR_NODE; a malformed one HF_ERR_PEER; a handoff whose epoch is not the
 * directory's, HF_ERR_EPOCH (directory.ts). A refused request changes nothing on this node.
 *
 * Events: 'joined' (a node, first heard or restarted), 'dead' (a node silent too long, or that left).
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { checkInt, checkMs } from '../../../../firmware/check';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { formatTarget, parseTarget } from '../../../../firmware/mux';
import type { Log } from '../../../../hal/log';
import { TypedEmitter } from '../../app/typed-emitter';
import { silentLog } from '../../../node/log';
import { type Candidate, type PlacementOptions, placeOn, placementPolicy } from '../placement/policies';
import { type AnswerMessage, type ClusterMessage, type DrainedMessage, type HandoffMessage, type RelayMessage, decodeClusterMessage, encodeClusterMessage } from './cluster-messages';
import { SessionDirectory } from './directory';
import type { ClusterOptions } from './cluster-options';
import { checkNodeName, MEMBERS_DEFAULTS, Members, type NodeInfo } from './members';
import { natsKv } from './nats-kv';
import type { PipedSocket } from './pipe-stream';
import { ClusterPipes } from './pipes';
import { rebalanceOptions } from './rebalance';
import { SessionIndex } from './session-index';
import { recentIdsOption } from './device-subjects';

export type { ClusterOptions } from './cluster-options';

/** What the node needs of its gateway. */
export interface ClusterHost {
  /** Where devices reach this gateway: link URL and TCP address ('' none). */
  url: string;
  tcp: string;
  /** Sessions the gateway owns now. */
  sessions(): number;
  /** Another node hands over `device`'s session; resolve once it is served here (its directory entry claimed). */
  adopt(m: HandoffMessage, from: NodeInfo): Promise<number>;
  /** Another node relays a direct TCP connection (its pipe playing the socket): serve it here. HF_ERR_UNSUPPORTED without a TCP front. */
  adoptTcp?(socket: PipedSocket, head: Buffer): void;
  /** Another node relays a device's HTTP request: serve it here, resolve with the answer. */
  relayed(m: RelayMessage, from: NodeInfo): Promise<AnswerMessage>;
  /** How long a relayed request may wait for its answer, ms (the gateway's holdMs and a margin). */
  relayTimeoutMs: number;
  /** Hands every session of this node to the others (a drain request); resolves with what became of them. */
  drain(): Promise<DrainedMessage>;
  log?: Log;
}

export type ClusterEvents = {
  joined: [node: NodeInfo];
  dead: [node: NodeInfo];
};

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export class ClusterNode extends TypedEmitter<ClusterEvents> {
  readonly name: string;
  readonly incarnation: number;
  readonly members: Members;
  readonly directory: SessionDirectory;
  /** Session id -> serving node, for every node (session-index.ts). */
  readonly index: SessionIndex;
  readonly mode: 'direct' | 'relay';
  /** Forwarded connections through the node a target is behind (pipes.ts). */
  readonly pipes: ClusterPipes;
  private readonly log: Log;
  /** The placement policy and its options (the same on every node). */
  readonly placement: PlacementOptions;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly subs: Subscription[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** Whether the NATS connection is up: while it is not, no node is judged dead (the silence is ours). */
  private connected = true;
  draining = false;

  private constructor(
    private readonly nc: NatsConnection,
    directory: SessionDirectory,
    index: (self: string, log: Log) => SessionIndex,
    private readonly host: ClusterHost,
    o: ClusterOptions,
    incarnation: number,
  ) {
    super();
    this.name = o.node;
    this.mode = o.mode ?? 'direct';
    this.incarnation = incarnation;
    this.log = host.log ?? silentLog;
    this.directory = directory;
    this.prefix = o.prefix ?? 'holdfast';
    this.timeoutMs = o.requestTimeoutMs ?? 5000;
    this.placement = { policy: o.placement ?? 'hash', labelKeys: o.labelKeys };
    this.members = new Members(this.info(o), o);
    this.index = index(this.name, this.log);
    this.pipes = new ClusterPipes(
      nc,
      {
        name: this.name,
        incarnation,
        prefix: this.prefix,
        reach: this.members.self.reach,
        reachedBy: (target) =>
          this.members
            .live()
            .filter((n) => n.node !== this.name && !n.draining && n.reach.includes(target))
            .map((n) => n.node),
        request: (to, m, timeoutMs) => this.request(to, m, timeoutMs),
        adoptTcp: (socket, head) => {
          if (host.adoptTcp === undefined) throw hfError(ErrorCode.UNSUPPORTED, `${this.name} serves no direct TCP`);
          host.adoptTcp(socket, head);
        },
      },
      o.pipes,
    );
    this.on('dead', (n) => this.pipes.peerDead(n.node));
  }

  /** Checks the options (HF_ERR_OPTION), connects to NATS (HF_ERR_NATS), opens the directory, joins. */
  static async start(o: ClusterOptions, host: ClusterHost): Promise<ClusterNode> {
    const servers = checkClusterOptions(o);
    let connect: typeof import('@nats-io/transport-node').connect;
    try {
      ({ connect } = await import('@nats-io/transport-node'));
    } catch (e) {
      throw hfError(ErrorCode.UNSUPPORTED, `cluster: the NATS client is not installed (npm install @nats-io/transport-node @nats-io/jetstream @nats-io/kv): ${(e as Error).message}`, e);
    }
    let nc: NatsConnection;
    try {
      nc = await connect({ servers, name: `holdfast-${o.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: o.requestTimeoutMs ?? 5000 });
    } catch (e) {
      throw hfError(ErrorCode.NATS, `cluster: cannot reach NATS at ${servers.join(',')}: ${(e as Error).message}`, e);
    }
    let node: ClusterNode;
    try {
      const kv = await natsKv(nc, { bucket: o.bucket, replicas: o.replicas, timeoutMs: o.requestTimeoutMs });
      node = new ClusterNode(nc, new SessionDirectory(kv), (self, log) => new SessionIndex(kv, self, log), host, o, Date.now());
      await node.index.start();
    } catch (e) {
      await nc.close().catch(() => {});
      throw e;
    }
    node.join(o.heartbeatMs ?? 200);
    return node;
  }

  private info(o: ClusterOptions): NodeInfo {
    return {
      node: o.node,
      incarnation: this.incarnation,
      url: this.host.url,
      tcp: this.host.tcp,
      labels: { ...o.labels },
      services: [...(o.services ?? [])],
      reach: [...(o.reach ?? [])],
      sessions: 0,
      draining: false,
    };
  }

  private subject(kind: 'hb' | 'ctl' | 'relay', node = this.name): string {
    return kind === 'hb' ? `${this.prefix}.cluster.hb` : `${this.prefix}.node.${node}.${kind}`;
  }

  private join(heartbeatMs: number): void {
    const hb = this.nc.subscribe(this.subject('hb'), {
      callback: (err, msg) => {
        if (err !== null) return;
        this.onHeartbeat(msg.data);
      },
    });
    const ctl = this.nc.subscribe(this.subject('ctl'), {
      callback: (err, msg) => {
        if (err !== null) return;
        void this.onControl(msg.data).then((answer) => msg.respond(encodeClusterMessage(answer)));
      },
    });
    const relay = this.nc.subscribe(this.subject('relay'), {
      callback: (err, msg) => {
        if (err !== null) return;
        void this.onRelay(msg.data).then((answer) => msg.respond(encodeClusterMessage(answer)));
      },
    });
    this.subs.push(hb, ctl, relay);
    void this.watchConnection();
    this.beat();
    let lastTick = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      // A tick far later than due: this process was stalled (paused, swapped, a long pause of its
      // loop). The silence was its own, not the others': they get a fresh window, as after a lost
      // NATS connection. (The others may have judged this node dead meanwhile: its store's fence
      // tells it so.)
      if (now - lastTick > heartbeatMs + this.members.deadAfterMs / 2) {
        this.log.warn('cluster: this node was stalled; no node is judged on that silence', { node: this.name, stalledMs: now - lastTick });
        this.members.reheard(now);
      }
      lastTick = now;
      if (!this.connected) return;
      this.beat();
      for (const d of this.members.sweep(now)) {
        this.log.warn('cluster node dead', { node: d.node, silentMs: this.members.deadAfterMs });
        this.emit('dead', d);
      }
    }, heartbeatMs);
    this.log.info('cluster joined', { node: this.name, placement: this.placement.policy });
  }

  /** Follows the NATS connection: cut off, nobody is judged; back, everybody gets a fresh window. */
  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        this.pipes.lost();
        this.log.warn('cluster: NATS connection lost; no node is judged dead until it is back', { node: this.name });
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.members.reheard(Date.now());
        this.log.info('cluster: NATS connection back', { node: this.name });
        this.beat();
      }
    }
  }

  /** Tells the others now (not at the next interval) that this node is draining. */
  announceDraining(): void {
    this.draining = true;
    this.beat();
  }

  private beat(): void {
    const self = this.members.self;
    self.sessions = this.host.sessions();
    self.draining = this.draining;
    this.nc.publish(this.subject('hb'), encodeClusterMessage({ t: 'hb', ...self }));
  }

  private onHeartbeat(data: Uint8Array): void {
    let m: ClusterMessage;
    try {
      m = decodeClusterMessage(data);
    } catch (e) {
      this.log.warn('cluster heartbeat refused', { code: isHfError(e) ? e.code : 'error', reason: (e as Error).message });
      return;
    }
    if (m.t === 'leave') {
      const info = this.members.info(m.node);
      if (info !== null && this.members.left(m.node, m.inc)) {
        this.log.info('cluster node left', { node: m.node });
        this.emit('dead', info);
      }
      return;
    }
    if (m.t !== 'hb') return;
    const { t: _t, ...info } = m;
    const before = this.members.info(info.node);
    const what = this.members.heard(info, Date.now());
    // A node that restarted before its silence was noticed: its old incarnation died all the same.
    if (what === 'restarted' && before !== null && before.incarnation < info.incarnation) {
      this.log.warn('cluster node dead', { node: before.node, incarnation: before.incarnation, reason: 'restarted' });
      this.emit('dead', before);
    }
    if (what === 'joined' || what === 'restarted') {
      this.log.info(`cluster node ${what}`, { node: info.node, url: info.url || undefined, tcp: info.tcp || undefined });
      this.emit('joined', info);
    }
  }

  /** Serves one control request; always answers (err with a code for anything refused). */
  private async onControl(data: Uint8Array): Promise<ClusterMessage> {
    try {
      const m = decodeClusterMessage(data);
      // Anyone on NATS may ask a node to drain (holdfast ctl drain): NATS's own access is the gate.
      if (m.t === 'drain') return await this.host.drain();
      if (m.t !== 'handoff' && m.t !== 'pipe' && m.t !== 'tcp') throw hfError(ErrorCode.PEER, `cluster control: ${m.t} is not a request`);
      const from = this.members.info(m.from);
      if (from === null || from.incarnation !== m.inc) throw hfError(ErrorCode.NODE, `cluster control: ${m.from} (incarnation ${m.inc}) is not a live node of this cluster`);
      if (m.t === 'pipe') {
        await this.pipes.accept(m);
        return { t: 'ok', epoch: 0 };
      }
      if (m.t === 'tcp') {
        this.pipes.acceptTcp(m);
        return { t: 'ok', epoch: 0 };
      }
      if (this.draining) throw hfError(ErrorCode.BUSY, `${this.name} is draining`);
      return { t: 'ok', epoch: await this.host.adopt(m, from) };
    } catch (e) {
      const code = isHfError(e) ? e.code : ErrorCode.STATE;
      this.log.warn('cluster request refused', { code, reason: (e as Error).message });
      return { t: 'err', code, message: (e as Error).message };
    }
  }

  /** Serves one relayed request; always answers (an error answer for anything refused). */
  private async onRelay(data: Uint8Array): Promise<AnswerMessage> {
    try {
      const m = decodeClusterMessage(data);
      if (m.t !== 'relay') throw hfError(ErrorCode.PEER, `cluster relay: ${m.t} is not a relayed request`);
      const from = this.members.info(m.from);
      if (from === null || from.incarnation !== m.inc) throw hfError(ErrorCode.NODE, `cluster relay: ${m.from} (incarnation ${m.inc}) is not a live node of this cluster`);
      return await this.host.relayed(m, from);
    } catch (e) {
      const code = isHfError(e) ? e.code : ErrorCode.STATE;
      this.log.warn('cluster relay refused', { code, reason: (e as Error).message });
      return { t: 'answer', status: code === ErrorCode.NODE ? 421 : 400, code, body: new TextEncoder().encode(JSON.stringify({ code, message: (e as Error).message })) };
    }
  }

  /**
   * Relays a device's HTTP request body to node `to` (which serves its session, or is placed to);
   * resolves with the answer. Rejects HF_ERR_NATS when NATS or `to` does not answer in time.
   */
  async relay(to: string, body: Uint8Array, addr: string): Promise<AnswerMessage> {
    let reply: Uint8Array;
    try {
      reply = (await this.nc.request(this.subject('relay', to), encodeClusterMessage({ t: 'relay', from: this.name, inc: this.incarnation, body, addr }), { timeout: this.host.relayTimeoutMs })).data;
    } catch (e) {
      throw hfError(ErrorCode.NATS, `relay to ${to}: ${(e as Error).message}`, e);
    }
    const a = decodeClusterMessage(reply);
    if (a.t !== 'answer') throw hfError(ErrorCode.PEER, `relay answer from ${to}: ${a.t} is not an answer`);
    return a;
  }

  /**
   * Hands `device`'s session (its snapshot, its directory entry at `epoch`, the ids of the messages
   * sent to it by id: device-subjects.ts) to node `to`; resolves with the new epoch once `to` serves
   * it. Rejects with the code `to` refused with, HF_ERR_NODE for a node that is not live,
   * HF_ERR_NATS when NATS or `to` does not answer in time.
   */
  async handOff(to: string, device: string, epoch: number, snap: Uint8Array, ids: readonly string[] = []): Promise<number> {
    if (!this.members.isLive(to) || to === this.name) throw hfError(ErrorCode.NODE, `handoff of ${JSON.stringify(device)}: ${to} is not another live node`);
    return this.request(to, { t: 'handoff', from: this.name, inc: this.incarnation, device, epoch, snap, ...(ids.length === 0 ? {} : { ids: [...ids] }) });
  }

  /** Sends a control request (any bytes: tests send malformed ones) and returns the ok epoch. */
  async request(to: string, m: ClusterMessage | Uint8Array, timeoutMs = this.timeoutMs): Promise<number> {
    let reply: Uint8Array;
    try {
      reply = (await this.nc.request(this.subject('ctl', to), m instanceof Uint8Array ? m : encodeClusterMessage(m), { timeout: timeoutMs })).data;
    } catch (e) {
      throw hfError(ErrorCode.NATS, `control request to ${to}: ${(e as Error).message}`, e);
    }
    const a = decodeClusterMessage(reply);
    if (a.t === 'ok') return a.epoch;
    if (a.t === 'err') throw hfError(a.code as typeof ErrorCode.NODE, a.message);
    throw hfError(ErrorCode.PEER, `control answer from ${to}: ${a.t} is not an answer`);
  }

  /** Where a new session of `device` (with `labels`) goes: a live node's name (this one when alone). */
  place(device: string, labels: Readonly<Record<string, string>> = {}): string {
    const live = this.members.live().filter((n) => !n.draining || n.node === this.name);
    const open = live.filter((n) => !n.draining);
    return placeOn(this.placement, { device, labels }, (open.length > 0 ? open : live).map(candidateOf)) ?? this.name;
  }

  /** The live nodes that are not draining, as placement sees them (what a rebalance places over). */
  openNodes(): Candidate[] {
    return this.members
      .live()
      .filter((n) => !n.draining)
      .map(candidateOf);
  }

  /** The NATS connection (the replication store shares it). */
  get connection(): NatsConnection {
    return this.nc;
  }

  /** The live nodes (this one included). */
  live(): NodeInfo[] {
    return this.members.live();
  }

  /** Leaves the cluster (a leave message, so the others need not wait for the silence) and closes NATS. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.index.close();
    this.pipes.close();
    try {
      this.nc.publish(this.subject('hb'), encodeClusterMessage({ t: 'leave', node: this.name, inc: this.incarnation }));
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => {});
    }
    this.log.info('cluster left', { node: this.name });
  }
}

/** A node as placement sees it. */
function candidateOf(n: NodeInfo): Candidate {
  return { name: n.node, sessions: n.sessions, labels: n.labels, services: n.services };
}

/** Checks cluster options (HF_ERR_OPTION naming the field); returns the server list. */
export function checkClusterOptions(o: ClusterOptions): string[] {
  if (o === null || typeof o !== 'object') throw hfError(ErrorCode.OPTION, 'cluster must be an object');
  checkNodeName(o.node, 'cluster.node');
  const list = typeof o.servers === 'string' ? o.servers.split(',') : o.servers;
  if (!Array.isArray(list) || list.length === 0) throw hfError(ErrorCode.OPTION, 'cluster.servers must name at least one NATS server');
  const servers = list.map((s) => String(s).trim());
  for (const s of servers) if (!/^(nats|tls):\/\/[^\s/]+$/.test(s)) throw hfError(ErrorCode.OPTION, `cluster.servers: ${JSON.stringify(s)} is not nats://host:port`);
  if (o.placement !== undefined) placementPolicy(o.placement);
  if (o.reach !== undefined) {
    if (!Array.isArray(o.reach) || o.reach.length > 64) throw hfError(ErrorCode.OPTION, 'cluster.reach must be a list of at most 64 "host:port"');
    for (const r of o.reach) {
      try {
        if (formatTarget(parseTarget(String(r)).host, parseTarget(String(r)).port) !== r) throw new Error('not in its one spelling');
      } catch (e) {
        throw hfError(ErrorCode.OPTION, `cluster.reach: ${JSON.stringify(r)} is not "host:port": ${(e as Error).message}`, e);
      }
    }
  }
  const p = o.pipes ?? {};
  if (p.windowBytes !== undefined) checkInt('cluster.pipes.windowBytes', p.windowBytes, 1024, 1 << 30);
  if (p.frameBytes !== undefined) checkInt('cluster.pipes.frameBytes', p.frameBytes, 1024, 512 * 1024);
  if (p.connectTimeoutMs !== undefined) checkMs('cluster.pipes.connectTimeoutMs', p.connectTimeoutMs, 1);
  rebalanceOptions(o.rebalance, o.heartbeatMs ?? MEMBERS_DEFAULTS.heartbeatMs);
  if (o.deviceSubjects !== undefined && typeof o.deviceSubjects !== 'boolean') throw hfError(ErrorCode.OPTION, `cluster.deviceSubjects must be a boolean, got ${JSON.stringify(o.deviceSubjects)}`);
  recentIdsOption(o.deviceRecentIds);
  if (o.prefix !== undefined && !SUBJECT_TOKEN.test(o.prefix)) throw hfError(ErrorCode.OPTION, `cluster.prefix must be 1..64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(o.prefix)}`);
  for (const [k, v] of Object.entries(o.labels ?? {})) if (typeof v !== 'string' || k === '') throw hfError(ErrorCode.OPTION, `cluster.labels.${k} must be a string`);
  return servers;
}
