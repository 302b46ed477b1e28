/**
 * The device on the host target: `connect(options)` opens a session to the gateway and returns its
 * message Channel. Underneath: a ClientLink (from the journal in `stateDir` when there is one, so a
 * restarted process resumes its session and resends what the gateway never acknowledged; a session
 * the gateway lost is given up for a new one that carries those messages, PROTOCOL 11.7), the
 * transport ladder (direct TCP first, HTTP when TCP is blocked or silent, back to TCP when it works
 * again), the HTTP transport (through a forward proxy when configured) and the TCP transport.
 *
 *   const ch = connect({ gateway: 'http://gw.example:8080', tcp: 'gw.example:8081', id: 'pi-1', key: 'secret', stateDir: '/var/lib/holdfast' });
 *   ch.on('message', (m) => ...); ch.send(Buffer.from('hello'));
 *
 * Events besides the Channel's: 'open' (session established or resumed), 'transport' (name, reason).
 */
import { type ClientConfig, ClientLink, type ClientPort } from '../../../firmware/client-link';
import { type GatewayAddress, MAX_LABELS } from '../../../firmware/control';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';
import { Journal } from '../../../firmware/journal';
import { Ladder, type LadderOptions } from '../../../firmware/ladder';
import { LinkState, Transport } from '../../../firmware/link-base';
import { type AckAfter, type LinkOptions, checkAckAfter, resolveOptions } from '../../../firmware/options';
import type { Log } from '../../../hal/log';
import type { Storage } from '../../../hal/storage';
import { StateStore, type StateStoreEvents } from './state-store';
import { type Address, formatAddress, parseAddress } from '../net/address';
import { linkUrl } from '../net/link-url';
import { platform } from '#platform';
import { kAttach, kPort } from '../app/channel';
import { DeviceChannel, type DeviceState, type DeviceStats } from './device-channel';
import { DeadlineTimer } from '../../../firmware/deadline-timer';
import { HttpTransport } from './http-transport';
import { TcpTransport } from './tcp-transport';
import { silentLog } from '../../node/log';
import { proxyFor } from './proxy';
import { type DeviceTlsOptions, clientTls } from './tls-client';
import { FailureLog, type FailureLogOptions } from './failure-log';
import { GatewayChoice, type GatewayChoiceOptions, Verdict } from './gateway-choice';

export interface DeviceOptions {
  /**
   * The gateway's URL: https://host:port or http://host:port (the path defaults to /v1/link). A
   * list: the gateways of a pair (or more), tried in turn (gateway-choice.ts): the device moves to
   * the next when requests fail, when one answers as a standby, or when one answers from an older
   * epoch than the device has seen (fenced).
   */
  gateway: string | string[];
  /**
   * The gateway's direct TCP address, "host:port"; null or absent: HTTP only. With a list of
   * gateways, a list of the same length (each gateway's own) or absent.
   */
  tcp?: string | Address | null | (string | Address)[];
  /** When the device moves to the next of its gateways (gateway-choice.ts). */
  failover?: GatewayChoiceOptions;
  /** Device id (1..128 characters). */
  id: string;
  /** The device's secret key (text is taken as UTF-8); null: an unauthenticated session. */
  key: string | Uint8Array | null;
  /** Forward proxy URL; absent: from http_proxy/HTTP_PROXY/no_proxy; '' or null: none. */
  proxy?: string | null;
  /** The environment proxies are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Where the session's journal lives; absent: in memory only (a restart starts a new session). */
  stateDir?: string | null;
  /** fsync every journal append (power-cut safe, one flash write per message); default false (kill -9 safe). */
  syncAppends?: boolean;
  /** Link bounds (firmware/options.ts), over DEVICE_LINK_DEFAULTS. */
  link?: LinkOptions;
  /**
   * When the device acknowledges the gateway's messages (default 'received'): 'app', only once the
   * application confirmed them (`done` of the 'message' event, or `ack`). With a `stateDir`,
   * 'received' already waits until the application was handed the message.
   */
  ackAfter?: AckAfter;
  /**
   * The device's labels, told in every hello (`site`, `class`, `service`...): a cluster of gateways
   * places the session by them (the label and service policies). At most 32; keys 1..64 characters,
   * values up to 256.
   */
  labels?: Record<string, string>;
  /** Transport ladder timing (firmware/ladder.ts). */
  ladder?: LadderOptions;
  /** How TLS verifies the gateway (system CAs unless `ca` or `pin`), and whether direct TCP uses it. */
  tls?: DeviceTlsOptions;
  /**
   * Warnings when the gateway cannot be reached, answers with an error or does not answer (rate-limited,
   * failure-log.ts); a FailureLog instance keeps its counts across sessions (the CLI's restarts).
   */
  failures?: FailureLogOptions | FailureLog;
  log?: Log;
}

const utf8 = new TextEncoder();

/** Opens (or resumes) the device's session. Options are validated before anything starts. */
export function connect(opts: DeviceOptions): DeviceChannel {
  return new Device(opts).channel;
}

/**
 * What the device driver changes of the link's defaults (firmware/options.ts): a 1 MiB window each
 * way instead of 256 KiB. Over a direct connection a bundle is up to 256 KiB and the gateway
 * acknowledges once half the window has arrived, so a quarter-MiB window is one bundle in flight:
 * the device would wait for each acknowledgement before the next bundle (a forwarded port's bulk
 * runs at window / round trip). The rings are reserved at the session's start (2368 KiB with the
 * bundle buffer) and touched only as far as traffic fills them.
 */
export const DEVICE_LINK_DEFAULTS: LinkOptions = { outBytes: 1048576, inBytes: 1048576 };

/** The driver of the device's session: feeds the link its events, carries out its actions. */
class Device implements DeviceState {
  readonly channel: DeviceChannel;
  private readonly log: Log;
  private readonly failures: FailureLog;
  /** Set while an answer is given to the link: a refusal of it counts as a failure. */
  private answering = false;
  private answerRefused: HfError | null = null;
  private readonly client: ClientLink;
  /** The transports to the gateway in use (`choice.at`); the others' are made when first used. */
  private http: HttpTransport;
  private tcp: TcpTransport | null;
  private readonly https: (HttpTransport | undefined)[] = [];
  private readonly tcps: (TcpTransport | undefined)[] = [];
  private readonly targets: { url: URL; tcp: Address | null }[];
  private readonly choice: GatewayChoice;
  private readonly ladder: Ladder;
  private readonly storage: (Storage & { close(): void }) | null;
  readonly resumed: boolean;
  /** Messages this session took over from one the gateway lost (a successor's journal). */
  private readonly carried: number;
  private readonly config: ClientConfig;
  /** One timer for the link's and the ladder's deadlines. */
  private readonly timer: DeadlineTimer;
  private started = false;
  private finished = false;
  transport: 'tcp' | 'http' | 'none' = 'none';
  /** HTTP requests made and failed (the link counts the rest: client.ep.stats). */
  private requestsSent = 0;
  private requestsFailed = 0;

  constructor(opts: DeviceOptions) {
    if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, 'device options must be an object');
    if (typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 128) throw hfError(ErrorCode.OPTION, `id must be 1..128 characters, got ${JSON.stringify(opts.id)}`);
    if (opts.key === undefined) throw hfError(ErrorCode.OPTION, 'key is required (null for an unauthenticated session)');
    this.targets = gatewayTargets(opts.gateway, opts.tcp);
    this.choice = new GatewayChoice(this.targets.length, opts.failover);
    const { url, tcp: tcpAddr } = this.targets[0];
    const link: LinkOptions = { ...DEVICE_LINK_DEFAULTS, ...opts.link };
    const o = resolveOptions(link);
    const ackAfter = checkAckAfter(opts.ackAfter);
    const key = opts.key === null ? undefined : typeof opts.key === 'string' ? utf8.encode(opts.key) : opts.key;
    if (key !== undefined && key.length === 0) throw hfError(ErrorCode.OPTION, 'key must not be empty');
    this.log = opts.log ?? silentLog;
    this.failures = opts.failures instanceof FailureLog ? opts.failures : new FailureLog(this.log, () => platform.clock.now(), opts.failures);

    this.channel = new DeviceChannel(opts.id, { now: () => platform.clock.now(), kick: () => this.kick() }, this);
    this.timer = new DeadlineTimer(
      platform.clock,
      () => Math.min(this.client.nextDeadline(), this.ladder.nextDeadline()),
      () => this.fire(),
    );

    const cp = this.channel[kPort]();
    const port: ClientPort = {
      ...cp,
      transmit: (body, len, rn) => this.transmit(body, len, rn),
      onGateways: (gw) => this.learn(gw),
      onMoved: (gw) => process.nextTick(() => this.moved(gw)),
      onOpen: () => {
        this.log.info(this.resumed ? 'session resumed' : 'session open', {
          session: this.client.sid === null ? undefined : Buffer.from(this.client.sid).toString('hex').slice(0, 8),
          transport: this.transport,
        });
        process.nextTick(() => this.channel.emit('open'));
      },
      onReject: (e) => {
        if (this.answering) this.answerRefused = e;
        this.log.debug('bundle refused', { code: e.code, reason: e.message });
      },
      onClose: (err) => {
        if (err) this.log.warn('session failed', { code: err.code, reason: err.message, unacknowledged: this.client.ep.out.length });
        else this.log.info('session closed');
        if (err) this.handOver(platform.clock.now());
        cp.onClose?.(err);
        this.shutdown();
      },
    };
    const now = platform.clock.now();
    const config: ClientConfig = {
      id: opts.id,
      random: (b) => platform.entropy.fill(b),
      options: link,
      ackAfter,
      ...(opts.labels === undefined ? {} : { labels: checkLabels(opts.labels) }),
      helloCounter: Math.floor(platform.clock.wall() / 100) >>> 0,
      ...(key === undefined ? {} : { key, crypto: platform.crypto }),
    };
    const store = opts.stateDir
      ? new StateStore(
          platform.storage(opts.stateDir, { syncAppends: opts.syncAppends, onRecreated: (dir) => this.log.warn('state directory was gone; made it again with a full checkpoint', { dir }) }),
          this.stateEvents(opts.stateDir, o.maxMessage),
        )
      : null;
    this.storage = store;
    this.config = config;
    let client: ClientLink | null = null;
    if (this.storage !== null) {
      try {
        client = ClientLink.fromJournal(this.storage, now, config, port);
      } catch (e) {
        // A journal that cannot be read back: say which directory holds it.
        if (isHfError(e) && e.code === ErrorCode.STATE) throw hfError(ErrorCode.STATE, `state directory ${opts.stateDir}: ${e.message}`, e);
        throw e;
      }
      if (client !== null && client.id !== opts.id) throw hfError(ErrorCode.STATE, `state directory ${opts.stateDir} holds device ${JSON.stringify(client.id)}, not ${JSON.stringify(opts.id)}`);
      // A journal without a session that holds messages (a successor of a session the gateway lost,
      // see handOver, or a device that queued messages before its first welcome) starts a new session
      // from them: its hello counter goes above the recorded one (fromJournal).
      if (client !== null && (client.isFinished || (client.sid === null && client.ep.out.isEmpty))) {
        // A session that ended (or never opened) is not resumed: a new one starts, with a newer hello.
        if (client.isFinished && client.ep.out.length > 0) this.log.warn('previous session ended with messages unacknowledged', { messages: client.ep.out.length });
        config.helloCounter = Math.max(config.helloCounter ?? 0, (client.helloCounter + 1) >>> 0);
        client = null;
        this.storage.remove('journal');
      }
    }
    this.resumed = client !== null && client.sid !== null;
    this.carried = client !== null && client.sid === null ? client.ep.out.length : 0;
    if (client === null) {
      client = new ClientLink(config, port, o);
      if (this.storage !== null) client.attachJournal(new Journal(this.storage, o.maxMessage), now);
    }
    // Its hello tells the gateway how many of its first messages a lost session may have delivered.
    if (client.sid === null) client.carried = this.carried;
    this.client = client;
    this.channel[kAttach](client);
    if (store !== null) store.armed = true;

    // TLS: https: URLs always; direct TCP when the URL is https: unless tls.direct says otherwise.
    this.makeHttp = (i) => {
      const at = this.targets[i].url;
      const proxy = opts.proxy === null ? null : proxyFor(at, { proxy: opts.proxy, env: opts.env });
      return new HttpTransport({
        url: at,
        proxy,
        tls: at.protocol === 'https:' ? clientTls(opts.tls, at.hostname) : null,
        sockets: o.maxOutstanding,
        maxBody: o.maxBundleBytes,
        onAnswer: (rn, body, epoch) => this.httpAnswer(rn, body, epoch),
        onNote: (text) => this.log.info(text),
        onFailed: (rn, err) => this.httpFailed(rn, err),
      });
    };
    this.makeTcp = (i) => {
      const { url: at, tcp: addr } = this.targets[i];
      if (addr === null) return null;
      const tcpTls = (opts.tls?.direct ?? at.protocol === 'https:') ? clientTls(opts.tls, opts.tls?.servername ?? addr.host) : null;
      return new TcpTransport(
        addr,
        o.maxBundleBytes,
        {
          onUp: () => this.event((t) => this.ladder.connected(t)),
          onFrame: (body) => this.answer(body, true),
          onEpoch: (epoch) => this.tcpEpoch(epoch),
          onDown: (reason, err) => {
            if (err?.code === ErrorCode.TLS) this.tlsRefused('tcp', err);
            this.event((t) => this.ladder.lost(t, reason));
          },
        },
        tcpTls,
      );
    };
    this.http = this.makeHttp(0);
    this.https[0] = this.http;
    this.tcp = this.makeTcp(0);
    this.tcps[0] = this.tcp ?? undefined;
    this.ladder = new Ladder(
      this.tcp !== null,
      {
        connect: () => this.tcp?.connect(),
        disconnect: () => this.tcp?.close(),
        useDirect: () => {
          const addr = this.targets[this.choice.at].tcp;
          this.use('tcp', `connected to ${addr === null ? '?' : formatAddress(addr)}`);
        },
        useHttp: (reason) => this.use('http', reason),
      },
      opts.ladder,
    );
    this.log.info(this.resumed ? 'resuming session from journal' : 'starting', {
      id: opts.id,
      gateway: this.targets.length === 1 ? url.href : this.targets.map((g) => g.url.href).join(' '),
      tcp: tcpAddr === null ? 'off' : this.targets.map((g) => (g.tcp === null ? '?' : formatAddress(g.tcp))).join(' '),
      proxy: this.http.proxy === null ? undefined : `${this.http.proxy.protocol}//${this.http.proxy.host}`,
      queued: this.resumed ? this.client.ep.out.length : undefined,
      carried: this.carried > 0 ? this.carried : undefined,
    });
    process.nextTick(() => this.event((t) => this.ladder.start(t)));
  }

  private readonly makeHttp: (i: number) => HttpTransport;
  private readonly makeTcp: (i: number) => TcpTransport | null;

  /**
   * The welcome named the gateways of this session (a pair's nodes): those this device did not know
   * join the turn, last (up to MAX_GATEWAYS; for this process only: a restart starts from the
   * configured ones and learns them again). The welcome is the gateway's, tagged with the session key
   * when the device has one, so a stranger on the path cannot add a gateway.
   */
  private learn(gw: readonly GatewayAddress[]): void {
    for (const [u, t] of gw) {
      let target: { url: URL; tcp: Address | null };
      try {
        target = { url: linkUrl(u, 'gateway'), tcp: t === '' ? null : parseAddress(t, 'tcp') };
      } catch (e) {
        this.log.warn('the welcome named a gateway this device cannot use', { gateway: u, tcp: t || undefined, reason: (e as Error).message });
        continue;
      }
      if (this.targets.some((g) => g.url.href === target.url.href)) continue;
      if (this.targets.length >= MAX_GATEWAYS) {
        this.log.warn('the welcome named more gateways than this device keeps', { gateway: u, max: MAX_GATEWAYS });
        break;
      }
      this.targets.push(target);
      this.choice.grow();
      this.log.info('learned a gateway from the welcome', { gateway: target.url.href, tcp: t || undefined });
    }
  }

  /**
   * A bundle of the session said it is served by gateway `gw` now (a cluster handed it there): the
   * device adds it if need be and moves to it (its requests on the way to the old one are sent again).
   */
  private moved(gw: GatewayAddress): void {
    if (this.finished) return;
    this.learn([gw]);
    const i = this.targets.findIndex((g) => g.url.href === gw[0] || g.url.href === safeHref(gw[0]));
    if (i < 0 || i === this.choice.at) return;
    this.moveOn(hfError(ErrorCode.MOVED, `the session is served at ${gw[0]} now`), i);
  }

  /** The URL of the gateway in use. */
  get gateway(): string {
    return this.targets[this.choice.at].url.href;
  }

  /** An HTTP answer: fenced when its epoch is older than one seen (the device moves on), else to the link. */
  private httpAnswer(rn: number, body: Buffer, epoch: number): void {
    if (this.choice.answered(epoch) === Verdict.FENCED) {
      this.httpFailed(rn, hfError(ErrorCode.EPOCH, `${this.gateway} answered from epoch ${epoch}, older than ${this.choice.epoch}: a superseded primary`));
      return;
    }
    this.answer(body);
  }

  /** The direct connection's gateway told its epoch: one older than seen is a superseded primary, left at once. */
  private tcpEpoch(epoch: number): void {
    if (this.choice.answered(epoch) !== Verdict.FENCED) return;
    const err = hfError(ErrorCode.EPOCH, `${this.gateway} told epoch ${epoch} on its direct connection, older than ${this.choice.epoch}: a superseded primary`);
    this.log.warn('gateway fenced', { gateway: this.gateway, code: err.code, reason: err.message });
    if (this.choice.failed(err.code)) this.moveOn(err);
  }

  private httpFailed(rn: number, err: HfError): void {
    this.requestsFailed++;
    if (err.code === ErrorCode.TLS) this.tlsRefused('http', err);
    else this.log.debug('request failed', { rn, code: err.code, reason: err.message });
    // A connection that died before the answer (reset, cut, refused) lost the request, as did one a
    // standby or a fenced primary turned away; anything else was an answer that is not the gateway's.
    const lost = isCut(err) || err.code === ErrorCode.STANDBY || err.code === ErrorCode.EPOCH;
    this.event((t) => this.client.onRequestFailed(t, rn, lost));
    if (this.finished) return;
    if (err.code !== ErrorCode.TLS) this.failures.failed(err, this.nextTryMs());
    if (this.choice.failed(err.code)) this.moveOn(err);
  }

  /**
   * Moves to the next gateway: requests on the way to this one are given up (lost, so the link sends
   * their messages again), the direct connection is closed (the ladder connects again, to the new one).
   */
  private moveOn(why: HfError, target = -1): void {
    const from = this.gateway;
    const lost = this.http.abandonAll();
    const i = this.choice.move(target);
    this.http = this.https[i] ?? this.makeHttp(i);
    this.https[i] = this.http;
    const oldTcp = this.tcp;
    this.tcp = this.tcps[i] ?? this.makeTcp(i);
    this.tcps[i] = this.tcp ?? undefined;
    this.log.info(target < 0 ? 'moved to the next gateway' : 'moved to the gateway the session was handed to', { from, to: this.gateway, code: why.code, reason: why.message });
    this.event((t) => {
      for (const rn of lost) this.client.onRequestFailed(t, rn, true);
      this.client.newGateway(t);
      // Closed without a report (an attempt still connecting included); the ladder, whatever its
      // rung, starts over and connects again soon, to the new gateway.
      if (oldTcp !== null) {
        oldTcp.close();
        this.ladder.retarget(t, `moved to ${this.gateway}`);
      }
    });
    const to = this.gateway;
    process.nextTick(() => this.channel.emit('gateway', to, why.code));
  }

  get sessionId(): string | null {
    return this.client.sid === null ? null : Buffer.from(this.client.sid).toString('hex');
  }

  get stats(): DeviceStats {
    return { ...this.client.ep.stats, requestsSent: this.requestsSent, requestsFailed: this.requestsFailed, messagesCarried: this.carried };
  }

  /**
   * The session failed. If the gateway lost it for good (ClientLink.sessionLost: the silence rule with
   * HF_ERR_UNKNOWN_SESSION, as after a gateway restart), resuming it from the journal would only be
   * refused again: the journal is replaced, in one checkpoint, by a successor without a session that
   * carries the messages the gateway never acknowledged, so the next connect() starts a new session
   * with them (at least once across the loss: PROTOCOL 11.7). Without a state directory the next
   * session starts empty and they are reported lost.
   */
  private handOver(now: number): void {
    const c = this.client;
    if (!c.sessionLost) return;
    const n = c.ep.out.length;
    const code = ErrorCode.UNKNOWN_SESSION;
    if (this.storage === null) {
      if (n > 0) this.log.warn('the gateway lost the session: messages it never acknowledged are lost (no --state)', { code, lost: n });
      return;
    }
    try {
      const next = c.successor(now, this.config, { transmit: () => {}, deliver: () => false });
      next.attachJournal(new Journal(this.storage, c.o.maxMessage), now);
    } catch (e) {
      if (!isHfError(e)) throw e;
      this.log.error('the gateway lost the session and the state directory cannot take its successor: the next start resumes the lost session', { code: e.code, reason: e.message });
      return;
    }
    this.log.warn('the gateway lost the session (restarted?): the next session is a new one and carries the messages it never acknowledged', { code, carried: n });
  }

  get accepted(): number {
    return (this.client.ep.out.head - this.client.o.initialSeq) >>> 0;
  }

  /**
   * Stops every transport and timer without touching the session: with a stateDir, the next
   * connect() resumes it from the journal. No event follows.
   */
  detach(): void {
    this.shutdown();
  }

  /**
   * What the state directory's store does when it fails under the session: a failed append is
   * answered with a full checkpoint from memory (into the directory made again, if it was removed),
   * a checkpoint that cannot be written ends the session with HF_ERR_STORAGE.
   */
  private stateEvents(dir: string, maxMessage: number): StateStoreEvents {
    const fatal = (e: HfError): void => {
      if (this.finished) return;
      this.log.error('state directory unusable; stopping: the session cannot stay durable', { dir, code: e.code, reason: e.message });
      this.client.abort(platform.clock.now(), ErrorCode.STORAGE, e.message);
    };
    return {
      onLost: (e) => {
        this.log.warn('state directory failed; writing a full checkpoint from memory', { dir, reason: e.message });
        process.nextTick(() => {
          if (this.finished || this.storage === null) return;
          this.client.attachJournal(new Journal(this.storage, maxMessage), platform.clock.now());
          if (!(this.storage as StateStore).lost) this.log.warn('state directory restored: the session is durable again', { dir, queued: this.client.ep.out.length });
          this.kick();
        });
      },
      onFatal: (e) => process.nextTick(() => fatal(e)),
    };
  }

  /** When a TLS refusal was last logged as a warning, per transport (one a minute, and each new reason). */
  private readonly tlsWarned = new Map<string, { at: number; reason: string }>();

  /**
   * The gateway's certificate was refused (HF_ERR_TLS): a warning, not a retry at once; the request or
   * connection counts as failed, so the link and the ladder try again with their back-off.
   */
  private tlsRefused(transport: 'http' | 'tcp', err: HfError): void {
    const now = platform.clock.now();
    const last = this.tlsWarned.get(transport);
    if (last !== undefined && last.reason === err.message && now - last.at < 60_000) return;
    this.tlsWarned.set(transport, { at: now, reason: err.message });
    this.log.warn('tls refused', { transport, code: err.code, reason: err.message });
  }

  /** Moves the session onto a transport (starting or resuming it the first time). */
  private use(name: 'tcp' | 'http', reason: string): void {
    const t = platform.clock.now();
    const c = this.client;
    if (name === this.transport && this.started) return;
    const from = this.transport;
    this.transport = name;
    c.setTransport(t, name === 'tcp' ? Transport.DIRECT : Transport.HELD);
    if (name === 'tcp') this.http.cancelAbandoned((rn) => c.isOutstanding(rn));
    if (from === 'none') this.log.info(`transport ${name}`, { reason });
    else this.log.info(name === 'tcp' ? 'moved to tcp' : 'fell back to http', { reason });
    process.nextTick(() => this.channel.emit('transport', name, reason));
    if (!this.started) {
      this.started = true;
      if (c.state === LinkState.IDLE) c.start(t);
      else c.resumeSession(t);
    }
  }

  private transmit(body: Uint8Array, len: number, rn: number): void {
    if (this.finished) return;
    if (this.client.transport === Transport.DIRECT) {
      this.tcp?.send(body, len);
      return;
    }
    this.requestsSent++;
    this.http.post(rn, Buffer.from(body.subarray(0, len)));
  }

  /**
   * Runs an event on the link and the ladder, then tidies up (abandoned requests, the timer). The link
   * stays corked until the end of this turn of the event loop, so the application's reply to what
   * just arrived leaves with whatever the link sends next, in one bundle (LinkChannel.send keeps it
   * corked longer for bulk).
   */
  private event(fn: (now: number) => void): void {
    if (this.finished) return;
    if (!this.corkedTurn) {
      this.corkedTurn = true;
      this.client.cork();
      process.nextTick(this.endTurn);
    }
    fn(platform.clock.now());
    this.kick();
  }

  private corkedTurn = false;
  private readonly endTurn = (): void => {
    this.corkedTurn = false;
    if (this.finished) return;
    this.client.uncork(platform.clock.now());
    this.kick();
  };

  private kick(): void {
    if (this.finished) return;
    const c = this.client;
    this.http.cancelAbandoned((rn) => c.isOutstanding(rn));
    this.timer.arm();
  }

  /** The timer's callback: runs whatever of the ladder's and the link's timers is due. */
  private fire(): void {
    const unanswered = this.client.unanswered;
    this.event((t) => {
      if (this.ladder.nextDeadline() <= t) this.ladder.onTimer(t);
      if (this.client.nextDeadline() <= t) this.client.onTimer(t);
    });
    // Requests whose time ran out: the gateway (or the path to it) does not answer.
    const lost = this.client.unanswered - unanswered;
    if (lost <= 0 || this.finished) return;
    const err = hfError(ErrorCode.TIMEOUT, `no answer to ${lost === 1 ? 'a request' : `${lost} requests`} in time (${this.client.unanswered} unanswered in a row)`);
    this.failures.failed(err, this.nextTryMs());
    // A gateway that takes requests and answers none (a primary cut off from its standby holds every
    // answer) is left like one that refuses them.
    if (this.choice.failed(err.code)) this.moveOn(err);
  }

  /** An HTTP answer or a TCP frame: to the link; one it refuses counts as a failure, one it takes as an answer. */
  private answer(body: Buffer, direct = false): void {
    this.answering = true;
    this.answerRefused = null;
    try {
      this.event((t) => {
        if (direct) this.ladder.heard(t);
        this.client.onBundle(t, body);
      });
    } finally {
      this.answering = false;
    }
    const refused = this.answerRefused as HfError | null;
    this.answerRefused = null;
    if (this.finished) return;
    if (refused !== null) this.failures.failed(refused, this.nextTryMs());
    else this.failures.answered();
  }

  /** When the link next sends on its own, ms from now (Infinity: only when there is news). */
  private nextTryMs(): number {
    return this.client.nextDeadline() - platform.clock.now();
  }

  private shutdown(): void {
    if (this.finished) return;
    this.finished = true;
    // The session's last bundle (a close handshake's answer, an abort's farewell) may still be on
    // its way: TCP sends what it has, then closes; HTTP requests get a moment to finish.
    this.tcp?.end();
    for (const t of this.tcps) if (t !== this.tcp) t?.close();
    this.ladder.stop();
    this.http.close(1000);
    for (const h of this.https) if (h !== this.http) h?.close();
    this.timer.stop();
    this.storage?.close();
  }
}

/** The gateways of the options: each URL with its direct TCP address (or null). */
/** Most gateways a device knows (configured and learned). */
const MAX_GATEWAYS = 16;

/** The href of `u` as a URL (so a moved item's URL compares with the known ones), or '' for none. */
function safeHref(u: string): string {
  try {
    return new URL(u).href;
  } catch {
    return '';
  }
}

/** Checks the device's labels (HF_ERR_OPTION naming the bad one); returns a copy. */
function checkLabels(l: Record<string, string>): Record<string, string> {
  if (l === null || typeof l !== 'object' || Array.isArray(l)) throw hfError(ErrorCode.OPTION, 'labels must be a map of texts');
  const keys = Object.keys(l);
  if (keys.length > MAX_LABELS) throw hfError(ErrorCode.OPTION, `labels: at most ${MAX_LABELS}, got ${keys.length}`);
  for (const k of keys) {
    const v = l[k];
    if (k.length < 1 || k.length > 64 || typeof v !== 'string' || v.length > 256)
      throw hfError(ErrorCode.OPTION, `labels: ${JSON.stringify(k)} must be a key of 1..64 characters with a text value of at most 256`);
  }
  return { ...l };
}

function gatewayTargets(gateway: string | string[], tcp: DeviceOptions['tcp']): { url: URL; tcp: Address | null }[] {
  const urls = Array.isArray(gateway) ? gateway : [gateway];
  if (urls.length === 0 || urls.length > MAX_GATEWAYS) throw hfError(ErrorCode.OPTION, `gateway must be a URL or a list of 1..${MAX_GATEWAYS} URLs, got ${urls.length}`);
  const tcps = tcp === undefined || tcp === null ? urls.map(() => null) : Array.isArray(tcp) ? tcp : [tcp];
  if (tcps.length !== urls.length) throw hfError(ErrorCode.OPTION, `tcp must name one address per gateway: ${urls.length} gateway(s), ${tcps.length} tcp address(es)`);
  return urls.map((u, i) => {
    const a = tcps[i];
    return { url: linkUrl(u, 'gateway'), tcp: a === null ? null : parseAddress(a, 'tcp') };
  });
}

/**
 * Whether a failed request's connection was made and then died before the answer (reset, cut, closed
 * early), as opposed to no connection at all (refused, unreachable, no such host) or an answer that is
 * not the gateway's.
 */
function isCut(err: HfError): boolean {
  if (err.code !== ErrorCode.CONNECT) return false;
  const errno = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  return errno === undefined || !NO_CONNECTION.has(errno);
}

const NO_CONNECTION = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

export { DeviceChannel } from './device-channel';
export type { DeviceChannelEvents, DeviceStats } from './device-channel';
export type { DeviceTlsOptions } from './tls-client';
