/**
 * The cluster's standby is a JetStream stream: a node's replication records (the pair's PeerMessages:
 * snapshots, deltas, ends, synced; pair/replicator.ts makes them) go to the subject of its incarnation,
 * `<prefix>.repl.<node>.<incarnation>`, and the stream's acknowledgement is the standby's `ok`: an
 * answer whose record is not stored does not leave the node. This is the PeerLink the Replicator
 * writes to (peer-link.ts), so the pair and the cluster share one replication mechanism.
 *
 * Records are group-committed: those of one turn (and those made while a publish is on its way) go
 * as one batch, split into parts that fit NATS's largest message. Every publish expects the subject's
 * last sequence to be the one this link wrote last: a node that took over this incarnation's sessions
 * first writes a fence to the subject, and the next publish here fails (HF_ERR_EPOCH: superseded) —
 * nothing this node answers after the takeover was stored, so nothing it answers is believed.
 *
 *   message  CBOR {b: batch number, p: part, k: parts, d: bytes}; the parts' d joined are the CBOR
 *            array of the batch's records; a fence is {fence: node name}
 */
import { EventEmitter } from 'node:events';
import type { JetStreamClient } from '@nats-io/jetstream';
import { encodeValue } from '../../../../firmware/cbor-value';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import type { PeerLink, PeerMessage, PeerRole } from '../pair/peer-link';

/** JetStream's API error for a publish whose expected last subject sequence did not match. */
const WRONG_LAST_SEQUENCE = 10071;

export interface StoreLinkOptions {
  /** Largest JetStream message, bytes (NATS's max_payload less room for the envelope). */
  maxPartBytes: number;
  /** Records held before `send` says the link is over its high-water mark (default 65536). */
  highWater?: number;
  /** How long one publish may take, ms (default 5000). */
  timeoutMs?: number;
}

export class StoreLink extends EventEmitter implements PeerLink {
  readonly peerRole: PeerRole = 'standby';
  readonly peerNode: string;
  readonly peerEpoch = 0;
  private pending: PeerMessage[] = [];
  private inFlight = false;
  private closed = false;
  private batch = 0;
  private readonly highWater: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly js: JetStreamClient,
    readonly subject: string,
    /** The subject's last sequence now (0: none): what the first publish expects. */
    private lastSeq: number,
    private readonly o: StoreLinkOptions,
  ) {
    super();
    this.peerNode = `jetstream:${subject}`;
    this.highWater = o.highWater ?? 65536;
    this.timeoutMs = o.timeoutMs ?? 5000;
  }

  /** Whether records are waiting or on their way. */
  get busy(): boolean {
    return this.inFlight || this.pending.length > 0;
  }

  /** The sequence of the last message this link stored. */
  get lastSequence(): number {
    return this.lastSeq;
  }

  send(m: PeerMessage): boolean {
    if (this.closed) throw hfError(ErrorCode.CLOSED, 'store link closed');
    this.pending.push(m);
    if (!this.inFlight) {
      this.inFlight = true;
      setImmediate(() => void this.flush());
    }
    return this.pending.length < this.highWater;
  }

  setEpoch(): void {}

  private async flush(): Promise<void> {
    while (!this.closed && this.pending.length > 0) {
      const records = this.pending;
      this.pending = [];
      const body = encodeValue(records);
      const parts = Math.max(1, Math.ceil(body.length / this.o.maxPartBytes));
      const b = ++this.batch;
      try {
        for (let p = 0; p < parts; p++) {
          const d = body.subarray(p * this.o.maxPartBytes, Math.min(body.length, (p + 1) * this.o.maxPartBytes));
          const ack = await this.js.publish(this.subject, encodeValue({ b, p, k: parts, d }), { expect: { lastSubjectSequence: this.lastSeq }, timeout: this.timeoutMs });
          this.lastSeq = ack.seq;
        }
      } catch (e) {
        const fenced = (e as { code?: unknown }).code === WRONG_LAST_SEQUENCE || /wrong last sequence/.test((e as Error).message ?? '');
        this.die(fenced ? ErrorCode.EPOCH : ErrorCode.NATS, fenced ? `${this.subject} was fenced: another node took these sessions over` : `store: ${(e as Error).message}`);
        return;
      }
      if (this.closed) return;
      let top = -1;
      for (const r of records) if ('n' in r && typeof r.n === 'number' && r.n > top && r.t !== 'ok') top = r.n;
      if (top >= 0) this.emit('message', { t: 'ok', n: top } satisfies PeerMessage);
    }
    this.inFlight = false;
  }

  private die(code: string, message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.emit('dead', code, message);
  }

  close(): void {
    this.die(ErrorCode.CLOSED, 'store link closed');
  }
}
