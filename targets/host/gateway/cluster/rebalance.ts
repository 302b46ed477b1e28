/**
 * Rebalancing: which of its sessions a node hands to a node that joined the cluster (first heard, or
 * restarted). Pure: the sessions, the live nodes and the policy come in, the sessions to move go out;
 * gateway-cluster.ts does the handing (the drain's handoff, rate-limited).
 *
 * By policy:
 *   hash, label, service  the sessions the policy places on the joined node now, over the live nodes
 *                         that are not draining (it included): the devices that would have gone there
 *                         had it been live when they came. Each node moves only its own, so the joined
 *                         node ends up with what placement gives it, and nothing moves twice: once
 *                         moved, a session is placed where it is.
 *   least-loaded          no device belongs anywhere: at most enough to even the counts, this node's
 *                         excess over the mean (rounded up) of the live nodes' sessions, and no more
 *                         than the joined node lacks of that mean. The oldest sessions go first.
 *
 * Neither a node that is draining, nor a joined one that is, takes part: it gets nothing, moves nothing.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { type Candidate, type PlacementOptions, placeOn } from '../placement/policies';
import type { RebalanceOptions } from './cluster-options';

/** The defaults of RebalanceOptions; delayMs is `delayHeartbeats` heartbeats. */
export const REBALANCE_DEFAULTS = { enabled: true, perSecond: 50, concurrency: 8, delayHeartbeats: 5 } as const;

const BOUNDS = { perSecond: [1, 10_000], concurrency: [1, 256], delayMs: [0, 600_000] } as const;

/**
 * Checks `o` (HF_ERR_OPTION naming the field and the value) and fills in the defaults; `heartbeatMs`
 * is the cluster's (the default delay is counted in heartbeats).
 */
export function rebalanceOptions(o: RebalanceOptions | undefined, heartbeatMs: number): Required<RebalanceOptions> {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw hfError(ErrorCode.OPTION, 'cluster.rebalance must be an object');
  const r = {
    enabled: o?.enabled ?? REBALANCE_DEFAULTS.enabled,
    perSecond: o?.perSecond ?? REBALANCE_DEFAULTS.perSecond,
    concurrency: o?.concurrency ?? REBALANCE_DEFAULTS.concurrency,
    delayMs: o?.delayMs ?? REBALANCE_DEFAULTS.delayHeartbeats * heartbeatMs,
  };
  if (typeof r.enabled !== 'boolean') throw hfError(ErrorCode.OPTION, `cluster.rebalance.enabled must be true or false, got ${JSON.stringify(r.enabled)}`);
  for (const k of ['perSecond', 'concurrency', 'delayMs'] as const) {
    const v = r[k];
    const [lo, hi] = BOUNDS[k];
    if (!Number.isInteger(v) || v < lo || v > hi) throw hfError(ErrorCode.OPTION, `cluster.rebalance.${k} must be an integer ${lo}..${hi}, got ${JSON.stringify(v)}`);
  }
  return r;
}

/** A session this node serves, as placement sees it. */
export interface OwnedSession {
  /** Its id (hex). */
  sid: string;
  device: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * The sessions of `owned` (this node's, not mid-handoff) that node `self` hands to node `joined`:
 * `open` are the live nodes that are not draining, as placement sees them. None when `self` or
 * `joined` is not among them. The result keeps `owned`'s order.
 */
export function sessionsToMove(p: PlacementOptions, owned: readonly OwnedSession[], self: string, joined: string, open: readonly Candidate[]): OwnedSession[] {
  if (self === joined) return [];
  const there = open.find((c) => c.name === joined);
  if (there === undefined || !open.some((c) => c.name === self)) return [];
  if (p.policy !== 'least-loaded') return owned.filter((s) => placeOn(p, { device: s.device, labels: s.labels }, open) === joined);
  // This node counts what it holds (its own heartbeat may be behind).
  const total = open.reduce((n, c) => n + (c.name === self ? owned.length : c.sessions), 0);
  const mean = Math.ceil(total / open.length);
  return owned.slice(0, Math.max(0, Math.min(owned.length - mean, mean - there.sessions)));
}
