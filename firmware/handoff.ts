/**
 * A live session handed from one gateway process to another (a workers' reload, a cluster node
 * moving sessions): the transport-free half. The releasing side quiesces the session (no bundle of
 * it is served there any more: HF_ERR_MOVED), lets its application finish what it was handed, then
 * `releaseSession` takes the snapshot and drops the session there without a word to the device; the
 * receiving side `adoptSession`s the bytes and serves the session from then on. The device notices
 * nothing but requests lost in transit, which it sends again (request numbers and the replay cache
 * travel in the snapshot, so that is idempotent).
 *
 * What travels: the whole ServerLink snapshot (snapshot.ts: both rings, so every message the
 * application handed to send() and the device has not acknowledged, and every message received and
 * not yet consumed; the replay cache; the session key) and the hello the session was opened with.
 * Messages the old owner handed to its application and that were not confirmed (ackAfter 'app') are
 * delivered again on the new owner, marked `again`; nothing else comes twice.
 *
 *   bytes:  CBOR map { v: 1, t: "session", snap: bytes, n: uint, nonce: bytes }
 */
import type { Acceptor, HelloRecord } from './acceptor';
import { toHex } from './bytes';
import { before } from './check';
import { decodeValue, encodeValue } from './cbor-value';
import type { ArenaAlloc } from './endpoint';
import { ErrorCode, hfError, isHfError } from './errors';
import { Transport } from './link-base';
import { ServerLink, type ServerPort } from './server-link';
import type { SlabLender } from './slab-pool';
import type { Crypto } from '../hal/crypto';

export const HANDOFF_VERSION = 1;

/** What handoff bytes hold. */
export interface Handoff {
  /** ServerLink.snapshot() bytes. */
  snapshot: Uint8Array;
  /** The hello the session was opened with. */
  hello: HelloRecord;
}

/** Handoff bytes (the caller's). */
export function encodeHandoff(h: Handoff): Uint8Array {
  return encodeValue({ v: HANDOFF_VERSION, t: 'session', snap: h.snapshot, n: h.hello.n >>> 0, nonce: h.hello.nonce });
}

/** Reads handoff bytes; anything else is HF_ERR_HANDOFF saying what was wrong. The result's arrays are views into `bytes`. */
export function decodeHandoff(bytes: Uint8Array): Handoff {
  if (!(bytes instanceof Uint8Array)) throw hfError(ErrorCode.HANDOFF, `handoff bytes must be a Uint8Array, got ${typeof bytes}`);
  let d: Record<string, unknown>;
  try {
    d = decodeValue(bytes) as Record<string, unknown>;
  } catch (e) {
    throw hfError(ErrorCode.HANDOFF, `handoff of ${bytes.length} bytes cannot be decoded: ${(e as Error).message}`, e);
  }
  if (d === null || typeof d !== 'object' || d.t !== 'session') throw hfError(ErrorCode.HANDOFF, 'not a session handoff');
  if (d.v !== HANDOFF_VERSION) throw hfError(ErrorCode.HANDOFF, `handoff version ${String(d.v)}, this version reads ${HANDOFF_VERSION}`);
  const { snap, n, nonce } = d;
  if (!(snap instanceof Uint8Array) || !(nonce instanceof Uint8Array)) throw hfError(ErrorCode.HANDOFF, 'handoff lacks its snapshot or hello nonce');
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw hfError(ErrorCode.HANDOFF, `handoff hello counter ${String(n)} is not a u32`);
  return { snapshot: snap, hello: { n, nonce } };
}

/**
 * The releasing side's last step: the snapshot of `link` (quiesced in `acceptor` beforehand, and its
 * application given the time to take what it was handed), then the link ends here with HF_ERR_MOVED
 * (ServerLink.handOff: nothing goes to the device) and leaves the table (`onDrop`). Returns the
 * handoff bytes. Throws HF_ERR_UNKNOWN_SESSION, changing nothing, if the session ended meanwhile.
 */
export function releaseSession(acceptor: Acceptor, link: ServerLink, now: number): Uint8Array {
  if (link.isFinished) throw hfError(ErrorCode.UNKNOWN_SESSION, 'session has ended');
  const snapshot = link.handOff(now);
  const hello = acceptor.release(link);
  return encodeHandoff({ snapshot, hello });
}

export interface AdoptOptions {
  /** Required for an authenticated session (the session key travels; its tag needs HMAC). */
  crypto?: Crypto;
  /** Where the rings' memory comes from (as for a new session). */
  memory?: ArenaAlloc | SlabLender;
  /** Gives the restored link its port (the driver opens its channel here); may throw, changing nothing in the table. */
  open: (link: ServerLink) => ServerPort;
}

const NO_PORT: ServerPort = { answer: () => {}, transmit: () => {}, deliver: () => false };

/**
 * The receiving side: restores the session from handoff `bytes` into `acceptor` and returns its
 * link, served from now on; the messages its ring holds for the application are handed to `open`'s
 * port before this returns. Its direct connection did not travel: it waits for HTTP requests or the
 * device's next connection, and everything unacknowledged goes again on whatever comes (duplicates
 * are dropped by the device). Bad bytes, a session already in this table, a device with a newer
 * session here, an authenticated session without `crypto`: HF_ERR_HANDOFF, and nothing changed. An
 * older session of the same device here is replaced (HF_ERR_CLOSED there).
 */
export function adoptSession(acceptor: Acceptor, bytes: Uint8Array, now: number, o: AdoptOptions): ServerLink {
  const h = decodeHandoff(bytes);
  let link: ServerLink;
  try {
    link = ServerLink.restore(h.snapshot, now, NO_PORT, o.crypto, o.memory);
  } catch (e) {
    if (!isHfError(e)) throw e;
    throw hfError(ErrorCode.HANDOFF, `handoff snapshot refused: ${e.message}`, e);
  }
  const sid = toHex(link.sid);
  if (link.isFinished) {
    link.ep.discard();
    throw hfError(ErrorCode.HANDOFF, `handoff of session ${sid.slice(0, 8)}… that has ended`);
  }
  if (acceptor.session(sid) !== undefined) {
    link.ep.discard();
    throw hfError(ErrorCode.HANDOFF, `session ${sid.slice(0, 8)}… is already served here`);
  }
  // The device opened a newer session here meanwhile: the handed one is the stale one.
  const here = acceptor.helloOf(link.deviceId);
  if (here?.live && before(h.hello.n, here.n)) {
    link.ep.discard();
    throw hfError(ErrorCode.HANDOFF, `device ${JSON.stringify(link.deviceId)} has a newer session here (hello ${here.n}, the handed one ${h.hello.n})`);
  }
  try {
    link.setPort(o.open(link));
  } catch (e) {
    link.ep.discard();
    throw e;
  }
  acceptor.adopt(link, now, h.hello);
  link.ep.resendAll();
  if (link.transport === Transport.DIRECT) link.setTransport(now, Transport.HELD);
  // One run now: what the ring holds for the application is handed to it here, not at the next request.
  link.cork();
  link.uncork(now);
  return link;
}
