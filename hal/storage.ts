/**
 * Permanent storage: small named blobs (a flat namespace of keys such as `journal`).
 * All calls are synchronous: the device's journal must be on storage before `send` returns true.
 * Implementations throw a `HalError` (./errors) with code HF_ERR_STORAGE when the medium fails, keeping
 * the platform's failure as `cause`; a key or directory they cannot use is HF_ERR_OPTION.
 */
export interface Storage {
  /** The whole value of `key`, or null if there is none. The returned bytes belong to the caller. */
  read(key: string): Uint8Array | null;
  /** Replaces the value of `key` atomically: after a power cut the old value or the new one is there. */
  write(key: string, data: Uint8Array): void;
  /** Appends `data[off, off+len)` to the value of `key` (creating it). A power cut may cut the tail. */
  append(key: string, data: Uint8Array, off: number, len: number): void;
  /** Removes `key` (no error if absent). */
  remove(key: string): void;
}
