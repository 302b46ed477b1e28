/**
 * What a board can say about itself (the source document's Figure 8: processor, memory, permanent
 * storage, network interface). Every reading comes from the board; one it cannot give throws a
 * `HalError` (./errors) with code HF_ERR_UNSUPPORTED naming what is missing — never a made-up value.
 */
export interface NetInterface {
  name: string;
  /** Hardware address, lowercase with colons, or null when the interface has none (loopback). */
  mac: string | null;
  /** Addresses with prefix length, e.g. "192.168.1.20/24", "fe80::1/64". */
  addresses: string[];
  /** Administratively and operationally up. */
  up: boolean;
}

export interface SystemInfo {
  /** Board model: the device tree's model on ARM boards, DMI vendor + product on x86. */
  model(): string;
  /** CPU temperature, degrees Celsius. */
  cpuTemperature(): number;
  /** Memory in bytes: total, and available to new work (MemAvailable). */
  memory(): { totalBytes: number; availableBytes: number };
  /** Load averages over 1, 5 and 15 minutes. */
  load(): [number, number, number];
  /** Seconds since boot. */
  uptimeSeconds(): number;
  /** Size and free space of the filesystem holding `path`, bytes (free: available to unprivileged users). */
  disk(path: string): { totalBytes: number; freeBytes: number };
  /** Network interfaces. */
  interfaces(): NetInterface[];
}
