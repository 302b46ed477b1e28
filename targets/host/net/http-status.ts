/** The HTTP status a refusal gets, by error code. The code itself travels in the body (and a header). */
import { ErrorCode, type ErrorCodeValue } from '../../../firmware/errors';

const STATUS: Partial<Record<ErrorCodeValue, number>> = {
  [ErrorCode.AUTH]: 403,
  [ErrorCode.UNKNOWN_SESSION]: 403,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.BUSY]: 503,
  [ErrorCode.CLOSED]: 410,
  [ErrorCode.TIMEOUT]: 410,
  [ErrorCode.LOGIN]: 401,
  [ErrorCode.CSRF]: 403,
  [ErrorCode.ROLE]: 403,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.SCHEMA]: 500,
  [ErrorCode.AUDIT]: 500,
  [ErrorCode.STANDBY]: 503,
  [ErrorCode.NATS]: 503,
  [ErrorCode.MOVED]: 409,
};

/** 400 unless the code says otherwise (bad bundles, windows, acks, protocol); 500 for the gateway's own broken store. */
export function statusFor(code: ErrorCodeValue): number {
  return STATUS[code] ?? 400;
}

/** The header that carries the code of a refusal, for people and proxies that cannot read CBOR. */
export const ERROR_HEADER = 'x-holdfast-error';

/** The epoch of a pair's primary, on every HTTP answer of a gateway in a pair (devices refuse an older one). */
export const EPOCH_HEADER = 'x-holdfast-epoch';

/** The media type of a bundle body. */
export const CBOR_TYPE = 'application/cbor';
