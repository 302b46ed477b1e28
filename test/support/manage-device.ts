/**
 * A board for gateway-side tests: the sim target's Management with two programs (/bin/count,
 * /bin/sleep ARG ms) and a files directory, its journal in memory, served on a mux by the device's own
 * management server (targets/host/device/manage-server.ts), counting what ran.
 */
import { Executor } from '../../firmware/manage/executor';
import { loopbackPair } from '../../targets/host/app/loopback';
import { Mux } from '../../targets/host/app/mux';
import type { ManagedSession } from '../../targets/host/gateway/manage/service';
import { type ManageServer, serveManagement } from '../../targets/host/device/manage-server';
import { silentLog } from '../../targets/node/log';
import { SimClock } from '../../targets/sim/clock';
import { SimGpio } from '../../targets/sim/gpio';
import { SimManagement } from '../../targets/sim/manage';
import { MemoryStorage } from '../../targets/sim/storage';
import { SimSystem } from '../../targets/sim/system';

export interface TestBoard {
  mgmt: SimManagement;
  storage: MemoryStorage;
  /** Command ids each time one started running (a repeat here is a command run twice). */
  started: string[];
  /** The device process's executor (made by the first serveBoard). */
  executor: Executor | null;
}

export function testBoard(): TestBoard {
  const clock = new SimClock();
  const mgmt = new SimManagement({
    system: new SimSystem(clock),
    gpio: new SimGpio(),
    config: { manage: { exec: ['/bin/count', '/bin/sleep'], files: ['/srv'] } },
    dirs: ['/srv'],
    programs: {
      '/bin/count': () => ({ stdout: 'counted\n' }),
      '/bin/sleep': (argv) => ({ durationMs: Number(argv[1]) }),
    },
  });
  // The sim's programs answer at once; /bin/sleep here takes its time for real (capped by the timeout).
  const run = mgmt.run.bind(mgmt);
  mgmt.run = async (req) => {
    const r = await run(req);
    if (req.argv[0] === '/bin/sleep') await new Promise((res) => setTimeout(res, Math.min(Number(req.argv[1]), req.timeoutMs)));
    return r;
  };
  return { mgmt, storage: new MemoryStorage(), started: [], executor: null };
}

/**
 * Serves `board` on `mux` (a session's mux). The board's device process keeps its Executor from one
 * session to the next; `restarted` starts a new one over the same journal, like the process starting
 * again (what it was running is then answered HF_ERR_INTERRUPTED).
 */
export function serveBoard(mux: Mux, board: TestBoard, opts: { restarted?: boolean } = {}): ManageServer {
  if (board.executor === null || opts.restarted === true) board.executor = new Executor(board.mgmt, board.storage);
  return serveManagement(mux, board.executor, { log: silentLog, onStarted: (id) => board.started.push(id) });
}

/** A board online: a loopback session, a mux on each end, the board serving management on the device's. */
export interface OnlineBoard {
  /** Ends the session (the device goes offline). */
  close(): void;
}

/** Brings `board` online as device `id` of `target` (a ManageService or a started Management: anything with `attach`). */
export async function connectBoard(
  target: { attach(session: ManagedSession, mux: Mux): void },
  id: string,
  board: TestBoard,
  opts: { transport?: string; restarted?: boolean } = {},
): Promise<OnlineBoard> {
  const pair = loopbackPair({ deviceId: id });
  const gw = await pair.gateway;
  const gmux = new Mux(gw, { role: 'gateway' });
  const dmux = new Mux(pair.device, { role: 'device' });
  gmux.on('error', () => {});
  dmux.on('error', () => {});
  serveBoard(dmux, board, { restarted: opts.restarted });
  target.attach({ deviceId: id, sessionId: `s-${id}-${Date.now().toString(36)}`, transport: opts.transport ?? 'tcp', once: (e, f) => gw.once(e, f) }, gmux);
  return {
    close() {
      gmux.destroy();
      dmux.destroy();
      gw.destroy();
      pair.device.destroy();
      pair.stop();
    },
  };
}
