/**
 * The messages of the cluster's control channel (NATS subjects, see cluster-node.ts), each one CBOR
 * map with `t` its kind:
 *
 *   hb       {node, inc, url, tcp, labels, services, reach, sessions, draining}   every node, every
 *            interval (reach: the forward targets behind it, "host:port"; absent means none)
 *   leave    {node, inc}                                                   a node stopping cleanly
 *   handoff  {from, inc, device, epoch, snap, ids?}  request to the new owner: take this session (its
 *            snapshot), whose directory entry is at `epoch` now (0: none yet); `ids`: the ids of
 *            the messages sent to it by id that it keeps (device-subjects.ts), oldest first
 *   ok       {epoch}                           the owner holds the session, its entry now at `epoch`
 *   err      {code, message}                   refused (nothing changed on the refusing node)
 *   relay    {from, inc, body, addr}           a device's HTTP request body that reached node `from`
 *            (from address `addr`) for a session the receiver owns or is placed to own
 *   drain    {}                                request (from `holdfast ctl drain` or anyone on NATS): hand
 *            every session of the receiving node to the others, take no new one
 *   drained  {moved, failed, ms, p50, p99}     its answer once done (p50, p99: one handoff's ms)
 *   pipe     {from, inc, id, target}           request: connect to `target` (behind the receiver) for a
 *            forwarded connection of node `from`, its frames on pipe `id` (pipes.ts); answered ok {epoch: 0}
 *   tcp      {from, inc, id, addr, head}       request: serve a direct TCP connection that reached node
 *            `from` (device address `addr`) whose session is the receiver's: its bytes read so far
 *            (`head`, the first frame) and the rest come on pipe `id`; answered ok {epoch: 0}
 *   answer   {status, code, body}              the owner's HTTP answer to a relayed request: status,
 *            error code ('' none) and body, which the relaying node sends the device as they are
 *
 * Bounds: node 1..64 characters of A-Z a-z 0-9 _ - (it is part of subjects and keys); device 1..128
 * characters; url and tcp up to 512 and 300; at most 32 labels, keys up to 64 and values up to 256
 * characters; at most 32 services of up to 128; at most 64 reach targets of up to 300 ("host:port"); pipe
 * id 16 hex digits; snapshot 1 byte to 64 MiB; handoff ids at most 1048576, each 1..128 printable
 * ASCII characters; relayed bodies and answers
 * up to 64 MiB (the gateways' maxBundleBytes bounds them first); status 100..599. Anything else throws
 * HF_ERR_PEER naming the field (the receiver answers `err` with that code).
 */
import { decodeValue, encodeValue } from '../../../../firmware/cbor-value';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import { fieldChecks, isMap, type Obj, shown } from '../../net/field-checks';
import { parseTarget } from '../../../../firmware/mux';
import { NODE_NAME, type NodeInfo } from './members';

export const SNAP_MAX_BYTES = 64 * 1024 * 1024;
const MAX_LABELS = 32;
const MAX_SERVICES = 32;

export interface HbMessage extends NodeInfo {
  t: 'hb';
}
export interface LeaveMessage {
  t: 'leave';
  node: string;
  inc: number;
}
export interface HandoffMessage {
  t: 'handoff';
  from: string;
  inc: number;
  device: string;
  epoch: number;
  snap: Uint8Array;
  /** The ids of messages sent to the session by id that it keeps, oldest first (absent: none). */
  ids?: string[];
}
export interface OkMessage {
  t: 'ok';
  epoch: number;
}
export interface ErrMessage {
  t: 'err';
  code: string;
  message: string;
}

export interface RelayMessage {
  t: 'relay';
  from: string;
  inc: number;
  body: Uint8Array;
  addr: string;
}
export interface PipeMessage {
  t: 'pipe';
  from: string;
  inc: number;
  id: string;
  target: string;
}
export interface TcpMessage {
  t: 'tcp';
  from: string;
  inc: number;
  id: string;
  addr: string;
  head: Uint8Array;
}
export interface AnswerMessage {
  t: 'answer';
  status: number;
  code: string;
  body: Uint8Array;
}

export interface DrainMessage {
  t: 'drain';
}
export interface DrainedMessage {
  t: 'drained';
  moved: number;
  failed: number;
  ms: number;
  /** One session's handoff (release, handoff, adopt there), ms: median and 99th percentile. */
  p50: number;
  p99: number;
}

export type ClusterMessage = HbMessage | LeaveMessage | HandoffMessage | OkMessage | ErrMessage | RelayMessage | PipeMessage | TcpMessage | AnswerMessage | DrainMessage | DrainedMessage;

const { bad, uint, bytes, text } = fieldChecks(ErrorCode.PEER, 'cluster message');

function node(o: Obj, t: string, field: string): string {
  const v = text(o, t, field, 1, 64);
  if (!NODE_NAME.test(v)) throw bad(t, field, `must be of A-Z a-z 0-9 _ -, got ${shown(v)}`);
  return v;
}

function labels(o: Obj, t: string): Record<string, string> {
  const v = o.labels;
  if (!isMap(v)) throw bad(t, 'labels', `must be a map, got ${shown(v)}`);
  const keys = Object.keys(v);
  if (keys.length > MAX_LABELS) throw bad(t, 'labels', `must have at most ${MAX_LABELS} entries, got ${keys.length}`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (k.length < 1 || k.length > 64) throw bad(t, 'labels', `key must be 1..64 characters, got ${shown(k)}`);
    const val = v[k];
    if (typeof val !== 'string' || val.length > 256) throw bad(t, `labels.${k}`, `must be a string of up to 256 characters, got ${shown(val)}`);
    out[k] = val;
  }
  return out;
}

function services(o: Obj, t: string): string[] {
  const v = o.services;
  if (!Array.isArray(v) || v.length > MAX_SERVICES) throw bad(t, 'services', `must be a list of at most ${MAX_SERVICES} names, got ${shown(v)}`);
  return v.map((s, i) => {
    if (typeof s !== 'string' || s.length < 1 || s.length > 128) throw bad(t, `services[${i}]`, `must be 1..128 characters, got ${shown(s)}`);
    return s;
  });
}

const MAX_IDS = 1 << 20;
function msgIds(o: Obj, t: string): string[] {
  if (!Array.isArray(o.ids) || o.ids.length > MAX_IDS) throw bad(t, 'ids', `must be a list of at most ${MAX_IDS} message ids, got ${shown(o.ids)}`);
  return o.ids.map((id, i) => {
    if (typeof id !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(id)) throw bad(t, `ids[${i}]`, `must be 1..128 printable ASCII characters, got ${shown(id)}`);
    return id;
  });
}

const MAX_REACH = 64;
function target(o: Obj, t: string, field: string): string {
  const v = text(o, t, field, 3, 300);
  try {
    parseTarget(v);
  } catch (e) {
    throw bad(t, field, (e as Error).message);
  }
  return v;
}

function reach(o: Obj, t: string): string[] {
  if (o.reach === undefined) return [];
  if (!Array.isArray(o.reach) || o.reach.length > MAX_REACH) throw bad(t, 'reach', `must be a list of at most ${MAX_REACH} "host:port", got ${shown(o.reach)}`);
  return o.reach.map((r, i) => target({ [`reach[${i}]`]: r }, t, `reach[${i}]`));
}

function pipeId(o: Obj, t: string): string {
  const id = text(o, t, 'id', 16, 16);
  if (!/^[0-9a-f]{16}$/.test(id)) throw bad(t, 'id', `must be 16 hex digits, got ${shown(id)}`);
  return id;
}

/** Returns `v` as the message it is (only its kind's fields), or throws HF_ERR_PEER. */
export function checkClusterMessage(v: unknown): ClusterMessage {
  if (!isMap(v)) throw hfError(ErrorCode.PEER, `cluster message must be a map, got ${shown(v)}`);
  const t = v.t;
  switch (t) {
    case 'hb': {
      if (typeof v.draining !== 'boolean') throw bad(t, 'draining', `must be a boolean, got ${shown(v.draining)}`);
      return {
        t,
        node: node(v, t, 'node'),
        incarnation: uint(v, t, 'inc'),
        url: text(v, t, 'url', 0, 512),
        tcp: text(v, t, 'tcp', 0, 300),
        labels: labels(v, t),
        services: services(v, t),
        reach: reach(v, t),
        sessions: uint(v, t, 'sessions'),
        draining: v.draining,
      };
    }
    case 'leave':
      return { t, node: node(v, t, 'node'), inc: uint(v, t, 'inc') };
    case 'handoff': {
      const m: HandoffMessage = { t, from: node(v, t, 'from'), inc: uint(v, t, 'inc'), device: text(v, t, 'device', 1, 128), epoch: uint(v, t, 'epoch'), snap: bytes(v, t, 'snap', 1, SNAP_MAX_BYTES) };
      if (v.ids !== undefined) m.ids = msgIds(v, t);
      return m;
    }
    case 'ok':
      return { t, epoch: uint(v, t, 'epoch') };
    case 'err':
      return { t, code: text(v, t, 'code', 1, 64), message: text(v, t, 'message', 0, 4096) };
    case 'drain':
      return { t };
    case 'drained':
      return { t, moved: uint(v, t, 'moved'), failed: uint(v, t, 'failed'), ms: uint(v, t, 'ms'), p50: uint(v, t, 'p50'), p99: uint(v, t, 'p99') };
    case 'relay':
      return { t, from: node(v, t, 'from'), inc: uint(v, t, 'inc'), body: bytes(v, t, 'body', 0, SNAP_MAX_BYTES), addr: text(v, t, 'addr', 0, 300) };
    case 'pipe':
      return { t, from: node(v, t, 'from'), inc: uint(v, t, 'inc'), id: pipeId(v, t), target: target(v, t, 'target') };
    case 'tcp':
      return { t, from: node(v, t, 'from'), inc: uint(v, t, 'inc'), id: pipeId(v, t), addr: text(v, t, 'addr', 0, 300), head: bytes(v, t, 'head', 0, SNAP_MAX_BYTES) };
    case 'answer': {
      const status = uint(v, t, 'status');
      if (status < 100 || status > 599) throw bad(t, 'status', `must be 100..599, got ${status}`);
      return { t, status, code: text(v, t, 'code', 0, 64), body: bytes(v, t, 'body', 0, SNAP_MAX_BYTES) };
    }
    default:
      throw hfError(ErrorCode.PEER, `cluster message: t ${shown(t)} is not a known kind`);
  }
}

/** The bytes of a message as it goes on NATS. */
export function encodeClusterMessage(m: ClusterMessage): Uint8Array {
  if (m.t === 'hb') {
    const { incarnation, ...rest } = m;
    return encodeValue({ ...rest, inc: incarnation });
  }
  return encodeValue(m);
}

/** Decodes and checks received bytes: HF_ERR_PEER for anything that is not one well-formed message. */
export function decodeClusterMessage(b: Uint8Array): ClusterMessage {
  let v: unknown;
  try {
    v = decodeValue(b);
  } catch (e) {
    if (isHfError(e)) throw hfError(ErrorCode.PEER, `cluster message is not CBOR: ${e.message}`, e);
    throw e;
  }
  return checkClusterMessage(v);
}
