/** Every system the bench knows, by name, in the order the results list them. */
import type { Adapter } from '../adapter';
import { eioPolling, eioPollingNoAgent, eioWebsocket } from './eio';
import { holdfastHttp, holdfastHttpWide, holdfastTcp, holdfastTcpWide } from './holdfast';
import { mqttQos0, mqttQos1 } from './mqtt';
import { rawTcp } from './raw-tcp';
import { ws } from './ws';

export const ADAPTERS: readonly Adapter[] = [holdfastHttp, holdfastTcp, rawTcp, ws, eioPolling, eioPollingNoAgent, eioWebsocket, mqttQos0, mqttQos1, holdfastHttpWide, holdfastTcpWide];

export function adapterNamed(name: string): Adapter {
  const a = ADAPTERS.find((x) => x.name === name);
  if (a === undefined) throw new Error(`unknown system ${JSON.stringify(name)}; known: ${ADAPTERS.map((x) => x.name).join(', ')}`);
  return a;
}
