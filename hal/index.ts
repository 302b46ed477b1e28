/**
 * The hardware-abstraction layer: interfaces only. `firmware/` talks to the world through these;
 * `targets/host`, `targets/pi` and `targets/sim` implement them.
 */
export type { Clock, TimerHandle } from './clock';
export type { Storage } from './storage';
export type { Log } from './log';
export type { Entropy } from './entropy';
export type { Crypto } from './crypto';
export type { SystemInfo, NetInterface } from './system';
export type { Gpio, GpioChip } from './gpio';
export type { Platform, StorageOptions } from './platform';
export type { HalError, HalErrorCode } from './errors';
export type { Management, RunRequest, RunResult } from './management';
