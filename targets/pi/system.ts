/**
 * `hal/SystemInfo` read straight from the Linux kernel's files, as a board has them (the source
 * document's Figure 8: processor and memory, permanent storage, network interface):
 *
 *   model          /proc/device-tree/model (ARM boards; NUL-terminated), else DMI
 *                  /sys/class/dmi/id/{sys_vendor,product_name,product_version} (x86)
 *   cpuTemperature /sys/class/thermal/thermal_zone<N>/{type,temp} (millidegrees Celsius)
 *   memory         /proc/meminfo MemTotal, MemAvailable (kB, which the kernel means as KiB)
 *   load           /proc/loadavg          uptime  /proc/uptime
 *   disk           statfs(2) (./disk.ts)
 *   interfaces     /sys/class/net/<if>/{address,type,flags,operstate,carrier,ifindex}, plus the
 *                  addresses with prefix lengths from os.networkInterfaces()
 *
 * Every path is under `root` (default '/'), so a test can point the reader at a fake tree. A reading
 * the files cannot give throws HfError HF_ERR_UNSUPPORTED naming the file it looked for; nothing is
 * ever estimated or made up.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../firmware/errors';
import type { NetInterface, SystemInfo } from '../../hal/system';
import { diskUsage, nodeStatfs, type StatfsFn } from './disk';

/** What os.networkInterfaces() returns (injectable: a fake tree has no live addresses). */
export type AddressSource = () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;

export interface LinuxSystemOptions {
  /** Directory that stands for '/' (default '/'): /proc, /sys are read under it. */
  root?: string;
  /** Source of interface addresses (default os.networkInterfaces). */
  addresses?: AddressSource;
  /** statfs for disk() (default fs.statfsSync; null: as on a Node without it). */
  statfs?: StatfsFn | null;
}

/** Temperatures outside this range (°C) are not a CPU's: a zone giving one is passed over. */
export const PLAUSIBLE_CELSIUS: readonly [number, number] = [-40, 150];

/** Thermal zone types that name the processor or SoC (Raspberry Pi, Rockchip, Allwinner, Amlogic, Intel, AMD). */
const CPU_ZONE = /cpu|soc|x86_pkg_temp|coretemp|k10temp|bcm2835/i;

/** DMI placeholders firmware leaves in unset fields: not a model. */
const DMI_PLACEHOLDER =
  /^(|to be filled by o\.?e\.?m\.?|not specified|not applicable|none|default string|system (product name|version|manufacturer)|o\.?e\.?m\.?|n\/a|unknown|0|1\.0|x\.x+|0123456789|123456789)$/i;

const IFF_UP = 0x1;
const ARPHRD_LOOPBACK = 772;

export class LinuxSystem implements SystemInfo {
  readonly root: string;
  private readonly addresses: AddressSource;
  private readonly statfs: StatfsFn | null;

  constructor(opts: LinuxSystemOptions = {}) {
    const root = opts.root ?? '/';
    if (typeof root !== 'string' || !path.isAbsolute(root)) throw hfError(ErrorCode.OPTION, `root must be an absolute path, got ${JSON.stringify(root)}`);
    if (opts.addresses !== undefined && typeof opts.addresses !== 'function') throw hfError(ErrorCode.OPTION, 'addresses must be a function like os.networkInterfaces');
    this.root = path.resolve(root);
    this.addresses = opts.addresses ?? os.networkInterfaces;
    this.statfs = opts.statfs === undefined ? nodeStatfs : opts.statfs;
  }

  /** `rel` ('/proc/meminfo') under the root. */
  file(rel: string): string {
    return path.join(this.root, rel);
  }

  /**
   * The device tree's model ("Raspberry Pi 4 Model B Rev 1.4") on ARM boards; on x86, DMI vendor and
   * product ("HP t630 Thin Client", "LENOVO 10T7S0XN00 ThinkCentre M720q"), firmware placeholders
   * ("To be filled by O.E.M.") left out.
   */
  model(): string {
    const dt = readMaybe(this.file('/proc/device-tree/model')) ?? readMaybe(this.file('/sys/firmware/devicetree/base/model'));
    if (dt !== null) {
      const m = dt.replace(/\0+$/, '').trim();
      if (m !== '') return m;
    }
    const dmi = (f: string): string => {
      const v = (readMaybe(this.file(`/sys/class/dmi/id/${f}`)) ?? '').trim().replace(/\s+/g, ' ');
      return DMI_PLACEHOLDER.test(v) ? '' : v;
    };
    const vendor = dmi('sys_vendor');
    const product = dmi('product_name');
    const version = dmi('product_version');
    // HP puts the vendor in the product name ("HP t630 Thin Client"); Lenovo puts the model name in
    // product_version ("ThinkCentre M720q") and a machine type in product_name ("10T7S0XN00"). A
    // version without a letter ("1.0", "2") is a revision, not part of the name.
    const parts = [product];
    if (/[a-z]/i.test(version) && !product.toLowerCase().includes(version.toLowerCase())) parts.push(version);
    let m = parts.filter((p) => p !== '').join(' ');
    if (m === '') {
      throw hfError(ErrorCode.UNSUPPORTED, `model: neither ${this.file('/proc/device-tree/model')} nor DMI ${this.file('/sys/class/dmi/id/product_name')} (or product_version) names this board`);
    }
    if (vendor !== '' && !m.toLowerCase().startsWith(vendor.toLowerCase())) m = `${vendor} ${m}`;
    return m;
  }

  /**
   * Degrees Celsius from the first thermal zone whose type names the CPU or SoC (cpu-thermal,
   * x86_pkg_temp, soc-thermal, ...), else from the first zone that gives a reading. A zone that cannot
   * be read (some give EINVAL or ENODATA while their device sleeps) or gives a value outside
   * -40..150 °C is passed over.
   */
  cpuTemperature(): number {
    const dir = this.file('/sys/class/thermal');
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => /^thermal_zone\d+$/.test(n));
    } catch (e) {
      throw hfError(ErrorCode.UNSUPPORTED, `cpu temperature: no ${dir} (${errCode(e)})`, e);
    }
    const zones = names.map((n) => ({ n, num: Number(n.slice('thermal_zone'.length)), type: (readMaybe(path.join(dir, n, 'type')) ?? '').trim() })).sort((a, b) => a.num - b.num);
    const ordered = [...zones.filter((z) => CPU_ZONE.test(z.type)), ...zones.filter((z) => !CPU_ZONE.test(z.type))];
    const passed: string[] = [];
    for (const z of ordered) {
      const raw = readMaybe(path.join(dir, z.n, 'temp'));
      const t = raw === null ? NaN : parseIntStrict(raw.trim());
      const c = t / 1000;
      if (Number.isFinite(c) && c >= PLAUSIBLE_CELSIUS[0] && c <= PLAUSIBLE_CELSIUS[1]) return c;
      passed.push(`${z.n}(${z.type || '?'}): ${raw === null ? 'unreadable' : JSON.stringify(raw.trim())}`);
    }
    throw hfError(ErrorCode.UNSUPPORTED, `cpu temperature: no readable thermal zone in ${dir}/thermal_zone*/temp${passed.length ? ` (${passed.join('; ')})` : ''}`);
  }

  /** MemTotal and MemAvailable from /proc/meminfo, in bytes. */
  memory(): { totalBytes: number; availableBytes: number } {
    const file = this.file('/proc/meminfo');
    const fields = parseMeminfo(readOrUnsupported('memory', file));
    const total = fields.get('MemTotal');
    const avail = fields.get('MemAvailable');
    if (total === undefined) throw hfError(ErrorCode.UNSUPPORTED, `memory: no MemTotal in ${file}`);
    if (avail === undefined) throw hfError(ErrorCode.UNSUPPORTED, `memory: no MemAvailable in ${file} (a kernel older than 3.14)`);
    if (avail > total) throw hfError(ErrorCode.UNSUPPORTED, `memory: MemAvailable ${avail} kB > MemTotal ${total} kB in ${file}`);
    return { totalBytes: total * 1024, availableBytes: avail * 1024 };
  }

  /** The three load averages of /proc/loadavg. */
  load(): [number, number, number] {
    const file = this.file('/proc/loadavg');
    const text = readOrUnsupported('load', file);
    // "0.52 0.58 0.59 1/389 12345\n": 1, 5, 15 minutes, runnable/total tasks, last pid.
    const m = /^(\d+\.\d+) (\d+\.\d+) (\d+\.\d+) \d+\/\d+ \d+\s*$/.exec(text);
    if (m === null) throw hfError(ErrorCode.UNSUPPORTED, `load: ${file} is not in the loadavg format: ${JSON.stringify(text.slice(0, 80))}`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  }

  /** Seconds since boot: the first number of /proc/uptime. */
  uptimeSeconds(): number {
    const file = this.file('/proc/uptime');
    const text = readOrUnsupported('uptime', file);
    // "12345.67 45678.90\n": seconds up, seconds all CPUs spent idle.
    const m = /^(\d+(?:\.\d+)?) \d+(?:\.\d+)?\s*$/.exec(text);
    if (m === null || !(Number(m[1]) > 0)) throw hfError(ErrorCode.UNSUPPORTED, `uptime: ${file} is not in the uptime format: ${JSON.stringify(text.slice(0, 80))}`);
    return Number(m[1]);
  }

  /** The filesystem holding `p` (a real path: statfs does not go through `root`). */
  disk(p: string): { totalBytes: number; freeBytes: number } {
    return diskUsage(p, this.statfs);
  }

  /**
   * Every entry of /sys/class/net, in ifindex order (as `ip link` lists them), down ones included.
   * up: IFF_UP in `flags` and operstate "up" — or "unknown" with carrier 1, which is what drivers that
   * do not track it report (loopback, tun). mac: `address` unless the interface is a loopback or the
   * address is all zeros. addresses: from os.networkInterfaces(), which lists only interfaces that
   * are up and running.
   */
  interfaces(): NetInterface[] {
    const dir = this.file('/sys/class/net');
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (e) {
      throw hfError(ErrorCode.UNSUPPORTED, `interfaces: no ${dir} (${errCode(e)})`, e);
    }
    let live: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
    try {
      live = this.addresses();
    } catch (e) {
      throw hfError(ErrorCode.UNSUPPORTED, `interfaces: os.networkInterfaces() failed (${errCode(e)})`, e);
    }
    const out: { index: number; nif: NetInterface }[] = [];
    for (const name of names) {
      const d = path.join(dir, name);
      if (!isDir(d)) continue; // bonding_masters and the like are files, not interfaces
      const type = parseIntStrict((readMaybe(path.join(d, 'type')) ?? '').trim());
      const flags = parseInt((readMaybe(path.join(d, 'flags')) ?? '').trim(), 16);
      const oper = (readMaybe(path.join(d, 'operstate')) ?? '').trim();
      const carrier = (readMaybe(path.join(d, 'carrier')) ?? '').trim(); // EINVAL while down
      const index = parseIntStrict((readMaybe(path.join(d, 'ifindex')) ?? '').trim());
      const addr = (readMaybe(path.join(d, 'address')) ?? '').trim().toLowerCase();
      const mac = type !== ARPHRD_LOOPBACK && /^[0-9a-f]{2}(:[0-9a-f]{2})+$/.test(addr) && /[1-9a-f]/.test(addr) ? addr : null;
      const up = Number.isFinite(flags) && (flags & IFF_UP) !== 0 && (oper === 'up' || (oper === 'unknown' && carrier === '1'));
      out.push({ index: Number.isFinite(index) ? index : Infinity, nif: { name, mac, addresses: addressesOf(live[name]), up } });
    }
    out.sort((a, b) => a.index - b.index || (a.nif.name < b.nif.name ? -1 : a.nif.name > b.nif.name ? 1 : 0));
    return out.map((o) => o.nif);
  }
}

/** "address/prefix" for each of os.networkInterfaces()'s entries of one interface. */
export function addressesOf(infos: os.NetworkInterfaceInfo[] | undefined): string[] {
  const out: string[] = [];
  for (const i of infos ?? []) {
    const cidr = i.cidr ?? (prefixOf(i.netmask) === null ? null : `${i.address}/${prefixOf(i.netmask)}`);
    if (cidr !== null && !out.includes(cidr)) out.push(cidr);
  }
  return out;
}

/** Prefix length of a netmask ("255.255.255.0" -> 24, "ffff:ffff::" -> 32), null if not contiguous. */
export function prefixOf(netmask: string): number | null {
  let bits = '';
  if (netmask.includes('.')) {
    const parts = netmask.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
    bits = parts.map((p) => p.toString(2).padStart(8, '0')).join('');
  } else {
    const [head, tail] = netmask.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
    bits = groups.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
  }
  if (!/^1*0*$/.test(bits)) return null;
  const zero = bits.indexOf('0');
  return zero === -1 ? bits.length : zero;
}

/** /proc/meminfo as name -> kB ("MemTotal:        3884328 kB" -> MemTotal 3884328). */
export function parseMeminfo(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const r = /^([A-Za-z0-9_()]+):\s+(\d+)(?: kB)?\s*$/.exec(line);
    if (r !== null) m.set(r[1], Number(r[2]));
  }
  return m;
}

function parseIntStrict(s: string): number {
  return /^-?\d+$/.test(s) ? Number(s) : NaN;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** The file's text, or null when it is missing or unreadable. */
function readMaybe(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function readOrUnsupported(what: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw hfError(ErrorCode.UNSUPPORTED, `${what}: cannot read ${file} (${errCode(e)})`, e);
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
