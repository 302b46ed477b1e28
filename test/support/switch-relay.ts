/**
 * An HTTP relay on 127.0.0.1 that passes each request to the current target (a load balancer in front
 * of a pair, switched by hand): a request whose target fails is reset, as the target's own socket
 * would be, so the device sends it again.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export class SwitchRelay {
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true });
  target: string;
  private readonly inFlight = new Set<http.ClientRequest>();
  /** Requests passed on, by status of the answer ('reset' for none). */
  readonly answers = new Map<string, number>();

  private constructor(target: string) {
    this.target = target;
    this.server = http.createServer((req, res) => this.pass(req, res));
  }

  static async start(target: string): Promise<SwitchRelay> {
    const r = new SwitchRelay(target);
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private count(k: string): void {
    this.answers.set(k, (this.answers.get(k) ?? 0) + 1);
  }

  private pass(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', this.target);
      const up = http.request(u, { method: req.method, headers: { ...req.headers, host: u.host }, agent: this.agent }, (ur) => {
        this.count(String(ur.statusCode));
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
        ur.on('error', () => res.destroy());
      });
      up.on('error', () => {
        this.count('reset');
        res.destroy();
      });
      this.inFlight.add(up);
      up.on('close', () => this.inFlight.delete(up));
      res.on('close', () => up.destroy());
      up.end(Buffer.concat(chunks));
    });
  }

  /** Sends everything from now on to `target`; what is in flight to the old one is reset (a dead target). */
  switchTo(target: string): void {
    this.target = target;
    for (const up of this.inFlight) up.destroy();
    this.agent.destroy();
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
