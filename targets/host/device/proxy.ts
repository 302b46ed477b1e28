/**
 * Which HTTP forward proxy carries requests to the gateway URL: an explicit `--proxy`, or the
 * environment (`http_proxy`, `HTTP_PROXY`, `no_proxy`, `NO_PROXY`) the way curl reads it. For an
 * https: gateway URL the environment's variables are `https_proxy` and `HTTPS_PROXY` (as curl's), and
 * the transport tunnels through the proxy with CONNECT (TLS end to end: the proxy sees only bytes).
 *
 *   1. `proxy` given (a --proxy flag): that one, whatever no_proxy says. `proxy: ''` means no proxy,
 *      even if the environment names one.
 *   2. else `http_proxy`, then `HTTP_PROXY` (lowercase first; an empty value counts as unset),
 *      unless `no_proxy` (else `NO_PROXY`) matches the target.
 *
 * no_proxy: entries separated by commas and/or whitespace, compared case-insensitively.
 *   *                 no proxy for any host
 *   example.com       example.com and every subdomain (a.example.com), not notexample.com;
 *   .example.com      the same (a leading dot, or "*.", changes nothing)
 *   host:8080         only that port (the target's port, 80 or 443 when the URL has none)
 *   10.1.2.3, [::1]   IP literals, compared exactly (an IPv6 entry may be bare: ::1)
 *   10.0.0.0/8        an IPv4 CIDR block, for targets written as an IPv4 literal
 * No name is resolved: `localhost` does not match 127.0.0.1. Entries that parse as nothing are skipped.
 *
 * Proxy URLs: no scheme means http://; only http: is accepted (no TLS to the proxy, no SOCKS). The
 * URL may carry user:password (percent-encoded, as URLs hold it): the returned URL keeps them, and the
 * caller sends `Proxy-Authorization: Basic base64(decodeURIComponent(user) + ':' +
 * decodeURIComponent(password))`. A URL without a port means port 80 (curl would use 1080).
 * An invalid one throws HfError HF_ERR_OPTION naming it (with any password replaced by ***).
 */
import * as net from 'node:net';
import { ErrorCode, hfError } from '../../../firmware/errors';

export interface ProxyForOptions {
  /** An explicit proxy URL (the --proxy flag); wins over the environment; '' = none. */
  proxy?: string;
  /** The environment to read. Default process.env. */
  env?: Record<string, string | undefined>;
}

/** The proxy for `target` (an http: or https: URL), or null to connect directly. */
export function proxyFor(target: URL, opts: ProxyForOptions = {}): URL | null {
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw hfError(ErrorCode.OPTION, `proxyFor takes an http: or https: URL, got ${target.protocol}`);
  if (opts.proxy !== undefined) return opts.proxy.trim() === '' ? null : parseProxyUrl(opts.proxy, '--proxy');
  const env = opts.env ?? process.env;
  const [name, value] = target.protocol === 'https:' ? pick(env, 'https_proxy', 'HTTPS_PROXY') : pick(env, 'http_proxy', 'HTTP_PROXY');
  if (value === undefined) return null;
  const noProxy = pick(env, 'no_proxy', 'NO_PROXY')[1];
  if (noProxy !== undefined && noProxyMatches(noProxy, target)) return null;
  return parseProxyUrl(value, name);
}

/** The first of two variables that is set and not blank. */
function pick(env: Record<string, string | undefined>, lower: string, upper: string): [string, string | undefined] {
  for (const name of [lower, upper]) {
    const v = env[name];
    if (v !== undefined && v.trim() !== '') return [name, v.trim()];
  }
  return [lower, undefined];
}

/** Parses a proxy URL; `source` names where it came from for the error message. */
export function parseProxyUrl(value: string, source = 'proxy'): URL {
  const raw = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  const bad = (why: string) => hfError(ErrorCode.OPTION, `${source}: invalid proxy URL ${redact(raw)}: ${why}`);
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw bad('cannot parse'); // without the parser's error as cause: it holds the URL unredacted
  }
  if (url.protocol !== 'http:') throw bad(`scheme ${url.protocol} is not supported (only http:)`);
  if (url.hostname === '') throw bad('no host');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') throw bad('a proxy URL has no path, query or fragment');
  return url;
}

/** The value with the password of a user:password@ part replaced by ***. */
function redact(value: string): string {
  const start = value.indexOf('//') >= 0 ? value.indexOf('//') + 2 : 0;
  const slash = value.indexOf('/', start);
  const authority = value.slice(start, slash < 0 ? value.length : slash);
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return value;
  return value.slice(0, start + colon + 1) + '***' + value.slice(start + at);
}

/** True when the no_proxy list names the target's host (and port, when the entry has one). */
export function noProxyMatches(list: string, target: URL): boolean {
  const host = normalizeHost(target.hostname);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const ipv4 = net.isIPv4(host);
  const ip = ipv4 || net.isIPv6(host);
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const slash = entry.indexOf('/');
    if (slash >= 0) {
      if (ipv4 && inCidr4(host, entry.slice(0, slash), entry.slice(slash + 1))) return true;
      continue;
    }
    const parsed = splitHostPort(entry.startsWith('*.') ? entry.slice(1) : entry);
    if (!parsed) continue;
    if (parsed.port !== null && parsed.port !== port) continue;
    const want = normalizeHost(parsed.host);
    if (want === host) return true;
    if (!ip && !net.isIP(want) && want !== '' && host.endsWith('.' + want)) return true;
  }
  return false;
}

/** Host and optional port of a no_proxy entry: name, name:80, 1.2.3.4:80, [::1], [::1]:80, ::1. */
function splitHostPort(entry: string): { host: string; port: number | null } | null {
  if (entry.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    return m ? { host: m[1], port: m[2] === undefined ? null : Number(m[2]) } : null;
  }
  if (net.isIPv6(entry)) return { host: entry, port: null };
  const m = /^([^:]+)(?::(\d+))?$/.exec(entry);
  return m ? { host: m[1], port: m[2] === undefined ? null : Number(m[2]) } : null;
}

/** Lowercase, no brackets, no trailing dot, no leading dot; IPv6 in its canonical form. */
function normalizeHost(h: string): string {
  let s = h.toLowerCase();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (net.isIPv6(s)) {
    try {
      return new URL(`http://[${s}]/`).hostname.slice(1, -1);
    } catch {
      return s;
    }
  }
  return s.replace(/^\.+/, '').replace(/\.+$/, '');
}

function ipv4ToInt(s: string): number {
  return s.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

function inCidr4(host: string, base: string, bits: string): boolean {
  if (!net.isIPv4(base) || !/^\d{1,2}$/.test(bits) || Number(bits) > 32) return false;
  const n = Number(bits);
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return (ipv4ToInt(host) & mask) >>> 0 === (ipv4ToInt(base) & mask) >>> 0;
}
