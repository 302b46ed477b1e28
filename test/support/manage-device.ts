/**
 * A device end of the management channel for gateway-side tests: a mux 'stream' handler that accepts
 * MANAGE_TARGET and answers each command through a real Executor (at most once, journaled) over the
 * sim target's Management, counting what ran.
 */
import { decodeCommand, encodeReply, type Reply } from '../../firmware/manage/command';
import { Executor } from '../../firmware/manage/executor';
import { ItemReader, itemHeader, MANAGE_TARGET } from '../../firmware/manage/items';
import type { Mux, MuxStream } from '../../targets/host/app/mux';
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
  return { mgmt, storage: new MemoryStorage(), started: [] };
}

/** Serves `board` on `mux` (a fresh Executor over its storage: like a device process starting). */
export function serveBoard(mux: Mux, board: TestBoard, hold: { ms: number } = { ms: 0 }): Executor {
  const ex = new Executor(board.mgmt, board.storage);
  mux.on('stream', (s: MuxStream, target: string) => {
    if (target !== MANAGE_TARGET) return s.refuse('HF_ERR_FORBIDDEN', 'no');
    s.accept();
    const r = new ItemReader();
    const send = (rep: Reply): void => {
      if (s.destroyed) return;
      const b = encodeReply(rep);
      s.write(itemHeader(b.length));
      s.write(b);
    };
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      for (const item of r.push(chunk)) {
        const cmd = decodeCommand(item);
        void ex
          .execute(cmd, (id) => {
            board.started.push(id);
            send({ id, accepted: true });
          })
          .then(async (a) => {
            if (hold.ms > 0) await new Promise((res) => setTimeout(res, hold.ms));
            send(a);
          });
      }
    });
  });
  return ex;
}
