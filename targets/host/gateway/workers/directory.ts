/**
 * The main process's only state about sessions: which worker holds each open session (by session
 * id), and which worker holds each device's open session (so a new hello of a device that has one
 * goes where that session is, and the worker's acceptor replaces it there). Filled by the workers'
 * reports (worker.ts: `open` before the welcome is written, `end` when the session is dropped);
 * a worker's entries go when it exits. A reload adds slots (a new generation of workers): their
 * counts start at 0.
 */
export class Directory {
  private readonly bySid = new Map<string, { slot: number; device: string }>();
  private readonly byDevice = new Map<string, { slot: number; sid: string }>();
  private readonly counts: number[];

  constructor(slots: number) {
    this.counts = new Array<number>(slots).fill(0);
  }

  /** The worker slot of session `sid` (hex), or -1. */
  slotOfSession(sid: string): number {
    return this.bySid.get(sid)?.slot ?? -1;
  }

  /** The open sessions on `slot`: session id (hex) and device id of each. */
  sessionsOn(slot: number): { sid: string; device: string }[] {
    const out: { sid: string; device: string }[] = [];
    for (const [sid, s] of this.bySid) if (s.slot === slot) out.push({ sid, device: s.device });
    return out;
  }

  /** The worker slot of `device`'s open session, or -1. */
  slotOfDevice(device: string): number {
    return this.byDevice.get(device)?.slot ?? -1;
  }

  /** Open sessions on `slot`. */
  sessions(slot: number): number {
    return this.counts[slot] ?? 0;
  }

  /** All open sessions. */
  get size(): number {
    return this.bySid.size;
  }

  opened(slot: number, sid: string, device: string): void {
    if (this.bySid.has(sid)) return;
    this.bySid.set(sid, { slot, device });
    this.byDevice.set(device, { slot, sid });
    this.counts[slot] = (this.counts[slot] ?? 0) + 1;
  }

  ended(slot: number, sid: string, device: string): void {
    if (this.bySid.get(sid)?.slot !== slot) return;
    this.bySid.delete(sid);
    this.counts[slot]--;
    const d = this.byDevice.get(device);
    if (d !== undefined && d.sid === sid) this.byDevice.delete(device);
  }

  /** Worker `slot` is gone: so are its sessions. Returns how many. */
  dropSlot(slot: number): number {
    let n = 0;
    for (const [sid, s] of this.bySid) {
      if (s.slot !== slot) continue;
      this.bySid.delete(sid);
      n++;
    }
    for (const [dev, d] of this.byDevice) if (d.slot === slot) this.byDevice.delete(dev);
    this.counts[slot] = 0;
    return n;
  }
}
