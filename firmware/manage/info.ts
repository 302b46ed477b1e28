/**
 * The `info` operation's readings: what `holdfast-device.js info` prints, through the HAL. A reading
 * the board cannot give is `{error, message}` with its code (HF_ERR_UNSUPPORTED, ...), never a
 * made-up value; the other readings are still given.
 */
import { isHfError } from '../errors';
import type { Gpio, GpioChip } from '../../hal/gpio';
import type { NetInterface, SystemInfo } from '../../hal/system';

/** A reading, or why the board could not give it. */
export type Reading<T> = T | { error: string; message: string };

export interface InfoReport {
  model: Reading<string>;
  cpu_temperature_c: Reading<number>;
  memory: Reading<{ totalBytes: number; availableBytes: number }>;
  load: Reading<[number, number, number]>;
  uptime_s: Reading<number>;
  disk: Reading<{ totalBytes: number; freeBytes: number }>;
  interfaces: Reading<NetInterface[]>;
  gpio_chips: Reading<GpioChip[]>;
  /** What the target adds (its name, the runtime's version, the processor architecture). */
  [extra: string]: unknown;
}

function reading<T>(fn: () => T): Reading<T> {
  try {
    return fn();
  } catch (e) {
    if (isHfError(e)) return { error: e.code, message: e.message };
    return { error: 'HF_ERR_OP_FAILED', message: String((e as Error)?.message ?? e) };
  }
}

/** Every reading of `system` and `gpio` (the filesystem of `disk` for the disk reading), plus `extra`. */
export function collectInfo(system: SystemInfo, gpio: Gpio, disk: string, extra: Record<string, unknown> = {}): InfoReport {
  return {
    ...extra,
    model: reading(() => system.model()),
    cpu_temperature_c: reading(() => system.cpuTemperature()),
    memory: reading(() => system.memory()),
    load: reading(() => system.load()),
    uptime_s: reading(() => system.uptimeSeconds()),
    disk: reading(() => system.disk(disk)),
    interfaces: reading(() => system.interfaces()),
    gpio_chips: reading(() => gpio.chips()),
  };
}
