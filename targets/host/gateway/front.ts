/**
 * The seam between the gateway and its fronts (HTTP, direct TCP; later the worker and cluster
 * relays): what a front may ask of the gateway, and nothing more. A front owns its sockets and
 * framing; it hands each request body or frame to `FrontHost` and gets back the session it belongs
 * to or a `Refusal` to answer with. Fronts import no Gateway, so the gateway can grow (failover,
 * cluster, workers) without its fronts knowing.
 */
import { refusalBundle } from '../../../firmware/error-bundle';
import { ErrorCode, type HfError } from '../../../firmware/errors';
import type { ServerLink } from '../../../firmware/server-link';
import type { Duplex } from 'node:stream';
import type { Log } from '../../../hal/log';
import type { GatewayCounters } from './metrics';
import type { RelayedAnswer } from './http-front';
import type { TcpLimits } from './tcp-front';

/** A request or frame the gateway would not take: the error, the request number it answers, the bytes to send. */
export class Refusal {
  readonly error: HfError;
  /** The refused bundle's request number (0 when it has none), so the device can match the answer. */
  readonly rn: number;
  /**
   * The error bundle to answer with: tagged with the session's key when the refused bundle was an
   * authentic one of an open session, else untagged (PROTOCOL 13.2). Defaults to `errorBundle(rn, error)`.
   */
  readonly body: Uint8Array;
  constructor(error: HfError, rn: number, body: Uint8Array = refusalBundle(rn, error)) {
    this.error = error;
    this.rn = rn;
    this.body = body;
  }

  /**
   * Not answered at all: the front closes the connection instead (HF_ERR_MOVED, a session handed to
   * another gateway process), and the device sends the request or frame again on a new connection,
   * which reaches the session's new owner.
   */
  get unanswered(): boolean {
    return this.error.code === ErrorCode.MOVED;
  }
}

/** Direct TCP connections in a cluster: each served on the node of its session (cluster/pipes.ts). */
export interface TcpRouter {
  /** null: the connection whose first frame is `bundle` is served here; else the node that serves it. */
  owner(bundle: Uint8Array): string | null | Promise<string | null>;
  /** Hands the connection (`head`: its bytes read so far) to node `to`; rejects with its refusal. */
  relay(to: string, socket: Duplex, head: Buffer, addr: string): Promise<void>;
}

export interface FrontHost {
  readonly log: Log;
  /** Whether this gateway is a pair's standby now: it serves no device (HF_ERR_STANDBY, 503). */
  standby(): boolean;
  /** The pair's epoch, sent with every HTTP answer (`x-holdfast-epoch`); 0: not in a pair. */
  epoch(): number;
  /** The HTTP path of the link, e.g. "/v1/link". */
  readonly path: string;
  /** Largest request body or frame taken, bytes (the link's maxBundleBytes). */
  readonly maxBody: number;
  /** Longest a request is held before it is answered anyway, ms (the link's holdMs). */
  readonly holdMs: number;
  /** The link's keepaliveMs: a live session sends at least this often on a direct connection. */
  readonly keepaliveMs: number;
  /** The direct TCP front's bounds on connections before they proved a key (unset: TCP_LIMIT_DEFAULTS). */
  readonly tcpLimits: TcpLimits | undefined;
  /** What the fronts count as it happens (requests, frames, connections, their own refusals): plain fields, read by a scrape. */
  readonly counters: GatewayCounters;
  /**
   * An HTTP request body arrived as exchange `ex` (> 0) from address `from` (`relayed`: through
   * another node of the cluster): its session, or why it was refused.
   */
  request(ex: number, body: Uint8Array, from: string, relayed?: boolean): ServerLink | Refusal;
  /**
   * A cluster's: null when this gateway serves `body` itself, else the answer of the node that does
   * (null in the promise: none does now). Without a cluster always null.
   */
  relay(body: Uint8Array, from: string): Promise<RelayedAnswer | null> | null;
  /**
   * A cluster's (null without one, or before it joined): where a direct TCP connection goes by its
   * first frame (null: served here), and how it is handed to another node.
   */
  tcpRouter(): TcpRouter | null;
  /**
   * A frame arrived on direct connection `conn` (> 0) from address `from`: its session, or why it was
   * refused. `piped`: the connection came through another node of a cluster (a pipe), not straight here.
   */
  frame(conn: number, body: Uint8Array, from: string, piped?: boolean): ServerLink | Refusal;
  /** The front itself refused a `what` ("connection", "frame") from address `from` (counted by code, and for the summed-up warnings). */
  refused(what: string, from: string, error: HfError): void;
  /**
   * A worker's: whether the bundle `body`, come on a handed connection after its first request, may
   * be served here: a bundle of a session open here, or a hello the main process would place here
   * (asked: a promise). A bundle with neither is served (the gateway refuses it as always).
   */
  mayServe(body: Uint8Array): boolean | Promise<boolean>;
  /** HTTP exchange `ex` of `session` went away before it was answered. */
  exchangeGone(session: ServerLink, ex: number): void;
  /** Direct connection `conn`, which last carried `session`, closed. */
  connectionClosed(session: ServerLink, conn: number): void;
}

/** What the application can see of the gateway's HTTP listener. */
export interface HttpListener {
  /** The link's URL once listening, e.g. "http://127.0.0.1:8080/v1/link". */
  readonly url: string;
  /** Bound "host:port" once listening. */
  readonly address: string;
  /** Requests held open now. */
  readonly held: number;
}

/** What the application can see of the gateway's direct TCP listener. */
export interface TcpListener {
  /** Bound "host:port" once listening. */
  readonly address: string;
  /** Connections open now. */
  readonly connections: number;
  /** Of them, those with no frame accepted yet (bounded by TcpLimits). */
  readonly preAuthConnections: number;
  /** Of them, those another node of a cluster hands here through a pipe (the device reached that node). */
  readonly pipedConnections: number;
}
