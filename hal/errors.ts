/**
 * What a hal implementation throws when it cannot do what was asked: an Error with a stable `code`
 * (one of `HalErrorCode`) and a `message` for people naming the offending value (the key, the label,
 * the reading that is missing), without the code in it. An implementation that wraps a failure of the
 * platform (an errno, a tool's output) keeps it as `cause`. Callers branch on `code`, never on text.
 * Targets throw firmware's HfError, which satisfies this (checked where ErrorCode is defined).
 */
export interface HalError extends Error {
  readonly code: HalErrorCode;
}

/**
 * The codes hal implementations may throw:
 * - `HF_ERR_STORAGE`: the medium failed to read or write (`Storage`);
 * - `HF_ERR_UNSUPPORTED`: the board or platform lacks what was asked for (`SystemInfo`, `Gpio`);
 * - `HF_ERR_OPTION`: an argument or option is wrong (a storage key or directory, a GPIO label or line,
 *   a log level), named in the message;
 * - management (`Management`): `HF_ERR_NOT_FOUND` (no such file or program), `HF_ERR_NOT_ALLOWED` (a
 *   path that resolves outside the allowed directories), `HF_ERR_OVERSIZE` (a file larger than asked
 *   for), `HF_ERR_BAD_ARGS` (a config the device refuses), `HF_ERR_OP_FAILED` (the platform failed:
 *   a program that cannot start, an I/O error).
 */
export type HalErrorCode = 'HF_ERR_STORAGE' | 'HF_ERR_UNSUPPORTED' | 'HF_ERR_OPTION' | 'HF_ERR_NOT_FOUND' | 'HF_ERR_NOT_ALLOWED' | 'HF_ERR_OVERSIZE' | 'HF_ERR_BAD_ARGS' | 'HF_ERR_OP_FAILED';
