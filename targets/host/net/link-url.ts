/**
 * The URL of a gateway's link endpoint, as a device uses it: http: or https:, the path /v1/link
 * when none is given. One check for the device's --gateway, the gateway's advertise option and the
 * CLI's --advertise.
 */
import { ErrorCode, hfError } from '../../../firmware/errors';

/** Parses `s` (HF_ERR_OPTION naming `what` when it is not an http: or https: URL). */
export function linkUrl(s: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw hfError(ErrorCode.OPTION, `${what} must be a URL like https://host:8443, got ${JSON.stringify(s)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw hfError(ErrorCode.OPTION, `${what} URL must be https: or http:, got ${u.protocol}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/link';
  return u;
}
