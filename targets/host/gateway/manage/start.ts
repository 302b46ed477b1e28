/**
 * A gateway's management, started in one call: the store under `dataDir` opened (and migrated), the
 * devices of the devices file made known with the labels it gives them, the service (service.ts)
 * loading what a previous run left pending, and, with `listen`, the API and console (api.ts) on a
 * listener of their own. The gateway's 'session' handler gives each session to `attach`.
 */
import type { Log } from '../../../../hal/log';
import type { Mux } from '../../app/mux';
import { parseAddress } from '../../net/address';
import { type ConsoleOptions, ManageApi } from './api';
import { type ManagedSession, ManageService, type ManageServiceOptions } from './service';
import { ManageStore, type ManageStoreOptions } from './store';

export interface StartManagementOptions {
  /** The directory of `holdfast.db`. */
  dataDir: string;
  /** The console's listener "host:port", or null for none (jobs only through the library). */
  listen: string | null;
  log: Log;
  /** The devices of the devices file (each gets a row). */
  deviceIds: readonly string[];
  /** Labels the devices file gives, by device id: they replace what the store had for those devices. */
  labels?: Record<string, Record<string, string>>;
  store?: ManageStoreOptions;
  service?: ManageServiceOptions;
  console?: ConsoleOptions;
}

export interface Management {
  readonly store: ManageStore;
  readonly service: ManageService;
  /** The console, when listening. */
  readonly api: ManageApi | null;
  /** The console's URL ("http://host:port/"), or null. */
  readonly url: string | null;
  attach(session: ManagedSession, mux: Mux): void;
  close(): Promise<void>;
}

export async function startManagement(o: StartManagementOptions): Promise<Management> {
  const store = ManageStore.open(o.dataDir, o.store);
  let service: ManageService | null = null;
  let api: ManageApi | null = null;
  try {
    store.devices.ensure(o.deviceIds);
    for (const [id, labels] of Object.entries(o.labels ?? {})) store.devices.setLabels(id, labels);
    service = new ManageService(store, o.log, o.service);
    if (o.listen !== null) {
      api = new ManageApi(service, o.log, o.console);
      await api.listen(parseAddress(o.listen, '--console'));
    }
  } catch (e) {
    service?.close();
    store.close();
    throw e;
  }
  const svc = service;
  let closed = false;
  return {
    store,
    service: svc,
    api,
    url: api === null ? null : api.url,
    attach: (session, mux) => svc.attach(session, mux),
    close: async () => {
      if (closed) return;
      closed = true;
      await api?.close();
      svc.close();
      store.close();
    },
  };
}
