/**
 * `hal/SystemInfo` of a simulated board, a pure function of the virtual time and a seed: reading it
 * twice at the same virtual time gives the same answer, and the same seed gives the same board.
 *
 *   - workload: value noise — a seeded random level in [0, 1] every `workPeriodMs` of virtual time,
 *     eased between (cosine), so it wanders smoothly;
 *   - load: the kernel's load averages of `cores × workload`, sampled every 5 s and decayed with the
 *     kernel's 1, 5 and 15 minute factors (computed over the last 90 minutes, so earlier history
 *     weighs less than e^-6 in the 15-minute figure);
 *   - temperature: ambient + `heatC × utilisation`, the utilisation smoothed over 2 minutes (a heat
 *     sink's lag), plus ±0.25 °C of seeded noise, in millidegrees as a thermal zone gives it;
 *   - uptime: `uptimeAtStart` plus the virtual time since the system was made;
 *   - memory, disk, interface: from the options, as given.
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Clock } from '../../hal/clock';
import type { NetInterface, SystemInfo } from '../../hal/system';

export interface SimSystemOptions {
  /** Seed of the workload and the noise (default 1). */
  seed?: number;
  /** CPU cores (default 4): the load of a fully busy board. */
  cores?: number;
  /** Ambient temperature, °C (default 30). */
  ambientC?: number;
  /** Temperature rise at full load, °C (default 35). */
  heatC?: number;
  /** Virtual ms between two independent workload levels (default 60 000). */
  workPeriodMs?: number;
  /** Seconds the board had been up when the system was made (default 120). */
  uptimeAtStart?: number;
  /** Bytes (default 4 GiB total, 3 GiB available). */
  memory?: { totalBytes: number; availableBytes: number };
  /** Every path's filesystem, bytes (default 32 GB, 20 GB free). */
  disk?: { totalBytes: number; freeBytes: number };
  /** The one interface (default eth0, a locally administered MAC from the seed, 192.0.2.10/24). */
  iface?: NetInterface;
}

const SAMPLE_MS = 5000;
/** exp(-5 s / 1 min), exp(-5 s / 5 min), exp(-5 s / 15 min): the kernel's EXP_1, EXP_5, EXP_15. */
const DECAY = [Math.exp(-5 / 60), Math.exp(-5 / 300), Math.exp(-5 / 900)];
const TEMP_DECAY = Math.exp(-5 / 120);
const HISTORY_SAMPLES = (90 * 60 * 1000) / SAMPLE_MS;

export class SimSystem implements SystemInfo {
  private readonly clock: Clock;
  private readonly seed: number;
  private readonly cores: number;
  private readonly ambientC: number;
  private readonly heatC: number;
  private readonly workPeriodMs: number;
  private readonly uptimeAtStart: number;
  private readonly t0: number;
  private readonly mem: { totalBytes: number; availableBytes: number };
  private readonly diskSize: { totalBytes: number; freeBytes: number };
  private readonly iface: NetInterface;

  constructor(clock: Clock, opts: SimSystemOptions = {}) {
    const num = (name: string, v: unknown, lo: number, hi: number): number => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw hfError(ErrorCode.OPTION, `sim system ${name} must be a number in ${lo}..${hi}, got ${JSON.stringify(v)}`);
      return v;
    };
    this.clock = clock;
    this.seed = num('seed', opts.seed ?? 1, 0, 0xffffffff) >>> 0;
    this.cores = num('cores', opts.cores ?? 4, 1, 1024);
    this.ambientC = num('ambientC', opts.ambientC ?? 30, -39, 100);
    this.heatC = num('heatC', opts.heatC ?? 35, 0, 149 - this.ambientC);
    this.workPeriodMs = num('workPeriodMs', opts.workPeriodMs ?? 60_000, 1000, 86_400_000);
    this.uptimeAtStart = num('uptimeAtStart', opts.uptimeAtStart ?? 120, 0.001, 1e9);
    const m = opts.memory ?? { totalBytes: 4 * 2 ** 30, availableBytes: 3 * 2 ** 30 };
    num('memory.totalBytes', m.totalBytes, 1, Number.MAX_SAFE_INTEGER);
    num('memory.availableBytes', m.availableBytes, 0, m.totalBytes);
    const d = opts.disk ?? { totalBytes: 32e9, freeBytes: 20e9 };
    num('disk.totalBytes', d.totalBytes, 0, Number.MAX_SAFE_INTEGER);
    num('disk.freeBytes', d.freeBytes, 0, d.totalBytes);
    const iface = opts.iface ?? defaultIface(this.seed);
    if (typeof iface.name !== 'string' || iface.name === '') throw hfError(ErrorCode.OPTION, `sim system iface.name must be a non-empty string, got ${JSON.stringify(iface.name)}`);
    if (iface.mac !== null && !/^[0-9a-f]{2}(:[0-9a-f]{2})+$/.test(iface.mac))
      throw hfError(ErrorCode.OPTION, `sim system iface.mac must be lowercase hex with colons or null, got ${JSON.stringify(iface.mac)}`);
    for (const a of iface.addresses) if (!/^[0-9a-f.:]+\/\d{1,3}$/i.test(a)) throw hfError(ErrorCode.OPTION, `sim system iface address must be "address/prefix", got ${JSON.stringify(a)}`);
    this.mem = { totalBytes: m.totalBytes, availableBytes: m.availableBytes };
    this.diskSize = { totalBytes: d.totalBytes, freeBytes: d.freeBytes };
    this.iface = { name: iface.name, mac: iface.mac, addresses: [...iface.addresses], up: iface.up };
    this.t0 = clock.now();
  }

  model(): string {
    return 'holdfast sim board';
  }

  cpuTemperature(): number {
    const k = this.sampleAt(this.clock.now());
    let u = this.work(Math.max(0, k - HISTORY_SAMPLES) * SAMPLE_MS);
    for (let i = Math.max(0, k - HISTORY_SAMPLES) + 1; i <= k; i++) u = u * TEMP_DECAY + this.work(i * SAMPLE_MS) * (1 - TEMP_DECAY);
    const noise = (hash(this.seed ^ 0x7e3a, k) - 0.5) * 0.5;
    return Math.round((this.ambientC + this.heatC * u + noise) * 1000) / 1000;
  }

  memory(): { totalBytes: number; availableBytes: number } {
    return { ...this.mem };
  }

  load(): [number, number, number] {
    const k = this.sampleAt(this.clock.now());
    const first = Math.max(0, k - HISTORY_SAMPLES);
    const start = this.cores * this.work(first * SAMPLE_MS);
    const avg = [start, start, start];
    for (let i = first + 1; i <= k; i++) {
      const active = this.cores * this.work(i * SAMPLE_MS);
      for (let j = 0; j < 3; j++) avg[j] = avg[j] * DECAY[j] + active * (1 - DECAY[j]);
    }
    // /proc/loadavg shows two decimals.
    return [round2(avg[0]), round2(avg[1]), round2(avg[2])];
  }

  uptimeSeconds(): number {
    return this.uptimeAtStart + (this.clock.now() - this.t0) / 1000;
  }

  disk(path: string): { totalBytes: number; freeBytes: number } {
    if (typeof path !== 'string' || path === '') throw hfError(ErrorCode.OPTION, `disk: path must be a non-empty string, got ${JSON.stringify(path)}`);
    return { ...this.diskSize };
  }

  interfaces(): NetInterface[] {
    return [{ ...this.iface, addresses: [...this.iface.addresses] }];
  }

  /** The workload in [0, 1] at virtual time `t` ms. */
  work(t: number): number {
    const x = t / this.workPeriodMs;
    const i = Math.floor(x);
    const f = (1 - Math.cos((x - i) * Math.PI)) / 2;
    // Mostly light work with busy spells: squaring skews the levels toward 0.
    const a = hash(this.seed, i) ** 2;
    const b = hash(this.seed, i + 1) ** 2;
    return a + (b - a) * f;
  }

  private sampleAt(t: number): number {
    return Math.max(0, Math.floor(t / SAMPLE_MS));
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** A seeded hash of an integer to [0, 1) (a mulberry32 step of seed and n). */
function hash(seed: number, n: number): number {
  let t = (seed + Math.imul(n | 0, 0x9e3779b9) + 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function defaultIface(seed: number): NetInterface {
  const b = [0, 1, 2, 3, 4].map((i) => Math.floor(hash(seed ^ 0x3ac, i) * 256));
  const mac = ['02', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
  // The link-local address a kernel derives from that MAC (EUI-64: flip the U/L bit, insert ff:fe).
  const g = [b[0], (b[1] << 8) | 0xff, (0xfe << 8) | b[2], (b[3] << 8) | b[4]].map((x) => x.toString(16));
  return { name: 'eth0', mac, addresses: ['192.0.2.10/24', `fe80::${g.join(':')}/64`], up: true };
}
