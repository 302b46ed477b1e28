/**
 * The answer to a request the gateway refuses: a bundle whose only control item is
 * `[4, {code, message}]`. The HTTP transport sends it with the matching status; a device reads the
 * code from it like from any bundle.
 *
 *  - `errorBundle`: no session id, no tag. The answer to a bundle that names no session, fails its
 *    tag or is a replay: anyone on the path could have written it, so a device with a session key only
 *    counts it as a failed request (PROTOCOL 13.2).
 *  - `sessionErrorBundle`: the session id and the session's tag. The answer to an authentic, fresh
 *    bundle of an open session that the session still refuses: the device's session ends with its code.
 */
import type { Sealer } from './auth';
import { CborWriter } from './cbor';
import { Ctl, encodeControl } from './control';
import { HfError } from './errors';
import { Key, SID_BYTES, TAG_LEN, WIRE_VERSION } from './wire';

export function errorBundle(rn: number, err: Pick<HfError, 'code' | 'message'>): Uint8Array {
  return write(null, rn, 0, err, null);
}

/**
 * A tagged error bundle of session `sid`: request number `rn` (the refused bundle's), cumulative
 * acknowledgement `ack` (what the gateway holds in order, so the device's check of it passes), a zero
 * window, the error item, and the tag by `sealer`. Returns new bytes.
 */
export function sessionErrorBundle(sid: Uint8Array, rn: number, ack: number, err: Pick<HfError, 'code' | 'message'>, sealer: Sealer): Uint8Array {
  return write(sid, rn, ack, err, sealer);
}

/**
 * A refusal of a bundle the session authenticated (its tag checked out and its request number was
 * fresh): `answer` is the tagged error bundle to send instead of an untagged one.
 */
export class SessionRefusal extends HfError {
  readonly answer: Uint8Array;
  constructor(err: HfError, answer: Uint8Array) {
    super(err.code, err.message, err.cause);
    this.answer = answer;
  }
}

/** The bytes to answer refusal `e` of a bundle numbered `rn` with: tagged for a SessionRefusal. */
export function refusalBundle(rn: number, e: Pick<HfError, 'code' | 'message'>): Uint8Array {
  return e instanceof SessionRefusal ? e.answer : errorBundle(rn, e);
}

function write(sid: Uint8Array | null, rn: number, ack: number, err: Pick<HfError, 'code' | 'message'>, sealer: Sealer | null): Uint8Array {
  const item = encodeControl({ kind: Ctl.ERROR, code: err.code, message: err.message });
  const w = new CborWriter(new Uint8Array(item.length + 48 + (sid === null ? 0 : SID_BYTES + 2) + (sealer === null ? 0 : TAG_LEN + 2)));
  w.mapHeader(5 + (sid === null ? 0 : 1) + (sealer === null ? 0 : 1));
  w.uint(Key.VERSION);
  w.uint(WIRE_VERSION);
  if (sid !== null) {
    w.uint(Key.SID);
    w.bytes(sid);
  }
  w.uint(Key.RN);
  w.uint(rn);
  w.uint(Key.ACK);
  w.uint(ack);
  w.uint(Key.WIN);
  w.arrayHeader(2);
  w.uint(0);
  w.uint(0);
  w.uint(Key.CTL);
  w.arrayHeader(1);
  w.copy(item, 0, item.length);
  if (sealer !== null) {
    w.uint(Key.TAG);
    w.bytesHeader(TAG_LEN);
    const tagOff = w.pos;
    w.pos += TAG_LEN;
    sealer.sign(w.buf, 0, tagOff);
  }
  return w.buf.slice(0, w.pos);
}
