/**
 * The gateway on the host target: one Acceptor (the session table) served over HTTP (`POST /v1/link`,
 * held requests) and over direct TCP (length-prefixed frames), with a timer per session and a
 * message channel per session for the application.
 *
 *   const gw = await Gateway.start({ http: '127.0.0.1:8080', tcp: '127.0.0.1:8081', devices: { 'pi-1': 'secret' } });
 *   gw.on('session', (ch) => ch.on('message', (m) => ch.send(m)));
 *
 * With `metrics`, a listener of its own serves the gateway's counters at `GET /metrics` (Prometheus
 * text format, metrics.ts); `metricsText()` gives the same text to an application.
 *
 * A live session moves to another gateway process with `releaseSession(sid)` here and
 * `adoptSession(bytes)` there (firmware/handoff.ts; the workers' reload uses it).
 *
 * Events: 'session' (a GatewayChannel), 'listening'. The fronts reach the gateway only through
 * `FrontHost` (./front.ts). Exchanges (HTTP requests held open) count up from 1; direct TCP
 * connection k answers as exchange -k.
 */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { Acceptor } from '../../../firmware/acceptor';
import { DeadlineTimer } from '../../../firmware/deadline-timer';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';
import { checkMs } from '../../../firmware/check';
import { type AckAfter, type LinkOptions, checkAckAfter } from '../../../firmware/options';
import { ServerLink, type ServerPort } from '../../../firmware/server-link';
import { adoptSession, releaseSession } from '../../../firmware/handoff';
import { Transport } from '../../../firmware/link-base';
import { peekRn } from '../../../firmware/wire';
import { SessionKeys } from './workers/session-key';
import { SlabPool } from '../../../firmware/slab-pool';
import type { Log } from '../../../hal/log';
import { kAttach, kConfirmAfterHandler, kPort } from '../app/channel';
import { TypedEmitter } from '../app/typed-emitter';
import { hostClock } from '../../node/clock';
import { nodeCrypto } from '../../node/crypto';
import { hostEntropy } from '../../node/entropy';
import { silentLog } from '../../node/log';
import { type Address, formatAddress, parseAddress } from '../net/address';
import { linkUrl } from '../net/link-url';
import { type GatewayAddress, MAX_WELCOME_GATEWAYS } from '../../../firmware/control';
import { type FrontHost, type HttpListener, Refusal, type TcpListener } from './front';
import { GatewayChannel } from './gateway-channel';
import { HttpFront } from './http-front';
import { type DeviceKeys, keyLookup } from './keys';
import { TcpFront, type TcpLimits } from './tcp-front';
import { type GatewayTlsOptions, isLoopbackHost, serverTlsOptions } from './tls';
import { RefusalLog, type RefusalLogOptions } from './refusal-log';
import { addTotals, GatewayCounters, gatewayFamilies, pairFamilies, renderMetrics } from './metrics';
import { MetricsFront, type MetricsListener } from './metrics-front';
import { Pair, PairRole, type PairHost, type PairOptions, type PairStatus } from './pair/pair';
import { Replicator } from './pair/replicator';
import { checkPairOptions, networkPeers } from './pair/peer-net';
import type { SessionShadow } from '../../../firmware/replica';
import type { ClusterOptions } from './cluster/cluster-options';
import { GatewayCluster } from './cluster/gateway-cluster';
import type { PipedSocket } from './cluster/pipe-stream';
import { checkMsgId, DeviceInboxes, recentIdsOption } from './cluster/device-subjects';

export type { DeviceKeys } from './keys';
export { GatewayChannel } from './gateway-channel';
export type { HttpListener, TcpListener } from './front';
export { TCP_LIMIT_DEFAULTS, type TcpLimits } from './tcp-front';
export type { GatewayTlsOptions } from './tls';
export type { RefusalLogOptions } from './refusal-log';
export type { MetricsListener } from './metrics-front';
export type { PairStatus } from './pair/pair';

/** The gateway's events and what their listeners get. */
export type GatewayEvents = {
  /** A new session: its channel (emitted on the tick after the session opened). */
  session: [channel: GatewayChannel];
  /** Every listener is bound. */
  listening: [];
};

export interface GatewayOptions {
  /** HTTP listener, "host:port" (port 0: any free port). null: none. */
  http?: string | Address | null;
  /** Direct TCP listener. null (default): none. */
  tcp?: string | Address | null;
  /** The devices allowed in and their keys. null: no authentication at all (tests and demos only). */
  devices: DeviceKeys | null;
  /** Link bounds for every session (see firmware/options.ts); unset ones from GATEWAY_LINK_DEFAULTS. */
  link?: LinkOptions;
  /** Most sessions at once (default 10000). */
  maxSessions?: number;
  /** Most direct TCP connections at once (default 10000). */
  maxConnections?: number;
  /**
   * Bounds on direct TCP connections that have not proved a key yet (first frame size, deadlines,
   * per-address caps, hello rate) and on idle ones; unset ones from TCP_LIMIT_DEFAULTS.
   */
  tcpLimits?: TcpLimits;
  /** The HTTP path of the link (default "/v1/link"). */
  path?: string;
  /** TLS for both fronts (HTTPS, TLS on the direct TCP port); absent or null: plain (loopback and labs). */
  tls?: GatewayTlsOptions | null;
  /** How refused requests, frames and connections are summed up in warnings per source address (refusal-log.ts). */
  refusalLog?: RefusalLogOptions;
  /**
   * A listener of its own, "host:port", serving the gateway's counters at `GET /metrics` (Prometheus
   * text format; any other path 404). Plain HTTP, no authentication: put it on loopback or a private
   * network, never where devices or strangers reach it. null or absent (default): none.
   */
  metrics?: string | Address | null;
  /**
   * Where every session's ring memory is cut from (firmware/slab-pool.ts): chunks of `chunkBytes`
   * (default 33554432), of which `keepChunks` (default 1) per block size stay when all their blocks
   * are back. A ring holds a block only while it holds messages.
   */
  ringPool?: { chunkBytes?: number; keepChunks?: number };
  /**
   * When a session acknowledges the device's messages (default 'received'): 'app', only once the
   * gateway's application confirmed them (`done` of the channel's 'message' event, or `ack`), so a
   * message it never confirmed is still the device's and comes again in a later session, or on the
   * next gateway. A function chooses per session (per channel) from the device id as it opens.
   */
  ackAfter?: AckAfter | ((deviceId: string) => AckAfter);
  /**
   * A worker of `holdfast gateway --workers N` (workers/worker.ts): the fronts listen on nothing and
   * take only the connections `adopt()` hands them, and every HTTP response closes its connection
   * (so the main process routes each request). Default false.
   */
  handoff?: boolean;
  /**
   * With `handoff`: HTTP connections stay open after a response; a later request on one that names
   * no session of this gateway (nor is a hello `hellosHere` places here) closes it unanswered, and
   * the device sends it again on a new connection, routed by the main process. Saves a connection
   * and a handoff per exchange when each device has connections of its own; behind a proxy that
   * pools connections for many devices it costs failed requests (leave it off there). Default false.
   */
  handoffKeepAlive?: boolean;
  /** Told of every session as it opens (before its welcome is written) and as it is dropped: the workers' directory. */
  directory?: SessionDirectory | null;
  /**
   * With `handoff`: whether a hello of `device` that came on a handed HTTP connection after its first
   * request belongs here (the main process's answer, workers/worker.ts `workerPlacement`). Absent:
   * such hellos are served here.
   */
  hellosHere?: ((device: string) => Promise<boolean>) | null;
  /**
   * A primary/standby pair (pair/pair.ts): `listen` where this node takes its standby, `standbyOf`
   * to start as the standby of the primary listening there, `key` the pair's shared secret. With a
   * pair, every answer of a session waits until the standby has its state, and with ackAfter
   * 'standby' or 'app' the application gets only what the standby holds.
   */
  pair?: (PairOptions & { connect?: PairHost['connect']; listenPeers?: PairHost['listen'] }) | null;
  /**
   * The gateways each session's welcome names, as devices reach them (a pair's nodes, this one
   * included): a device adds those it does not know to the ones it moves between. At most 8. Default none.
   */
  advertise?: { url: string; tcp?: string | null }[] | null;
  /**
   * A cluster of gateways on NATS (cluster/): `servers` the NATS servers, `node` this gateway's name,
   * its `labels` and `services`, the `placement` policy, 'direct' or 'relay' `mode`. Each new session
   * is placed on a node by its hello; a request reaching a node that does not serve its session is
   * relayed to the one that does. null or absent (default): a gateway alone, no NATS needed.
   */
  cluster?: ClusterOptions | null;
  log?: Log;
}

/** Checks `advertise` (HF_ERR_OPTION naming the entry) and puts it as a welcome carries it. */
function advertised(list: GatewayOptions['advertise']): GatewayAddress[] | undefined {
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list) || list.length > MAX_WELCOME_GATEWAYS) throw hfError(ErrorCode.OPTION, `advertise must be a list of at most ${MAX_WELCOME_GATEWAYS} gateways`);
  return list.map((g, i) => {
    const url = linkUrl(g?.url, `advertise[${i}].url`);
    const tcp = g.tcp === undefined || g.tcp === null ? '' : formatAddress(parseAddress(g.tcp, `advertise[${i}].tcp`));
    return [url.href, tcp] as GatewayAddress;
  });
}

/** What `directory` is told: session id (hex) and device id. */
export interface SessionDirectory {
  opened(sid: string, device: string): void;
  ended(sid: string, device: string): void;
}

/** A fresh message id: 32 hex digits. */
function randomId(): string {
  const b = new Uint8Array(16);
  hostEntropy.fill(b);
  return Buffer.from(b).toString('hex');
}

/** `p`, or HF_ERR_TIMEOUT after `ms` (sendToDevice here: the store may be slow to hold it). */
function withTimeout(p: Promise<void>, ms: number, device: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(hfError(ErrorCode.TIMEOUT, `device ${JSON.stringify(device)}: its message not stored in ${ms} ms (it may be yet: send again with the same id)`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The port of a restored link until its slot gives it the real one. */
const NO_PORT: ServerPort = { answer: () => {}, transmit: () => {}, deliver: () => false };

/** What the gateway keeps per session besides the link. */
interface Slot {
  link: ServerLink;
  channel: GatewayChannel;
  timer: DeadlineTimer;
  /** ackAfter 'standby' or 'app' in a pair: its application gets only what the standby holds (the delivery gate). */
  gated: boolean;
  /** Gated: messages before this are in a record sent to the standby (their gate opens on its ok). */
  gateAsked: number;
  /** Waiting for a record of this turn to be held (sendToDevice's messages, `stored`); null: none. */
  storeWaits: { resolve: () => void; reject: (e: Error) => void }[] | null;
}

/**
 * A gateway keeps a session per device. Its defaults: a 512 KiB window each way (1024 messages),
 * messages up to 64 KiB, bundles up to 256 KiB. The rings' slabs are lent from one pool only while
 * they hold messages (firmware/slab-pool.ts: an idle session holds none), and the bundle buffer is
 * one for all sessions: a busy session holds at most 1088 KiB (both rings and the wrap scratch), an
 * idle one only its slot tables and objects. (With an arena a session, as a driver without a pool
 * gives: 1344 KiB reserved a session; a device's defaults reserve 832 KiB; the host device driver's,
 * DEVICE_LINK_DEFAULTS, 2368 KiB.) The window bounds one session's throughput to window / round trip (512 KiB at
 * 10 ms: 400 Mbit/s); with bundles of 256 KiB a smaller one holds a forwarded port at about one
 * bundle in flight, each waiting for its acknowledgement (the 128 KiB window of before did). Lower it
 * with `link` to keep more sessions per MiB of address space, or raise it for long fat paths.
 */
export const GATEWAY_LINK_DEFAULTS: LinkOptions = { outSlots: 1024, outBytes: 524288, inSlots: 1024, inBytes: 524288, maxMessage: 65536, maxBundleBytes: 262144 };

export class Gateway extends TypedEmitter<GatewayEvents> {
  readonly log: Log;
  /** The HTTP path of the link (default "/v1/link"). */
  readonly path: string;
  /** Largest request body accepted (the link's maxBundleBytes); larger gets 413. */
  readonly maxBody: number;
  /** The HTTP listener (null: none). */
  readonly http: HttpListener | null;
  /** The direct TCP listener (null: none). */
  readonly tcp: TcpListener | null;
  /** The metrics listener (null: none, the default). */
  readonly metrics: MetricsListener | null;
  private readonly acceptor: Acceptor;
  /** Ring memory lent to sessions while their rings hold messages. */
  readonly slabs: SlabPool;
  private readonly httpFront: HttpFront | null;
  private readonly tcpFront: TcpFront | null;
  private readonly metricsFront: MetricsFront | null;
  /** What is counted as it happens (plain fields); rendered only when metrics are asked for. */
  private readonly counters = new GatewayCounters();
  private readonly startedAt = hostClock.now();
  private readonly slots = new Map<ServerLink, Slot>();
  private closed = false;
  private readonly tcpLimits: TcpLimits | undefined;
  /** Refusals, summed up per source address and code in rate-limited warnings. */
  private readonly refusals: RefusalLog;
  private readonly handoff: boolean;
  private readonly directory: SessionDirectory | null;
  private readonly hellosHere: ((device: string) => Promise<boolean>) | null;
  /** Reads the session key of bundles on handed connections (made when first needed). */
  private keys: SessionKeys | null = null;
  /** The pair this gateway is one of (null: none). */
  readonly pair: Pair | null = null;
  private readonly replicator: Replicator | null = null;
  /** This gateway's part in a cluster (null: none, or not joined yet). */
  private clusterPart: GatewayCluster | null = null;
  /** The slot of each device's session here (the latest, when a device has two for a moment). */
  private readonly byDevice = new Map<string, Slot>();
  /** Messages sent to devices by id (sendToDevice, the cluster's `.down`): none taken twice. */
  private readonly inbox: DeviceInboxes;
  /** Whether every device message is published on its `.up` subject (cluster option deviceSubjects). */
  private readonly deviceUp: boolean;
  /** How long sendToDevice waits by default, ms (the cluster's requestTimeoutMs, 5000). */
  private readonly requestTimeoutMs: number;

  private constructor(opts: GatewayOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, 'gateway options must be an object');
    if (opts.devices === undefined) throw hfError(ErrorCode.OPTION, 'devices is required (null runs without authentication)');
    this.log = opts.log ?? silentLog;
    this.refusals = new RefusalLog(this.log, () => hostClock.now(), opts.refusalLog);
    this.path = opts.path ?? '/v1/link';
    this.tcpLimits = opts.tcpLimits;
    this.handoff = opts.handoff === true;
    this.directory = opts.directory ?? null;
    this.hellosHere = opts.hellosHere ?? null;
    this.inbox = new DeviceInboxes((device, bytes) => this.deliverTo(device, bytes), recentIdsOption(opts.cluster?.deviceRecentIds));
    this.deviceUp = opts.cluster?.deviceSubjects === true;
    this.requestTimeoutMs = opts.cluster?.requestTimeoutMs ?? 5000;
    const keyOf = opts.devices === null ? null : keyLookup(opts.devices);
    // Not zero-filled (nothing is read before it is written): a slab costs no memset.
    const ackAfter = opts.ackAfter;
    this.ackAfterFor =
      typeof ackAfter === 'function'
        ? (id) => checkAckAfter(ackAfter(id))
        : (
            (mode) => () =>
              mode
          )(checkAckAfter(ackAfter));
    this.slabs = new SlabPool({ ...opts.ringPool, alloc: (n) => new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n) });
    this.acceptor = new Acceptor({
      options: { ...GATEWAY_LINK_DEFAULTS, ...opts.link },
      maxSessions: opts.maxSessions,
      random: (b) => hostEntropy.fill(b),
      ...(keyOf === null ? {} : { keyOf, crypto: nodeCrypto }),
      open: (link) => this.open(link),
      memory: this.slabs,
      corkInput: true,
      onDrop: (link) => this.drop(link),
      gateways: advertised(opts.advertise),
    });
    this.maxBody = this.acceptor.o.maxBundleBytes;
    const host = this.frontHost();
    const tls = opts.tls === undefined || opts.tls === null ? null : serverTlsOptions(opts.tls);
    const http = opts.http === undefined ? '127.0.0.1:0' : opts.http;
    this.httpFront = http === null ? null : new HttpFront(host, parseAddress(http, 'http'), tls, this.handoff ? (opts.handoffKeepAlive === true ? 'keep-alive' : 'close') : null);
    this.tcpFront = opts.tcp === undefined || opts.tcp === null ? null : new TcpFront(host, parseAddress(opts.tcp, 'tcp'), opts.maxConnections ?? 10000, tls);
    this.secure = tls !== null;
    this.http = this.httpFront;
    this.tcp = this.tcpFront;
    if (this.http === null && this.tcp === null) throw hfError(ErrorCode.OPTION, 'a gateway needs an http or a tcp listener');
    this.metricsFront = opts.metrics === undefined || opts.metrics === null ? null : new MetricsFront(parseAddress(opts.metrics, 'metrics'), () => this.metricsText());
    this.metrics = this.metricsFront;
    if (opts.pair != null && opts.cluster != null) throw hfError(ErrorCode.OPTION, 'a gateway is in a pair or in a cluster, not both (a cluster keeps its sessions in NATS)');
    if (opts.pair !== undefined && opts.pair !== null) {
      const po = opts.pair;
      checkPairOptions(po);
      const net = networkPeers(po, tls, this.log);
      this.replicator = new Replicator(
        () => this.slots.keys(),
        () => hostClock.now(),
        this.log,
        () => this.pair?.epoch ?? 0,
      );
      this.pair = new Pair({ log: this.log, replicator: this.replicator, takeOver: (s) => this.takeOver(s), connect: po.connect ?? net.connect, listen: po.listenPeers ?? net.listen }, po);
    } else if (opts.cluster !== undefined && opts.cluster !== null) {
      // A cluster's standby is its store: every answer waits until its session's state is there.
      this.replicator = new Replicator(
        () => this.slots.keys(),
        () => hostClock.now(),
        this.log,
      );
    } else if (ackAfter === 'standby') {
      throw hfError(ErrorCode.OPTION, "ackAfter 'standby' needs a pair (a standby to wait for) or a cluster (its store): give pair or cluster");
    }
  }

  /** Builds a gateway and starts its listeners. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    try {
      if (gw.httpFront !== null && !gw.handoff) await gw.httpFront.listen();
      if (gw.tcpFront !== null && !gw.handoff) await gw.tcpFront.listen();
      if (gw.metricsFront !== null) await gw.metricsFront.listen();
      if (gw.pair !== null) await gw.pair.start();
      if (opts.cluster !== undefined && opts.cluster !== null) gw.clusterPart = await GatewayCluster.start(opts.cluster, gw.clusterHost());
    } catch (e) {
      await gw.close();
      throw e;
    }
    if (!gw.handoff) gw.log.info('listening', { http: gw.http?.url, tcp: gw.tcp?.address, tls: gw.secure ? 'on' : 'off', metrics: gw.metrics?.url });
    if (!gw.handoff) gw.warnIfPlain();
    gw.emit('listening');
    return gw;
  }

  /**
   * Serves a connection another process accepted and began to read (a worker's, from the main
   * process): `head` is what was read of it, taken before the socket's own bytes. A kind this gateway
   * has no front for is closed.
   */
  adopt(kind: 'http' | 'tcp', socket: net.Socket, head: Buffer): void {
    const front = kind === 'http' ? this.httpFront : this.tcpFront;
    if (front === null || this.closed) {
      socket.destroy();
      return;
    }
    front.adopt(socket, head);
  }

  /** Whether both fronts serve TLS. */
  private readonly secure: boolean;

  private clusterHost() {
    const http = this.httpFront;
    return {
      log: this.log,
      url: () => http?.url ?? '',
      tcp: () => this.tcpFront?.address ?? '',
      sessions: () => this.acceptor.size,
      session: (sid: string) => this.acceptor.session(sid),
      serveRelayed: (body: Uint8Array, from: string) => {
        if (http === null) throw hfError(ErrorCode.UNSUPPORTED, 'a cluster node relays HTTP requests: it needs an http listener');
        return http.serveRelayed(body, from);
      },
      holdMs: this.acceptor.o.holdMs,
      limits: this.acceptor.o,
      replicator: this.replicator,
      takeOver: (shadows: Iterable<SessionShadow>) => this.takeOver(shadows),
      sessionIds: () => [...this.slots.values()].map((s) => s.channel.sessionId),
      release: (sid: string) => this.releaseSession(sid),
      adoptHere: (bytes: Uint8Array, ids: readonly string[] = []) => {
        const sid = this.adoptSession(bytes);
        const device = this.acceptor.session(sid)?.deviceId;
        if (device !== undefined) this.inbox.restore(device, ids);
        return sid;
      },
      takeDown: (device: string, msgId: string, bytes: Uint8Array) => (this.byDevice.has(device) ? this.inbox.take(device, msgId, bytes) : null),
      adoptTcp: (socket: PipedSocket, head: Buffer) => {
        if (this.tcpFront === null) throw hfError(ErrorCode.UNSUPPORTED, 'this node serves no direct TCP (no --tcp)');
        this.tcpFront.adopt(socket, head, true);
      },
    };
  }

  /**
   * Hands every session of this cluster node to the other nodes (a rolling upgrade: SIGTERM of the
   * CLI does this before it stops); resolves with how many moved and how many stay here. Throws
   * HF_ERR_OPTION without a cluster.
   */
  async drainCluster(o: { concurrency?: number; timeoutMs?: number } = {}): Promise<{ moved: number; failed: number; ms: number; p50: number; p99: number }> {
    if (this.clusterPart === null) throw hfError(ErrorCode.OPTION, 'drainCluster: this gateway is not in a cluster');
    const { moved, failed, ms, p50, p99 } = await this.clusterPart.drain(o);
    return { moved, failed, ms, p50, p99 };
  }

  /**
   * A connection to a forward target (serveForwards' `dial`): a TCP socket to it, or in a cluster,
   * when the target is behind another node (its `reach`), a pipe through that node (cluster/pipes.ts).
   * Emits 'connect' once open.
   */
  dial(host: string, port: number): Duplex {
    const pipes = this.clusterPart?.node.pipes;
    return pipes === undefined ? net.connect({ host, port, allowHalfOpen: true }) : pipes.dial(host, port);
  }

  /** This gateway's node in its cluster: name, mode and the live nodes (null: not in a cluster). */
  clusterStatus(): { node: string; mode: 'direct' | 'relay'; takeovers: number; live: { node: string; sessions: number; url: string; tcp: string; draining: boolean }[] } | null {
    const c = this.clusterPart;
    if (c === null) return null;
    return {
      node: c.name,
      mode: c.node.mode,
      takeovers: c.replication?.takeovers.length ?? 0,
      live: c.node.live().map((n) => ({ node: n.node, sessions: n.sessions, url: n.url, tcp: n.tcp, draining: n.draining })),
    };
  }

  /** Plain http/tcp on an address other than loopback: everything crosses the network readable. */
  private warnIfPlain(): void {
    if (this.secure) return;
    const open = [this.http?.address, this.tcp?.address].filter((a): a is string => a !== undefined && !isLoopbackHost(a.slice(0, a.lastIndexOf(':'))));
    if (open.length > 0) this.log.warn('serving plain http/tcp on a non-loopback address: payloads cross the network unencrypted (give tls: --tls-cert/--tls-key)', { listen: open.join(',') });
  }

  /**
   * Replaces the certificate and key (the CLI does this on SIGHUP): connections from now on get the
   * new ones, open ones keep theirs. Only for a gateway started with `tls`. Throws HF_ERR_OPTION on
   * bad options, and HF_ERR_TLS when Node cannot use them (a key that does not match, bad PEM).
   */
  setTls(o: GatewayTlsOptions): void {
    if (!this.secure) throw hfError(ErrorCode.OPTION, 'setTls: this gateway was started without tls');
    const t = serverTlsOptions(o);
    try {
      this.httpFront?.setSecureContext(t);
      this.tcpFront?.setSecureContext(t);
    } catch (e) {
      throw hfError(ErrorCode.TLS, `new certificate refused: ${(e as Error).message}`, e);
    }
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.acceptor.size;
  }

  /**
   * This node's place in its pair: role, epoch, the peer, takeovers, replication records, held
   * answers, records not yet confirmed, shadows (pair/pair.ts PairStatus). null: no pair.
   */
  pairStatus(): PairStatus | null {
    return this.pair === null ? null : this.pair.status();
  }

  /**
   * The gateway's counters and gauges in the Prometheus text exposition format 0.0.4 (what the
   * metrics listener serves): sessions, bundles, messages, payload bytes, refusals by code, memory;
   * with a pair, its role, epoch, peer, takeovers and replication (holdfast_pair_...).
   * Counters only rise; those of a session that ended stay in the totals.
   */
  metricsText(): string {
    const links = { ...this.counters.ended };
    let tcp = 0;
    for (const l of this.slots.keys()) {
      addTotals(links, l.ep.stats);
      if (l.transport === Transport.DIRECT) tcp++;
    }
    const mem = process.memoryUsage();
    const pair = this.pairStatus();
    return renderMetrics([
      ...gatewayFamilies(this.counters, {
        sessionsHttp: this.slots.size - tcp,
        sessionsTcp: tcp,
        links,
        heldRequests: this.httpFront?.held ?? 0,
        tcpConnectionsOpen: this.tcpFront?.connections ?? 0,
        preAuthConnections: this.tcpFront?.preAuthConnections ?? 0,
        pipedConnections: this.tcpFront?.pipedConnections ?? 0,
        uptimeSeconds: Math.round(hostClock.now() - this.startedAt) / 1000,
        residentBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        ringBytesLent: this.slabs.lentBytes,
        ringBlocksKept: this.slabs.kept,
        ringChunkBytes: this.slabs.chunkedBytes,
      }),
      ...(pair === null ? [] : pairFamilies(pair)),
    ]);
  }

  // ---- what the fronts may ask (front.ts) -------------------------------------------------------

  private frontHost(): FrontHost {
    return {
      log: this.log,
      standby: () => this.pair !== null && this.pair.role !== PairRole.PRIMARY,
      epoch: () => this.pair?.epoch ?? 0,
      path: this.path,
      maxBody: this.maxBody,
      holdMs: this.acceptor.o.holdMs,
      keepaliveMs: this.acceptor.o.keepaliveMs,
      tcpLimits: this.tcpLimits,
      counters: this.counters,
      request: (ex, body, from, relayed) => {
        const got = this.take(body, (now) => this.acceptor.onRequest(now, ex, body), 'request', from);
        if (relayed !== true && this.clusterPart !== null && !(got instanceof Refusal)) this.clusterPart.direct(got);
        return got;
      },
      relay: (body, from) => (this.clusterPart === null ? null : this.clusterPart.relay(body, from)),
      tcpRouter: () => {
        const c = this.clusterPart;
        return c === null ? null : { owner: (b) => c.tcpOwner(b), relay: (to, socket, head, addr) => c.relayTcp(to, socket, head, addr) };
      },
      frame: (conn, body, from, piped) => {
        const got = this.take(body, (now) => this.acceptor.onFrame(now, body, -conn), 'frame', from);
        if (this.clusterPart !== null && !(got instanceof Refusal)) this.clusterPart.tcpFrame(got, piped === true);
        return got;
      },
      refused: (what, from, err) => this.refused(what, from, err),
      mayServe: (body) => {
        if (this.keys === null) this.keys = new SessionKeys(this.acceptor.o);
        const key = this.keys.of(body);
        if (key.kind === 'sid') {
          const link = this.acceptor.session(key.sid);
          return link !== undefined && !link.isFinished;
        }
        if (key.kind === 'hello') return this.hellosHere === null ? true : this.hellosHere(key.device);
        return true;
      },
      exchangeGone: (link, ex) => {
        if (link.isFinished) return;
        this.acceptor.onExchangeGone(link, ex);
        this.touched(link);
      },
      connectionClosed: (link, conn) => {
        if (link.isFinished || link.directConn !== -conn) return;
        // The session's connection is gone: it waits for HTTP requests (or a new connection) now.
        link.setTransport(hostClock.now(), Transport.HELD);
        this.log.info('session off tcp', { device: link.deviceId, session: Buffer.from(link.sid).toString('hex').slice(0, 8) });
        this.touched(link);
      },
    };
  }

  /**
   * Gives one request or frame to the acceptor. A refusal changes no session; its request number
   * comes from a walk of the header (peekRn), not a second parse of the body.
   */
  private take(body: Uint8Array, run: (now: number) => ServerLink, what: string, from: string): ServerLink | Refusal {
    let link: ServerLink;
    try {
      link = run(hostClock.now());
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.log.debug(`${what} refused`, { from, code: e.code, reason: e.message });
      // A session handed away: not a refusal worth a warning (its connection closes unanswered).
      if (e.code === ErrorCode.MOVED) this.counters.refused(e.code);
      else this.refused(what, from, e);
      this.touched(null); // a refused request may have corked its session: uncork at the end of the turn
      return new Refusal(e, peekRn(body));
    }
    this.touched(link);
    return link;
  }

  /** A refusal: counted by code, and summed up in the warnings. */
  private refused(what: string, from: string, err: HfError): void {
    this.counters.refused(err.code);
    this.refusals.refused(what, from, err);
  }

  // ---- sessions --------------------------------------------------------------------------------

  /** The ackAfter of a new session of device `id`. */
  private readonly ackAfterFor: (id: string) => AckAfter;

  /** `restored`: a session taken over from a standby's shadow, or adopted from another process's handoff. */
  private open(link: ServerLink, restored: false | 'takeover' | 'handoff' = false): ServerPort {
    const ackAfter = this.ackAfterFor(link.deviceId);
    if (ackAfter === 'standby' && this.replicator === null) throw hfError(ErrorCode.OPTION, `ackAfter 'standby' for ${JSON.stringify(link.deviceId)}, but this gateway has no pair and no cluster`);
    // 'standby' confirms underneath like 'app', the channel confirming each message once its
    // listeners returned: a record then says consumed only what the application handled (and what
    // it sent in reply is in the same record), never what merely waits in the channel's queue.
    if (!restored) link.setAckAfter(ackAfter === 'standby' ? 'app' : ackAfter); // before the hello's messages are applied
    const channel = new GatewayChannel(link, { now: () => hostClock.now(), kick: () => slot.timer.arm() });
    if (ackAfter === 'standby') channel[kConfirmAfterHandler]();
    const slot: Slot = {
      link,
      channel,
      timer: new DeadlineTimer(
        hostClock,
        () => link.nextDeadline(),
        (now) => this.acceptor.tick(link, now),
      ),
      gated: this.replicator !== null && (ackAfter === 'standby' || ackAfter === 'app'),
      gateAsked: link.ep.inr.next,
      storeWaits: null,
    };
    const inr = link.ep.inr;
    // Taken over: what lies between the old primary's delivery and its last record may have reached
    // its application: marked again. (A handoff's snapshot marks exactly what the old owner handed over.)
    if (restored === 'takeover' && inr.next !== inr.read) link.ep.markAgain(inr.read, (inr.next - inr.read) >>> 0);
    // Gated, the application gets a message only once the standby holds it (output): after a
    // takeover it cannot have got one the new primary does not know of. What the standby holds may
    // be delivered at once.
    if (slot.gated) link.ep.gate(inr.next);
    channel[kAttach](link);
    this.slots.set(link, slot);
    this.byDevice.set(link.deviceId, slot);
    // What the application gets, on the device's `.up` too (cluster/device-subjects.ts).
    if (this.deviceUp) channel.on('message', (m) => this.clusterPart?.deviceSubjects?.up(link.deviceId, m));
    const sid = channel.sessionId.slice(0, 8);
    const cp = channel[kPort]();
    this.counters.sessionsOpened++;
    this.log.info('session opened', { device: link.deviceId, session: sid, sessions: this.acceptor.size + 1 });
    this.directory?.opened(channel.sessionId, link.deviceId);
    this.clusterPart?.opened(link, channel.sessionId);
    process.nextTick(() => {
      if (!this.closed) this.emit('session', channel);
    });
    // Written out rather than spread: one object shape for every session's port.
    return {
      onOpen: cp.onOpen,
      deliver: cp.deliver,
      onDrain: cp.onDrain,
      onEnd: cp.onEnd,
      answer: (exchange, body, len) => (this.replicator === null ? this.answer(exchange, body, len) : this.output(slot, exchange, body, len)),
      transmit: (body, len, conn) => (this.replicator === null ? this.tcpFront?.send(-conn, body, len) : this.output(slot, conn, body, len)),
      onClose: (err) => {
        if (err?.code === ErrorCode.MOVED) {
          // Handed to another gateway process: it goes on there.
          this.log.info('session handed off', { device: link.deviceId, session: sid });
          cp.onClose?.(err);
          return;
        }
        if (err) this.counters.sessionsFailed++;
        else this.counters.sessionsClosed++;
        if (err) this.log.info('session failed', { device: link.deviceId, session: sid, code: err.code, reason: err.message });
        else this.log.info('session closed', { device: link.deviceId, session: sid });
        cp.onClose?.(err);
      },
    };
  }

  private drop(link: ServerLink): void {
    const slot = this.slots.get(link);
    if (slot === undefined) return;
    slot.timer.stop();
    this.slots.delete(link);
    // The ids of the messages sent to it by id go where it goes (a handoff carries them).
    let ids: string[] = [];
    if (this.byDevice.get(link.deviceId) === slot) {
      this.byDevice.delete(link.deviceId);
      ids = this.inbox.end(link.deviceId);
    }
    this.replicator?.ended(link);
    this.directory?.ended(slot.channel.sessionId, link.deviceId);
    this.clusterPart?.ended(link, slot.channel.sessionId, ids);
    addTotals(this.counters.ended, link.ep.stats);
    link.ep.discard(); // what its rings still hold goes nowhere now: their memory goes back to the pool
  }

  /**
   * In a pair: the session's state goes to the standby first (a record), then the answer or frame
   * goes out once the standby holds the record (at once while no standby ever synced in this epoch),
   * and a gated session's application may have what the record holds. A held answer is a copy
   * (`body` is valid only during the call).
   */
  private output(slot: Slot, exchange: number, body: Uint8Array, len: number): void {
    const r = this.replicator as Replicator;
    const n = r.record(slot.link);
    // Every answer waits for the standby, whatever ackAfter: one it did not know of (a message the
    // application sent, its number) would leave a session the new primary cannot continue.
    const copy = body.slice(0, len);
    const upTo = slot.link.ep.inr.next;
    if (slot.gated) slot.gateAsked = upTo;
    r.hold(n, () => {
      this.answer(exchange, copy, len);
      if (slot.gated) this.openGate(slot, upTo);
    });
  }

  /**
   * The standby holds every message before `upTo`: the application may have them now (on the next
   * tick: this may run inside the link's own pump).
   */
  private openGate(slot: Slot, upTo: number): void {
    process.nextTick(() => {
      if (slot.link.isFinished) return;
      slot.link.openGate(hostClock.now(), upTo);
      slot.timer.arm();
    });
  }

  /**
   * End of a turn: a gated session that received messages no answer of this turn recorded (its
   * request held as the poll, say) sends the standby a record of its own, so that its application
   * gets them once the standby holds them, not only when the poll is answered.
   */
  private recordGates(): void {
    const r = this.replicator;
    for (const slot of this.gatesToRecord) {
      const link = slot.link;
      if (r === null || link.isFinished || link.ep.inr.next === slot.gateAsked) continue;
      const upTo = link.ep.inr.next;
      slot.gateAsked = upTo;
      r.hold(r.record(link), () => this.openGate(slot, upTo));
    }
    this.gatesToRecord.clear();
  }

  /**
   * A standby's takeover: every shadow becomes a live session, served from here on (its channel
   * emitted as 'session', its unconfirmed messages delivered again, marked). Returns how many.
   */
  private takeOver(shadows: Iterable<SessionShadow>): number {
    const now = hostClock.now();
    let n = 0;
    for (const sh of shadows) {
      let link: ServerLink;
      try {
        link = ServerLink.restore(sh.toSnapshot(now), now, NO_PORT, nodeCrypto, this.slabs);
      } catch (e) {
        this.log.warn('session not taken over', { device: sh.deviceId, code: isHfError(e) ? e.code : 'error', reason: (e as Error).message });
        continue;
      }
      link.setPort(this.open(link, 'takeover'));
      this.acceptor.adopt(link, now);
      n++;
      const slot = this.slots.get(link);
      process.nextTick(() => {
        if (link.isFinished || this.closed) return;
        link.resume(hostClock.now());
        slot?.timer.arm();
      });
    }
    return n;
  }

  // ---- messages to devices by id: sendToDevice, the cluster's `.down` --------------------------------

  /**
   * Sends one message to device `id`, wherever its session is served; resolves once the device's
   * owner holds it: here, once its channel took it (`send` returned true) and, when this gateway
   * replicates (a cluster's store, a pair's standby), once the record with it is held, so a takeover
   * keeps it; on another node of the cluster (which needs `cluster.deviceSubjects` on every node), a
   * `.down` request that node answers the same way (cluster/device-subjects.ts).
   * Here, waiting for the store is bounded by `timeoutMs` too (HF_ERR_TIMEOUT: it may be held yet).
   *
   * `msgId` (1..128 printable ASCII characters) names the message: sent again with the same id
   * (after a failure, or a timeout), it is not delivered twice while its session keeps the id (the
   * last `deviceRecentIds`, 4096 by default; see device-subjects.ts for the takeover window).
   * Without one the message gets a random id (no retry can name it). `timeoutMs`: how long a remote
   * owner may take to answer (default the cluster's requestTimeoutMs).
   *
   * Rejects, nothing taken: HF_ERR_UNKNOWN_SESSION when no node serves the device now (none at all,
   * or the session is between nodes for a moment: try again with the same id), HF_ERR_BUSY when its
   * out-ring is full, HF_ERR_TOO_BIG when the message exceeds its maxMessage, HF_ERR_CLOSED for a
   * session ending; HF_ERR_TIMEOUT and HF_ERR_NATS when the remote owner did not answer (it may hold
   * the message: send again with the same id). HF_ERR_OPTION for bad arguments.
   */
  async sendToDevice(id: string, bytes: Uint8Array, o: { msgId?: string; timeoutMs?: number } = {}): Promise<void> {
    if (typeof id !== 'string' || id.length < 1 || id.length > 128) throw hfError(ErrorCode.OPTION, `sendToDevice: the device id must be 1..128 characters, got ${JSON.stringify(id)}`);
    if (!(bytes instanceof Uint8Array)) throw hfError(ErrorCode.OPTION, 'sendToDevice: the message must be a Uint8Array');
    if (o.timeoutMs !== undefined) checkMs('sendToDevice: timeoutMs', o.timeoutMs, 1);
    const msgId = o.msgId === undefined ? randomId() : checkMsgId(o.msgId, ErrorCode.OPTION);
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'sendToDevice: the gateway is closed');
    if (this.byDevice.has(id)) return withTimeout(this.inbox.take(id, msgId, bytes), o.timeoutMs ?? this.requestTimeoutMs, id);
    const subjects = this.clusterPart?.deviceSubjects;
    if (subjects === undefined || subjects === null)
      throw hfError(ErrorCode.UNKNOWN_SESSION, `sendToDevice: no session of ${JSON.stringify(id)} here${this.clusterPart === null ? '' : ' (and no device subjects: cluster.deviceSubjects is off)'}`);
    return subjects.send(id, msgId, bytes, o.timeoutMs);
  }

  /** Takes `bytes` into device `device`'s out-ring here and resolves once the owner holds it (DeviceInboxes' Deliver). */
  private deliverTo(device: string, bytes: Uint8Array): Promise<void> {
    const slot = this.byDevice.get(device);
    if (slot === undefined || slot.link.isFinished || slot.channel.closed) throw hfError(ErrorCode.UNKNOWN_SESSION, `no session of ${JSON.stringify(device)} here`);
    if (!slot.channel.send(bytes)) throw hfError(ErrorCode.BUSY, `the out-ring of ${JSON.stringify(device)}'s session is full: nothing taken, send again later`);
    slot.timer.arm();
    return this.stored(slot);
  }

  /**
   * Resolves once what `slot`'s session holds now is held by its standby (a cluster's store), the
   * output commit every answer waits for (`output`); at once without replication. The waits of one
   * turn share one record, made at its end (the session's sends of the turn all in it).
   */
  private stored(slot: Slot): Promise<void> {
    const r = this.replicator;
    if (r === null) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { resolve, reject };
      if (slot.storeWaits !== null) {
        slot.storeWaits.push(w);
        return;
      }
      slot.storeWaits = [w];
      process.nextTick(() => {
        const waits = slot.storeWaits ?? [];
        slot.storeWaits = null;
        // Ended before its record (released to another node, or over): the sender tries again with
        // the same id, and reaches the session where it went (which knows the id: not taken twice)
        // or, the session over, a new one that never had the message.
        if (slot.link.isFinished) {
          const e = hfError(ErrorCode.CLOSED, `the session of ${JSON.stringify(slot.link.deviceId)} ended or moved before its message was stored: send again with the same id`);
          for (const x of waits) x.reject(e);
        } else
          r.hold(r.record(slot.link), () => {
            for (const x of waits) x.resolve();
          });
      });
    });
  }

  // ---- handoff: a live session to or from another gateway process ----------------------------------

  /**
   * Hands session `sid` (hex) to another gateway process and resolves with its handoff bytes
   * (firmware/handoff.ts) for `adoptSession` there. From the call on nothing of it is served here: a
   * request or frame of it closes its connection unanswered (the device sends it again, and reaches
   * whoever owns the session by then), its held requests and its direct connection are closed the
   * same way, its timer stops, and its application is handed nothing more. The application's events
   * already queued run first (what it sends in reply goes into the out-ring and travels); then the
   * snapshot is taken and the session is dropped here: its channel closes with HF_ERR_MOVED (the
   * session goes on elsewhere, nothing it sent is lost; what it keeps outside the channel stays with
   * it). Rejects with HF_ERR_UNKNOWN_SESSION when there is no such session (or it ended meanwhile),
   * HF_ERR_CLOSED once the gateway is closing.
   */
  async releaseSession(sid: string): Promise<Uint8Array> {
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'releaseSession: the gateway is closed');
    const link = this.acceptor.quiesce(sid);
    this.slots.get(link)?.timer.stop();
    link.ep.paused = true;
    for (const ex of [...link.heldExchanges]) this.httpFront?.drop(ex);
    if (link.transport === Transport.DIRECT && link.directConn < 0) this.tcpFront?.drop(-link.directConn);
    // Two turns: the channel's queued events (a tick) and replies corked until the immediates.
    for (let i = 0; i < 2; i++) await new Promise<void>((r) => setImmediate(r));
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'releaseSession: the gateway closed meanwhile');
    const bytes = releaseSession(this.acceptor, link, hostClock.now());
    this.log.info('session released', { device: link.deviceId, session: sid.slice(0, 8), bytes: bytes.length, sessions: this.acceptor.size });
    return bytes;
  }

  /**
   * Serves a session another gateway process released (`releaseSession` there): restores it from
   * `bytes` and opens its channel as a takeover does ('session' on the next tick; what the old
   * owner's application was handed and did not confirm comes again, marked `again`). Returns its
   * session id (hex). The session keeps its own link options (a snapshot carries them). Throws
   * HF_ERR_HANDOFF for bytes it cannot take, or a session already here (nothing changed), and
   * HF_ERR_CLOSED once the gateway is closing.
   */
  adoptSession(bytes: Uint8Array): string {
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'adoptSession: the gateway is closed');
    const link = adoptSession(this.acceptor, bytes, hostClock.now(), { crypto: nodeCrypto, memory: this.slabs, open: (l) => this.open(l, 'handoff') });
    this.touched(link);
    const sid = Buffer.from(link.sid).toString('hex');
    this.log.info('session adopted', { device: link.deviceId, session: sid.slice(0, 8), sessions: this.acceptor.size });
    return sid;
  }

  /** Answers exchange `exchange`: an HTTP response, or a frame on TCP connection -exchange. */
  private answer(exchange: number, body: Uint8Array, len: number): void {
    if (exchange < 0) this.tcpFront?.send(-exchange, body, len);
    else this.httpFront?.respond(exchange, body, len);
  }

  /**
   * Re-arms the timer of `link`'s session (after a request or frame), and makes sure the sessions
   * corked by this turn's input are uncorked at its end.
   */
  private touched(link: ServerLink | null): void {
    if (!this.uncorkQueued) {
      this.uncorkQueued = true;
      process.nextTick(this.uncork);
    }
    if (link === null) return;
    const slot = this.slots.get(link);
    if (slot === undefined) return;
    slot.timer.arm();
    if (slot.gated) this.gatesToRecord.add(slot);
  }

  /** Gated sessions touched this turn (recordGates). */
  private readonly gatesToRecord = new Set<Slot>();

  private uncorkQueued = false;
  private readonly uncork = (): void => {
    this.uncorkQueued = false;
    for (const l of this.acceptor.uncorkAll(hostClock.now())) this.slots.get(l)?.timer.arm();
    if (this.gatesToRecord.size > 0) this.recordGates();
    this.clusterPart?.replication?.maybeCompact();
  };

  // ---- shutdown --------------------------------------------------------------------------------

  /** Stops listening, ends every session (HF_ERR_CLOSED) and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const now = hostClock.now();
    this.pair?.close();
    const cluster = this.clusterPart;
    this.clusterPart = null;
    if (cluster !== null) await cluster.close();
    for (const slot of [...this.slots.values()]) {
      slot.link.abort(now, ErrorCode.CLOSED, 'gateway shutting down');
      this.acceptor.sweep(slot.link);
    }
    await Promise.all([this.httpFront?.close(), this.tcpFront?.close(), this.metricsFront?.close()]);
    this.refusals.close();
    this.log.info('stopped');
  }
}
