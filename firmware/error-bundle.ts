/**
 * The answer to a request the gateway refuses: a bundle without session id whose only control item
 * is `[4, {code, message}]`. The HTTP transport sends it with the matching status; a device reads the
 * code from it like from any bundle.
 */
import { CborWriter } from './cbor';
import { Ctl, encodeControl } from './control';
import type { HfError } from './errors';
import { Key, WIRE_VERSION } from './wire';

export function errorBundle(rn: number, err: Pick<HfError, 'code' | 'message'>): Uint8Array {
  const item = encodeControl({ kind: Ctl.ERROR, code: err.code, message: err.message });
  const w = new CborWriter(new Uint8Array(item.length + 32));
  w.mapHeader(5);
  w.uint(Key.VERSION);
  w.uint(WIRE_VERSION);
  w.uint(Key.RN);
  w.uint(rn);
  w.uint(Key.ACK);
  w.uint(0);
  w.uint(Key.WIN);
  w.arrayHeader(2);
  w.uint(0);
  w.uint(0);
  w.uint(Key.CTL);
  w.arrayHeader(1);
  w.copy(item, 0, item.length);
  return w.buf.slice(0, w.pos);
}
