/**
 * Session state as data: a link (either role) to CBOR bytes and back. A standby gateway restores a
 * session from these bytes; a cluster node hands a session over with them; the device's journal
 * checkpoints with them. Everything a session is goes in: ids, sequence numbers, ring contents,
 * round-trip state, and timers as ages. Transport-bound state (held HTTP exchanges, outstanding
 * requests) does not: the restored side simply sends or waits for fresh ones.
 */
import { decodeValue, encodeValue } from './cbor-value';
import type { EndpointData } from './endpoint';
import { ErrorCode, hfError } from './errors';
import { type ResolvedOptions, resolveOptions } from './options';

export const SNAPSHOT_VERSION = 1;

export interface LinkData {
  state: number;
  transport: number;
  localEnd: number;
  peerEnd: number;
  endSignalled: boolean;
  closeSent: boolean;
}

export interface ClientData extends LinkData {
  id: string;
  sid: Uint8Array | null;
  rn: number;
  helloN: number;
  serverHold: number;
  serverHeld: number;
  /** Session key of an authenticated session, else null. */
  skey: Uint8Array | null;
}

export interface ServerData extends LinkData {
  sid: Uint8Array;
  deviceId: string;
  welcome: Uint8Array | null;
  replay: [number, Uint8Array][];
  /** Session key of an authenticated session, else null. */
  skey: Uint8Array | null;
  /** Newest request number taken, and which of the 32 before it were taken (bit k: top-1-k). */
  rnTop: number;
  rnSeen: number;
}

export interface Snapshot<T extends LinkData> {
  v: number;
  role: 'client' | 'server';
  /** Snapshot time on the taking side's clock (for information; ages carry the timers). */
  at: number;
  o: ResolvedOptions;
  link: T;
  ep: EndpointData;
}

/** The snapshot as CBOR (cbor-value.ts); the returned bytes are the caller's. */
export function encodeSnapshot<T extends LinkData>(s: Snapshot<T>): Uint8Array {
  return encodeValue(s);
}

/**
 * Decodes and checks a snapshot of the given role; throws HF_ERR_STATE if it is not one. Reads what
 * this version writes and what versions that wrote snapshots with cbor-x wrote.
 */
export function decodeSnapshot<T extends LinkData>(bytes: Uint8Array, role: 'client' | 'server'): Snapshot<T> {
  let s: Snapshot<T>;
  try {
    s = decodeValue(bytes) as Snapshot<T>;
  } catch (e) {
    throw hfError(ErrorCode.STATE, `snapshot cannot be decoded: ${(e as Error).message}`, e);
  }
  if (s === null || typeof s !== 'object' || s.v !== SNAPSHOT_VERSION) throw hfError(ErrorCode.STATE, `not a version ${SNAPSHOT_VERSION} snapshot`);
  if (s.role !== role) throw hfError(ErrorCode.STATE, `snapshot of a ${String(s.role)} link, expected ${role}`);
  if (!s.link || !s.ep || !Array.isArray(s.ep.out) || !Array.isArray(s.ep.in)) throw hfError(ErrorCode.STATE, 'snapshot lacks link or endpoint state');
  try {
    s.o = resolveOptions(s.o);
  } catch (e) {
    throw hfError(ErrorCode.STATE, `snapshot options: ${(e as Error).message}`, e);
  }
  return s;
}
