/**
 * The device's side of TLS, shared by the HTTP transport (https:// gateway URLs, also tunnelled
 * through a forward proxy with CONNECT) and the direct TCP transport.
 *
 * Verification, one of:
 *   - the system CAs (Node's bundled list), the default;
 *   - `ca`: only these CAs (a private CA);
 *   - `pin: 'sha256:<hex or base64>'`: the SHA-256 of the gateway's certificate (DER), as
 *     `openssl x509 -noout -fingerprint -sha256` prints it (colons allowed). A pin replaces CA and
 *     host name verification (for boards without a CA bundle or a name): that one certificate only.
 * The host name (or IP) of the gateway URL must be in the certificate unless a pin is given.
 *
 * A failed verification or handshake is HF_ERR_TLS with the peer's reason in the message and the
 * underlying error as `cause`.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ErrorCode, type HfError, hfError, isHfError } from '../../../firmware/errors';

export interface DeviceTlsOptions {
  /** CAs the gateway's certificate must chain to, PEM; absent: the system CAs. */
  ca?: string | Buffer | (string | Buffer)[];
  /** The gateway certificate's SHA-256 fingerprint, "sha256:<hex or base64>"; replaces CA verification. */
  pin?: string;
  /** A client certificate (PEM) for a gateway that asks for one, with `key`. */
  cert?: string | Buffer;
  /** The client certificate's private key (PEM). */
  key?: string | Buffer;
  /** TLS on the direct TCP transport (default: true when the gateway URL is https:). */
  direct?: boolean;
  /** The name to verify and send as SNI (default: the gateway URL's host name). */
  servername?: string;
}

/** What the transports need: Node's connect options and the pin to check. */
export interface ClientTls {
  options: tls.ConnectionOptions;
  /** The pinned DER SHA-256 (32 bytes), or null. */
  pin: Buffer | null;
}

const isPem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);

/** Parses "sha256:<64 hex digits, colons allowed>" or "sha256:<base64 of 32 bytes>". */
export function parsePin(s: string): Buffer {
  const bad = (why: string) => hfError(ErrorCode.OPTION, `pin must be "sha256:<hex or base64>" (${why}), got ${JSON.stringify(s)}`);
  if (typeof s !== 'string' || !s.toLowerCase().startsWith('sha256:')) throw bad('no sha256: prefix');
  const v = s.slice(7).trim();
  const hex = v.replace(/:/g, '');
  let b: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(hex)) b = Buffer.from(hex, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(v)) b = Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  else throw bad('not 32 bytes of hex or base64');
  if (b.length !== 32) throw bad('not 32 bytes');
  return b;
}

/** Checks `o` (HF_ERR_OPTION naming the field) and resolves it for a gateway at `host`. */
export function clientTls(o: DeviceTlsOptions | undefined, host: string): ClientTls {
  const t = o ?? {};
  if (t === null || typeof t !== 'object') throw hfError(ErrorCode.OPTION, 'tls must be an object');
  if (t.ca !== undefined && !(isPem(t.ca) || (Array.isArray(t.ca) && t.ca.every(isPem)))) throw hfError(ErrorCode.OPTION, 'tls.ca must be PEM (a string, a Buffer or a list of them)');
  if ((t.cert === undefined) !== (t.key === undefined)) throw hfError(ErrorCode.OPTION, 'tls.cert and tls.key go together');
  if (t.cert !== undefined && (!isPem(t.cert) || !isPem(t.key))) throw hfError(ErrorCode.OPTION, 'tls.cert and tls.key must be PEM (string or Buffer)');
  if (t.direct !== undefined && typeof t.direct !== 'boolean') throw hfError(ErrorCode.OPTION, `tls.direct must be a boolean, got ${JSON.stringify(t.direct)}`);
  const pin = t.pin === undefined ? null : parsePin(t.pin);
  const name = (t.servername ?? host).replace(/^\[|\]$/g, '');
  const options: tls.ConnectionOptions = { minVersion: 'TLSv1.2' };
  // SNI carries names only (RFC 6066); an IP is still verified against the certificate's IP SANs.
  if (!net.isIP(name)) options.servername = name;
  if (t.ca !== undefined) options.ca = t.ca;
  if (t.cert !== undefined) {
    options.cert = t.cert;
    options.key = t.key;
  }
  // With a pin the chain is not verified (there may be no CA at all); the pin is checked once the
  // handshake is done, before a byte of the link is written.
  if (pin !== null) options.rejectUnauthorized = false;
  else if (t.servername !== undefined) options.checkServerIdentity = (_h, cert) => tls.checkServerIdentity(name, cert);
  return { options, pin };
}

/** Lower-case hex with colons, as openssl and Node print fingerprints. */
const fingerprint = (b: Buffer): string => (b.toString('hex').match(/../g) ?? []).join(':');

/**
 * Null when the handshake on `s` is acceptable, else the HF_ERR_TLS to fail it with. Call at
 * 'secureConnect': with a pin, compares the peer certificate's SHA-256; without, Node already refused
 * an untrusted or misnamed certificate.
 */
export function checkPeer(s: tls.TLSSocket, t: ClientTls, where: string): HfError | null {
  if (t.pin === null) return s.authorized ? null : hfError(ErrorCode.TLS, `${where}: certificate not trusted: ${String(s.authorizationError)}`);
  const cert = s.getPeerCertificate();
  const got = cert?.raw === undefined ? null : crypto.createHash('sha256').update(cert.raw).digest();
  if (got !== null && crypto.timingSafeEqual(got, t.pin)) return null;
  return hfError(ErrorCode.TLS, `${where}: certificate does not match the pin: it is sha256:${got === null ? 'none' : fingerprint(got)}, the pin sha256:${fingerprint(t.pin)}`);
}

/** Error codes of Node and OpenSSL that mean the TLS layer refused (not the network). */
const TLS_CODE = /CERT|SSL|TLS|UNABLE_TO|SELF_SIGNED|HOSTNAME|ALTNAME|ISSUER|CHAIN|SIGNATURE|EXPIRED|VERIFY/;

/**
 * An error of a TLS connection as an HfError: HF_ERR_TLS for a refused certificate or handshake,
 * else HF_ERR_CONNECT. `where` names the peer ("gateway 127.0.0.1:8443").
 */
export function tlsFailure(e: unknown, where: string): HfError {
  if (isHfError(e)) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? '';
  if (TLS_CODE.test(code) || /certificate|handshake|ssl|tls/i.test(err.message ?? '')) return hfError(ErrorCode.TLS, `${where}: ${code ? `${code}: ` : ''}${err.message}`, e);
  return hfError(ErrorCode.CONNECT, `${where}: ${code || err.message}`, e);
}

/**
 * Starts TLS to `host:port` (or over `socket`, a tunnel already open) with `t`, and calls `done` once:
 * with null when the handshake is done and the peer passed (`checkPeer`), or with the HfError
 * (HF_ERR_TLS or HF_ERR_CONNECT; the socket is then destroyed). Nothing may be written before `done(null)`:
 * with a pin, that is what keeps the link's bytes from an impostor.
 */
export function openTls(t: ClientTls, host: string, port: number, done: (err: HfError | null) => void, socket?: net.Socket): tls.TLSSocket {
  const where = `gateway ${host}:${port}`;
  const s = tls.connect({ ...t.options, host, port, ...(socket === undefined ? {} : { socket }) });
  let called = false;
  const finish = (err: HfError | null): void => {
    if (called) return;
    called = true;
    s.off('error', onError);
    if (err !== null) {
      s.on('error', () => {});
      s.destroy();
    }
    done(err);
  };
  const onError = (e: Error): void => finish(tlsFailure(e, where));
  s.on('error', onError);
  s.once('secureConnect', () => finish(checkPeer(s, t, where)));
  s.once('close', () => finish(hfError(ErrorCode.CONNECT, `${where}: connection closed during the TLS handshake`)));
  return s;
}
