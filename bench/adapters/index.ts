/**
 * Every system the bench knows, by name, in the order they run and the results list them (each TLS
 * row right after its plain row: run next to each other, the two see the same machine).
 */
import type { Adapter } from '../adapter';
import { eioPolling, eioPollingNoAgent, eioWebsocket } from './eio';
import { holdfastHttp, holdfastHttpTls, holdfastHttpWide, holdfastTcp, holdfastTcpTls, holdfastTcpWide } from './holdfast';
import { mqttQos0, mqttQos0Tls, mqttQos1, mqttQos1Tls } from './mqtt';
import { rawTcp, rawTcpTls } from './raw-tcp';
import { ws, wsTls } from './ws';

export const ADAPTERS: readonly Adapter[] = [
  holdfastHttp,
  holdfastHttpTls,
  holdfastTcp,
  holdfastTcpTls,
  rawTcp,
  rawTcpTls,
  ws,
  wsTls,
  eioPolling,
  eioPollingNoAgent,
  eioWebsocket,
  mqttQos0,
  mqttQos0Tls,
  mqttQos1,
  mqttQos1Tls,
  holdfastHttpWide,
  holdfastTcpWide,
];

/** The TLS rows (each names its plain system in `plain`). */
export const TLS_ADAPTERS: readonly Adapter[] = ADAPTERS.filter((a) => a.plain !== undefined);

export function adapterNamed(name: string): Adapter {
  const a = ADAPTERS.find((x) => x.name === name);
  if (a === undefined) throw new Error(`unknown system ${JSON.stringify(name)}; known: ${ADAPTERS.map((x) => x.name).join(', ')}`);
  return a;
}
