/**
 * The link bounds the management bench gives both ends of every session: right-sized for a session
 * that carries management commands and their answers (an `info` answer is under 1 KiB), not for bulk.
 * With `kib` K (default 32): 32 messages / K KiB each way, messages up to K/2 KiB, bundles of up to
 * 32 messages / K KiB. The session's arena (firmware/endpoint.ts) is then 3.5 K KiB. The gateway's
 * defaults (GATEWAY_LINK_DEFAULTS: 1024 slots, 512 KiB windows) are sized for forwarded ports.
 */
export function smallLink(kib: number): LinkOptions {
  const bytes = kib * 1024;
  return { outSlots: 32, outBytes: bytes, inSlots: 32, inBytes: bytes, maxMessage: bytes / 2, maxMessages: 32, maxBundleBytes: bytes };
}

import type { LinkOptions } from '../../firmware/options';
import type { TcpLimits } from '../../targets/host/gateway/tcp-front';

/**
 * Every device of the bench connects from 127.0.0.1, so the direct TCP port's per-address bounds on
 * connections that have not proved a key yet (64 at once, 20 first frames a second with bursts of
 * 100: TCP_LIMIT_DEFAULTS) would hold 10,000 devices back for minutes. The bench lifts them; the
 * global bound on unauthenticated connections stays.
 */
export function benchTcpLimits(maxConnections: number): TcpLimits {
  const preAuth = Math.min(1000, maxConnections);
  return { maxPreAuth: preAuth, maxPreAuthPerAddress: preAuth, helloRate: 100000, helloBurst: 100000 };
}

/** The key of bench device `id` (the gateway's devices table and the device agree on it). */
export const keyOf = (id: string): string => `bench-key-${id}`;

/** Device ids: the two single devices of the latency rounds, then the fan-out fleet. */
export const LATENCY_TCP = 'lat-tcp';
export const LATENCY_HTTP = 'lat-http';
export const fleetId = (i: number): string => `fan-${String(i).padStart(5, '0')}`;
