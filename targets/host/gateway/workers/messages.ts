/**
 * What the main process and a worker say to each other over the fork's IPC channel (advanced
 * serialization: byte arrays travel as such). Main -> worker: a connection (its socket rides with the
 * message) and the bytes already read of it. Worker -> main: ready, and the sessions it opens and
 * drops (the directory's only source). For a reload, main -> worker `release` (answered `released`
 * with the session's handoff bytes) and `adopt` (answered `adopted`): a session moved between
 * workers (Gateway.releaseSession / adoptSession).
 */
import type { FrontKind } from './first-bytes';

/** Main -> worker: where a hello of a device would go now (the answer to a `place` report). */
export interface PlacedMessage {
  t: 'placed';
  id: number;
  slot: number;
}

/** Main -> worker: hand session `sid` (hex) away (answered by a `released` report with the same id). */
export interface ReleaseMessage {
  t: 'release';
  id: number;
  sid: string;
}

/** Main -> worker: serve the session in these handoff bytes (answered by an `adopted` report with the same id). */
export interface AdoptMessage {
  t: 'adopt';
  id: number;
  bytes: Uint8Array;
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
export type WorkerReport = { t: 'ready' } | { t: 'open'; sid: string; device: string } | { t: 'end'; sid: string; device: string } | { t: 'place'; id: number; device: string } | MoveReport;

/**
 * Worker -> main, answering `release` (the handoff bytes) or `adopt` (the session id); on failure
 * `bytes`/`sid` is null and `code` says why (an HF_ERR_ code).
 */
export type MoveReport = { t: 'released'; id: number; bytes: Uint8Array | null; code?: string; reason?: string } | { t: 'adopted'; id: number; sid: string | null; code?: string; reason?: string };

/** The environment variable that makes a forked gateway process a worker: its slot number. */
export const WORKER_ENV = 'HOLDFAST_GATEWAY_WORKER';
