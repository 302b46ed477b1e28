/**
 * Errors with stable codes. Callers branch on `code`, never on message text: the code is a field of
 * its own and is not part of `message`, which is for people. Every code also travels on the wire
 * (control item `error`, code and message apart) and in HTTP error bodies.
 */
import type { HalError, HalErrorCode } from '../hal/errors';

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
  /**
   * ackAfter 'app': the application confirmed a message it was not handed yet, or one already
   * confirmed (confirmations go in order: confirming a message confirms every one before it).
   */
  CONFIRM: 'HF_ERR_CONFIRM',
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
  /**
   * A TLS connection was refused: the peer's certificate is not trusted (unknown CA, self-signed,
   * expired), names another host, does not match the pinned fingerprint, or the handshake failed.
   * The message carries the peer's reason; `cause` the underlying error.
   */
  TLS: 'HF_ERR_TLS',
  /** An HTTP answer that is not a bundle (a proxy's error page, an unexpected status). */
  HTTP: 'HF_ERR_HTTP',
  /** The board or platform lacks what was asked for (no GPIO chip, no thermal zone, ...). */
  UNSUPPORTED: 'HF_ERR_UNSUPPORTED',

  // Management (firmware/manage/): commands to a device's management resource and their outcomes.
  /** A management command or answer that is not well-formed: a field missing, of the wrong type, unknown, or a bad id. */
  COMMAND: 'HF_ERR_COMMAND',
  /** A management command names an operation the device does not have. */
  UNKNOWN_OP: 'HF_ERR_UNKNOWN_OP',
  /** An operation's arguments are missing, of the wrong type, unknown or outside their range. */
  BAD_ARGS: 'HF_ERR_BAD_ARGS',
  /** An argument or a result is larger than the device's bound for it (file bytes, argv, path, config). */
  OVERSIZE: 'HF_ERR_OVERSIZE',
  /** The device's config does not allow it: a program not on the exec allow-list, a path outside the allowed directories. */
  NOT_ALLOWED: 'HF_ERR_NOT_ALLOWED',
  /** The operation failed on the device for a reason of the platform (a program that cannot start, an I/O error), named in the message. */
  OP_FAILED: 'HF_ERR_OP_FAILED',
  /** The device restarted while the command ran; it was not run again. */
  INTERRUPTED: 'HF_ERR_INTERRUPTED',
  /** The command ran past its time limit (a program killed on the device, or no answer in time at the gateway). */
  CMD_TIMEOUT: 'HF_ERR_CMD_TIMEOUT',
  /** The command ran before under this id, and its answer was too large to keep for answering again. */
  ANSWER_NOT_KEPT: 'HF_ERR_ANSWER_NOT_KEPT',
  /** The job was cancelled before the device answered. */
  CANCELLED: 'HF_ERR_CANCELLED',
  /** The job expired before its command reached the device. */
  EXPIRED: 'HF_ERR_EXPIRED',
  /**
   * An `update` was installed and tried, but the new bundle did not open a session in time (or exited
   * first): the device put the bundle it ran before back, and runs that. The message says why.
   */
  ROLLED_BACK: 'HF_ERR_ROLLED_BACK',

  // The gateway's management store: operators, their logins and the audit log.
  /** A login failed (unknown operator or wrong password), or a session or API token is unknown, expired or revoked. */
  LOGIN: 'HF_ERR_LOGIN',
  /** A state-changing request without the session's CSRF token, or with another one. */
  CSRF: 'HF_ERR_CSRF',
  /** The operator's role does not allow the act (a viewer running a job, an operator adding operators). */
  ROLE: 'HF_ERR_ROLE',
  /** Too many failed logins for one operator name or from one address; the message says when to try again. */
  RATE_LIMITED: 'HF_ERR_RATE_LIMITED',
  /**
   * What is named does not exist: at the gateway an operator, token, job or job target; on a device
   * the file, directory or program a management operation names.
   */
  NOT_FOUND: 'HF_ERR_NOT_FOUND',
  /** The database was written by a newer holdfast (its schema is ahead of this code's migrations). */
  SCHEMA: 'HF_ERR_SCHEMA',
  /** The audit log's hash chain is broken: an entry was changed, removed, inserted or reordered. */
  AUDIT: 'HF_ERR_AUDIT',

  // The gateway's management API (targets/host/gateway/manage/).
  /** A device selector that does not parse (`site=berlin,class!=pi3,online`: see selector.ts). */
  SELECTOR: 'HF_ERR_SELECTOR',
  /** A selector that matches no device: no job was made. */
  NO_MATCH: 'HF_ERR_NO_MATCH',
  /** A request body that is not the JSON the route takes, or is larger than the API accepts. */
  BODY: 'HF_ERR_BODY',

  // A primary/standby pair (targets/host/gateway/pair/).
  /** This gateway is a standby: it serves no device until it takes over (try the pair's other address). */
  STANDBY: 'HF_ERR_STANDBY',
  /** The control connection between the pair carried something that is not its protocol (a malformed frame or delta). */
  PEER: 'HF_ERR_PEER',
  /** An answer or a peer from an older epoch than one already seen: a primary that was superseded (fencing). */
  EPOCH: 'HF_ERR_EPOCH',

  // A cluster of gateways on NATS (targets/host/gateway/cluster/).
  /** A control-channel message from a node this one does not know as a live member of the cluster. */
  NODE: 'HF_ERR_NODE',
  /** The cluster's NATS servers cannot be reached, or refused an operation (the session directory, a control request). */
  NATS: 'HF_ERR_NATS',

  // A live session handed from one gateway process to another (a workers' reload, a cluster move).
  /**
   * The session moved to another gateway process: a bundle of it arriving here is not served (its
   * connection closes unanswered and the device sends it again, to the new owner); its channel here
   * closes with this code while the session goes on there.
   */
  MOVED: 'HF_ERR_MOVED',
  /** Bytes given to adopt a session that are not a handoff this version takes (nothing changed). */
  HANDOFF: 'HF_ERR_HANDOFF',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The one error class of the core. `code` is stable; `message` is for people and names the offending
 * value, without the code; `cause` is the underlying error when this one wraps another.
 * `toString()` shows both: `HfError [HF_ERR_OPTION]: credit must be ...`.
 */
export class HfError extends Error {
  readonly code: ErrorCodeValue;
  constructor(code: ErrorCodeValue, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'HfError';
    this.code = code;
  }

  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}

/** Builds an HfError; the message should name the offending value. `cause`: the error being wrapped. */
export function hfError(code: ErrorCodeValue, message: string, cause?: unknown): HfError {
  return new HfError(code, message, cause);
}

export function isHfError(e: unknown): e is HfError {
  return e instanceof HfError;
}

/** Accepts only `true`: the checks below fail to compile when their condition does not hold. */
type Holds<T extends true> = T;

/**
 * hal/ states its error contract without firmware/ (`hal/errors.ts`); this proves it agrees with
 * ours: every code a hal implementation may throw is an ErrorCode, and an HfError carrying one of
 * them is a HalError. Adding a code to HalErrorCode that ErrorCode lacks breaks the build here.
 */
export type HalErrorContract = Holds<[HalErrorCode] extends [ErrorCodeValue] ? ([HfError & { readonly code: HalErrorCode }] extends [HalError] ? true : false) : false>;

/** The message of the HF_ERR_CLOSED a session gets when a newer session of the same device replaced it. */
export const REPLACED_BY_NEWER = 'replaced by a newer session of the same device';
