/**
 * A gateway process as one of the workers: takes the connections main.ts hands it (the socket and
 * the bytes already read of it) into its fronts, and reports the sessions it opens and drops, which
 * are all the main process knows of them. Its gateway was started with `handoff: true` (no listeners
 * of its own; HTTP connections closed after each exchange) and with `directory: workerDirectory()`.
 * A worker whose main process went away (the IPC channel closed) stops.
 */
import type * as net from 'node:net';
import type { Gateway, SessionDirectory } from '../gateway';
import { type ConnMessage, WORKER_ENV, type WorkerReport } from './messages';

/** This process's worker slot, or -1 when it is not a worker. */
export function workerSlot(): number {
  const v = process.env[WORKER_ENV];
  return v === undefined || process.send === undefined ? -1 : Number(v);
}

function report(m: WorkerReport): void {
  if (process.connected) process.send?.(m);
}

/** The gateway's session hooks that keep the main process's directory (pass as `directory`). */
export function workerDirectory(): SessionDirectory {
  return {
    opened: (sid, device) => report({ t: 'open', sid, device }),
    ended: (sid, device) => report({ t: 'end', sid, device }),
  };
}

/**
 * Serves the connections handed to this worker with `gw`, then tells the main process it is ready.
 * `onOrphaned`: the main process is gone (default: close the gateway and exit).
 */
export function serveHandoffs(gw: Gateway, onOrphaned?: () => void): void {
  process.on('message', (m: ConnMessage, socket: net.Socket | undefined) => {
    if (m === null || typeof m !== 'object' || m.t !== 'conn' || socket === undefined) return;
    const head = Buffer.from(m.head.buffer, m.head.byteOffset, m.head.byteLength);
    gw.adopt(m.kind, socket, head);
  });
  process.once('disconnect', () => {
    if (onOrphaned !== undefined) return onOrphaned();
    void gw.close().finally(() => process.exit(0));
  });
  report({ t: 'ready' });
}
