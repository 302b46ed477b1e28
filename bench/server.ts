/**
 * The server process of a run: starts one system's server side on 127.0.0.1 and does what the runner
 * asks (bench/ipc.ts). The newest connection (or session) is the run's primary one: it counts what
 * the client sends, echoes pings and sends on request (a session-based system keeps one per client id
 * across reconnections; a client that had to connect again gets its new connection used).
 *
 *   start {system, ids}          -> {ports}
 *   primary {timeoutMs}          waits for the primary connection
 *   window {bytes}               bytes in flight at most (windowed systems, see adapter.ts)
 *   arm {n}, wait {timeoutMs, quietMs?} -> CountResult   count DATA 0..n-1 (armed before the sender starts)
 *   pump {n, size, timeoutMs, burst?, everyMs?} -> PumpResult   send DATA 0..n-1 (paced with burst)
 *   sessions {atLeast, timeoutMs} -> {sessions}       waits until that many are live (or the time is up)
 *   memory                       -> process.memoryUsage() after a full GC
 *   stop
 */
import { type Server, within } from './adapter';
import { adapterNamed } from './adapters/index';
import { Side, sideHandlers } from './flow';
import { serve } from './ipc';

const side = new Side(true);
let server: Server | null = null;
let primaryWaiter: (() => void) | null = null;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function live(): Server {
  if (server === null) throw new Error('not started');
  return server;
}

async function fullGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(20);
  }
}

serve(
  {
    async start(a: { system: string; ids: string[] }) {
      const adapter = adapterNamed(a.system);
      server = await adapter.listen({ ids: a.ids });
      server.onConnection((c) => {
        side.attach(c);
        primaryWaiter?.();
      });
      return { ports: server.ports };
    },
    async primary(a: { timeoutMs: number }) {
      if (side.conn === null) await within(new Promise<void>((r) => (primaryWaiter = r)), a.timeoutMs, 'primary connection');
      return true;
    },
    ...sideHandlers(side),
    async sessions(a: { atLeast: number; timeoutMs: number }) {
      const end = Date.now() + a.timeoutMs;
      while (live().size < a.atLeast && Date.now() < end) await sleep(20);
      return { sessions: live().size };
    },
    async memory() {
      await fullGc();
      return process.memoryUsage();
    },
    async stop() {
      setTimeout(() => process.exit(0), 2000).unref();
      await within(server?.close() ?? Promise.resolve(), 1500, 'server close').catch(() => {});
      setImmediate(() => process.exit(0));
      return true;
    },
  },
  Number(process.env.BENCH_CHILD_MAX_S ?? 900),
);
