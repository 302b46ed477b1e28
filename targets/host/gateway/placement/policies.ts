/**
 * Where a new session goes: a placement policy, a plain function of what the first request says of
 * the device (its id and labels) and of the live candidates (cluster nodes, or the workers of one
 * gateway). Built-ins:
 *
 *   hash          rendezvous hashing of the device id: a device keeps its place while the set of
 *                 candidates stays the same, and only the devices of one that went away move
 *   label         candidates whose labels agree with the device's on every key of `labelKeys`
 *                 (default: site) the device has, e.g. a device with site=berlin goes to a node
 *                 labelled site=berlin; among them by hash; none agreeing: by hash over all
 *   service       candidates that reach every service the device names in its `service` label
 *                 ("db" or "db+cache"), else those reaching most of them; among them by hash
 *   least-loaded  the candidate with the fewest sessions (ties to the first in name order)
 *
 * A session that is open stays where it is whatever the policy says: policies place only new ones.
 */
import { ErrorCode, hfError } from '../../../../firmware/errors';

export type PlacementPolicy = 'hash' | 'label' | 'service' | 'least-loaded';
export const PLACEMENT_POLICIES: readonly PlacementPolicy[] = ['hash', 'label', 'service', 'least-loaded'];

/** A place as a policy sees it. */
export interface Candidate {
  /** Its stable name (a node's name; a worker's slot as text). */
  name: string;
  /** Sessions it holds now. */
  sessions: number;
  /** Its labels (a node's `--node-label`). */
  labels?: Readonly<Record<string, string>>;
  /** Services it reaches (a node's `--node-service`). */
  services?: readonly string[];
}

/** What placement knows of a new session's device. */
export interface Placed {
  device: string | null;
  labels?: Readonly<Record<string, string>>;
}

export interface PlacementOptions {
  policy: PlacementPolicy;
  /** Label keys the `label` policy matches (default ['site']). */
  labelKeys?: readonly string[];
  /** The device label the `service` policy reads (default 'service'); its value names services joined by '+'. */
  serviceLabel?: string;
}

/** FNV-1a, 32 bits, of `s` (UTF-16 code units) mixed with `seed`, with murmur3's final avalanche. */
export function hash32(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // FNV's low bits alone spread short ids poorly.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The candidate with the highest weight for `key` (rendezvous hashing); null if there is none. */
export function rendezvousOf<T>(key: string, live: readonly T[], seedOf: (c: T) => number): T | null {
  let best: T | null = null;
  let bestW = -1;
  for (const c of live) {
    const w = hash32(key, seedOf(c));
    if (w > bestW) {
      bestW = w;
      best = c;
    }
  }
  return best;
}

const nameSeed = (c: Candidate): number => hash32(c.name, 0x9e3779b1);
const byName = (a: Candidate, b: Candidate): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function leastLoadedOf(live: readonly Candidate[]): Candidate | null {
  let best: Candidate | null = null;
  for (const c of [...live].sort(byName)) if (best === null || c.sessions < best.sessions) best = c;
  return best;
}

/** The services a device names in its service label. */
export function servicesOf(labels: Readonly<Record<string, string>> | undefined, serviceLabel = 'service'): string[] {
  const v = labels?.[serviceLabel];
  return v === undefined || v === '' ? [] : v.split('+').filter((s) => s !== '');
}

/** The candidates a policy narrows `live` to for `p` (all of them for hash and least-loaded). */
function narrowed(o: PlacementOptions, p: Placed, live: readonly Candidate[]): readonly Candidate[] {
  if (o.policy === 'label') {
    const keys = (o.labelKeys ?? ['site']).filter((k) => p.labels?.[k] !== undefined);
    if (keys.length === 0) return live;
    const agree = live.filter((c) => keys.every((k) => c.labels?.[k] === p.labels?.[k]));
    return agree.length > 0 ? agree : live;
  }
  if (o.policy === 'service') {
    const wanted = servicesOf(p.labels, o.serviceLabel);
    if (wanted.length === 0) return live;
    let most = 0;
    const reach = live.map((c) => {
      const n = wanted.filter((s) => c.services?.includes(s) === true).length;
      if (n > most) most = n;
      return n;
    });
    return most === 0 ? live : live.filter((_, i) => reach[i] === most);
  }
  return live;
}

/** Places a new session: the chosen candidate's name, or null when none is live. */
export function placeOn(o: PlacementOptions, p: Placed, live: readonly Candidate[]): string | null {
  const among = narrowed(o, p, live);
  const c = o.policy === 'least-loaded' || p.device === null ? leastLoadedOf(among) : rendezvousOf(p.device, among, nameSeed);
  return c === null ? null : c.name;
}

/** Checks a policy name (HF_ERR_OPTION naming it otherwise). */
export function placementPolicy(name: string, allowed: readonly PlacementPolicy[] = PLACEMENT_POLICIES): PlacementPolicy {
  if ((allowed as readonly string[]).includes(name)) return name as PlacementPolicy;
  throw hfError(ErrorCode.OPTION, `placement must be one of ${allowed.join(', ')}, got ${JSON.stringify(name)}`);
}
