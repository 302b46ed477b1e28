/**
 * Where a new session goes: a policy over the live workers. `hash` (default): rendezvous hashing of
 * the device id, so a device keeps its worker while the set of workers stays the same, and only the
 * devices of a worker that went away move. `least-loaded`: the worker with the fewest sessions
 * (ties to the lower slot). A session that is open stays where it is whatever the policy says: the
 * main process routes it by its id (directory.ts).
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';

export type PlacementPolicy = 'hash' | 'least-loaded';
export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ['hash', 'least-loaded'];

/** A worker as placement sees it. */
export interface Candidate {
  slot: number;
  sessions: number;
}

/** FNV-1a, 32 bits, of `s` (UTF-16 code units) mixed with `seed`. */
function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final avalanche (murmur3's fmix32): FNV's low bits alone spread short ids poorly.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The slot of `live` with the highest weight for `key` (rendezvous hashing); -1 if none is live. */
export function rendezvous(key: string, live: readonly Candidate[]): number {
  let best = -1;
  let bestW = -1;
  for (const c of live) {
    const w = fnv1a(key, Math.imul(c.slot + 1, 0x9e3779b1));
    if (w > bestW) {
      bestW = w;
      best = c.slot;
    }
  }
  return best;
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
  if ((PLACEMENT_POLICIES as readonly string[]).includes(name)) return name as PlacementPolicy;
  throw hfError(ErrorCode.OPTION, `placement must be one of ${PLACEMENT_POLICIES.join(', ')}, got ${JSON.stringify(name)}`);
}
