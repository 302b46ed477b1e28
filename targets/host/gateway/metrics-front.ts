/**
 * The gateway's metrics listener: plain HTTP on an address of its own (not the devices' listener,
 * which strangers reach), serving `GET /metrics` (and HEAD) in the Prometheus text format. Every
 * other path is 404, every other method 405. The text is rendered per scrape; the link's path never
 * waits on it.
 */
import * as http from 'node:http';
import { type Address, listenOn } from '../net/address';
import { METRICS_CONTENT_TYPE } from './metrics';

/** What the application can see of the gateway's metrics listener. */
export interface MetricsListener {
  /** The scrape URL once listening, e.g. "http://127.0.0.1:9464/metrics". */
  readonly url: string;
  /** Bound "host:port" once listening. */
  readonly address: string;
}

export class MetricsFront implements MetricsListener {
  private readonly server: http.Server;
  private readonly want: Address;
  address = '';

  /** `render`: the exposition text, called once per scrape. */
  constructor(want: Address, render: () => string) {
    this.want = want;
    this.server = http.createServer((req, res) => {
      req.resume();
      const path = (req.url ?? '').split('?')[0];
      const plain = (status: number, text: string, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers }).end(text);
      };
      if (path !== '/metrics') return plain(404, `no such endpoint ${JSON.stringify(path)}; metrics are at GET /metrics\n`);
      if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, `method ${req.method} not allowed; GET /metrics\n`, { Allow: 'GET, HEAD' });
      const body = Buffer.from(render());
      res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': body.length, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
  }

  get url(): string {
    return `http://${this.address}/metrics`;
  }

  async listen(): Promise<void> {
    this.address = await listenOn(this.server, this.want, 'metrics');
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }
}
