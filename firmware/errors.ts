/**
 * Errors with stable codes. Callers branch on `code`, never on message text.
 * Every code also travels on the wire (control item `error`) and in HTTP error bodies.
 */

export const ErrorCode = {
  /** An option is missing, of the wrong type or outside its range. */
  OPTION: 'HF_ERR_OPTION',
  /** Bytes are not well-formed CBOR, or end before the item does. */
  CBOR: 'HF_ERR_CBOR',
  /** Well-formed CBOR, but not a bundle: wrong type for a field, missing field, duplicate key. */
  BUNDLE: 'HF_ERR_BUNDLE',
  /** A count or length in a bundle is over its limit (messages, ranges, control items, bytes). */
  LIMIT: 'HF_ERR_LIMIT',
  /** A message sequence number or byte offset outside the receive window. */
  WINDOW: 'HF_ERR_WINDOW',
  /** An acknowledgement of messages that were never sent. */
  ACK: 'HF_ERR_ACK',
  /** The peer broke the protocol in a way that cannot be ignored (inconsistent offsets, bad state). */
  PROTOCOL: 'HF_ERR_PROTOCOL',
  /** A bundle names a session this side does not have. */
  UNKNOWN_SESSION: 'HF_ERR_UNKNOWN_SESSION',
  /** The hello did not prove the device key, or the device is unknown. */
  AUTH: 'HF_ERR_AUTH',
  /** The peer was silent past the configured limit; the session failed. */
  TIMEOUT: 'HF_ERR_TIMEOUT',
  /** The session was closed; no more sends are accepted. */
  CLOSED: 'HF_ERR_CLOSED',
  /** The message is larger than the ring or the bundle can ever carry. */
  TOO_BIG: 'HF_ERR_TOO_BIG',
  /** A snapshot or journal could not be read back. */
  STATE: 'HF_ERR_STATE',
  /** Storage failed to read or write. */
  STORAGE: 'HF_ERR_STORAGE',
  /** The server has no room for another session or held request. */
  BUSY: 'HF_ERR_BUSY',
  /** A forwarding target (host:port) that the gateway's allow list does not name. */
  FORBIDDEN: 'HF_ERR_FORBIDDEN',
  /** A connection could not be made (gateway, proxy or forwarding target refused or unreachable). */
  CONNECT: 'HF_ERR_CONNECT',
  /** An HTTP answer that is not a bundle (a proxy's error page, an unexpected status). */
  HTTP: 'HF_ERR_HTTP',
  /** The board or platform lacks what was asked for (no GPIO chip, no thermal zone, ...). */
  UNSUPPORTED: 'HF_ERR_UNSUPPORTED',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error class of the core. `code` is stable; `message` is for people. */
export class HfError extends Error {
  readonly code: ErrorCodeValue;
  constructor(code: ErrorCodeValue, message: string) {
    super(`${code}: ${message}`);
    this.name = 'HfError';
    this.code = code;
  }
}

/** Builds an HfError; the message should name the offending value. */
export function hfError(code: ErrorCodeValue, message: string): HfError {
  return new HfError(code, message);
}

export function isHfError(e: unknown): e is HfError {
  return e instanceof HfError;
}
