/**
 * The gateway's flags for a primary/standby pair (targets/host/gateway/pair/pair.ts): --peer-listen
 * and --standby-of place this node, the pair's key comes as a device's does (key.ts): --pair-key,
 * else the first line of --pair-key-file (private to its owner), else HOLDFAST_PAIR_KEY.
 */
import * as os from 'node:os';
import { ErrorCode, hfError } from '../../firmware/errors';
import type { PairOptions } from '../../targets/host/gateway/pair/pair';
import { parseAddress } from '../../targets/host/net/address';
import { linkUrl } from '../../targets/host/net/link-url';
import type { Flag, Values } from './args';
import { readFlagFile } from './common';
import { type DeviceKey, keyFromFile } from './key';

export const PAIR_FLAGS: Flag[] = [
  { name: 'peer-listen', meta: 'HOST:PORT', help: 'where this node accepts its standby (either role: a standby that took over takes its own standby here)' },
  { name: 'standby-of', meta: 'HOST:PORT', help: "start as the standby of the primary whose --peer-listen is HOST:PORT; it takes over when that primary's connection dies" },
  { name: 'pair-key', meta: 'TEXT', help: "the pair's shared secret, at least 16 bytes (visible in ps: prefer --pair-key-file or HOLDFAST_PAIR_KEY)" },
  { name: 'pair-key-file', meta: 'FILE', help: "the pair's shared secret: the first line of FILE (mode 600 like --devices)" },
  { name: 'node', meta: 'NAME', help: "this node's name in its pair's logs and hello, or in its cluster (default: the host name)" },
  { name: 'heartbeat-ms', type: 'number', help: "heartbeat interval of the pair's connection, ms (default 50)" },
  { name: 'heartbeat-misses', type: 'number', help: 'heartbeats missed before the peer counts as dead (default 4)' },
  { name: 'peer-ca', meta: 'FILE', help: "with TLS: CA certificates (PEM) the standby trusts for its primary's (default: this gateway's own certificate)" },
  {
    name: 'advertise',
    meta: 'URL[,HOST:PORT]',
    repeat: true,
    help: "a gateway of the pair as devices reach it (its URL, and its --tcp address if it has one), named in every welcome: a device told only one learns the others (give each node's, this one's included; at most 8)",
  },
];

/** The names of the pair flags (what --workers refuses). */
export const PAIR_FLAG_NAMES = PAIR_FLAGS.map((f) => f.name);

/** Flags that make a pair (--node alone names a cluster node as well, and makes none). */
const PAIR_MAKING = PAIR_FLAG_NAMES.filter((n) => n !== 'node');

const KEY_SOURCES = '--pair-key, --pair-key-file or HOLDFAST_PAIR_KEY';

/**
 * The pair the flags describe, or null when no pair flag is given (HOLDFAST_PAIR_KEY alone makes no
 * pair). HF_ERR_OPTION naming the flag: a malformed address, no --peer-listen or --standby-of, no key
 * or one under 16 bytes, a key file others may read (`warn` gets the warning under
 * --insecure-key-file), heartbeats out of range, --peer-ca without TLS or unreadable.
 */
export function pairOptionsOf(v: Values, env: NodeJS.ProcessEnv = process.env, warn: (m: string) => void = () => {}, platform: string = process.platform): PairOptions | null {
  const given = PAIR_MAKING.filter((n) => v[n] !== undefined);
  if (given.length === 0) return null;
  const listen = v['peer-listen'] === undefined ? null : String(v['peer-listen']);
  const standbyOf = v['standby-of'] === undefined ? null : String(v['standby-of']);
  if (listen !== null) parseAddress(listen, '--peer-listen');
  if (standbyOf !== null && parseAddress(standbyOf, '--standby-of').port === 0)
    throw hfError(ErrorCode.OPTION, `--standby-of must be "host:port" with a port 1..65535, got ${JSON.stringify(standbyOf)}`);
  if (listen === null && standbyOf === null) throw hfError(ErrorCode.OPTION, `--${given[0]} needs --peer-listen HOST:PORT or --standby-of HOST:PORT (or both)`);
  const key = pairKey(v, env, platform, listen !== null ? '--peer-listen' : '--standby-of');
  if (key.warning !== undefined) warn(key.warning);
  const o: PairOptions = { key: key.key, node: v.node === undefined ? os.hostname() : String(v.node), listen, standbyOf };
  if (o.node === undefined || o.node.length < 1 || o.node.length > 128) throw hfError(ErrorCode.OPTION, `--node must be 1..128 characters, got ${JSON.stringify(o.node)}`);
  o.heartbeatMs = integer(v, 'heartbeat-ms', 1, 60_000);
  o.heartbeatMisses = integer(v, 'heartbeat-misses', 1, 1000);
  if (v['peer-ca'] !== undefined) {
    if (v['tls-cert'] === undefined) throw hfError(ErrorCode.OPTION, "--peer-ca needs --tls-cert and --tls-key (the pair's connection is TLS only when the gateway's listeners are)");
    o.ca = readFlagFile('peer-ca', String(v['peer-ca']));
  }
  return o;
}

/** The pair's key: --pair-key, else --pair-key-file, else HOLDFAST_PAIR_KEY; at least 16 bytes. `needs`: the flag that asked for it. */
function pairKey(v: Values, env: NodeJS.ProcessEnv, platform: string, needs: string): DeviceKey {
  let k: DeviceKey;
  if (typeof v['pair-key'] === 'string') k = { key: v['pair-key'], from: '--pair-key' };
  else if (typeof v['pair-key-file'] === 'string') k = keyFromFile('pair-key-file', v['pair-key-file'], v['insecure-key-file'] === true, platform);
  else if (env.HOLDFAST_PAIR_KEY !== undefined && env.HOLDFAST_PAIR_KEY.length > 0) k = { key: env.HOLDFAST_PAIR_KEY, from: 'HOLDFAST_PAIR_KEY' };
  else throw hfError(ErrorCode.OPTION, `${needs} needs the pair's key: ${KEY_SOURCES}`);
  const n = Buffer.byteLength(k.key, 'utf8');
  if (n < 16) throw hfError(ErrorCode.OPTION, `${k.from}: the pair's key must be at least 16 bytes, got ${n}`);
  return k;
}

function integer(v: Values, flag: string, min: number, max: number): number | undefined {
  const n = v[flag];
  if (n === undefined) return undefined;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw hfError(ErrorCode.OPTION, `--${flag} must be an integer ${min}..${max}, got ${String(n)}`);
  return n;
}

/** --advertise URL[,HOST:PORT] (repeatable): the gateways the welcome names; undefined when not given. HF_ERR_OPTION naming the flag. */
export function advertiseOf(v: Values): { url: string; tcp: string | null }[] | undefined {
  const list = v.advertise as string[] | undefined;
  if (list === undefined) return undefined;
  if (list.length > 8) throw hfError(ErrorCode.OPTION, `--advertise names at most 8 gateways, got ${list.length}`);
  return list.map((s) => {
    const comma = s.lastIndexOf(',');
    const url = comma < 0 ? s : s.slice(0, comma);
    const tcp = comma < 0 ? null : s.slice(comma + 1);
    linkUrl(url, '--advertise');
    if (tcp !== null) parseAddress(tcp, '--advertise HOST:PORT');
    return { url, tcp };
  });
}
