/** Random bytes. On real targets cryptographically strong; the sim target's are seeded and replayable. */
export interface Entropy {
  fill(buf: Uint8Array): void;
}
