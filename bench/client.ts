/**
 * The client process of a run: opens one system's client connection(s) to the ports it is given and
 * does what the runner asks (bench/ipc.ts).
 *
 *   connect {system, ports, id, timeoutMs}          the primary connection
 *   window {bytes}                                  bytes in flight at most (windowed systems)
 *   arm {n}, wait {timeoutMs, quietMs?} -> CountResult   count DATA 0..n-1 (armed before the sender starts)
 *   pump {n, size, timeoutMs, burst?, everyMs?} -> PumpResult   send DATA 0..n-1 (paced with burst)
 *   ping {n, warmup, size, timeoutMs} -> RttResult
 *   idle {k, concurrency, timeoutMs} -> {opened, failed, error}   k more connections that stay idle
 *   stop
 */
import type { Adapter, Conn, Ports } from './adapter';
import { adapterNamed } from './adapters/index';
import { Side, sideHandlers } from './flow';
import { errorText, serve } from './ipc';

const side = new Side(false);
let adapter: Adapter | null = null;
let ports: Ports = {};
const idle: Conn[] = [];

serve(
  {
    async connect(a: { system: string; ports: Ports; id: string; timeoutMs: number }) {
      adapter = adapterNamed(a.system);
      ports = a.ports;
      side.attach(await adapter.connect(ports, { id: a.id, timeoutMs: a.timeoutMs }));
      return true;
    },
    ...sideHandlers(side),
    ping: (a: { n: number; warmup: number; size: number; timeoutMs: number }) => side.ping(a.n, a.warmup, a.size, a.timeoutMs),
    async idle(a: { k: number; concurrency: number; timeoutMs: number; system?: string; ports?: Ports }) {
      if (a.system !== undefined) adapter = adapterNamed(a.system);
      if (a.ports !== undefined) ports = a.ports;
      const sys = adapter;
      if (sys === null) throw new Error('connect or name a system first');
      const end = Date.now() + a.timeoutMs;
      let next = 0;
      let failed = 0;
      let error = '';
      const worker = async (): Promise<void> => {
        while (next < a.k && Date.now() < end) {
          const i = next++;
          try {
            idle.push(await sys.connect(ports, { id: `idle-${i}`, timeoutMs: Math.max(1, end - Date.now()), idle: true }));
          } catch (e) {
            failed++;
            error ||= errorText(e);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, a.concurrency) }, worker));
      return { opened: idle.length, failed, error };
    },
    async stop() {
      setTimeout(() => process.exit(0), 2000).unref();
      // Idle connections just go with the process; the primary one closes properly.
      await side.conn?.close(1000).catch(() => {});
      setImmediate(() => process.exit(0));
      return true;
    },
  },
  Number(process.env.BENCH_CHILD_MAX_S ?? 900),
);
