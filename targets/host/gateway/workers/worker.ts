/**
 * A gateway process as one of the workers: takes the connections main.ts hands it (the socket and
 * the bytes already read of it) into its fronts, and reports the sessions it opens and drops, which
 * are all the main process knows of them. Its gateway was started with `handoff: true` (no listeners
 * of its own; a later request on a handed HTTP connection is served only if it belongs here), with
 * `directory: workerDirectory()` and `hellosHere: workerPlacement()`. A worker whose main process
 * went away (the IPC channel closed) stops.
 */
import type * as net from 'node:net';
import { isHfError } from '../../../../firmware/errors';
import type { Gateway, SessionDirectory } from '../gateway';
import { type AdoptMessage, type ConnMessage, type PlacedMessage, type ReleaseMessage, WORKER_ENV, type WorkerReport } from './messages';

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
 * The gateway's `hellosHere` for a worker: asks the main process where a hello of `device` would go
 * and resolves whether that is this worker. At most `maxAsks` questions wait at once (default 1000),
 * each at most `timeoutMs` (default 1000); past either the answer is false (the connection closes and
 * the device's next try comes through the main process).
 */
export function workerPlacement(maxAsks = 1000, timeoutMs = 1000): (device: string) => Promise<boolean> {
  const slot = workerSlot();
  const asks = new Map<number, (here: boolean) => void>();
  let seq = 0;
  process.on('message', (m: PlacedMessage) => {
    if (m === null || typeof m !== 'object' || m.t !== 'placed') return;
    asks.get(m.id)?.(m.slot === slot);
  });
  return (device) =>
    new Promise<boolean>((resolve) => {
      if (asks.size >= maxAsks || !process.connected) return resolve(false);
      const id = ++seq;
      const t = setTimeout(() => done(false), timeoutMs);
      const done = (here: boolean): void => {
        clearTimeout(t);
        asks.delete(id);
        resolve(here);
      };
      asks.set(id, done);
      report({ t: 'place', id, device });
    });
}

/** The failure of a move as a report carries it. */
function why(e: unknown): { code: string; reason: string } {
  return { code: isHfError(e) ? e.code : 'error', reason: (e as Error).message };
}

/**
 * Serves the connections handed to this worker with `gw`, and the sessions the main process moves
 * to or from it (a reload: `release`, `adopt`), then tells the main process it is ready.
 * `onOrphaned`: the main process is gone (default: close the gateway and exit).
 */
export function serveHandoffs(gw: Gateway, onOrphaned?: () => void): void {
  process.on('message', (m: ConnMessage | ReleaseMessage | AdoptMessage, socket: net.Socket | undefined) => {
    if (m === null || typeof m !== 'object') return;
    if (m.t === 'release') {
      gw.releaseSession(m.sid).then(
        (bytes) => report({ t: 'released', id: m.id, bytes }),
        (e) => report({ t: 'released', id: m.id, bytes: null, ...why(e) }),
      );
      return;
    }
    if (m.t === 'adopt') {
      try {
        report({ t: 'adopted', id: m.id, sid: gw.adoptSession(new Uint8Array(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength)) });
      } catch (e) {
        report({ t: 'adopted', id: m.id, sid: null, ...why(e) });
      }
      return;
    }
    if (m.t !== 'conn' || socket === undefined) return;
    const head = Buffer.from(m.head.buffer, m.head.byteOffset, m.head.byteLength);
    gw.adopt(m.kind, socket, head);
  });
  process.once('disconnect', () => {
    if (onOrphaned !== undefined) return onOrphaned();
    void gw.close().finally(() => process.exit(0));
  });
  report({ t: 'ready' });
}
