/**
 * The session a first bundle names, for placement: its session id (a bundle of an open session), or
 * the device id (and labels) of its hello (a new session). Nothing is verified here: the worker that gets the
 * connection reads the bundle fully and checks its proof; a forged key only sends a connection to
 * the worker that will refuse it.
 */
import { Ctl, decodeControl } from '../../../../firmware/control';
import { isHfError } from '../../../../firmware/errors';
import { BundleReader, SID_BYTES, type WireLimits, peekSid } from '../../../../firmware/wire';

/** What a first bundle says about its session. */
export type SessionKey = { kind: 'sid'; sid: string } | { kind: 'hello'; device: string; labels: Readonly<Record<string, string>> } | { kind: 'none' };

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

const NONE: SessionKey = { kind: 'none' };

/** Reads session keys; one reader (and its view) for the whole main process. */
export class SessionKeys {
  private readonly reader: BundleReader;

  constructor(limits: WireLimits) {
    this.reader = new BundleReader(limits);
  }

  /** The key of `bundle` (valid only during the call: nothing of it is kept). */
  of(bundle: Uint8Array | null): SessionKey {
    if (bundle === null) return NONE;
    const at = peekSid(bundle);
    if (at >= 0) return { kind: 'sid', sid: Buffer.from(bundle.buffer, bundle.byteOffset + at, SID_BYTES).toString('hex') };
    try {
      const v = this.reader.read(bundle);
      if (v.hasSid) return { kind: 'sid', sid: Buffer.from(v.buf.buffer, v.buf.byteOffset + v.sidOff, SID_BYTES).toString('hex') };
      for (let k = 0; k < v.ctlCount; k++) {
        const c = decodeControl(v.buf, v.ctlStarts[k], v.ctlEnds[k]);
        if (c !== null && c.kind === Ctl.HELLO) return { kind: 'hello', device: c.id, labels: c.lab ?? NO_LABELS };
      }
    } catch (e) {
      if (!isHfError(e)) throw e;
    }
    return NONE;
  }
}
