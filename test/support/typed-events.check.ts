/**
 * Compile-time checks of the typed events (never run: `npm test` type-checks it with everything
 * else). Each `@ts-expect-error` line must fail to compile; if a change makes it compile (an event
 * typed as `any` again, a misspelt event accepted), the type-check fails on the unused directive.
 */
import type { Buffer } from 'node:buffer';
import type { HfError } from '../../firmware/errors';
import type { DeviceChannel } from '../../targets/host/device/device';
import type { Gateway, GatewayChannel } from '../../targets/host/gateway/gateway';

export function gatewayEvents(gw: Gateway): void {
  gw.on('session', (ch) => {
    const c: GatewayChannel = ch;
    const id: string = c.sessionId;
    const via: 'http' | 'tcp' = c.transport;
    c.on('message', (m) => {
      const b: Buffer = m;
      c.send(b);
    });
    c.on('close', (err) => {
      const e: HfError | undefined = err;
      void e;
    });
    void id;
    void via;
  });
  // @ts-expect-error: no such event
  gw.on('sesion', () => {});
  // @ts-expect-error: a session's listener gets a channel, not a string
  gw.on('session', (ch: string) => ch);
}

export function deviceEvents(ch: DeviceChannel): void {
  ch.on('transport', (name, reason) => {
    const n: 'tcp' | 'http' = name;
    const r: string = reason;
    void n;
    void r;
  });
  ch.on('message', (m) => m.readUInt8(0));
  // An event without arguments takes any function (Promise resolvers as people write them).
  void new Promise((resolve) => ch.once('open', resolve));
  // @ts-expect-error: no such event
  ch.on('mesage', () => {});
  // @ts-expect-error: messages are Buffers
  ch.on('message', (m: number) => m);
  // @ts-expect-error: 'transport' carries a name, not a number
  ch.on('transport', (name: number) => name);
  const state: 'tcp' | 'http' | 'none' = ch.transport;
  const sid: string | null = ch.sessionId;
  void state;
  void sid;
}
