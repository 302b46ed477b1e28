/**
 * What the cluster's scenario tests share: gateway nodes in this process that echo every message
 * ("echo:" + text), devices streaming numbered texts ("d<d>-<i>") through a URL, and the check that
 * every echo came once and in order with no session ended.
 */
import * as assert from 'uvu/assert';
import { connect } from '../../targets/host/device/device';
import { Gateway, type GatewayChannel, type GatewayOptions } from '../../targets/host/gateway/gateway';
import { sleep } from './within';

export async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

/** A node that echoes every message; `onSession` sees each session it serves. */
export async function echoNode(cluster: NonNullable<GatewayOptions['cluster']>, more: Partial<GatewayOptions> = {}, onSession?: (ch: GatewayChannel) => void): Promise<Gateway> {
  const gw = await Gateway.start({ http: '127.0.0.1:0', devices: null, ackAfter: 'standby', ...more, cluster });
  gw.on('session', (ch: GatewayChannel) => {
    onSession?.(ch);
    ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`)));
  });
  return gw;
}

/** The end of a scenario: the devices go first (so no node sees them fail), then the balancer, then the nodes. */
export async function stopAll(devs: Devices | null, lb: { close(): Promise<void> } | null, gws: Gateway[]): Promise<void> {
  devs?.destroy();
  await sleep(50);
  await lb?.close();
  for (const g of gws) await g.close();
}

/** Waits until every node sees `n` live nodes (and says so if they do not). */
export async function allLive(gws: Gateway[], n: number, ms = 5000): Promise<void> {
  await waitUntil(ms, () => gws.every((g) => g.clusterStatus()?.live.length === n));
  assert.ok(
    gws.every((g) => g.clusterStatus()?.live.length === n),
    `every node sees ${n}`,
  );
}

export interface Devices {
  /** What each device got, in order. */
  got: string[][];
  /** Sessions that ended: "id code message". */
  closed: string[];
  /** The gateway URL each device moved to last ('' while it has not moved). */
  gateways: string[];
  /** Sends "d<d>-<i>" from every device for i up to `upto` (exclusive), `gapMs` apart. */
  sendUpTo(upto: number): Promise<void>;
  /** Waits until every device got `per` echoes (at most `ms`). */
  echoed(per: number, ms: number): Promise<void>;
  /** Asserts every device got every echo below `per` once, in order, and no session ended. */
  check(per: number): void;
  destroy(): void;
}

/** The keys of `n` devices `<prefix><d>`, as a gateway's `devices` option takes them. */
export function deviceKeys(n: number, prefix: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (let d = 0; d < n; d++) keys[`${prefix}${d}`] = `key-${prefix}${d}-0123456789`;
  return keys;
}

/**
 * `n` devices (ids `<prefix><d>`) on `url` (and direct TCP at `tcp`, tried first), each keeping what
 * it gets; with `keyed`, each proves the key deviceKeys gives it (else no key: a session any error ends).
 */
export function echoDevices(n: number, url: string, prefix: string, o: { gapMs?: number; labels?: (d: number) => Record<string, string>; keyed?: boolean; tcp?: string } = {}): Devices {
  const keys = o.keyed === true ? deviceKeys(n, prefix) : null;
  const chans: ReturnType<typeof connect>[] = [];
  const got: string[][] = [];
  const closed: string[] = [];
  const gateways: string[] = [];
  for (let d = 0; d < n; d++) {
    const ch = connect({
      gateway: url,
      tcp: o.tcp,
      id: `${prefix}${d}`,
      key: keys === null ? null : keys[`${prefix}${d}`],
      labels: o.labels?.(d),
      link: { deadAfterMs: 30_000 },
      failures: { warnIntervalMs: 60_000 },
    });
    got.push([]);
    gateways.push('');
    ch.on('gateway', (to: string) => {
      gateways[d] = to;
    });
    ch.on('message', (m: Uint8Array) => got[d].push(Buffer.from(m).toString()));
    ch.on('close', (e?: { code?: string; message?: string }) => closed.push(`${prefix}${d} ${e?.code} ${e?.message}`));
    chans.push(ch);
  }
  let sent = 0;
  return {
    got,
    closed,
    gateways,
    async sendUpTo(upto) {
      for (; sent < upto; sent++) {
        for (let d = 0; d < n; d++) chans[d].send(Buffer.from(`d${d}-${sent}`));
        await sleep(o.gapMs ?? 15);
      }
    },
    echoed: (per, ms) => waitUntil(ms, () => got.every((g) => g.length >= per)),
    check(per) {
      for (let d = 0; d < n; d++)
        assert.equal(
          got[d],
          Array.from({ length: per }, (_, i) => `echo:d${d}-${i}`),
          `device ${d}: every echo once, in order`,
        );
      assert.equal(closed, [], 'no session ended');
    },
    destroy() {
      for (const ch of chans) ch.destroy();
    },
  };
}
