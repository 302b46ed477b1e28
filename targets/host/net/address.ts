/** "host:port" strings for listeners and targets: `127.0.0.1:8080`, `[::1]:8080`, `localhost:0`, `8080`. */
import type { AddressInfo, Server } from 'node:net';
import { ErrorCode, hfError } from '../../../firmware/errors';

export interface Address {
  host: string;
  port: number;
}

/** Parses an address; a bare port means 127.0.0.1. Throws HF_ERR_OPTION naming `what` and the value. */
export function parseAddress(v: string | Address, what: string): Address {
  if (typeof v === 'object' && v !== null) return checked({ host: v.host, port: v.port }, what, JSON.stringify(v));
  if (typeof v !== 'string') throw hfError(ErrorCode.OPTION, `${what} must be "host:port", got ${String(v)}`);
  const s = v.trim();
  let host: string;
  let port: string;
  const m6 = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (m6 !== null) [host, port] = [m6[1], m6[2]];
  else if (/^\d+$/.test(s)) [host, port] = ['127.0.0.1', s];
  else {
    const i = s.lastIndexOf(':');
    if (i <= 0 || s.indexOf(':') !== i) throw hfError(ErrorCode.OPTION, `${what} must be "host:port", got ${JSON.stringify(v)}`);
    [host, port] = [s.slice(0, i), s.slice(i + 1)];
  }
  return checked({ host, port: /^\d+$/.test(port) ? Number(port) : NaN }, what, JSON.stringify(v));
}

function checked(a: Address, what: string, shown: string): Address {
  // Brackets belong only around a whole IPv6 host (`[::1]:80`); a host keeping one (`[]:80`, `a]:80`), or
  // holding white space, is a mistyped address, not a name to look up.
  if (typeof a.host !== 'string' || a.host.length === 0 || /[\s[\]]/.test(a.host) || !Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
    throw hfError(ErrorCode.OPTION, `${what} must be "host:port" with a port 0..65535, got ${shown}`);
  }
  return a;
}

/** "host:port" with IPv6 hosts in brackets. */
export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Starts `server` listening on `want`; resolves with the bound "host:port". Errors are HF_ERR_CONNECT. */
export function listenOn(server: Server, want: Address, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(hfError(ErrorCode.CONNECT, `${what} listen on ${formatAddress(want)}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e));
    server.once('error', onError);
    server.listen(want.port, want.host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve(formatAddress({ host: a.address, port: a.port }));
    });
  });
}
