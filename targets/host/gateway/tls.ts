/**
 * The gateway's TLS: one certificate and key (PEM) for both fronts, HTTP becoming HTTPS and the direct
 * TCP port a `tls.Server`. The same options reload a running gateway (`Gateway.setTls`, what the CLI
 * does on SIGHUP): new connections get the new certificate, open ones keep theirs.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ErrorCode, hfError } from '../../../firmware/errors';

export interface GatewayTlsOptions {
  /** The certificate chain, PEM (the server's certificate first). */
  cert: string | Buffer;
  /** The certificate's private key, PEM. */
  key: string | Buffer;
  /** CAs that client certificates must chain to, PEM; absent: the system CAs. Only with requestCert. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Ask devices for a client certificate and refuse connections without a valid one (default false). */
  requestCert?: boolean;
}

const isPem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);

/** Checks `o` and turns it into Node's server options. Throws HF_ERR_OPTION naming the field, HF_ERR_TLS when
 * Node cannot use the PEM (not a certificate, a key that does not match it). */
export function serverTlsOptions(o: GatewayTlsOptions): tls.TlsOptions {
  if (o === null || typeof o !== 'object') throw hfError(ErrorCode.OPTION, 'tls must be an object { cert, key }');
  if (!isPem(o.cert) || o.cert.length === 0) throw hfError(ErrorCode.OPTION, 'tls.cert must be a PEM certificate (string or Buffer)');
  if (!isPem(o.key) || o.key.length === 0) throw hfError(ErrorCode.OPTION, 'tls.key must be a PEM private key (string or Buffer)');
  if (o.ca !== undefined && !(isPem(o.ca) || (Array.isArray(o.ca) && o.ca.every(isPem)))) throw hfError(ErrorCode.OPTION, 'tls.ca must be PEM (a string, a Buffer or a list of them)');
  if (o.requestCert !== undefined && typeof o.requestCert !== 'boolean') throw hfError(ErrorCode.OPTION, `tls.requestCert must be a boolean, got ${JSON.stringify(o.requestCert)}`);
  // A handshake gets 10 s (Node's default is 120 s): a stranger holding a half-open handshake costs little for long.
  const out: tls.TlsOptions = { cert: o.cert, key: o.key, minVersion: 'TLSv1.2', handshakeTimeout: 10_000 };
  if (o.ca !== undefined) out.ca = o.ca;
  if (o.requestCert === true) {
    out.requestCert = true;
    out.rejectUnauthorized = true;
  }
  try {
    tls.createSecureContext(out); // bad PEM or a key that does not match the certificate: now, not at the first connection
  } catch (e) {
    throw hfError(ErrorCode.TLS, `tls.cert/tls.key cannot be used: ${(e as Error).message}`, e);
  }
  return out;
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1) or "localhost". */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}
