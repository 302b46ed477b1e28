/**
 * The session move of a reload (main.ts `reload`): every session still on the old workers is asked
 * for (`release`: the old worker quiesces it, its application finishes what it was handed, and the
 * worker answers with the handoff bytes), placed on a new worker by the placement policy, and
 * adopted there (`adopt`). While a session moves the main process holds every connection that names
 * it (`moving`), and routes it to the new owner once the move is done (or failed). At most
 * `moveConcurrency` sessions move at once; no move starts after `moveMs`: what is left ends with its
 * old worker, and its devices resume (PROTOCOL 11.7). Transport-free: main.ts gives it the IPC.
 */
import type { Log } from '../../../../hal/log';
import type { MoveReport } from './messages';

/** A session on an old worker. */
export interface MovingSession {
  slot: number;
  sid: string;
  device: string;
}

/** What a move needs of the main process. */
export interface MoveHost {
  /** The sessions still open on the old workers (the directory's word). */
  remaining(): MovingSession[];
  /**
   * Asks the old worker of `s` to release it (a failure or a timeout: `bytes` null and `code` set;
   * after a timeout the main process still adopts what the worker answers late).
   */
  release(s: MovingSession): Promise<Extract<MoveReport, { t: 'released' }>>;
  /** Asks worker `slot` to adopt `bytes` (a failure or a timeout: `sid` null and `code` set). */
  adopt(slot: number, bytes: Uint8Array): Promise<Extract<MoveReport, { t: 'adopted' }>>;
  /** The new worker for `device` (-1: none ready). */
  place(device: string): number;
  /** Connections naming `sid` (or hellos of `device`) are held while `on`; routed again once off. */
  moving(s: MovingSession, on: boolean): void;
  now(): number;
  log: Log;
}

export interface MoveLimits {
  /** Sessions moved at once. */
  moveConcurrency: number;
  /** No move starts after this, ms from the start. */
  moveMs: number;
}

/**
 * What a move did: sessions moved, ended meanwhile (gone), lost in the move (failed), left on the
 * old workers; its duration, and the longest one session was held (release to adopted), ms.
 */
export interface MoveResult {
  moved: number;
  gone: number;
  failed: number;
  left: number;
  ms: number;
  maxSessionMs: number;
}

/** Moves the old workers' sessions to the new ones (see the top of this file). */
export async function moveSessions(host: MoveHost, limits: MoveLimits): Promise<MoveResult> {
  const start = host.now();
  const deadline = start + limits.moveMs;
  const r: MoveResult = { moved: 0, gone: 0, failed: 0, left: 0, ms: 0, maxSessionMs: 0 };
  const tried = new Set<string>();
  const one = async (s: MovingSession): Promise<void> => {
    host.moving(s, true);
    const t0 = host.now();
    try {
      const rel = await host.release(s);
      if (rel.bytes === null) {
        // Ended meanwhile (its device closed it, or replaced it): nothing to move.
        if (rel.code === 'HF_ERR_UNKNOWN_SESSION') r.gone++;
        else {
          r.failed++;
          host.log.warn('reload: session not released; it ends with its old worker and the device resumes', { session: s.sid.slice(0, 8), device: s.device, code: rel.code, reason: rel.reason });
        }
        return;
      }
      const to = host.place(s.device);
      const ad = to < 0 ? { sid: null, code: 'HF_ERR_BUSY', reason: 'no new worker is ready' } : await host.adopt(to, rel.bytes);
      if (ad.sid === null) {
        r.failed++;
        host.log.warn('reload: session lost in the move; its device resumes', { session: s.sid.slice(0, 8), device: s.device, slot: to, code: ad.code, reason: ad.reason });
        return;
      }
      r.moved++;
      host.log.debug('reload: session moved', { session: s.sid.slice(0, 8), device: s.device, from: s.slot, to });
    } finally {
      r.maxSessionMs = Math.max(r.maxSessionMs, Math.round(host.now() - t0));
      host.moving(s, false);
    }
  };
  // Rounds: sessions that opened on an old worker while the first round ran are moved by the next.
  for (let round = 0; round < 1000 && host.now() < deadline; round++) {
    const todo = host.remaining().filter((s) => !tried.has(s.sid));
    if (todo.length === 0) break;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < todo.length && host.now() < deadline) {
        const s = todo[next++];
        tried.add(s.sid);
        await one(s);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limits.moveConcurrency, todo.length) }, lane));
  }
  r.left = host.remaining().length;
  r.ms = Math.round(host.now() - start);
  return r;
}
