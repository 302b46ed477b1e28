/**
 * Device authentication and per-bundle tags.
 *
 * Each device has an id and a secret key the gateway also knows. The key never travels:
 *   - the hello carries `proof = HMAC(key, "holdfast/1 hello" 0 id 0 n nonce)` over the device id,
 *     the hello counter `n` (u32, big-endian) and a fresh random nonce; the gateway recomputes it;
 *   - both sides then derive a session key `HMAC(key, "holdfast/1 session" 0 sid nonce)` from the
 *     session id the gateway chose and the hello's nonce;
 *   - every bundle that names the session (both directions, the welcome included) ends with a tag:
 *     the first 16 bytes of `HMAC(session key, bundle bytes before the tag)`.
 * A forged or altered bundle, or one with a guessed or copied session id, fails the tag and is refused
 * with HF_ERR_AUTH before it touches the session. The welcome's tag also proves to the device that
 * the gateway knows its key. (Confidentiality is not provided: that is TLS's job.)
 *
 * HMAC itself comes from the target (`hal/Crypto`); nothing here allocates per bundle.
 */
import type { Crypto } from '../hal/crypto';
import { ErrorCode, hfError } from './errors';

/** Bytes of a bundle tag (a truncated HMAC-SHA256). */
export const TAG_BYTES = 16;
/** Bytes of an HMAC-SHA256 (proofs and session keys). */
export const MAC_BYTES = 32;

const HELLO_LABEL = 'holdfast/1 hello';
const SESSION_LABEL = 'holdfast/1 session';

const utf8 = new TextEncoder();

function labelled(label: string, parts: (Uint8Array | string)[]): Uint8Array {
  const chunks = [utf8.encode(label), new Uint8Array(1), ...parts.map((p) => (typeof p === 'string' ? utf8.encode(p) : p))];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

function mac(crypto: Crypto, key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(MAC_BYTES);
  crypto.hmac(key, data, 0, data.length, out, 0);
  return out;
}

/** The hello's proof of the device key (32 bytes). */
export function helloProof(crypto: Crypto, key: Uint8Array, id: string, n: number, nonce: Uint8Array): Uint8Array {
  return mac(crypto, key, labelled(HELLO_LABEL, [id, new Uint8Array(1), u32be(n), nonce]));
}

/** Whether `proof` is the hello proof for this key (constant time in the proof's bytes). */
export function checkHelloProof(crypto: Crypto, key: Uint8Array, id: string, n: number, nonce: Uint8Array, proof: Uint8Array): boolean {
  return sameBytes(helloProof(crypto, key, id, n, nonce), 0, proof, 0, MAC_BYTES) && proof.length === MAC_BYTES;
}

/** The session key both sides derive once the gateway picked the session id (32 bytes). */
export function sessionKey(crypto: Crypto, key: Uint8Array, sid: Uint8Array, nonce: Uint8Array): Uint8Array {
  return mac(crypto, key, labelled(SESSION_LABEL, [sid, nonce]));
}

/** Compares `len` bytes without an early exit (so timing says nothing about where they differ). */
function sameBytes(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): boolean {
  if (a.length < aOff + len || b.length < bOff + len) return false;
  let d = 0;
  for (let i = 0; i < len; i++) d |= a[aOff + i] ^ b[bOff + i];
  return d === 0;
}

/** Where every Sealer computes its MAC: used only within one synchronous sign or verify, so one for all sessions. */
const SCRATCH = new Uint8Array(MAC_BYTES);

/** Tags and checks the bundles of one session. Allocates nothing. */
export class Sealer {
  readonly key: Uint8Array;
  private readonly crypto: Crypto;

  constructor(crypto: Crypto, key: Uint8Array) {
    if (key.length !== MAC_BYTES) throw hfError(ErrorCode.OPTION, `session key must be ${MAC_BYTES} bytes, got ${key.length}`);
    this.crypto = crypto;
    this.key = key;
  }

  /** Writes the tag of `buf[start, tagOff)` into `buf[tagOff, tagOff + 16)`. */
  sign(buf: Uint8Array, start: number, tagOff: number): void {
    this.crypto.hmac(this.key, buf, start, tagOff - start, SCRATCH, 0);
    for (let i = 0; i < TAG_BYTES; i++) buf[tagOff + i] = SCRATCH[i];
  }

  /** Whether `buf[tagOff, tagOff + 16)` is the tag of `buf[start, tagOff)`. */
  verify(buf: Uint8Array, start: number, tagOff: number): boolean {
    if (tagOff < start) return false;
    this.crypto.hmac(this.key, buf, start, tagOff - start, SCRATCH, 0);
    return sameBytes(SCRATCH, 0, buf, tagOff, TAG_BYTES);
  }
}
