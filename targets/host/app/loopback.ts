/**
 * A device and a gateway link joined inside one process, on the real clock: bundles cross by
 * `setImmediate` instead of a socket. Gives a connected pair of Channels for tests of what sits on
 * top of a channel (streams, port forwarding) and for embedding; the links, rings and acks are the
 * real ones.
 */
import { randomFillSync } from 'node:crypto';
import { Acceptor } from '../../../firmware/acceptor';
import { ClientLink } from '../../../firmware/client-link';
import { errorBundle } from '../../../firmware/error-bundle';
import { isHfError } from '../../../firmware/errors';
import type { LinkOptions } from '../../../firmware/options';
import { DeadlineTimer } from '../../../firmware/deadline-timer';
import { hostClock } from '../../node/clock';
import { type Channel, LinkChannel, kAttach, kPort } from './channel';

export interface LoopbackPair {
  device: Channel;
  gateway: Promise<Channel>;
  /** Stops the timers (after both channels closed, or to abandon the pair). */
  stop(): void;
}

export function loopbackPair(opts: { client?: LinkOptions; server?: LinkOptions; deviceId?: string } = {}): LoopbackPair {
  const now = (): number => hostClock.now();
  const host = { now, kick: () => arm() };
  let resolveGateway!: (c: Channel) => void;
  const gateway = new Promise<Channel>((r) => (resolveGateway = r));
  const rn = new Map<number, number>();
  let exchange = 0;
  const acceptor: Acceptor = new Acceptor({
    options: opts.server,
    random: (b) => randomFillSync(b),
    authenticate: () => true,
    open: (link) => {
      const ch = new LinkChannel(link.deviceId, host);
      ch[kAttach](link);
      process.nextTick(() => resolveGateway(ch));
      return {
        ...ch[kPort](),
        answer: (ex, body, len) => {
          const copy = Buffer.from(body.subarray(0, len));
          setImmediate(() => {
            client.onBundle(now(), copy);
            arm();
          });
          rn.delete(ex);
        },
        transmit: () => {},
      };
    },
  });
  const device = new LinkChannel(opts.deviceId ?? 'loopback', host);
  const client: ClientLink = new ClientLink(
    { id: opts.deviceId ?? 'loopback', random: (b) => randomFillSync(b), helloCounter: 1, options: opts.client },
    {
      ...device[kPort](),
      transmit: (body, len, n) => {
        const copy = Buffer.from(body.subarray(0, len));
        setImmediate(() => {
          const ex = ++exchange;
          rn.set(ex, n);
          try {
            acceptor.onRequest(now(), ex, copy);
          } catch (e) {
            if (!isHfError(e)) throw e;
            const err = errorBundle(n, e);
            setImmediate(() => client.onBundle(now(), err));
          }
          arm();
        });
      },
    },
  );
  device[kAttach](client);
  const timer = new DeadlineTimer(
    hostClock,
    () => Math.min(client.nextDeadline(), acceptor.nextDeadline()),
    (n) => {
      if (client.nextDeadline() <= n) client.onTimer(n);
      acceptor.onTimer(n);
    },
    { keepEarlier: false },
  );
  function arm(): void {
    timer.arm();
  }
  client.start(now());
  arm();
  return {
    device,
    gateway,
    stop: () => timer.stop(),
  };
}
