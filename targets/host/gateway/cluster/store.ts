/**
 * The cluster's replicated store (store-link.ts writes it): a JetStream stream `HF_REPL_<prefix>`
 * over `<prefix>.repl.>`, one subject per node incarnation. This file makes the stream, reads a
 * subject back as session shadows (pair/shadows.ts: the standby's side of the same records), and
 * writes fences.
 *
 * A subject holds generations: each starts with record 1 (a Replicator attach: a snapshot of every
 * session, then `synced`) and goes on with that attach's records. The state to take over is the last
 * generation whose `synced` is there (a newer one cut short by a crash is not whole; the one before
 * it stayed as it was when the node began the new one, and nothing was answered on it since).
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeValue, encodeValue } from '../../../../firmware/cbor-value';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { checkPeerMessage } from '../pair/peer-messages';
import { Shadows } from '../pair/shadows';

export interface Store {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  prefix: string;
  /** Largest part of a batch, bytes. */
  maxPartBytes: number;
}

/** Makes (or opens) the stream. */
export async function openStore(nc: NatsConnection, prefix: string, replicas = 1): Promise<Store> {
  const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
  const stream = `HF_REPL_${prefix}`;
  try {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(stream);
    } catch {
      await jsm.streams.add({ name: stream, subjects: [`${prefix}.repl.>`], num_replicas: replicas });
    }
    // The envelope ({b, p, k, d}) adds a few bytes to each part.
    const maxPartBytes = Math.max(1024, (nc.info?.max_payload ?? 1048576) - 256);
    return { js: jetstream(nc), jsm, stream, prefix, maxPartBytes };
  } catch (e) {
    if (isHfError(e)) throw e;
    throw hfError(ErrorCode.NATS, `replication stream ${stream}: ${(e as Error).message}`, e);
  }
}

export function replSubject(s: Store, node: string, incarnation: number): string {
  return `${s.prefix}.repl.${node}.${incarnation}`;
}

/**
 * The subject's last sequence (0: it has no message). `strict`: a store that cannot be asked rejects
 * (HF_ERR_NATS) instead of answering 0.
 */
export async function lastSequence(s: Store, subject: string, strict = false): Promise<number> {
  try {
    const m = await s.jsm.streams.getMessage(s.stream, { last_by_subj: subject });
    return m === null ? 0 : m.seq;
  } catch (e) {
    if (strict && !/no message found/i.test((e as Error).message ?? '')) throw hfError(ErrorCode.NATS, `last sequence of ${subject}: ${(e as Error).message}`, e);
    return 0;
  }
}

/** Writes a fence on `subject` (its writer's next publish fails); returns the fence's sequence. */
export async function fence(s: Store, subject: string, by: string): Promise<number> {
  try {
    return (await s.js.publish(subject, encodeValue({ fence: by }))).seq;
  } catch (e) {
    throw hfError(ErrorCode.NATS, `fence on ${subject}: ${(e as Error).message}`, e);
  }
}

/** Forgets a subject's messages (after its sessions are stored elsewhere), or those before `seq`. */
export async function purge(s: Store, subject: string, seq?: number): Promise<void> {
  try {
    await s.jsm.streams.purge(s.stream, seq === undefined ? { filter: subject } : { filter: subject, seq });
  } catch (e) {
    throw hfError(ErrorCode.NATS, `purge of ${subject}: ${(e as Error).message}`, e);
  }
}

interface Part {
  b: number;
  p: number;
  k: number;
  d: Uint8Array;
}

function part(v: unknown): Part | null {
  const o = v as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || 'fence' in o) return null;
  if (!Number.isSafeInteger(o.b) || !Number.isSafeInteger(o.p) || !Number.isSafeInteger(o.k) || !(o.d instanceof Uint8Array)) throw hfError(ErrorCode.PEER, 'store message is not {b, p, k, d}');
  return o as unknown as Part;
}

/**
 * Reads `subject` up to sequence `upTo` (a fence this node wrote) and returns the last whole
 * generation's shadows (null: none was whole). A record that does not follow throws HF_ERR_PEER.
 */
export async function readShadows(s: Store, subject: string, upTo: number): Promise<{ shadows: Shadows | null; records: number }> {
  const c = await s.js.consumers.get(s.stream, { filter_subjects: subject });
  let whole: Shadows | null = null;
  let building: Shadows | null = null;
  let parts: Uint8Array[] = [];
  let records = 0;
  let seq = 0;
  const take = (batch: unknown): void => {
    if (!Array.isArray(batch)) throw hfError(ErrorCode.PEER, 'store batch is not a list of records');
    for (const r of batch) {
      const m = checkPeerMessage(r);
      records++;
      if ((m.t === 'snap' || m.t === 'delta' || m.t === 'gone' || m.t === 'synced') && m.n === 1) building = new Shadows();
      if (building === null) continue; // the tail of a generation whose start was purged
      building.take(m);
      if (building.synced) whole = building;
    }
  };
  try {
    while (seq < upTo) {
      const it = await c.fetch({ max_messages: 256, expires: 2000 });
      let got = 0;
      for await (const m of it) {
        got++;
        seq = m.seq;
        const p = part(decodeValue(m.data));
        if (p !== null) {
          if (p.p !== parts.length) throw hfError(ErrorCode.PEER, `store batch ${p.b}: part ${p.p} after ${parts.length}`);
          parts.push(p.d);
          if (parts.length === p.k) {
            const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
            parts = [];
            take(decodeValue(body));
          }
        }
        if (seq >= upTo) break;
      }
      if (got === 0) break;
    }
  } finally {
    await c.delete().catch(() => {});
  }
  return { shadows: whole, records };
}
