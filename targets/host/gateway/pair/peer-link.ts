/**
 * What the pair's roles need of the control connection (peer-conn.ts implements it; tests may give a
 * double): typed messages out, messages and one 'dead' in.
 */
/** The control connection's messages (validated by peer-messages.ts). */
export type PeerMessage =
  | { t: 'hello'; role: 'primary' | 'standby'; node: string; epoch: number; nonce: Uint8Array }
  | { t: 'proof'; proof: Uint8Array }
  | { t: 'snap'; n: number; sid: Uint8Array; bytes: Uint8Array }
  | { t: 'synced'; n: number }
  | { t: 'delta'; n: number; sid: Uint8Array; d: Record<string, unknown> }
  | { t: 'gone'; n: number; sid: Uint8Array }
  | { t: 'ok'; n: number }
  | { t: 'hb'; epoch: number }
  | { t: 'err'; code: string; message: string };

export interface PeerLink {
  /** Sends a message; false when the connection's buffer is above its high-water mark. */
  send(m: PeerMessage): boolean;
  on(event: 'message', fn: (m: PeerMessage) => void): unknown;
  on(event: 'dead', fn: (code: string, message: string) => void): unknown;
  /** The peer's node name and its latest epoch (from its hello and heartbeats). */
  readonly peerNode: string;
  readonly peerEpoch: number;
  /** The epoch this side tells the peer from now on. */
  setEpoch(n: number): void;
  close(): void;
}
