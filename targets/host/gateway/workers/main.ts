/**
 * The workers' main process: owns the listening sockets, reads each new connection's first request
 * or frame (first-bytes.ts) far enough to know its session (session-key.ts), and passes the live
 * socket with the bytes already read to the worker that owns the session, or to the one placement
 * picks for a new session (placement.ts). Its only session state is the directory (session id and
 * device -> worker). After the handoff it never touches a byte of the connection: the worker's fronts
 * serve it, and an HTTP connection is closed by the worker after each exchange, so every request
 * comes back here to be routed (docs/ARCHITECTURE.md, "Workers").
 *
 * Each worker is a forked process in a slot: STARTING (forked, not ready) -> READY (takes
 * connections) -> DOWN (exited: its sessions end, the devices resume them; restarted after
 * restartDelayMs, at most maxRestarts within restartWindowMs) -> STARTING again; STOPPED once close()
 * began.
 *
 * `reload()` (the CLI's SIGHUP) starts a new generation of workers in new slots (the same script
 * and arguments: code and configuration read afresh), waits until all are READY, then sends new
 * sessions to them and moves every session of the old generation over (reload.ts: release there,
 * adopt here; connections naming a moving session wait in this process and go to its new owner),
 * and retires the old workers: their IPC channel is closed (a worker then closes its gateway and
 * exits; SIGKILL after retireGraceMs). A new generation that does not become READY within
 * reloadReadyMs is stopped and the old one stays.
 */
import { type ChildProcess, fork } from 'node:child_process';
import * as net from 'node:net';
import { ErrorCode, hfError } from '../../../../firmware/errors';
import type { WireLimits } from '../../../../firmware/wire';
import type { Log } from '../../../../hal/log';
import { hostClock } from '../../../node/clock';
import { silentLog } from '../../../node/log';
import { type Address, listenOn, parseAddress } from '../../net/address';
import { Directory } from './directory';
import { FirstBytes, FirstBytesState, type FrontKind } from './first-bytes';
import { type AdoptMessage, type ConnMessage, type MoveReport, type PlacedMessage, type ReleaseMessage, WORKER_ENV, type WorkerReport } from './messages';
import { type Candidate, type PlacementPolicy, place } from './placement';
import { type MoveResult, type MovingSession, moveSessions } from './reload';
import { SessionKeys } from './session-key';

/** Bounds of the main process (every one an option). */
export interface WorkerLimits {
  /** Largest HTTP request head read before the handoff, bytes (default 16384); a longer one goes on unread. */
  maxHeadBytes?: number;
  /** Largest first HTTP body or TCP frame read to find the session, bytes (default 262144: the gateway's maxBundleBytes). */
  maxBodyBytes?: number;
  /** A new connection must show its first request or frame within this, ms (default 10000), or it is closed. */
  firstBytesMs?: number;
  /** Most connections being read at once before their handoff (default 1000); more are closed at once. */
  maxPending?: number;
  /**
   * A bundle naming a session id the directory does not know waits this long for a worker's report
   * of it, ms (default 200): the report is sent before the welcome, so this only covers a race.
   * Then it goes to any worker, which refuses it (HF_ERR_UNKNOWN_SESSION) as a single gateway would.
   */
  unknownSessionWaitMs?: number;
  /** A worker that exited is started again after this, ms (default 200). */
  restartDelayMs?: number;
  /** Most restarts of one slot within restartWindowMs (default 10); past it the slot stays down. */
  maxRestarts?: number;
  /** The window of maxRestarts, ms (default 60000). */
  restartWindowMs?: number;
  /** A reload's new workers must all be READY within this, ms (default 30000), or the reload is given up (the old workers stay). */
  reloadReadyMs?: number;
  /** Sessions moved at once in a reload (default 32, at least 1). */
  moveConcurrency?: number;
  /** No session move starts later than this after the new workers were ready, ms (default 60000); what is left ends with the old workers. */
  moveMs?: number;
  /**
   * A worker asked to release a session answers within this, ms (default 30000), or the move counts
   * as failed (connections naming the session wait no longer; bytes the worker still sends later,
   * while it runs, are adopted all the same). Under load the answer waits behind the connections
   * handed on the same IPC channel.
   */
  releaseMs?: number;
  /** A worker asked to adopt a session answers within this, ms (default 30000), or the session counts as lost (its device resumes). */
  adoptMs?: number;
  /** A retired worker has this long to close its gateway and exit after its IPC channel closed, ms (default 5000); then SIGKILL. */
  retireGraceMs?: number;
}

export const WORKER_LIMIT_DEFAULTS: Readonly<Required<WorkerLimits>> = {
  maxHeadBytes: 16384,
  maxBodyBytes: 262144,
  firstBytesMs: 10000,
  maxPending: 1000,
  unknownSessionWaitMs: 200,
  restartDelayMs: 200,
  maxRestarts: 10,
  restartWindowMs: 60000,
  reloadReadyMs: 30000,
  moveConcurrency: 32,
  moveMs: 60000,
  releaseMs: 30000,
  adoptMs: 30000,
  retireGraceMs: 5000,
};

/** What a reload did (WorkerMain.reload). */
export interface ReloadResult extends MoveResult {
  /** The generation now serving (1 after the first reload). */
  generation: number;
  /** PIDs of the old workers and of the new ones. */
  oldPids: number[];
  newPids: number[];
  /** From the signal to the old workers' exit, ms. */
  totalMs: number;
}

export interface WorkerMainOptions {
  /** How many workers (1..256). */
  workers: number;
  /** The module each worker runs (forked), and its arguments. */
  script: string;
  args?: string[];
  /** Node flags of the workers (default: this process's). */
  execArgv?: string[];
  /** HTTP listener "host:port", or null. */
  http: string | Address | null;
  /** Direct TCP listener "host:port", or null. */
  tcp: string | Address | null;
  /** Where new sessions go (default "hash"). */
  placement?: PlacementPolicy;
  /** The wire limits the first bundles are read with (the gateway's link options). */
  wire?: WireLimits;
  limits?: WorkerLimits;
  log?: Log;
}

export const WorkerState = { STARTING: 0, READY: 1, DOWN: 2, STOPPED: 3 } as const;
export type WorkerStateValue = (typeof WorkerState)[keyof typeof WorkerState];

interface Slot {
  slot: number;
  /** The reload generation it belongs to (0: started with the main process). */
  gen: number;
  /** Its generation was replaced: not restarted when it exits. */
  retiring: boolean;
  state: WorkerStateValue;
  child: ChildProcess | null;
  /** When this slot was (re)started, ms (hostClock), newest last, within restartWindowMs. */
  starts: number[];
  handoffs: number;
}

/** A connection read up to its first bundle, not yet handed on. */
interface Pending {
  socket: net.Socket;
  kind: FrontKind;
  reader: FirstBytes;
  timer: NodeJS.Timeout;
  /** When its first request or frame was complete (ms, hostClock), or -1. */
  doneAt: number;
}

export class WorkerMain {
  readonly log: Log;
  readonly limits: Readonly<Required<WorkerLimits>>;
  readonly directory: Directory;
  /** Bound "host:port" of each listener, once listening ('' for none). */
  httpAddress = '';
  tcpAddress = '';
  private readonly o: WorkerMainOptions;
  private readonly policy: PlacementPolicy;
  private readonly keys: SessionKeys;
  private readonly slots: Slot[] = [];
  private readonly servers: net.Server[] = [];
  private readonly pending = new Set<Pending>();
  /** Connections whose bundle names a session nobody reported yet, with their deadline. */
  private readonly waiting = new Map<Pending, { sid: string; until: number }>();
  private stopping = false;
  /** The generation new sessions go to. */
  private gen = 0;
  private reloading = false;
  /** Sessions being moved by a reload (session id -> until when connections naming it wait) and their devices. */
  private readonly moving = new Map<string, number>();
  private readonly movingDevices = new Set<string>();
  /** Release and adopt questions waiting for their worker's answer. */
  private readonly asks = new Map<number, { slot: number; done: (r: MoveReport) => void; fail: (code: string, reason: string) => MoveReport }>();
  private askSeq = 0;
  /** Sum and count of handoff times (first request complete -> socket sent), µs. */
  handoffUsTotal = 0;
  handoffCount = 0;

  constructor(o: WorkerMainOptions) {
    if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 256) throw hfError(ErrorCode.OPTION, `workers must be an integer 1..256, got ${o.workers}`);
    if (o.http === null && o.tcp === null) throw hfError(ErrorCode.OPTION, 'workers need an http or a tcp listener');
    this.o = o;
    this.log = o.log ?? silentLog;
    this.policy = o.placement ?? 'hash';
    const l = { ...WORKER_LIMIT_DEFAULTS, ...o.limits };
    for (const [k, v] of Object.entries(l)) if (!Number.isInteger(v) || v < 0) throw hfError(ErrorCode.OPTION, `${k} must be an integer >= 0, got ${v}`);
    this.limits = l;
    this.keys = new SessionKeys(o.wire ?? {});
    this.directory = new Directory(o.workers);
    if (l.moveConcurrency < 1) throw hfError(ErrorCode.OPTION, `moveConcurrency must be at least 1, got ${l.moveConcurrency}`);
    for (let i = 0; i < o.workers; i++) this.slots.push(this.newSlot(0));
  }

  /** Starts the workers, waits until each is ready, then listens. */
  static async start(o: WorkerMainOptions): Promise<WorkerMain> {
    const m = new WorkerMain(o);
    try {
      await Promise.all(m.slots.map((s) => m.spawn(s)));
      if (o.http !== null) m.httpAddress = await m.listen('http', parseAddress(o.http, 'http'));
      if (o.tcp !== null) m.tcpAddress = await m.listen('tcp', parseAddress(o.tcp, 'tcp'));
    } catch (e) {
      await m.close();
      throw e;
    }
    m.log.info('workers listening', { http: m.httpAddress || undefined, tcp: m.tcpAddress || undefined, workers: o.workers, placement: m.policy });
    return m;
  }

  private newSlot(gen: number): Slot {
    return { slot: this.slots.length, gen, retiring: false, state: WorkerState.DOWN, child: null, starts: [], handoffs: 0 };
  }

  /** The generation serving now (0 until the first reload). */
  get generation(): number {
    return this.gen;
  }

  /** The slots of the generation serving now. */
  workerSlots(): number[] {
    return this.slots.filter((s) => s.gen === this.gen).map((s) => s.slot);
  }

  /** PIDs of the generation serving now (of the workers running). */
  pids(): number[] {
    const out: number[] = [];
    for (const s of this.slots) if (s.gen === this.gen && s.child?.pid !== undefined) out.push(s.child.pid);
    return out;
  }

  /** PID of the worker in `slot` (null when it is not running). */
  pid(slot: number): number | null {
    return this.slots[slot]?.child?.pid ?? null;
  }

  /** State of each slot. */
  states(): WorkerStateValue[] {
    return this.slots.map((s) => s.state);
  }

  /** Connections handed to each slot so far. */
  handoffs(): number[] {
    return this.slots.map((s) => s.handoffs);
  }

  /** Resolves once `slot` is READY again (or rejects after `ms`). */
  async ready(slot: number, ms = 15000): Promise<void> {
    const until = hostClock.now() + ms;
    while (this.slots[slot].state !== WorkerState.READY) {
      if (hostClock.now() > until) throw hfError(ErrorCode.TIMEOUT, `worker ${slot} not ready within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // ---- workers ---------------------------------------------------------------------------------

  private spawn(s: Slot): Promise<void> {
    const now = hostClock.now();
    s.starts = s.starts.filter((t) => now - t < this.limits.restartWindowMs);
    s.starts.push(now);
    s.state = WorkerState.STARTING;
    const child = fork(this.o.script, this.o.args ?? [], {
      execArgv: this.o.execArgv ?? process.execArgv,
      env: { ...process.env, [WORKER_ENV]: String(s.slot) },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    s.child = child;
    this.log.info('worker started', { slot: s.slot, pid: child.pid });
    return new Promise((resolve, reject) => {
      let settled = false;
      child.on('message', (m: WorkerReport) => {
        if (m.t === 'ready') {
          if (s.child !== child || this.stopping) return;
          s.state = WorkerState.READY;
          this.log.info('worker ready', { slot: s.slot, pid: child.pid });
          settled = true;
          resolve();
          this.recheck();
        } else if (m.t === 'open') {
          this.directory.opened(s.slot, m.sid, m.device);
          this.recheck();
        } else if (m.t === 'end') this.directory.ended(s.slot, m.sid, m.device);
        else if (m.t === 'released' || m.t === 'adopted') this.asks.get(m.id)?.done(m);
        else if (m.t === 'place') {
          const answer: PlacedMessage = { t: 'placed', id: m.id, slot: this.helloSlot(m.device) };
          if (child.connected) child.send(answer);
        }
      });
      child.on('error', (e) => this.log.warn('worker error', { slot: s.slot, reason: e.message }));
      child.on('exit', (code, signal) => {
        if (!settled) {
          settled = true;
          reject(hfError(ErrorCode.CONNECT, `worker ${s.slot} exited before it was ready (code ${code}, signal ${signal})`));
        }
        this.exited(s, child, code, signal);
      });
    });
  }

  private exited(s: Slot, child: ChildProcess, code: number | null, signal: string | null): void {
    if (s.child !== child) return;
    s.child = null;
    const lost = this.directory.dropSlot(s.slot);
    for (const a of [...this.asks.values()]) if (a.slot === s.slot) a.done(a.fail(ErrorCode.CONNECT, `worker ${s.slot} exited`));
    if (this.stopping || s.retiring) {
      s.state = WorkerState.STOPPED;
      if (s.retiring && !this.stopping) this.log.info('reload: old worker exited', { slot: s.slot, pid: child.pid, code: code ?? undefined, signal: signal ?? undefined, sessions: lost });
      return;
    }
    s.state = WorkerState.DOWN;
    this.log.warn('worker exited', { slot: s.slot, pid: child.pid, code: code ?? undefined, signal: signal ?? undefined, sessions: lost });
    if (s.starts.filter((t) => hostClock.now() - t < this.limits.restartWindowMs).length >= this.limits.maxRestarts) {
      this.log.error('worker restarted too often: its slot stays down', { slot: s.slot, maxRestarts: this.limits.maxRestarts, restartWindowMs: this.limits.restartWindowMs });
      return;
    }
    const t = setTimeout(() => {
      if (this.stopping || s.state !== WorkerState.DOWN) return;
      this.spawn(s).catch((e: Error) => this.log.warn('worker restart failed', { slot: s.slot, reason: e.message }));
    }, this.limits.restartDelayMs);
    t.unref();
  }

  private live(): Candidate[] {
    const out: Candidate[] = [];
    for (const s of this.slots) if (s.state === WorkerState.READY && s.gen === this.gen) out.push({ slot: s.slot, sessions: this.directory.sessions(s.slot) });
    return out;
  }

  // ---- connections -----------------------------------------------------------------------------

  private listen(kind: FrontKind, want: Address): Promise<string> {
    const server = net.createServer((socket) => this.onConnection(kind, socket));
    this.servers.push(server);
    return listenOn(server, want, kind);
  }

  private onConnection(kind: FrontKind, socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.stopping || this.pending.size >= this.limits.maxPending) {
      socket.destroy();
      return;
    }
    const p: Pending = {
      socket,
      kind,
      reader: new FirstBytes(kind, { maxHeadBytes: this.limits.maxHeadBytes, maxBodyBytes: this.limits.maxBodyBytes }),
      timer: setTimeout(() => this.forget(p, true), this.limits.firstBytesMs),
      doneAt: -1,
    };
    this.pending.add(p);
    const onData = (chunk: Buffer): void => {
      if (p.reader.push(chunk) !== FirstBytesState.DONE) return;
      socket.off('data', onData);
      p.doneAt = hostClock.now();
      this.route(p);
    };
    socket.on('data', onData);
    socket.once('close', () => this.forget(p, false));
  }

  /** Sends `p` where its first bundle says, or waits for the report of its session. */
  private route(p: Pending): void {
    const key = this.keys.of(p.reader.bundle);
    let slot = -1;
    // A session a reload is moving: its connection waits here for the new owner.
    const moving =
      key.kind === 'sid' ? (this.moving.get(key.sid) ?? -1) : key.kind === 'hello' && this.movingDevices.has(key.device) ? hostClock.now() + this.limits.releaseMs + this.limits.adoptMs : -1;
    if (moving >= 0 && hostClock.now() < moving) {
      if (!this.waiting.has(p)) {
        this.pause(p);
        this.waiting.set(p, { sid: key.kind === 'sid' ? key.sid : '', until: moving });
      }
      return;
    }
    if (key.kind === 'sid') {
      slot = this.directory.slotOfSession(key.sid);
      if (slot < 0 || this.slots[slot].state !== WorkerState.READY) {
        const w = this.waiting.get(p);
        if (w === undefined) {
          this.pause(p);
          this.waiting.set(p, { sid: key.sid, until: hostClock.now() + this.limits.unknownSessionWaitMs });
          const t = setTimeout(() => this.recheck(), this.limits.unknownSessionWaitMs + 1);
          t.unref();
          return;
        }
        if (hostClock.now() < w.until) return;
        slot = place(this.policy, null, this.live()); // unknown for good: any worker refuses it
      }
    } else if (key.kind === 'hello') slot = this.helloSlot(key.device);
    else slot = place(this.policy, null, this.live());
    if (slot < 0) {
      // No worker is ready (all restarting): it waits for one, until its firstBytesMs deadline closes it.
      if (!this.waiting.has(p)) {
        this.pause(p);
        this.waiting.set(p, { sid: '', until: 0 });
      }
      return;
    }
    this.waiting.delete(p);
    this.handoff(p, this.slots[slot]);
  }

  /** Where a hello of `device` goes now: the worker of its open session, else the policy's pick (-1: none ready). */
  private helloSlot(device: string): number {
    const slot = this.directory.slotOfDevice(device);
    if (slot >= 0 && this.slots[slot].state === WorkerState.READY) return slot;
    return place(this.policy, device, this.live());
  }

  /** Routes the waiting connections again (a report came, a worker is ready, or a wait ran out). */
  private recheck(): void {
    for (const p of [...this.waiting.keys()]) this.route(p);
  }

  /** Stops reading `p` in this process: what the kernel has stays there for the worker. */
  private pause(p: Pending): void {
    const h = (p.socket as unknown as { _handle?: { readStop?: () => number } })._handle;
    h?.readStop?.();
    p.socket.pause();
  }

  private handoff(p: Pending, s: Slot): void {
    const child = s.child;
    if (child === null) return this.forget(p, true);
    this.pause(p);
    // Whatever the stream had buffered past the first bundle goes too.
    for (let c = p.socket.read() as Buffer | null; c !== null; c = p.socket.read() as Buffer | null) p.reader.push(c);
    this.pending.delete(p);
    clearTimeout(p.timer);
    const msg: ConnMessage = { t: 'conn', kind: p.kind, head: p.reader.read };
    s.handoffs++;
    const doneAt = p.doneAt;
    child.send(msg, p.socket, { keepOpen: false }, (err) => {
      if (err) {
        p.socket.destroy();
        return;
      }
      this.handoffUsTotal += (hostClock.now() - doneAt) * 1000;
      this.handoffCount++;
    });
  }

  private forget(p: Pending, destroy: boolean): void {
    if (!this.pending.delete(p)) return;
    this.waiting.delete(p);
    clearTimeout(p.timer);
    if (destroy) p.socket.destroy();
  }

  // ---- reload ----------------------------------------------------------------------------------

  /**
   * Replaces every worker by a new one without dropping a session (see the top of this file): new
   * workers started and READY, new sessions sent to them, the old workers' sessions moved over,
   * the old workers retired. Logs each step. Rejects with HF_ERR_BUSY while a reload runs, HF_ERR_CLOSED
   * after close(), and HF_ERR_TIMEOUT / HF_ERR_CONNECT when the new workers do not become READY
   * (they are stopped; the old ones go on serving).
   */
  async reload(): Promise<ReloadResult> {
    if (this.stopping) throw hfError(ErrorCode.CLOSED, 'reload: the workers are stopping');
    if (this.reloading) throw hfError(ErrorCode.BUSY, 'reload: a reload is running already');
    this.reloading = true;
    const t0 = hostClock.now();
    try {
      const old = this.slots.filter((s) => s.gen === this.gen && s.state !== WorkerState.STOPPED);
      const oldPids = old.map((s) => s.child?.pid).filter((p): p is number => p !== undefined);
      const gen = this.gen + 1;
      const fresh: Slot[] = [];
      for (let i = 0; i < this.o.workers; i++) {
        const s = this.newSlot(gen);
        this.slots.push(s);
        fresh.push(s);
      }
      this.log.info('reload: starting new workers', { generation: gen, workers: fresh.length, slots: fresh.map((s) => s.slot).join(',') });
      // The old ones are not restarted from now on: if one dies meanwhile its devices resume on the new ones.
      for (const s of old) s.retiring = true;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.all(fresh.map((s) => this.spawn(s))),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(hfError(ErrorCode.TIMEOUT, `new workers not ready within reloadReadyMs ${this.limits.reloadReadyMs} ms`)), this.limits.reloadReadyMs);
          }),
        ]);
      } catch (e) {
        this.log.error('reload: new workers failed to start; the old ones go on', { generation: gen, reason: (e as Error).message });
        for (const s of old) s.retiring = false;
        for (const s of fresh) this.retire(s);
        throw e;
      } finally {
        clearTimeout(timer);
      }
      this.gen = gen;
      const newPids = fresh.map((s) => s.child?.pid).filter((p): p is number => p !== undefined);
      this.log.info('reload: new workers ready; new sessions go to them', { generation: gen, pids: newPids.join(','), ms: Math.round(hostClock.now() - t0) });
      const oldSlots = new Set(old.map((s) => s.slot));
      const sessions = old.reduce((n, s) => n + this.directory.sessions(s.slot), 0);
      this.log.info('reload: moving sessions', { sessions, concurrency: this.limits.moveConcurrency, moveMs: this.limits.moveMs });
      const moved = await moveSessions(
        {
          remaining: () => old.flatMap((s) => this.directory.sessionsOn(s.slot).map((x) => ({ slot: s.slot, ...x }))),
          release: (s) => this.ask(s.slot, { t: 'release', id: 0, sid: s.sid }, this.limits.releaseMs, (late) => this.adoptLate(s, late)) as Promise<Extract<MoveReport, { t: 'released' }>>,
          adopt: (slot, bytes) => this.ask(slot, { t: 'adopt', id: 0, bytes }, this.limits.adoptMs) as Promise<Extract<MoveReport, { t: 'adopted' }>>,
          place: (device) => place(this.policy, device, this.live()),
          moving: (s, on) => this.setMoving(s, on),
          now: () => hostClock.now(),
          log: this.log,
        },
        this.limits,
      );
      this.log.info('reload: sessions moved', { moved: moved.moved, gone: moved.gone, failed: moved.failed, left: moved.left, ms: moved.ms, max_session_ms: moved.maxSessionMs });
      this.log.info('reload: retiring old workers', { pids: oldPids.join(','), sessions: [...oldSlots].reduce((n, s) => n + this.directory.sessions(s), 0) });
      await Promise.all(old.map((s) => this.retire(s)));
      const r: ReloadResult = { ...moved, generation: gen, oldPids, newPids, totalMs: Math.round(hostClock.now() - t0) };
      this.log.info('reload: done', { generation: gen, moved: r.moved, gone: r.gone, failed: r.failed, left: r.left, move_ms: r.ms, total_ms: r.totalMs });
      return r;
    } finally {
      this.reloading = false;
    }
  }

  /** Holds (on) or releases (off) the connections of a moving session, and routes them again when off. */
  private setMoving(s: MovingSession, on: boolean): void {
    if (on) {
      this.moving.set(s.sid, hostClock.now() + this.limits.releaseMs + this.limits.adoptMs);
      this.movingDevices.add(s.device);
      return;
    }
    this.moving.delete(s.sid);
    this.movingDevices.delete(s.device);
    // Moved: the directory names the new owner now. Not moved: no more waiting (the worker that
    // gets it refuses it as unknown, and the device resumes).
    for (const w of this.waiting.values()) if (w.sid === s.sid) w.until = 0;
    this.recheck();
  }

  /**
   * A release answered after its time ran out: the session left its old worker all the same, so it
   * is adopted now (by placement), rather than lost.
   */
  private adoptLate(s: MovingSession, r: MoveReport): void {
    if (r.t !== 'released' || r.bytes === null || this.stopping) return;
    const bytes = r.bytes;
    const to = place(this.policy, s.device, this.live());
    if (to < 0) return this.log.warn('reload: a late release, and no new worker to take it; its device resumes', { session: s.sid.slice(0, 8), device: s.device });
    this.setMoving(s, true);
    void this.ask(to, { t: 'adopt', id: 0, bytes }, this.limits.adoptMs).then((a) => {
      this.setMoving(s, false);
      if (a.t === 'adopted' && a.sid !== null) this.log.info('reload: a late release adopted', { session: s.sid.slice(0, 8), device: s.device, slot: to });
      else this.log.warn('reload: a late release not adopted; its device resumes', { session: s.sid.slice(0, 8), device: s.device, code: a.code });
    });
  }

  /**
   * Sends worker `slot` a release or adopt question and resolves with its answer (a failure report
   * after `ms`, or if it cannot be sent). `late`: what to do with an answer that comes after `ms`.
   */
  private ask(slot: number, m: ReleaseMessage | AdoptMessage, ms: number, late?: (r: MoveReport) => void): Promise<MoveReport> {
    const id = ++this.askSeq;
    const fail = (code: string, reason: string): MoveReport => (m.t === 'release' ? { t: 'released', id, bytes: null, code, reason } : { t: 'adopted', id, sid: null, code, reason });
    return new Promise<MoveReport>((resolve) => {
      const child = this.slots[slot]?.child;
      if (child === null || child === undefined || !child.connected) return resolve(fail(ErrorCode.CONNECT, `worker ${slot} is not running`));
      const t = setTimeout(() => {
        done(fail(ErrorCode.TIMEOUT, `worker ${slot} did not answer within ${ms} ms`));
        // Still listening while the worker runs: a late answer is not thrown away.
        if (late !== undefined)
          this.asks.set(id, {
            slot,
            fail,
            done: (r) => {
              this.asks.delete(id);
              late(r);
            },
          });
      }, ms);
      const done = (r: MoveReport): void => {
        clearTimeout(t);
        this.asks.delete(id);
        resolve(r);
      };
      this.asks.set(id, { slot, done, fail });
      child.send({ ...m, id }, (err: Error | null) => {
        if (err) done(fail(ErrorCode.CONNECT, `worker ${slot}: ${err.message}`));
      });
    });
  }

  /**
   * Stops the worker of `s` for good: its IPC channel is closed (the worker closes its gateway and
   * exits), SIGKILL after retireGraceMs. Resolves once it exited.
   */
  private async retire(s: Slot): Promise<void> {
    s.retiring = true;
    const c = s.child;
    if (c === null || c.exitCode !== null || c.signalCode !== null) {
      s.state = WorkerState.STOPPED;
      return;
    }
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    if (c.connected) c.disconnect();
    else c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), this.limits.retireGraceMs);
    await gone;
    clearTimeout(t);
  }

  /** Stops listening, closes connections not yet handed on, and stops the workers (SIGTERM, then SIGKILL after `graceMs`). */
  async close(graceMs = 5000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const p of [...this.pending]) this.forget(p, true);
    // Listening stops now. (close()'s callback is not waited for: Node calls it only once every
    // worker reported over IPC that it closed the sockets it was handed, which a worker that exited
    // never does; and waiting for it before stopping the workers would wait for their devices.)
    for (const s of this.servers) s.close();
    await Promise.all(
      this.slots.map(async (s) => {
        const c = s.child;
        if (c === null || c.exitCode !== null || c.signalCode !== null) {
          s.state = WorkerState.STOPPED;
          return;
        }
        const gone = new Promise<void>((r) => c.once('exit', () => r()));
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
        await gone;
        clearTimeout(t);
      }),
    );
    this.log.info('workers stopped', { handoffs: this.handoffCount, handoff_us: this.handoffCount === 0 ? undefined : Math.round(this.handoffUsTotal / this.handoffCount) });
  }
}
