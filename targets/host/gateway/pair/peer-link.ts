/**
 * The messages of the control connection between a primary gateway and its standby, and what
 * replication needs of that connection (PeerLink). The transport, handshake and heartbeats are
 * peer-conn.ts; validation of received messages is peer-messages.ts.
 *
 * Byte strings (nonce, proof, sid, snapshot bytes) are Uint8Array; numbers are unsigned safe integers.
 */
/** Which side of the pair a gateway is. */
export type PeerRole = 'primary' | 'standby';

/** First message of each side: who it is, a fresh nonce (16..64 bytes) and its epoch. */
export interface PeerHello {
  t: 'hello';
  role: PeerRole;
  /** The gateway's node name, 1..128 characters. */
  node: string;
  nonce: Uint8Array;
  epoch: number;
}

/** Second message of each side: HMAC-SHA256 over the handshake (32 bytes, see peer-conn.ts). */
export interface PeerProof {
  t: 'proof';
  proof: Uint8Array;
}

/** Sent when a side sent nothing for a heartbeat interval; carries the sender's current epoch. */
export interface PeerHeartbeat {
  t: 'hb';
  epoch: number;
}

/** The sender refuses the connection (or the protocol was broken) and closes it. */
export interface PeerErr {
  t: 'err';
  code: string;
  message: string;
}

/**
 * Replication records. `n` numbers every record of the connection in one sequence (snapshots,
 * deltas and ends of all sessions alike), starting at 1 after the handshake; the standby confirms
 * them in order with `ok`.
 */
/** A session's whole snapshot (snapshot.ts bytes). */
export interface PeerSnap {
  t: 'snap';
  n: number;
  sid: Uint8Array;
  bytes: Uint8Array;
}

/** A session's delta to its previous record (replica.ts: `[mask, field...]`, checked by the replica). */
export interface PeerDelta {
  t: 'delta';
  n: number;
  sid: Uint8Array;
  d: unknown[];
}

/** The session ended on the primary; the standby forgets it. */
export interface PeerGone {
  t: 'gone';
  n: number;
  sid: Uint8Array;
}

/** The primary sent a snapshot of every session it had when the standby attached; records up to `n` are the whole state. */
export interface PeerSynced {
  t: 'synced';
  n: number;
}

/** The standby holds every record up to and including `n`. */
export interface PeerOk {
  t: 'ok';
  n: number;
}

export type PeerMessage = PeerHello | PeerProof | PeerHeartbeat | PeerErr | PeerSnap | PeerDelta | PeerGone | PeerSynced | PeerOk;

/** What replication uses of an established control connection. */
export interface PeerLink {
  /** The peer's role, node name and latest epoch (from its hello, then its heartbeats). */
  readonly peerRole: PeerRole;
  readonly peerNode: string;
  readonly peerEpoch: number;
  /** Sends a message; false when the write buffer is over its bound ('drain' follows). */
  send(m: PeerMessage): boolean;
  /** Changes the epoch this side's heartbeats carry. */
  setEpoch(n: number): void;
  /** Closes the connection ('dead' HF_ERR_CLOSED follows once). */
  close(): void;
  on(event: 'message', listener: (m: PeerMessage) => void): this;
  /** Once per connection: an HF_ERR_ code (HF_ERR_CLOSED, HF_ERR_TIMEOUT, HF_ERR_PEER, or the peer's) and why. */
  on(event: 'dead', listener: (code: string, message: string) => void): this;
  on(event: 'drain', listener: () => void): this;
}
