/**
 * Hand-driven links for state-machine unit tests: a client and an acceptor whose ports record every
 * action, and helpers to carry chosen bundles by hand at chosen times.
 */
import { Acceptor } from '../../firmware/acceptor';
import { ClientLink } from '../../firmware/client-link';
import { type HfError, isHfError } from '../../firmware/errors';
import { refusalBundle } from '../../firmware/error-bundle';
import type { LinkOptions } from '../../firmware/options';
import type { ServerLink } from '../../firmware/server-link';
import { BundleReader, type BundleView } from '../../firmware/wire';
import { Prng } from '../../targets/sim/prng';
import { nodeCrypto } from '../../targets/node/crypto';

export interface Sent {
  rn: number;
  body: Uint8Array;
}

export interface Answer {
  exchange: number;
  body: Uint8Array;
}

export class Manual {
  now = 1000;
  readonly client: ClientLink;
  readonly acceptor: Acceptor;
  server: ServerLink | null = null;
  /** Requests the client transmitted, not yet carried. */
  readonly requests: Sent[] = [];
  /** Answers the server gave, not yet carried. */
  readonly answers: Answer[] = [];
  readonly frames: Uint8Array[] = [];
  readonly deviceGot: string[] = [];
  readonly gatewayGot: string[] = [];
  readonly events: string[] = [];
  deviceClose: HfError | 'clean' | undefined;
  gatewayClose: HfError | 'clean' | undefined;
  private exchange = 0;
  /** Whether the gateway's application takes more after each message (false: delivery pauses until `resume`). */
  gatewayTakes: () => boolean = () => true;
  private readonly reader = new BundleReader({ maxMessages: 4096, maxSackRanges: 64, maxControls: 16 });

  /**
   * `keys.device` is the key the device proves; `keys.gateway` the key the gateway holds for device
   * 'dev' (both absent: an unauthenticated session).
   */
  constructor(client: LinkOptions = {}, server: LinkOptions = {}, keys: { device?: Uint8Array; gateway?: Uint8Array } = {}) {
    const rng = new Prng(42);
    const gatewayKey = keys.gateway;
    this.acceptor = new Acceptor({
      options: server,
      ...(gatewayKey === undefined ? {} : { keyOf: (id: string) => (id === 'dev' ? gatewayKey : null), crypto: nodeCrypto }),
      random: (b) => rng.fill(b),
      authenticate: (h) => h.id !== 'intruder',
      open: (link) => {
        this.server = link;
        return {
          answer: (exchange, body, len) => this.answers.push({ exchange, body: body.slice(0, len) }),
          transmit: (body, len) => this.frames.push(body.slice(0, len)),
          deliver: (b, o, l) => {
            this.gatewayGot.push(Buffer.from(b.subarray(o, o + l)).toString());
            return this.gatewayTakes();
          },
          onEnd: () => this.events.push('gateway end'),
          onClose: (e) => {
            this.gatewayClose = e ?? 'clean';
            this.events.push(`gateway close ${e?.code ?? 'clean'}`);
          },
        };
      },
    });
    this.client = new ClientLink(
      { id: 'dev', random: (b) => rng.fill(b), helloCounter: 1, options: client, ...(keys.device === undefined ? {} : { key: keys.device, crypto: nodeCrypto }) },
      {
        transmit: (body, len, rn) => this.requests.push({ rn, body: body.slice(0, len) }),
        deliver: (b, o, l) => {
          this.deviceGot.push(Buffer.from(b.subarray(o, o + l)).toString());
          return true;
        },
        onOpen: () => this.events.push('device open'),
        onEnd: () => this.events.push('device end'),
        onDrain: () => this.events.push('device drain'),
        onReject: (e) => this.events.push(`device reject ${e.code}`),
        onClose: (e) => {
          this.deviceClose = e ?? 'clean';
          this.events.push(`device close ${e?.code ?? 'clean'}`);
        },
      },
    );
  }

  /** Parses any bundle (generous limits) for inspection. */
  parse(body: Uint8Array): BundleView {
    return this.reader.read(body);
  }

  /** Delivers the oldest pending request (or the one with `rn`) to the acceptor; returns its exchange. */
  deliverRequest(rn?: number): number {
    const i = rn === undefined ? 0 : this.requests.findIndex((r) => r.rn === rn);
    if (i < 0) throw new Error(`no pending request ${rn}`);
    const [req] = this.requests.splice(i, 1);
    const ex = ++this.exchange;
    try {
      this.acceptor.onRequest(this.now, ex, req.body);
    } catch (e) {
      // What the HTTP transport does with a refusal: an error bundle as the answer.
      if (!isHfError(e)) throw e;
      this.answers.push({ exchange: ex, body: refusalBundle(req.rn, e) });
    }
    return ex;
  }

  /** Delivers a request body again as a new exchange (a duplicate or a retry). */
  redeliver(body: Uint8Array): number {
    const ex = ++this.exchange;
    this.acceptor.onRequest(this.now, ex, body);
    return ex;
  }

  /** Delivers the oldest pending answer (or the one for `exchange`) to the client. */
  deliverAnswer(exchange?: number): Answer {
    const i = exchange === undefined ? 0 : this.answers.findIndex((a) => a.exchange === exchange);
    if (i < 0) throw new Error(`no pending answer for exchange ${exchange}`);
    const [a] = this.answers.splice(i, 1);
    this.client.onBundle(this.now, a.body);
    return a;
  }

  /** Drops everything in flight. */
  dropAll(): void {
    this.requests.length = 0;
    this.answers.length = 0;
  }

  /** Carries everything both ways until nothing is pending (bounded). */
  settle(): void {
    for (let i = 0; i < 1000 && (this.requests.length > 0 || this.answers.length > 0); i++) {
      while (this.requests.length > 0) this.deliverRequest();
      while (this.answers.length > 0) this.deliverAnswer();
    }
  }

  /** Moves the clock, firing both sides' timers at their deadlines on the way. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (let i = 0; i < 100_000; i++) {
      const next = Math.min(this.client.nextDeadline(), this.acceptor.nextDeadline());
      if (next > end) break;
      this.now = Math.max(this.now, next);
      if (this.client.nextDeadline() <= this.now) this.client.onTimer(this.now);
      if (this.acceptor.nextDeadline() <= this.now) this.acceptor.onTimer(this.now);
    }
    this.now = end;
  }

  /** Opens the session: hello, welcome, and the client's first held request. */
  open(): void {
    this.client.start(this.now);
    this.deliverRequest();
    this.deliverAnswer();
  }

  send(text: string): boolean {
    return this.client.send(this.now, Buffer.from(text));
  }

  gatewaySend(text: string): boolean {
    return (this.server as ServerLink).send(this.now, Buffer.from(text));
  }
}
