/**
 * What a gateway is told about its cluster (Gateway option `cluster`, CLI --cluster and friends). A
 * file of its own, free of NATS's types: the package's declarations name it without needing the
 * optional NATS clients.
 */
import type { PlacementPolicy } from '../placement/policies';
import type { MembersOptions } from './members';
import type { PipesOptions } from './pipe-stream';

export interface ClusterOptions extends MembersOptions {
  /** The NATS servers, "nats://host:port" (a list, or comma-separated). */
  servers: string | string[];
  /** This node's name: 1..64 of A-Z a-z 0-9 _ -, unique in the cluster. */
  node: string;
  /** This node's labels (the `label` policy matches them against the devices'). */
  labels?: Record<string, string>;
  /** The services this node reaches (the `service` policy). */
  services?: string[];
  /**
   * Forward targets ("host:port") behind this node: a device on another node forwarding to one is
   * connected through this one (pipes.ts). CLI: --node-service NAME=HOST:PORT.
   */
  reach?: string[];
  /** The pipes' bounds: bytes in flight per pipe (default 1 MiB), largest frame (64 KiB), connect timeout ms (10000). */
  pipes?: PipesOptions;
  /** Where a new session goes (default 'hash'). */
  placement?: PlacementPolicy;
  /** Label keys of the `label` policy (default ['site']). */
  labelKeys?: string[];
  /** Subject prefix (default 'holdfast'). */
  prefix?: string;
  /** The directory's bucket (default 'holdfast_sessions') and its replicas (default 1). */
  bucket?: string;
  replicas?: number;
  /** How long a control request waits for its answer, ms (default 5000). */
  requestTimeoutMs?: number;
  /**
   * 'direct' (default): a node serving a session whose requests another node relays tells the device
   * to come to it (a moved item naming its URL and TCP address); 'relay': devices reach only one
   * address (a balancer), every request of a session another node gets is relayed to its owner.
   */
  mode?: 'direct' | 'relay';
  /** Replication records in one generation of this node's store subject before a new one starts (default 100000). */
  compactAfterRecords?: number;
  /** What this node hands a node that joins (rebalance.ts; CLI --cluster-rebalance). */
  rebalance?: RebalanceOptions;
  /**
   * Devices on NATS subjects (device-subjects.ts; CLI --cluster-device-subjects): every message a
   * device sends is published on `<prefix>.dev.<id>.up` by the node serving it, and a request on
   * `<prefix>.dev.<id>.down` sends it one, answered once its owner holds it. Give it on every node
   * (Gateway.sendToDevice reaches a device on another node only through its `.down`). Default false.
   */
  deviceSubjects?: boolean;
  /** Ids of messages sent to a device by id that its session keeps, against duplicates: 1..1048576 (default 4096). */
  deviceRecentIds?: number;
}

/**
 * A node that joins the cluster (first heard, or restarted) is handed, by every other node, the
 * sessions placement puts on it now (rebalance.ts), at most `perSecond` handoffs a second.
 */
export interface RebalanceOptions {
  /** Whether this node hands sessions to a node that joins (default true). */
  enabled?: boolean;
  /** Handoffs started per second, at most: 1..10000 (default 50). */
  perSecond?: number;
  /** Handoffs in flight at once: 1..256 (default 8). */
  concurrency?: number;
  /**
   * How long after the join the first handoff starts, ms: 0..600000 (default 5 heartbeats, 1000 at
   * the default heartbeatMs), so the joined node has heard this one and is ready to take sessions.
   */
  delayMs?: number;
}
