/**
 * The session directory's bucket on NATS: a JetStream key-value bucket made (or opened) at start,
 * behind KvLike (directory.ts). A compare-and-set that lost (JetStream's "wrong last sequence",
 * API error 10071) is KvConflict; anything else NATS refuses is HF_ERR_NATS.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import { KvConflict, type KvLike } from './directory';
import type { IndexKv } from './session-index';

/** JetStream's API error code for a write whose expected last sequence did not match. */
const WRONG_LAST_SEQUENCE = 10071;

function conflictOrNats(e: unknown, what: string): Error {
  const code = (e as { code?: unknown }).code;
  if (code === WRONG_LAST_SEQUENCE || /wrong last sequence/.test((e as Error).message ?? '')) return new KvConflict(what);
  return hfError(ErrorCode.NATS, `${what}: ${(e as Error).message}`, e);
}

export interface NatsKvOptions {
  /** The bucket's name (default 'holdfast_sessions'). */
  bucket?: string;
  /** Its replicas (default 1; up to the number of NATS servers, 3 survives the loss of one). */
  replicas?: number;
  /** How long one KV operation may take, ms (default 5000). */
  timeoutMs?: number;
}

/** Opens (making it if need be) the bucket on `nc`. */
export async function natsKv(nc: NatsConnection, o: NatsKvOptions = {}): Promise<KvLike & IndexKv> {
  const { Kvm } = await import('@nats-io/kv');
  const bucket = o.bucket ?? 'holdfast_sessions';
  const timeout = o.timeoutMs ?? 5000;
  let kv: Awaited<ReturnType<InstanceType<typeof Kvm>['create']>>;
  try {
    kv = await new Kvm(nc).create(bucket, { history: 1, replicas: o.replicas ?? 1, timeout });
  } catch (e) {
    throw hfError(ErrorCode.NATS, `session directory bucket ${bucket}: ${(e as Error).message}`, e);
  }
  return {
    async get(key) {
      try {
        const e = await kv.get(key);
        return e === null || e.operation !== 'PUT' ? null : { value: e.value, revision: e.revision };
      } catch (err) {
        throw hfError(ErrorCode.NATS, `directory get ${key}: ${(err as Error).message}`, err);
      }
    },
    async create(key, value) {
      try {
        return await kv.create(key, value);
      } catch (e) {
        throw conflictOrNats(e, `directory create ${key}`);
      }
    },
    async update(key, value, revision) {
      try {
        return await kv.update(key, value, revision, timeout);
      } catch (e) {
        throw conflictOrNats(e, `directory update ${key}`);
      }
    },
    async put(key, value) {
      try {
        await kv.put(key, value);
      } catch (e) {
        throw hfError(ErrorCode.NATS, `directory put ${key}: ${(e as Error).message}`, e);
      }
    },
    async watch(prefix, each) {
      const it = await kv.watch({ key: `${prefix}>` });
      void (async () => {
        for await (const e of it) each(e.key, e.operation === 'PUT' ? e.value : null);
      })().catch(() => {});
      return () => it.stop();
    },
  };
}
