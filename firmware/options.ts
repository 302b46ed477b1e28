/**
 * Every bound of a link, with its default. `resolveOptions` validates all of them before anything is
 * allocated and never mutates what it was given.
 *
 * Each default has one source: `LINK_DEFAULTS` here, built from the wire limits (`WIRE_DEFAULTS`,
 * wire.ts), the round-trip bounds (`RTT_DEFAULTS`, rtt.ts) and the ring sizes (`RING_DEFAULTS`,
 * out-ring.ts). The "(default N)" in the JSDoc below and the defaults in docs/PROTOCOL.md section 10
 * are checked against these objects by test/defaults.test.ts.
 */
import { checkInt, checkMs, checkPow2 } from './check';
import { ErrorCode, hfError } from './errors';
import { RING_DEFAULTS } from './out-ring';
import { RTT_DEFAULTS, type RttOptions } from './rtt';
import { WIRE_DEFAULTS, type WireLimits, headerBudget } from './wire';

export interface LinkOptions extends WireLimits, RttOptions {
  /** Out-ring message slots, power of two (default 1024). */
  outSlots?: number;
  /** Out-ring payload bytes, power of two (default 262144). */
  outBytes?: number;
  /** In-ring message slots, power of two (default 1024). */
  inSlots?: number;
  /** In-ring payload bytes, power of two (default 262144). */
  inBytes?: number;
  /** First sequence number of this side's messages (default 0; tests use 2^32-k). */
  initialSeq?: number;
  /** First byte offset of this side's messages (default 0). */
  initialOff?: number;
  /** Wait this long for more messages before sending a bundle that is not full, ms (default 0). */
  coalesceMs?: number;
  /** Longest an acknowledgement may wait for a bundle to ride on, ms (default 5). */
  ackDelayMs?: number;
  /** Server: longest a request is held before it is answered anyway, ms (default 20000). */
  holdMs?: number;
  /** Server: most requests held at once per session (default 1). */
  maxHeld?: number;
  /** Server: answered requests remembered so a repeated request number gets the same answer (default 4). */
  replayCache?: number;
  /** Server: silence after which the session ends and is freed, ms (default 90000). */
  idleMs?: number;
  /** Client: most requests outstanding at once (default 4: one held, the others carrying news; at least 2). */
  maxOutstanding?: number;
  /** Client: consecutive unanswered requests before the link fails (default 8) ... */
  failAfter?: number;
  /** ... and only once the server has been silent at least this long, ms (default 60000). */
  deadAfterMs?: number;
  /** Direct transport: send an empty bundle after this much quiet so the peer knows we live, ms (default 15000). */
  keepaliveMs?: number;
  /** Client: requests in a row that died with their connection and are sent again at once (default 2) ... */
  retryAtOnce?: number;
  /** ... after that the next waits this long, doubling with each further one, half of it jitter, ms (default 50) ... */
  retryBackoffMs?: number;
  /** ... up to this, ms (default 2000). */
  retryBackoffMaxMs?: number;
  /** Client: requests shrink to no less than this many bytes while connections die before their answer (default 1024). */
  minBundleBytes?: number;
}

export type ResolvedOptions = Required<LinkOptions>;

export const LINK_DEFAULTS: ResolvedOptions = {
  ...WIRE_DEFAULTS,
  ...RTT_DEFAULTS,
  outSlots: RING_DEFAULTS.slots,
  outBytes: RING_DEFAULTS.bytes,
  inSlots: RING_DEFAULTS.slots,
  inBytes: RING_DEFAULTS.bytes,
  initialSeq: 0,
  initialOff: 0,
  coalesceMs: 0,
  ackDelayMs: 5,
  holdMs: 20000,
  maxHeld: 1,
  replayCache: 4,
  idleMs: 90000,
  maxOutstanding: 4,
  failAfter: 8,
  deadAfterMs: 60000,
  keepaliveMs: 15000,
  retryAtOnce: 2,
  retryBackoffMs: 50,
  retryBackoffMaxMs: 2000,
  minBundleBytes: 1024,
};

/** Bytes a bundle keeps for control items beyond its messages (a hello is about 300). */
export const CONTROL_ROOM = 512;

const KNOWN = new Set(Object.keys(LINK_DEFAULTS));

export function resolveOptions(opts: LinkOptions = {}): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw hfError(ErrorCode.OPTION, `options must be an object, got ${String(opts)}`);
  for (const k of Object.keys(opts)) {
    if (!KNOWN.has(k)) throw hfError(ErrorCode.OPTION, `unknown option ${k}`);
  }
  const o = { ...LINK_DEFAULTS } as ResolvedOptions;
  for (const k of Object.keys(opts) as (keyof LinkOptions)[]) {
    if (opts[k] !== undefined) (o as Record<string, number>)[k] = opts[k] as number;
  }
  checkPow2('outSlots', o.outSlots, 1, 1 << 16);
  checkPow2('outBytes', o.outBytes, 16, 1 << 30);
  checkPow2('inSlots', o.inSlots, 1, 1 << 16);
  checkPow2('inBytes', o.inBytes, 16, 1 << 30);
  if (opts.maxMessage === undefined) o.maxMessage = Math.min(WIRE_DEFAULTS.maxMessage, o.outBytes, o.inBytes);
  checkInt('initialSeq', o.initialSeq, 0, 0xffffffff);
  checkInt('initialOff', o.initialOff, 0, 0xffffffff);
  checkInt('maxMessages', o.maxMessages, 1, 4096);
  checkInt('maxSackRanges', o.maxSackRanges, 0, 64);
  checkInt('maxControls', o.maxControls, 2, 16);
  checkInt('maxMessage', o.maxMessage, 0, Math.min(o.outBytes, o.inBytes));
  checkInt('maxBundleBytes', o.maxBundleBytes, headerBudget(o) + CONTROL_ROOM + o.maxMessage + 16, 1 << 30);
  checkMs('coalesceMs', o.coalesceMs, 0);
  checkMs('ackDelayMs', o.ackDelayMs, 0);
  checkMs('holdMs', o.holdMs, 1);
  checkInt('maxHeld', o.maxHeld, 1, 64);
  checkInt('replayCache', o.replayCache, 0, 64);
  checkMs('idleMs', o.idleMs, 1);
  checkInt('maxOutstanding', o.maxOutstanding, 2, 64);
  checkInt('failAfter', o.failAfter, 1, 1000);
  checkMs('deadAfterMs', o.deadAfterMs, 0);
  checkMs('keepaliveMs', o.keepaliveMs, 1);
  checkInt('retryAtOnce', o.retryAtOnce, 0, 1000);
  checkMs('retryBackoffMs', o.retryBackoffMs, 0);
  checkMs('retryBackoffMaxMs', o.retryBackoffMaxMs, o.retryBackoffMs);
  checkInt('minBundleBytes', o.minBundleBytes, 256, o.maxBundleBytes);
  return o;
}

/**
 * When a side acknowledges a message to its peer (PROTOCOL 6): 'received' (default) once it is in
 * the in-ring; 'app' once the application confirmed it (`confirm`), so a message the application
 * never confirmed is still the sender's to send again; 'standby' (a gateway of a primary/standby pair)
 * once the standby holds it: no answer leaves before the standby has the state it reflects.
 * ('downstream' is planned.)
 */
export type AckAfter = 'received' | 'app' | 'standby';

/** The default of every `ackAfter` option. */
export const ACK_AFTER_DEFAULT: AckAfter = 'received';

/** Values of ackAfter named but not built yet (refused as such). */
export const ACK_AFTER_PLANNED: ReadonlySet<string> = new Set(['downstream']);

/** Validates an `ackAfter` value (undefined: the default); HF_ERR_OPTION names what was wrong. */
export function checkAckAfter(v: unknown, name = 'ackAfter'): AckAfter {
  if (v === undefined) return ACK_AFTER_DEFAULT;
  if (v === 'received' || v === 'app' || v === 'standby') return v;
  if (typeof v === 'string' && ACK_AFTER_PLANNED.has(v)) throw hfError(ErrorCode.OPTION, `${name} '${v}' is not built yet: use 'received', 'app' or 'standby'`);
  throw hfError(ErrorCode.OPTION, `${name} must be 'received', 'app' or 'standby', got ${JSON.stringify(v)}`);
}
