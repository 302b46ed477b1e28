/**
 * Where a new session goes among the live workers (the hashing is placement/policies.ts's, shared
 * with the cluster). `hash` (default): rendezvous hashing of the device id, so a device keeps its worker while the set of workers stays the same, and only the
 * devices of a worker that went away move. `least-loaded`: the worker with the fewest sessions
 * (ties to the lower slot). A session that is open stays where it is whatever the policy says: the
 * main process routes it by its id (directory.ts).
 */
import { placementPolicy as checkPolicy, rendezvousOf } from '../placement/policies';

/** The policies a gateway's workers take (the cluster's, placement/policies.ts, has more). */
export type PlacementPolicy = 'hash' | 'least-loaded';
export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ['hash', 'least-loaded'];

/** A worker as placement sees it. */
export interface Candidate {
  slot: number;
  sessions: number;
}

/** The slot of `live` with the highest weight for `key` (rendezvous hashing); -1 if none is live. */
export function rendezvous(key: string, live: readonly Candidate[]): number {
  return rendezvousOf(key, live, (c) => Math.imul(c.slot + 1, 0x9e3779b1))?.slot ?? -1;
}

/** The slot with the fewest sessions (the lower slot on a tie); -1 if none is live. */
export function leastLoaded(live: readonly Candidate[]): number {
  let best: Candidate | null = null;
  for (const c of live) if (best === null || c.sessions < best.sessions) best = c;
  return best === null ? -1 : best.slot;
}

/** Places a new session of `device` (null: no device known, e.g. a request that names none). */
export function place(policy: PlacementPolicy, device: string | null, live: readonly Candidate[]): number {
  if (device === null || policy === 'least-loaded') return leastLoaded(live);
  return rendezvous(device, live);
}

/** Checks a policy name (HF_ERR_OPTION naming it otherwise). */
export function placementPolicy(name: string): PlacementPolicy {
  return checkPolicy(name, PLACEMENT_POLICIES) as PlacementPolicy;
}
