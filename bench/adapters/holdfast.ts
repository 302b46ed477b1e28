/**
 * holdfast, as users run it: `Gateway.start` with a devices map (authenticated sessions) and the
 * device's `connect()`, through the channel API (send / 'message' / 'drain'). Default link options on
 * both sides. `holdfast-http` is the device with `tcp: null` (HTTP long-poll only); `holdfast-tcp`
 * gives it the gateway's direct TCP port (the ladder tries TCP first and falls back to HTTP while TCP
 * is down, so the gateway listens on both). `holdfast-http-tls` and `holdfast-tcp-tls` are the same
 * with the gateway's `tls: {cert, key}` (HTTPS, and TLS on the TCP port) and the device on an https://
 * URL trusting the certificate by `tls: {ca}` (its direct TCP then speaks TLS too), bench/tls.ts.
 */
import { connect, type DeviceChannel } from '../../targets/host/device/device';
import { Gateway, type GatewayChannel } from '../../targets/host/gateway/gateway';
import type { Channel } from '../../targets/host/app/channel';
import type { LinkOptions } from '../../firmware/options';
import { type Adapter, BaseConn, type ConnectOptions, type ListenOptions, type Ports, type Server, keyOf, within } from '../adapter';
import { TLS_SETTINGS, benchTls } from '../tls';

class ChannelConn extends BaseConn {
  constructor(private readonly ch: Channel) {
    super();
    ch.on('message', (m: Buffer) => this.deliver(m));
    ch.on('drain', () => this.window.wake());
    ch.on('close', () => this.ended());
    ch.on('error', () => {});
    // The peer ended its direction: end ours too, so the session closes cleanly.
    ch.on('end', () => ch.end());
  }

  send(msg: Buffer): boolean {
    if (this.ch.closed) return false;
    return this.ch.send(msg);
  }

  close(timeoutMs: number): Promise<void> {
    return this.closeWithin(
      timeoutMs,
      'holdfast close',
      () => this.ch.end(),
      () => this.ch.destroy(),
    );
  }
}

/**
 * Wider windows than the defaults, the same on both ends (`link` of Gateway.start and connect): 4096
 * messages / 4 MiB in flight each way, up to 1024 messages / 1 MiB per bundle. The extra
 * `holdfast-*-wide` rows show how much of holdfast's throughput is its default window (the gateway
 * keeps 1024 messages / 128 KiB per session by default, to stay small per session).
 */
export const WIDE_LINK: LinkOptions = { outSlots: 4096, outBytes: 1 << 22, inSlots: 4096, inBytes: 1 << 22, maxMessages: 1024, maxBundleBytes: 1 << 20 };

function holdfast(name: string, tcp: boolean, link?: LinkOptions, secure = false): Adapter {
  const opts = link === undefined ? 'default link options' : 'link: WIDE_LINK (4096 msgs / 4 MiB windows, 1024 msgs / 1 MiB bundles) on both ends';
  const t = secure
    ? { gw: ', tls: {cert, key}', gateway: 'gateway: https://...', dev: ', tls: {ca}', url: 'https', note: `; ${TLS_SETTINGS}` }
    : { gw: '', gateway: 'gateway', dev: '', url: 'http', note: '' };
  return {
    name,
    settings: tcp
      ? `Gateway.start({http, tcp, devices${t.gw}}) + connect({${t.gateway}, tcp, id, key${t.dev}}); ${opts}; ladder: TCP, HTTP while TCP is down${t.note}`
      : `Gateway.start({http, devices${t.gw}}) + connect({${t.gateway}, tcp: null, id, key${t.dev}}); ${opts}${t.note}`,
    reconnects: true,
    windowed: false,
    plain: secure ? (tcp ? 'holdfast-tcp' : 'holdfast-http') : undefined,
    async listen(opts: ListenOptions): Promise<Server> {
      const devices: Record<string, string> = {};
      for (const id of opts.ids) devices[id] = keyOf(id);
      const tls = secure ? { cert: benchTls().cert, key: benchTls().key } : null;
      const gw = await Gateway.start({ http: '127.0.0.1:0', tcp: tcp ? '127.0.0.1:0' : null, devices, maxSessions: opts.ids.length + 16, link, tls });
      let onConn: (c: ChannelConn) => void = () => {};
      gw.on('session', (ch: GatewayChannel) => onConn(new ChannelConn(ch)));
      const port = (a: string): number => Number(a.slice(a.lastIndexOf(':') + 1));
      const ports: Ports = { http: port(gw.http!.address) };
      if (gw.tcp !== null) ports.tcp = port(gw.tcp.address);
      return {
        ports,
        onConnection: (fn) => (onConn = fn),
        get size() {
          return gw.sessionCount;
        },
        close: () => gw.close(),
      };
    },
    async connect(ports: Ports, opts: ConnectOptions): Promise<ChannelConn> {
      const ch: DeviceChannel = connect({
        gateway: `${t.url}://127.0.0.1:${ports.http}`,
        tcp: tcp ? `127.0.0.1:${ports.tcp}` : null,
        id: opts.id,
        key: keyOf(opts.id),
        proxy: null,
        // Idle sessions (the memory workload measures the gateway) keep the device's defaults: a
        // thousand devices with 4 MiB rings would only slow the client process down.
        link: opts.idle === true ? undefined : link,
        tls: secure ? { ca: benchTls().ca } : undefined,
      });
      const conn = new ChannelConn(ch);
      const open = new Promise<void>((resolve, reject) => {
        ch.once('open', () => resolve());
        ch.once('close', (e?: Error) => reject(e ?? new Error('closed before open')));
      });
      try {
        await within(open, opts.timeoutMs, `${name} connect`);
        if (tcp && ch.transport !== 'tcp') throw new Error(`session opened on ${ch.transport}, not tcp`);
      } catch (e) {
        ch.destroy();
        throw e;
      }
      return conn;
    },
  };
}

export const holdfastHttp = holdfast('holdfast-http', false);
export const holdfastTcp = holdfast('holdfast-tcp', true);
export const holdfastHttpWide = holdfast('holdfast-http-wide', false, WIDE_LINK);
export const holdfastTcpWide = holdfast('holdfast-tcp-wide', true, WIDE_LINK);
export const holdfastHttpTls = holdfast('holdfast-http-tls', false, undefined, true);
export const holdfastTcpTls = holdfast('holdfast-tcp-tls', true, undefined, true);
