/**
 * Forwarded connections to targets behind another node. A node says in its heartbeat which forward
 * targets it reaches (`reach`, from `--node-service NAME=HOST:PORT`); a device on another node that
 * forwards to one of them is connected through that node: the device's node asks it on its control
 * subject (`pipe {from, inc, id, target}`), it connects to the target and answers `ok`, and the bytes
 * go both ways as PipeStream frames on
 *
 *   <prefix>.node.<name>.pipe.<id>     the frames of pipe <id> for node <name>
 *
 * That is the one more hop the `service` placement saves: a device placed where its service is
 * connects straight to it.
 *
 * A pipe ends with its connection (half-close both ways); it is reset when its peer node dies, when
 * this node's NATS connection is lost (frames may have been dropped), or when a frame is missing.
 * Refusals (answered `err`, nothing opened): HF_ERR_FORBIDDEN for a target this node does not reach,
 * HF_ERR_CONNECT when the target refuses, HF_ERR_PEER for a pipe id in use or malformed.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { formatTarget, parseTarget } from '../../../../firmware/mux';
import { splice } from '../../app/forward';
import type { PipeMessage, TcpMessage } from './cluster-messages';
import { PipedSocket, PipeStream, type PipesOptions } from './pipe-stream';

export type { PipesOptions } from './pipe-stream';

/** What the pipes need of their node. */
export interface PipesHost {
  name: string;
  incarnation: number;
  prefix: string;
  /** Forward targets this node reaches ("host:port"). */
  reach: readonly string[];
  /** Live nodes other than this one that reach `target`. */
  reachedBy(target: string): string[];
  /** Sends a pipe request to `to`'s control subject; resolves once it is open, rejects with its refusal. */
  request(to: string, m: PipeMessage | TcpMessage, timeoutMs: number): Promise<unknown>;
  /** Serves a direct TCP connection relayed here (its pipe playing the socket, `head` read first). HF_ERR_UNSUPPORTED without a TCP front. */
  adoptTcp(socket: PipedSocket, head: Buffer): void;
}

interface Open {
  stream: PipeStream;
  /** The other node. */
  peer: string;
}

export class ClusterPipes {
  private readonly open = new Map<string, Open>();
  private readonly sub: Subscription;
  private readonly connectTimeoutMs: number;
  /** Pipes opened from here and to here since the start (status, tests). */
  dialed = 0;
  accepted = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly host: PipesHost,
    private readonly o: PipesOptions = {},
  ) {
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    this.sub = nc.subscribe(`${host.prefix}.node.${host.name}.pipe.*`, {
      callback: (err, msg) => {
        if (err !== null) return;
        const id = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        this.open.get(id)?.stream.receive(msg.data);
      },
    });
  }

  /** Pipes open now. */
  get size(): number {
    return this.open.size;
  }

  /** The node a connection to `host:port` goes through: null when this node connects itself. */
  route(target: string): string | null {
    if (this.host.reach.includes(target)) return null;
    const by = this.host.reachedBy(target);
    if (by.length === 0) return null;
    return by[Math.floor(Math.random() * by.length)];
  }

  /**
   * A connection to `host:port`: a socket of its own when this node reaches the target (or no node
   * says it does), else a pipe through the node that does. Either emits 'connect' once it is open.
   */
  dial(host: string, port: number): Duplex {
    const target = formatTarget(host, port);
    const via = this.route(target);
    if (via === null) return net.connect({ host, port, allowHalfOpen: true });
    const id = randomBytes(8).toString('hex');
    const s = this.add(id, via);
    this.dialed++;
    this.host.request(via, { t: 'pipe', from: this.host.name, inc: this.host.incarnation, id, target }, this.connectTimeoutMs + 1000).then(
      () => {
        if (!s.destroyed) s.emit('connect');
      },
      (e: Error) => s.gone(isHfError(e) ? e : hfError(ErrorCode.CONNECT, `${target} through ${via}: ${e.message}`, e)),
    );
    return s;
  }

  /**
   * Hands a direct TCP connection (`socket`, whose first bytes `head` this node read) to node `to`,
   * which serves its session: from then on its bytes go both ways through a pipe. Resolves once `to`
   * took it; rejects with its refusal (the socket is then the caller's to close).
   */
  async relayTcp(to: string, socket: Duplex, head: Buffer, addr: string): Promise<void> {
    const id = randomBytes(8).toString('hex');
    const s = this.add(id, to);
    this.dialed++;
    try {
      await this.host.request(to, { t: 'tcp', from: this.host.name, inc: this.host.incarnation, id, addr, head }, this.connectTimeoutMs);
    } catch (e) {
      s.gone(isHfError(e) ? e : hfError(ErrorCode.NATS, `tcp relay to ${to}: ${(e as Error).message}`, e));
      s.on('error', () => {});
      throw e;
    }
    splice(socket, s);
  }

  /** Serves another node's relayed TCP connection: its pipe plays the socket for the TCP front. */
  acceptTcp(m: TcpMessage): void {
    if (this.open.has(m.id)) throw hfError(ErrorCode.PEER, `pipe ${m.id} is open already`);
    const subject = `${this.host.prefix}.node.${m.from}.pipe.${m.id}`;
    const s = new PipedSocket(m.id, (f) => this.nc.publish(subject, f), m.addr, this.o);
    this.track(m.id, m.from, s);
    try {
      this.host.adoptTcp(s, Buffer.from(m.head));
    } catch (e) {
      s.on('error', () => {});
      s.gone(isHfError(e) ? e : hfError(ErrorCode.STATE, (e as Error).message));
      throw e;
    }
    this.accepted++;
  }

  /** Serves another node's pipe request: connects to its target; resolves once connected. */
  async accept(m: PipeMessage): Promise<void> {
    if (!this.host.reach.includes(m.target)) throw hfError(ErrorCode.FORBIDDEN, `${m.target} is not behind ${this.host.name}`);
    if (this.open.has(m.id)) throw hfError(ErrorCode.PEER, `pipe ${m.id} is open already`);
    const { host, port } = parseTarget(m.target);
    const sock = net.connect({ host, port, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => sock.destroy(hfError(ErrorCode.CONNECT, `${m.target}: no connection after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      const failed = (e: Error): void => {
        clearTimeout(timer);
        reject(isHfError(e) ? e : hfError(ErrorCode.CONNECT, `${m.target}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e));
      };
      sock.once('error', failed);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', failed);
        resolve();
      });
    });
    // The dialer sends nothing before the answer: the pipe need not exist before the target does.
    if (this.open.has(m.id)) {
      sock.destroy();
      throw hfError(ErrorCode.PEER, `pipe ${m.id} is open already`);
    }
    splice(this.add(m.id, m.from), sock);
    this.accepted++;
  }

  private add(id: string, peer: string): PipeStream {
    const subject = `${this.host.prefix}.node.${peer}.pipe.${id}`;
    return this.track(id, peer, new PipeStream(id, (f) => this.nc.publish(subject, f), this.o));
  }

  private track<S extends PipeStream>(id: string, peer: string, s: S): S {
    this.open.set(id, { stream: s, peer });
    s.once('close', () => {
      if (this.open.get(id)?.stream === s) this.open.delete(id);
    });
    return s;
  }

  /** Node `peer` died: every pipe with it is reset (HF_ERR_NODE). */
  peerDead(peer: string): void {
    for (const o of [...this.open.values()]) if (o.peer === peer) o.stream.gone(hfError(ErrorCode.NODE, `pipe ${o.stream.id}: node ${peer} is gone`));
  }

  /**
   * This node's NATS connection was lost: frames may be gone, every pipe is reset (HF_ERR_NATS); the
   * client keeps the RESETs until it is back, so the far ends learn it then.
   */
  lost(): void {
    for (const o of [...this.open.values()]) o.stream.destroy(hfError(ErrorCode.NATS, `pipe ${o.stream.id}: the NATS connection was lost`));
  }

  /** Resets every pipe and stops taking frames. */
  close(): void {
    for (const o of [...this.open.values()]) o.stream.destroy(hfError(ErrorCode.CLOSED, 'the node is stopping'));
    this.sub.unsubscribe();
  }
}
