/**
 * A pair's control connection in memory, for tests of the roles above it: messages go through CBOR
 * (as on the wire) and arrive on a later turn; `kill()` ends a listener and every connection as a
 * dead process's socket would (both ends see 'dead' HF_ERR_CLOSED), `cut()` only the connections.
 */
import { EventEmitter } from 'node:events';
import { decodeValue, encodeValue } from '../../firmware/cbor-value';
import { ErrorCode, type HfError, hfError } from '../../firmware/errors';
import type { PeerLink, PeerMessage, PeerRole } from '../../targets/host/gateway/pair/peer-link';

class MemoryPeer extends EventEmitter implements PeerLink {
  other: MemoryPeer | null = null;
  dead = false;
  epoch: number;
  readonly peerNode: string;
  constructor(
    readonly peerRole: PeerRole,
    epoch: number,
  ) {
    super();
    this.peerNode = peerRole;
    this.epoch = epoch;
  }
  get peerEpoch(): number {
    return this.other?.epoch ?? 0;
  }
  setEpoch(n: number): void {
    this.epoch = n;
  }
  send(m: PeerMessage): boolean {
    const to = this.other;
    if (this.dead || to === null) return false;
    const bytes = encodeValue(m);
    setImmediate(() => {
      if (!to.dead) to.emit('message', decodeValue(bytes) as PeerMessage);
    });
    return true;
  }
  die(code: string, message: string): void {
    if (this.dead) return;
    this.dead = true;
    setImmediate(() => this.emit('dead', code, message));
  }
  close(): void {
    this.die(ErrorCode.CLOSED, 'closed here');
    this.other?.die(ErrorCode.CLOSED, 'closed by the peer');
  }
}

export class MemoryPeers {
  private readonly listeners = new Map<string, { accept: (role: string, epoch: number) => HfError | null; onPeer: (p: PeerLink) => void; epoch: () => number }>();
  private readonly live: MemoryPeer[] = [];
  private seq = 0;

  /** A PairHost['listen'] for the node whose epoch `epoch()` gives. */
  listenFor(epoch: () => number) {
    return async (address: string, accept: (role: string, epoch: number) => HfError | null, onPeer: (p: PeerLink) => void, _epoch: number) => {
      const a = address.endsWith(':0') ? `mem:${++this.seq}` : address;
      this.listeners.set(a, { accept, onPeer, epoch });
      return { address: a, close: () => this.listeners.delete(a) };
    };
  }

  /** A PairHost['connect'] for a standby. */
  connect = async (address: string, epoch: number): Promise<PeerLink> => {
    const l = this.listeners.get(address);
    if (l === undefined) throw hfError(ErrorCode.CONNECT, `nothing listens on ${address}`);
    const refusal = l.accept('standby', epoch);
    if (refusal !== null) throw refusal;
    const mine = new MemoryPeer('primary', epoch);
    const theirs = new MemoryPeer('standby', l.epoch());
    mine.other = theirs;
    theirs.other = mine;
    this.live.push(mine, theirs);
    l.onPeer(theirs);
    return mine;
  };

  /**
   * A partition: every control connection dies (both ends see 'dead' HF_ERR_CLOSED) while both
   * processes live on and the listeners stay.
   */
  cut(): void {
    for (const p of this.live) p.close();
    this.live.length = 0;
  }

  /** The process listening at `address` died: its listener is gone, its connections dead. */
  kill(address: string): void {
    this.listeners.delete(address);
    for (const p of this.live) p.close();
    this.live.length = 0;
  }
}
