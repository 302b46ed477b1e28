/**
 * `hal/Management` on a Linux board: the host target's (targets/host/manage.ts: the config file,
 * programs, files, restart through the supervisor) over this board's readings (/proc, /sys) and its
 * GPIO (libgpiod's tools), reported as target "pi".
 */
import { HostManagement, type HostManagementOptions } from '../host/manage';
import type { PiPlatform } from './platform';

export function piManagement(platform: PiPlatform, opts: Omit<HostManagementOptions, 'system' | 'gpio' | 'target'>): HostManagement {
  return new HostManagement({ ...opts, system: platform.system, gpio: platform.gpio, target: 'pi' });
}
