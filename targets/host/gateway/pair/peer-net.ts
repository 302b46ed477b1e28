/**
 * The pair's control connection on the network: PairHost's `connect` and `listen` made of
 * PeerConnection and PeerListener (peer-conn.ts), with the pair's key, node name and heartbeat
 * bounds, and TLS when the gateway's fronts have it (the peer listener serves the gateway's own
 * certificate; the standby checks the primary's against `pair.ca`, by default that same certificate:
 * the two nodes of a pair usually share one, or one CA).
 */
import type * as tls from 'node:tls';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import type { Log } from '../../../../hal/log';
import { PeerConnection, PeerListener, type PeerOptions } from './peer-conn';
import type { PairHost, PairOptions } from './pair';

/** `connect` and `listen` for a Pair, over TCP (TLS when `serverTls` is given). */
export function networkPeers(o: PairOptions, serverTls: tls.TlsOptions | null, log: Log): Pick<PairHost, 'connect' | 'listen'> {
  // The gateway's own server options, less what asks devices for client certificates: a peer proves itself with the key.
  const server = serverTls === null ? null : { ...serverTls, requestCert: false, rejectUnauthorized: false, ca: undefined };
  const base = (epoch: number): PeerOptions => ({
    key: o.key,
    node: o.node ?? 'gateway',
    epoch,
    heartbeatMs: o.heartbeatMs ?? 50,
    heartbeatMisses: o.heartbeatMisses ?? 4,
    tls:
      server === null
        ? undefined
        : {
            server,
            client: { ca: o.ca ?? server.cert, servername: o.servername, minVersion: 'TLSv1.2', rejectUnauthorized: true },
          },
  });
  return {
    connect: (address, epoch) => PeerConnection.connect(address, base(epoch)),
    listen: async (address, accept, onPeer, epoch) => {
      const l = await PeerListener.listen(address, { ...base(epoch), role: 'primary', maxPeers: 1, accept: (hello) => accept(hello.role, hello.epoch) });
      l.on('peer', onPeer);
      // A connection refused before it was ready (a wrong key, an epoch this node was superseded in,
      // a second standby): the primary says so, it will not mend itself.
      l.on('refused', (code, message, remote) => log.warn('standby refused', { code, reason: message, remote }));
      return { address: l.address, close: () => l.close(), setEpoch: (n) => l.setEpoch(n) };
    },
  };
}

/** Checks a pair's options (HF_ERR_OPTION naming the field). */
export function checkPairOptions(o: PairOptions): void {
  if (o === null || typeof o !== 'object') throw hfError(ErrorCode.OPTION, 'pair must be an object { key, listen?, standbyOf? }');
  const keyBytes = typeof o.key === 'string' ? Buffer.byteLength(o.key, 'utf8') : o.key instanceof Uint8Array ? o.key.length : -1;
  if (keyBytes < 0) throw hfError(ErrorCode.OPTION, 'pair.key must be a string or bytes');
  if (keyBytes < 16) throw hfError(ErrorCode.OPTION, `pair.key must be at least 16 bytes, got ${keyBytes}`);
  if (o.node !== undefined && (typeof o.node !== 'string' || o.node.length < 1 || o.node.length > 128))
    throw hfError(ErrorCode.OPTION, `pair.node must be 1..128 characters, got ${JSON.stringify(o.node)}`);
  for (const [name, v, min, max] of [
    ['heartbeatMs', o.heartbeatMs, 1, 60_000],
    ['heartbeatMisses', o.heartbeatMisses, 1, 1000],
    ['retryMs', o.retryMs, 1, 60_000],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) throw hfError(ErrorCode.OPTION, `pair.${name} must be an integer ${min}..${max}, got ${String(v)}`);
  }
  if (!o.listen && !o.standbyOf) throw hfError(ErrorCode.OPTION, 'pair needs listen (where the standby attaches) or standbyOf (the primary to attach to), or both');
}
