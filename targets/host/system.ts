/**
 * SystemInfo on a workstation (Linux, macOS, Windows), mostly from node:os:
 *   - memory: os.totalmem() / os.freemem(). On Linux libuv (1.43+, so every Node 18) reads freemem
 *     from MemAvailable in /proc/meminfo, the figure the HAL asks for;
 *   - load: os.loadavg(); Windows has no load average and Node answers [0, 0, 0] there, which is no
 *     reading, so it is HF_ERR_UNSUPPORTED on Windows;
 *   - uptime: os.uptime();
 *   - interfaces: os.networkInterfaces(), which lists only interfaces that are up and running (libuv
 *     skips the others), so each is `up`; a MAC of all zeros (loopback) is null;
 *   - model and CPU temperature: the pi target's readers of the device tree, DMI and
 *     /sys/class/thermal where those files exist (a Linux PC or a Pi used as a workstation), else
 *     HF_ERR_UNSUPPORTED. `${os.type()} ${os.arch()}` is not used as a model: it names the operating
 *     system and the instruction set, not the machine;
 *   - disk: statfs (../pi/disk.ts).
 */
import * as os from 'node:os';
import { ErrorCode, hfError } from '../../firmware/errors';
import type { NetInterface, SystemInfo } from '../../hal/system';
import { diskUsage } from '../pi/disk';
import { addressesOf, LinuxSystem } from '../pi/system';

const linux = new LinuxSystem();

export const hostSystem: SystemInfo = {
  model: () => linux.model(),
  cpuTemperature: () => linux.cpuTemperature(),
  memory: () => {
    const totalBytes = os.totalmem();
    const availableBytes = os.freemem();
    if (!(totalBytes > 0) || !(availableBytes >= 0) || availableBytes > totalBytes) throw hfError(ErrorCode.UNSUPPORTED, `memory: node:os gave total ${totalBytes}, free ${availableBytes}`);
    return { totalBytes, availableBytes };
  },
  load: () => {
    if (process.platform === 'win32') throw hfError(ErrorCode.UNSUPPORTED, 'load: Windows has no load average');
    const [a, b, c] = os.loadavg();
    return [a, b, c];
  },
  uptimeSeconds: () => {
    const s = os.uptime();
    if (!(s > 0)) throw hfError(ErrorCode.UNSUPPORTED, `uptime: node:os gave ${s}`);
    return s;
  },
  disk: (p) => diskUsage(p),
  interfaces: () => {
    let all: NodeJS.Dict<os.NetworkInterfaceInfo[]>;
    try {
      all = os.networkInterfaces();
    } catch (e) {
      throw hfError(ErrorCode.UNSUPPORTED, `interfaces: os.networkInterfaces() failed (${(e as Error).message})`, e);
    }
    return osInterfaces(all);
  },
};

/** os.networkInterfaces() as NetInterfaces (each up: Node lists only interfaces that are up and running). */
export function osInterfaces(all: NodeJS.Dict<os.NetworkInterfaceInfo[]>): NetInterface[] {
  const out: NetInterface[] = [];
  for (const [name, infos] of Object.entries(all)) {
    if (infos === undefined || infos.length === 0) continue;
    const mac = infos[0].mac.toLowerCase();
    out.push({ name, mac: /^[0-9a-f]{2}(:[0-9a-f]{2})+$/.test(mac) && /[1-9a-f]/.test(mac) ? mac : null, addresses: addressesOf(infos), up: true });
  }
  return out;
}
