/**
 * A session's channel on the gateway: a LinkChannel (targets/host/app/channel.ts) that also names
 * its session and what carries it. The gateway emits one per session ('session' event).
 */
import type { ServerLink } from '../../../firmware/server-link';
import { Transport } from '../../../firmware/link-base';
import { type ChannelHost, LinkChannel } from '../app/channel';

export class GatewayChannel extends LinkChannel {
  /** Session id, hex (for logs). */
  readonly sessionId: string;
  private readonly server: ServerLink;

  /** Built by the gateway for each new session; applications do not make their own. */
  constructor(server: ServerLink, host: ChannelHost) {
    super(server.deviceId, host);
    this.server = server;
    this.sessionId = Buffer.from(server.sid).toString('hex');
  }

  /** "http" or "tcp": what carries the session now. */
  get transport(): 'http' | 'tcp' {
    return this.server.transport === Transport.DIRECT ? 'tcp' : 'http';
  }
}
