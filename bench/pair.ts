/**
 * One system's server and client processes (bench/server.ts, bench/client.ts, bundled next to the
 * runner), and the proxies (tools/chaos-proxy.ts, in the runner's process) put in front of the
 * server's ports when a workload counts bytes or kills connections.
 */
import * as path from 'node:path';
import { ChaosProxy, type ChaosStats, zeroStats } from '../tools/chaos-proxy';
import type { Ports } from './adapter';
import { Child } from './ipc';

/** The client id of the measured connection (idle sessions are idle-0, idle-1, ...). */
export const MAIN_ID = 'bench-main';

/** A server and a client process for one system. */
export class Pair {
  readonly srv = new Child('server', path.join(__dirname, 'server.js'));
  readonly cli = new Child('client', path.join(__dirname, 'client.js'));
  ports: Ports = {};
  private readonly proxies: ChaosProxy[] = [];

  constructor(readonly system: string) {}

  /** Starts the server; with `killRate` (0: counting only), puts a chaos proxy before each port. */
  async start(ids: string[], proxy: { killRate: number; seed: number } | null): Promise<Ports> {
    const { ports } = await this.srv.call<{ ports: Ports }>('start', { system: this.system, ids }, 20_000);
    this.ports = ports;
    if (proxy === null) return ports;
    const via: Ports = {};
    for (const [role, port] of Object.entries(ports)) {
      const p = new ChaosProxy({ target: { port }, killRate: proxy.killRate, seed: proxy.seed + this.proxies.length, maxConnections: 5000, idleTimeoutMs: 600_000 });
      await p.listen();
      this.proxies.push(p);
      via[role] = p.port;
    }
    return via;
  }

  /** The proxies' counters, added up. */
  stats(): ChaosStats {
    const sum = zeroStats();
    for (const p of this.proxies) {
      const s = p.stats;
      sum.connections += s.connections;
      sum.requests += s.requests;
      sum.bytesUp += s.bytesUp;
      sum.bytesDown += s.bytesDown;
      sum.discarded += s.discarded;
      for (const k of Object.keys(sum.kills) as (keyof ChaosStats['kills'])[]) sum.kills[k] += s.kills[k];
    }
    return sum;
  }

  /** Connects the primary client connection (again, up to `tries` times, if the connect itself fails). */
  async connect(ports: Ports, tries = 1): Promise<void> {
    for (let i = 1; ; i++) {
      try {
        await this.cli.call('connect', { system: this.system, ports, id: MAIN_ID, timeoutMs: 10_000 }, 15_000);
        await this.srv.call('primary', { timeoutMs: 5000 }, 10_000);
        return;
      } catch (e) {
        if (i >= tries) throw e;
      }
    }
  }

  /** Sets the Window of the client and of the server (windowed systems; undefined: leave it). */
  async setWindow(client: number | undefined, server = client): Promise<void> {
    await Promise.all([client === undefined ? null : this.cli.call('window', { bytes: client }, 5000), server === undefined ? null : this.srv.call('window', { bytes: server }, 5000)]);
  }

  /** Notes for the report: exceptions the peer library threw that nobody could catch. */
  uncaughtNotes(phase: string): string[] {
    const out: string[] = [];
    for (const ch of [this.cli, this.srv]) {
      const u = ch.uncaught;
      if (u !== undefined) out.push(`${phase}: ${u.count} uncaught exception(s) in the ${ch.name} process (an application without an 'uncaughtException' handler would have crashed): ${u.first}`);
    }
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all([this.cli.stop(), this.srv.stop()]);
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}
