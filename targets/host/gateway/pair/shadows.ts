/**
 * The standby's side of replication: a SessionShadow (firmware/replica.ts) per session of the
 * primary, kept by the records it sends, and the `ok n` that tells it what is held (one per turn of
 * the event loop, after every record that arrived in it was taken).
 *
 * A record that is not the protocol (a delta for a session it has no snapshot of, a malformed or
 * out-of-order one) throws HF_ERR_PEER and changes no shadow: the standby then drops the connection
 * and attaches again, from fresh snapshots.
 */
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { SessionShadow, checkDelta } from '../../../../firmware/replica';
import type { PeerMessage } from './peer-link';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

export class Shadows {
  private readonly bySid = new Map<string, SessionShadow>();
  /** The last record taken. */
  lastN = 0;
  /** Whether every session of the primary is here (its `synced` arrived). */
  synced = false;

  get size(): number {
    return this.bySid.size;
  }

  /** Bytes of message payload held for all sessions. */
  get bytes(): number {
    let n = 0;
    for (const s of this.bySid.values()) n += s.bytes;
    return n;
  }

  /** Takes one record (snap, delta, gone, synced); throws HF_ERR_PEER for one that does not follow. */
  take(m: PeerMessage): void {
    if (m.t !== 'snap' && m.t !== 'delta' && m.t !== 'gone' && m.t !== 'synced') return;
    if (m.n !== this.lastN + 1) throw hfError(ErrorCode.PEER, `record ${m.n} after record ${this.lastN}`);
    if (m.t === 'snap') {
      let s: SessionShadow;
      try {
        s = new SessionShadow(m.bytes);
      } catch (e) {
        if (isHfError(e)) throw hfError(ErrorCode.PEER, `snapshot of session ${hex(m.sid)}: ${e.message}`, e);
        throw e;
      }
      this.bySid.set(hex(m.sid), s);
    } else if (m.t === 'delta') {
      const s = this.bySid.get(hex(m.sid));
      if (s === undefined) throw hfError(ErrorCode.PEER, `delta for session ${hex(m.sid)}, of which there was no snapshot`);
      s.apply(checkDelta(m.d));
    } else if (m.t === 'gone') this.bySid.delete(hex(m.sid));
    else this.synced = true;
    this.lastN = m.n;
  }

  /** Every session, for a takeover. */
  all(): IterableIterator<SessionShadow> {
    return this.bySid.values();
  }
}
