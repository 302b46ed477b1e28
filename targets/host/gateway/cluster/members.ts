/**
 * Who is in the cluster, as one node sees it: every node publishes a heartbeat (its NodeInfo) every
 * `heartbeatMs`; a node not heard from for `misses` intervals is dead. A node that restarted shows a
 * new `incarnation` (its start time): the old one is dead, whatever it held. Pure: time comes in.
 *
 * Per node: LIVE (heard within the window) -> DEAD (silent too long, or said it left); a DEAD node
 * heard again with a newer incarnation is LIVE again (a restart). A DEAD incarnation heard again is
 * ignored: its sessions have been taken over, it must not come back as if nothing happened.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';

/** What a node's heartbeat says of it. */
export interface NodeInfo {
  node: string;
  /** Distinguishes a node's runs (its start time, ms since the epoch): a restart has a larger one. */
  incarnation: number;
  /** Where devices reach it: its link URL ('' none) and direct TCP address ('' none). */
  url: string;
  tcp: string;
  labels: Record<string, string>;
  services: string[];
  /** Forward targets behind it ("host:port"): another node's devices reach them through it (pipes.ts). */
  reach: string[];
  /** Sessions it owns now. */
  sessions: number;
  /** It is being drained: it takes no new session. */
  draining: boolean;
}

export interface MembersOptions {
  /** Heartbeat interval, ms (default 200). */
  heartbeatMs?: number;
  /** Intervals without a heartbeat after which a node is dead (default 4: 800 ms by default). */
  misses?: number;
}

export const MEMBERS_DEFAULTS: Readonly<Required<MembersOptions>> = { heartbeatMs: 200, misses: 4 };

/** A name that can be part of a NATS subject and a KV key: 1..64 of A-Z a-z 0-9 _ -. */
export const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkNodeName(name: unknown, what = 'node'): string {
  if (typeof name !== 'string' || !NODE_NAME.test(name)) throw hfError(ErrorCode.OPTION, `${what} must be 1..64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(name)}`);
  return name;
}

export enum MemberState {
  LIVE = 'live',
  DEAD = 'dead',
}

interface Member {
  info: NodeInfo;
  state: MemberState;
  heardAt: number;
}

/** What a heartbeat changed. */
export type Heard = 'joined' | 'restarted' | 'updated' | 'stale';

export class Members {
  private readonly o: Required<MembersOptions>;
  private readonly all = new Map<string, Member>();

  constructor(
    /** This node (always live to itself). */
    readonly self: NodeInfo,
    o: MembersOptions = {},
  ) {
    this.o = { ...MEMBERS_DEFAULTS, ...o };
    for (const k of ['heartbeatMs', 'misses'] as const) {
      const v = this.o[k];
      if (!Number.isInteger(v) || v < 1) throw hfError(ErrorCode.OPTION, `${k} must be a positive integer, got ${v}`);
    }
  }

  /** How long a node may stay silent before it counts as dead, ms. */
  get deadAfterMs(): number {
    return this.o.heartbeatMs * this.o.misses;
  }

  /** A heartbeat from `info.node` (never this node's own). */
  heard(info: NodeInfo, now: number): Heard {
    if (info.node === this.self.node) return 'stale';
    const m = this.all.get(info.node);
    if (m === undefined) {
      this.all.set(info.node, { info, state: MemberState.LIVE, heardAt: now });
      return 'joined';
    }
    if (info.incarnation < m.info.incarnation) return 'stale';
    if (info.incarnation > m.info.incarnation) {
      m.info = info;
      m.state = MemberState.LIVE;
      m.heardAt = now;
      return 'restarted';
    }
    if (m.state === MemberState.DEAD) return 'stale';
    m.info = info;
    m.heardAt = now;
    return 'updated';
  }

  /** `node` said it leaves (a clean stop of incarnation `incarnation`). Returns whether it was live. */
  left(node: string, incarnation: number): boolean {
    const m = this.all.get(node);
    if (m === undefined || m.state === MemberState.DEAD || m.info.incarnation !== incarnation) return false;
    m.state = MemberState.DEAD;
    return true;
  }

  /**
   * This node was cut off from the others (its NATS connection was down) and is back: the silence was
   * its own, so every live node counts as heard now and gets a whole window to show itself.
   */
  reheard(now: number): void {
    for (const m of this.all.values()) if (m.state === MemberState.LIVE) m.heardAt = now;
  }

  /** Marks dead every node silent for longer than the window; returns them (each once). */
  sweep(now: number): NodeInfo[] {
    const died: NodeInfo[] = [];
    for (const m of this.all.values()) {
      if (m.state !== MemberState.LIVE || now - m.heardAt <= this.deadAfterMs) continue;
      m.state = MemberState.DEAD;
      died.push(m.info);
    }
    return died;
  }

  /** Whether `node` is this one or a live member. */
  isLive(node: string): boolean {
    return node === this.self.node || this.all.get(node)?.state === MemberState.LIVE;
  }

  /** The live incarnation of `node` (-1: not live). */
  incarnationOf(node: string): number {
    if (node === this.self.node) return this.self.incarnation;
    const m = this.all.get(node);
    return m?.state === MemberState.LIVE ? m.info.incarnation : -1;
  }

  /** What the last heartbeat of live `node` said (null: not live). */
  info(node: string): NodeInfo | null {
    if (node === this.self.node) return this.self;
    const m = this.all.get(node);
    return m?.state === MemberState.LIVE ? m.info : null;
  }

  /** Every live node, this one included, in name order. */
  live(): NodeInfo[] {
    const out = [this.self];
    for (const m of this.all.values()) if (m.state === MemberState.LIVE) out.push(m.info);
    return out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }
}
