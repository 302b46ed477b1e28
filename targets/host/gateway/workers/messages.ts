/**
 * What the main process and a worker say to each other over the fork's IPC channel (advanced
 * serialization: byte arrays travel as such). Main -> worker: a connection (its socket rides with the
 * message) and the bytes already read of it. Worker -> main: ready, and the sessions it opens and
 * drops (the directory's only source).
 */
import type { FrontKind } from './first-bytes';

/** Main -> worker: where a hello of a device would go now (the answer to a `place` report). */
export interface PlacedMessage {
  t: 'placed';
  id: number;
  slot: number;
}

/** Main -> worker: the socket sent with it, and what was already read from it (read it first). */
export interface ConnMessage {
  t: 'conn';
  kind: FrontKind;
  head: Uint8Array;
}

/**
 * Worker -> main: ready; a session opened or dropped; and `place`: a hello of `device` arrived on a
 * connection handed for another request (keep-alive): which worker would the main process give it?
 */
export type WorkerReport = { t: 'ready' } | { t: 'open'; sid: string; device: string } | { t: 'end'; sid: string; device: string } | { t: 'place'; id: number; device: string };

/** The environment variable that makes a forked gateway process a worker: its slot number. */
export const WORKER_ENV = 'HOLDFAST_GATEWAY_WORKER';
