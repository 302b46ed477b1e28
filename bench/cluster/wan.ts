/**
 * A wide-area link between a gateway node and NATS, played on loopback for bench:cluster's locality
 * rows: a TCP relay on 127.0.0.1 that passes every chunk on to the NATS server after `delayMs` each
 * way (order kept: Node's timers of one duration fire in the order they were set). Nodes at other
 * sites reach NATS, and each other through it, over such a link; it has no bandwidth cap and no loss.
 * Every node gets a relay of its own with the same delay, so the session store's round trip costs all
 * placements the same and only the pipes between nodes tell them apart.
 */
import * as net from 'node:net';
import { parseTarget } from '../../firmware/mux-frame';

export class WanRelay {
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
    private readonly delayMs: number,
  ) {
    server.on('connection', (c) => this.pass(c));
  }

  /** A relay to `target` (HOST:PORT) adding `delayMs` each way. */
  static async start(target: string, delayMs: number): Promise<WanRelay> {
    const r = new WanRelay(net.createServer(), parseTarget(target), delayMs);
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  private pass(c: net.Socket): void {
    const u = net.connect(this.target);
    for (const s of [c, u]) {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => this.sockets.delete(s));
    }
    this.late(c, u);
    this.late(u, c);
  }

  /** What `from` reads reaches `to` `delayMs` later; its end too; a close closes both. */
  private late(from: net.Socket, to: net.Socket): void {
    from.on('data', (d: Buffer) => {
      setTimeout(() => {
        if (!to.destroyed) to.write(d);
      }, this.delayMs);
    });
    from.on('end', () => setTimeout(() => to.end(), this.delayMs));
    from.on('close', () => setTimeout(() => to.destroy(), this.delayMs));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}
