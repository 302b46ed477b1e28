/**
 * Messages to and from devices anywhere in the cluster, on NATS (cluster option `deviceSubjects`,
 * CLI --cluster-device-subjects; off by default):
 *
 *   <prefix>.dev.<token>.down   a request: its payload is one message for the device, its header
 *                               `Hf-Msg-Id` (1..128 printable ASCII characters) names it. Answered
 *                               `ok` once the device's owner holds it, else `err <CODE> <message>`
 *   <prefix>.dev.<token>.up     every message the device sends, published by the node serving it
 *
 * `<token>` is the device id's UTF-8 bytes in base64url without padding (as the directory's
 * `d.<device>` keys, directory.ts): a valid subject token whatever the id holds (no `.`, `*`, `>`).
 *
 * Only the node serving the device's session subscribes to its `.down`: it subscribes when the
 * session opens here (a hello, a handoff, a takeover) and unsubscribes when it ends or moves away.
 * Per-session subscriptions rather than one wildcard: no node receives the messages of devices it
 * does not serve, and a device that no node serves has no responder at all, which the sender sees at
 * once (NATS's "no responders", a 503 status) instead of waiting for a timeout. The same answer comes
 * while a session moves: between the old node's unsubscribe and the new one's subscribe (a handoff:
 * one handoff request, ms; a takeover: until the heir restored the session, about misses x
 * heartbeatMs after the death). A node that is only stalled keeps its subscriptions and answers
 * nothing meanwhile: the sender's request times out. Either way a sender tries again, with the
 * same id, a little later.
 *
 * `ok` means what `send()` returning true means to an application on the owner (accepted: delivered
 * exactly once, in order), and more: in a cluster every session is recorded in the store, so `ok`
 * comes only once the store holds the record with the message (the gateway's own output commit,
 * `Replicator.hold`, as with ackAfter 'standby'), and a node that dies after its `ok` leaves the
 * message to its heir. Refusals (nothing taken): HF_ERR_PEER (no or bad id header), HF_ERR_BUSY
 * (the session's out-ring is full: try again later), HF_ERR_TOO_BIG (larger than the link's
 * maxMessage), HF_ERR_CLOSED (the session is ending). A node whose subscription outlived the session
 * (it just ended or moved) answers nothing: another node may be the owner already.
 *
 * Exactly once for retries: each session keeps the ids of the last `recentIds` (default 4096)
 * messages it took (RecentIds). A message whose id is there is not taken again: its sender gets `ok`
 * (once the first one is stored). The ids travel with the session when it is handed to another node
 * (a drain, a rebalance: the handoff message carries them). They do not travel in a takeover (the
 * store holds the session's records, not this set): a sender that took a message to a node that died
 * after storing it and before the sender had its `ok` (or whose `ok` was lost), and that retries with
 * the same id once the heir serves the device, has it delivered twice, marked as a new message. A
 * message the dead node had not stored is delivered once (the heir never had it, and the device
 * cannot have: every answer waits for the store). Past `recentIds`
 * newer ids, an old id is forgotten: a retry that late is a new message.
 *
 * Who may send to a device, or read what it sends, is whoever NATS lets publish on `.down` or
 * subscribe to `.up`: NATS's own permissions are the gate (as for `holdfast ctl drain`).
 *
 * `.up` is a core NATS publish: at most once for its subscribers (one not connected, or too slow,
 * misses messages). A subscriber that needs every message puts a JetStream stream over the subject.
 * What is published is what the owner's application gets (after the delivery gate, once per message;
 * a message redelivered after a takeover may be published again).
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { checkInt } from '../../../../firmware/check';
import { ErrorCode, hfError, isHfError } from '../../../../firmware/errors';
import type { Log } from '../../../../hal/log';

export const MSG_ID_HEADER = 'Hf-Msg-Id';

/** The defaults of the bounds (cluster options `deviceRecentIds`). */
export const DEVICE_SUBJECT_DEFAULTS = { recentIds: 4096 } as const;

/** Most ids a session keeps (the bound of `deviceRecentIds`). */
export const MAX_RECENT_IDS = 1 << 20;

const MSG_ID = /^[\x21-\x7e]{1,128}$/;

/** The subject token of device `id` (base64url of its UTF-8 bytes, no padding). */
export function deviceToken(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

/** The device id of a subject token; HF_ERR_PEER for a token deviceToken never makes. */
export function deviceOfToken(token: string): string {
  if (!/^[A-Za-z0-9_-]{2,172}$/.test(token)) throw hfError(ErrorCode.PEER, `device subject: ${JSON.stringify(token)} is not a base64url device token`);
  const id = Buffer.from(token, 'base64url').toString('utf8');
  if (id.length === 0 || deviceToken(id) !== token) throw hfError(ErrorCode.PEER, `device subject: ${JSON.stringify(token)} is not a base64url device token`);
  return id;
}

/** `<prefix>.dev.<token>.<dir>`. */
export function deviceSubject(prefix: string, id: string, dir: 'up' | 'down'): string {
  return `${prefix}.dev.${deviceToken(id)}.${dir}`;
}

/** Checks a message id (1..128 printable ASCII characters); HF_ERR_PEER otherwise (`code` to choose another). */
export function checkMsgId(v: unknown, code: typeof ErrorCode.PEER | typeof ErrorCode.OPTION = ErrorCode.PEER): string {
  if (typeof v !== 'string' || !MSG_ID.test(v)) throw hfError(code, `message id must be 1..128 printable ASCII characters, got ${JSON.stringify(v)}`);
  return v;
}

/** Checks `deviceRecentIds` (HF_ERR_OPTION); returns it or the default. */
export function recentIdsOption(v: number | undefined, name = 'cluster.deviceRecentIds'): number {
  return v === undefined ? DEVICE_SUBJECT_DEFAULTS.recentIds : checkInt(name, v, 1, MAX_RECENT_IDS);
}

/**
 * The last `capacity` message ids a session took, oldest first: adding one past the capacity forgets
 * the oldest. An id added again is not moved (its first taking is what counts).
 */
export class RecentIds {
  private readonly set = new Set<string>();

  constructor(readonly capacity: number) {
    checkInt('recentIds', capacity, 1, MAX_RECENT_IDS);
  }

  /** A set holding the last `capacity` of `ids` (oldest first), as `list()` gave them. */
  static from(ids: Iterable<string>, capacity: number): RecentIds {
    const r = new RecentIds(capacity);
    for (const id of ids) r.add(id);
    return r;
  }

  get size(): number {
    return this.set.size;
  }

  has(id: string): boolean {
    return this.set.has(id);
  }

  add(id: string): void {
    if (this.set.has(id)) return;
    this.set.add(id);
    if (this.set.size > this.capacity) this.set.delete(this.set.values().next().value as string);
  }

  /** The ids, oldest first. */
  list(): string[] {
    return [...this.set];
  }
}

/**
 * What an inbox needs of its gateway: `deliver` hands `bytes` to device `device`'s channel here and
 * resolves once the owner holds it (stored, in a cluster); it throws (synchronously, nothing taken)
 * HF_ERR_UNKNOWN_SESSION when no session of the device is here, HF_ERR_BUSY when its out-ring is full.
 */
export type Deliver = (device: string, bytes: Uint8Array) => Promise<void>;

/** One session's ids: those taken, and those taken but not yet held (their `ok` waits). */
interface Inbox {
  recent: RecentIds;
  pending: Map<string, Promise<void>>;
}

/**
 * The exactly-once part of messages sent to devices by id (Gateway.sendToDevice, `.down`): a message
 * whose id its device's session took already is not taken again. Per device served here.
 */
export class DeviceInboxes {
  private readonly inboxes = new Map<string, Inbox>();

  constructor(
    private readonly deliver: Deliver,
    readonly recentIds: number = DEVICE_SUBJECT_DEFAULTS.recentIds,
  ) {
    checkInt('recentIds', recentIds, 1, MAX_RECENT_IDS);
  }

  /**
   * Hands message `msgId` to `device`'s session unless it took it already; resolves once the owner
   * holds it (for a repeat: once the first one is held). Refusals as `Deliver`'s (nothing taken, the
   * id not kept: a retry is taken as new).
   */
  take(device: string, msgId: string, bytes: Uint8Array): Promise<void> {
    let box = this.inboxes.get(device);
    // Taken already: its first taking's promise while that waits (even if the id was pushed out of
    // the recent set meanwhile), else ok at once.
    const first = box?.pending.get(msgId);
    if (first !== undefined) return first;
    if (box?.recent.has(msgId)) return Promise.resolve();
    const held = this.deliver(device, bytes); // throws: nothing taken
    if (box === undefined) {
      box = { recent: new RecentIds(this.recentIds), pending: new Map() };
      this.inboxes.set(device, box);
    }
    box.recent.add(msgId);
    const b = box;
    const p = held.finally(() => {
      if (b.pending.get(msgId) === p) b.pending.delete(msgId);
    });
    b.pending.set(msgId, p);
    return p;
  }

  /** The session of `device` ended or moved: its ids (oldest first), forgotten here. */
  end(device: string): string[] {
    const box = this.inboxes.get(device);
    this.inboxes.delete(device);
    return box === undefined ? [] : box.recent.list();
  }

  /** A session of `device` came here with the ids its last node kept. */
  restore(device: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    const box = this.inboxes.get(device) ?? { recent: new RecentIds(this.recentIds), pending: new Map() };
    for (const id of ids) box.recent.add(id);
    this.inboxes.set(device, box);
  }

  /** The ids `device`'s session keeps (oldest first). */
  ids(device: string): string[] {
    return this.inboxes.get(device)?.recent.list() ?? [];
  }
}

/** A `.down` answer: `ok`, or `err <CODE> <message>`. */
export function encodeDownAnswer(err: { code: string; message: string } | null): Uint8Array {
  return new TextEncoder().encode(err === null ? 'ok' : `err ${err.code} ${err.message}`);
}

/** Reads a `.down` answer: null for `ok`, else the refusal; HF_ERR_PEER for anything else. */
export function decodeDownAnswer(b: Uint8Array): { code: string; message: string } | null {
  const s = new TextDecoder().decode(b);
  if (s === 'ok') return null;
  const m = /^err (HF_ERR_[A-Z_]+) ?([\s\S]*)$/.exec(s);
  if (m === null) throw hfError(ErrorCode.PEER, `device answer: ${JSON.stringify(s.slice(0, 80))} is neither ok nor err CODE`);
  return { code: m[1], message: m[2] };
}

/** What the subjects need of their node. */
export interface DeviceSubjectsHost {
  /** Takes message `msgId` for `device` (DeviceInboxes.take of the gateway); null: no session of it here. */
  take(device: string, msgId: string, bytes: Uint8Array): Promise<void> | null;
  log: Log;
}

/**
 * The NATS side of one node: a `.down` subscription per session served here, `.up` publishes, and
 * the requests of `send` to a device another node serves.
 */
export class DeviceSubjects {
  /** Each device's `.down` subscription, and how many of its sessions are here (2 for a moment: a new hello). */
  private readonly subs = new Map<string, { sub: Subscription; sessions: number }>();
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly host: DeviceSubjectsHost,
    private readonly timeoutMs: number,
  ) {}

  /** A session of `device` is served here now: its `.down` is answered here. */
  opened(device: string): void {
    if (this.closed) return;
    const had = this.subs.get(device);
    if (had !== undefined) {
      had.sessions++;
      return;
    }
    const sub = this.nc.subscribe(deviceSubject(this.prefix, device, 'down'), {
      callback: (err, msg) => {
        if (err === null) this.onDown(device, msg);
      },
    });
    this.subs.set(device, { sub, sessions: 1 });
  }

  /** `device`'s session here ended or moved away. */
  ended(device: string): void {
    const s = this.subs.get(device);
    if (s === undefined || --s.sessions > 0) return;
    this.subs.delete(device);
    s.sub.unsubscribe();
  }

  /** Publishes a message `device` sent on its `.up` (at most once: core NATS). */
  up(device: string, data: Uint8Array): void {
    if (this.closed) return;
    try {
      this.nc.publish(deviceSubject(this.prefix, device, 'up'), data);
    } catch {
      // NATS closing: .up is at most once.
    }
  }

  private onDown(device: string, msg: Msg): void {
    const reply = (err: { code: string; message: string } | null): void => {
      try {
        msg.respond(encodeDownAnswer(err));
      } catch {
        // The connection is closing: the sender's request times out, it sends again.
      }
    };
    let taken: Promise<void> | null;
    try {
      const id = checkMsgId(msg.headers?.get(MSG_ID_HEADER) || undefined);
      taken = this.host.take(device, id, msg.data);
    } catch (e) {
      const code = isHfError(e) ? e.code : ErrorCode.STATE;
      this.host.log.debug('device message refused', { device, code, reason: (e as Error).message });
      reply({ code, message: (e as Error).message });
      return;
    }
    // No session here any more (it just ended or moved): another node may serve it; say nothing.
    if (taken === null) return;
    taken.then(
      () => reply(null),
      (e) => reply({ code: isHfError(e) ? e.code : ErrorCode.STATE, message: (e as Error).message }),
    );
  }

  /**
   * Sends message `msgId` to `device` on another node (its `.down`); resolves once that node holds
   * it. Rejects with its refusal's code, HF_ERR_UNKNOWN_SESSION when no node serves the device now
   * (no responder), HF_ERR_TIMEOUT when no answer came in `timeoutMs`, HF_ERR_NATS for NATS failing.
   */
  async send(device: string, msgId: string, bytes: Uint8Array, timeoutMs = this.timeoutMs): Promise<void> {
    const { headers } = await import('@nats-io/transport-node');
    const h = headers();
    h.set(MSG_ID_HEADER, msgId);
    let answer: Msg;
    try {
      answer = await this.nc.request(deviceSubject(this.prefix, device, 'down'), bytes, { timeout: timeoutMs, headers: h });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      const text = `${(e as Error).name} ${(e as Error).message} ${cause instanceof Error ? `${cause.name} ${cause.message}` : ''}`;
      const noResponders = (e as { isNoResponders?: () => boolean }).isNoResponders?.() === true;
      if (noResponders || /no ?responders/i.test(text)) throw hfError(ErrorCode.UNKNOWN_SESSION, `no node serves device ${JSON.stringify(device)} now`, e);
      if (/timeout/i.test(text)) throw hfError(ErrorCode.TIMEOUT, `device ${JSON.stringify(device)}: no answer in ${timeoutMs} ms`, e);
      throw hfError(ErrorCode.NATS, `device ${JSON.stringify(device)}: ${(e as Error).message}`, e);
    }
    const err = decodeDownAnswer(answer.data);
    if (err !== null) throw hfError(err.code as typeof ErrorCode.PEER, err.message);
  }

  /** Stops answering (the node leaves). */
  close(): void {
    this.closed = true;
    for (const s of this.subs.values()) s.sub.unsubscribe();
    this.subs.clear();
  }
}
