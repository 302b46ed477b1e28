/**
 * An in-process gateway for the fuzzer: a real Gateway (HTTP on loopback, for the live-session
 * check), whose inputs are handed straight to its front entry (`FrontHost.request` and `.frame`, what
 * the HTTP and TCP fronts call), so one input costs microseconds, not a round trip. The devices it
 * knows are the fuzzer's (generators.ts `FuzzDevice`) plus one, `fuzz-check`, whose session
 * `checkSession` opens over real HTTP to prove the gateway still serves.
 */
import { Sealer, sessionKey } from '../../firmware/auth';
import type { ServerLink } from '../../firmware/server-link';
import type { Prng } from '../../targets/sim/prng';
import { nodeCrypto } from '../../targets/node/crypto';
import { connect } from '../../targets/host/device/device';
import type { FrontHost } from '../../targets/host/gateway/front';
import { Refusal } from '../../targets/host/gateway/front';
import { Gateway } from '../../targets/host/gateway/gateway';
import { type FuzzDevice, type FuzzSession, genHello } from './generators';

const CHECK_ID = 'fuzz-check';
const CHECK_KEY = 'fuzz-check-key';
const utf8 = new TextEncoder();

export class GatewayHarness {
  readonly gw: Gateway;
  readonly host: FrontHost;
  readonly devices: FuzzDevice[];
  private ex = 0;
  private lastCheck = 0;
  /** Messages the fuzzed sessions delivered to the application (all dropped). */
  delivered = 0;

  private constructor(gw: Gateway, devices: FuzzDevice[]) {
    this.gw = gw;
    this.devices = devices;
    // The front entry the HTTP and TCP fronts use (private to the gateway: reached here on purpose).
    this.host = (gw as unknown as { frontHost(): FrontHost }).frontHost();
    gw.on('session', (ch) => {
      if (ch.deviceId === CHECK_ID) ch.on('message', (m) => ch.send(m));
      else ch.on('message', () => this.delivered++);
    });
  }

  static async start(deviceCount = 4): Promise<GatewayHarness> {
    const devices: FuzzDevice[] = [];
    const keys: Record<string, string> = { [CHECK_ID]: CHECK_KEY };
    for (let i = 0; i < deviceCount; i++) {
      const key = `fuzz-key-${i}`;
      keys[`fuzz-${i}`] = key;
      devices.push({ id: `fuzz-${i}`, key: utf8.encode(key), n: 0, session: null });
    }
    const gw = await Gateway.start({ http: '127.0.0.1:0', devices: keys });
    return new GatewayHarness(gw, devices);
  }

  /** Hands `body` to the gateway as an HTTP request (conn 0) or a frame of direct connection `conn`. */
  feed(body: Uint8Array, conn: number): ServerLink | Refusal {
    if (conn === 0) return this.host.request(++this.ex, body, '127.0.0.1');
    return this.host.frame(conn, body, '127.0.0.2');
  }

  /**
   * The live session of `d`, opened with a valid hello if it has none. Throws when the gateway
   * refuses that hello (a valid hello must always open a session).
   */
  session(p: Prng, d: FuzzDevice): FuzzSession {
    const s = d.session;
    if (s?.live()) return s;
    const seq = p.chance(0.3) ? 0xffffffff - p.int(8) : p.u32();
    const off = p.chance(0.3) ? 0xffffffff - p.int(3000) : p.u32();
    const { body, nonce } = genHello(p, nodeCrypto, d, seq, off);
    const r = this.feed(body, 0);
    if (r instanceof Refusal) throw new Error(`the gateway refused a valid hello of ${d.id}: ${r.error.code}: ${r.error.message}`);
    const sid = r.sid.slice();
    const link = r;
    const s2: FuzzSession = { sid, sealer: new Sealer(nodeCrypto, sessionKey(nodeCrypto, d.key, sid, nonce)), rn: 1, seq, off, ack: link.ep.out.tail, live: () => !link.isFinished };
    d.session = s2;
    return s2;
  }

  /**
   * Opens a session of `fuzz-check` over real HTTP, sends one message and waits for its echo
   * (within `timeoutMs`); resolves with the round trip in ms, rejects when the gateway does not serve.
   */
  async checkSession(timeoutMs = 10_000): Promise<number> {
    // A device's hello counter counts tenths of a second of wall time: two sessions of one device
    // within 100 ms would share it (the second is refused as a replay), so checks keep apart.
    const since = Date.now() - this.lastCheck;
    if (since < 250) await new Promise((r) => setTimeout(r, 250 - since));
    this.lastCheck = Date.now();
    const t0 = performance.now();
    const ch = connect({ gateway: this.gw.http?.url ?? '', id: CHECK_ID, key: CHECK_KEY });
    const text = `check ${Math.random()}`;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no echo from the gateway within ${timeoutMs} ms`)), timeoutMs);
        ch.on('message', (m) => {
          if (m.toString() === text) {
            clearTimeout(timer);
            resolve();
          }
        });
        ch.on('close', (err) => {
          clearTimeout(timer);
          reject(new Error(`check session closed: ${err ? `${err.code}: ${err.message}` : 'cleanly'}`));
        });
        ch.send(Buffer.from(text));
      });
    } finally {
      ch.destroy();
    }
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    await this.gw.close();
  }
}
