/**
 * A round-robin TCP balancer on 127.0.0.1, as one in front of a cluster: each new connection goes to
 * the next backend in turn and is piped both ways byte for byte; a backend that refuses the
 * connection is skipped for that connection (the next one is tried). It knows nothing of HTTP.
 */
import * as net from 'node:net';

export class Balancer {
  private readonly server: net.Server;
  private next = 0;
  private readonly sockets = new Set<net.Socket>();
  /** Connections passed to each backend (by its index). */
  readonly passed: number[];

  private constructor(readonly backends: { host: string; port: number }[]) {
    this.passed = backends.map(() => 0);
    this.server = net.createServer((c) => this.pass(c, 0));
  }

  static async start(backends: string[]): Promise<Balancer> {
    const b = new Balancer(
      backends.map((a) => {
        const i = a.lastIndexOf(':');
        return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
      }),
    );
    await new Promise<void>((resolve) => b.server.listen(0, '127.0.0.1', resolve));
    return b;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  private pass(client: net.Socket, tried: number): void {
    const i = this.next;
    this.next = (this.next + 1) % this.backends.length;
    const up = net.connect(this.backends[i]);
    let connected = false;
    this.sockets.add(client);
    this.sockets.add(up);
    client.pause();
    up.once('connect', () => {
      connected = true;
      this.passed[i]++;
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
    up.on('error', () => up.destroy());
    up.on('close', () => {
      this.sockets.delete(up);
      if (connected) client.end();
      else if (tried + 1 < this.backends.length && !client.destroyed) this.pass(client, tried + 1);
      else client.destroy();
    });
    if (tried === 0) {
      client.on('error', () => client.destroy());
      client.on('close', () => this.sockets.delete(client));
    }
    client.once('close', () => up.destroy());
  }

  /** Cuts every connection passed so far (both sides destroyed); new ones are passed as before. */
  cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
