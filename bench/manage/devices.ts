/**
 * The devices process of `npm run bench:manage`: real device sessions, each opened by the host
 * device driver's `connect()` (targets/host/device/device.ts) with its own id and key, over direct
 * TCP or plain HTTP, a Mux on it and the device's management server (serveManagement) answering
 * through an Executor over a simulated board (targets/sim/manage.ts: SimManagement, its journal in
 * memory). Every session speaks the real protocol to the gateway process; only the board is
 * simulated. Sessions open with bounded concurrency and within a deadline. Driven over IPC.
 */
import type { DeviceChannel } from '../../targets/host/device/device';
import { connect } from '../../targets/host/device/device';
import { Mux } from '../../targets/host/app/mux';
import { type ManageServer, serveManagement } from '../../targets/host/device/manage-server';
import { Executor } from '../../firmware/manage/executor';
import { silentLog } from '../../targets/node/log';
import { SimClock } from '../../targets/sim/clock';
import { SimGpio } from '../../targets/sim/gpio';
import { SimManagement } from '../../targets/sim/manage';
import { MemoryStorage } from '../../targets/sim/storage';
import { SimSystem } from '../../targets/sim/system';
import { errorText, serve } from '../ipc';
import { nowMs } from '../flow';
import { keyOf, smallLink } from './link';

interface Board {
  ch: DeviceChannel;
  mux: Mux;
  server: ManageServer;
  open: boolean;
}

const boards = new Map<string, Board>();
const clock = new SimClock();

interface OpenArgs {
  ids: string[];
  transport: 'tcp' | 'http';
  gateway: string;
  tcp: string;
  /** Sessions opening at once. */
  concurrency: number;
  /** Give up on what has not opened by then, ms from the call. */
  deadlineMs: number;
  /** Link ring size, KiB (smallLink). */
  linkKib: number;
}

function board(id: string, a: OpenArgs, opened: () => void): Board {
  const mgmt = new SimManagement({ system: new SimSystem(clock), gpio: new SimGpio(), config: { manage: { exec: [], files: [] } } });
  const executor = new Executor(mgmt, new MemoryStorage());
  const ch = connect({ gateway: a.gateway, tcp: a.transport === 'tcp' ? a.tcp : null, id, key: keyOf(id), link: smallLink(a.linkKib), proxy: null, log: silentLog });
  const mux = new Mux(ch, { role: 'device' });
  mux.on('error', () => {});
  ch.on('error', () => {});
  const server = serveManagement(mux, executor, { log: silentLog });
  const b: Board = { ch, mux, server, open: false };
  ch.once('open', () => {
    b.open = true;
    opened();
  });
  return b;
}

/** Opens `ids` (see OpenArgs); resolves with how many opened and how long it took. */
function open(a: OpenArgs): Promise<{ opened: number; asked: number; ms: number; timedOut: boolean }> {
  const t0 = nowMs();
  let next = 0;
  let inFlight = 0;
  let opened = 0;
  return new Promise((resolve) => {
    let done = false;
    const finish = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(limit);
      resolve({ opened, asked: a.ids.length, ms: nowMs() - t0, timedOut });
    };
    const limit = setTimeout(() => finish(true), a.deadlineMs);
    const pump = (): void => {
      while (!done && inFlight < a.concurrency && next < a.ids.length) {
        const id = a.ids[next++];
        inFlight++;
        try {
          boards.set(
            id,
            board(id, a, () => {
              inFlight--;
              opened++;
              if (opened === a.ids.length) finish(false);
              else setImmediate(pump);
            }),
          );
        } catch (e) {
          process.stderr.write(`device ${id}: ${errorText(e)}\n`);
          inFlight--;
        }
      }
    };
    pump();
  });
}

serve(
  {
    open: (a: OpenArgs) => open(a),
    count: () => {
      let open = 0;
      for (const b of boards.values()) if (b.open && !b.ch.closed) open++;
      return { boards: boards.size, open, rss: process.memoryUsage().rss };
    },
    stop: () => {
      for (const b of boards.values()) {
        b.server.close();
        b.mux.destroy();
        b.ch.destroy();
      }
      boards.clear();
      setTimeout(() => process.exit(0), 50);
      return {};
    },
  },
  1800,
);
