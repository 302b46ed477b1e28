/** The devices a gateway lets in, and their keys: the `devices` option, as one lookup. */
import { ErrorCode, hfError } from '../../../firmware/errors';

/** Device id -> secret key (text keys are taken as their UTF-8 bytes). */
export type DeviceKeys = Record<string, string | Uint8Array> | Map<string, string | Uint8Array> | ((id: string) => Uint8Array | null);

const utf8 = new TextEncoder();

/** One lookup over any form of `devices`; keys are checked (non-empty) here, once. */
export function keyLookup(devices: DeviceKeys): (id: string) => Uint8Array | null {
  if (typeof devices === 'function') return devices;
  const m = new Map<string, Uint8Array>();
  const entries = devices instanceof Map ? [...devices.entries()] : Object.entries(devices);
  for (const [id, k] of entries) {
    const key = typeof k === 'string' ? utf8.encode(k) : k;
    if (!(key instanceof Uint8Array) || key.length === 0) throw hfError(ErrorCode.OPTION, `device ${JSON.stringify(id)}: key must be a non-empty string`);
    m.set(id, key);
  }
  return (id) => m.get(id) ?? null;
}
