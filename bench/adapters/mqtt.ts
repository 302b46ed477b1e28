/**
 * MQTT: an aedes broker on a net server (the gateway application lives inside the broker: it takes
 * `d/<id>/c2s` with a server-side subscription and publishes `d/<id>/s2c` with aedes.publish, one hop
 * less than a separate application client), and the mqtt client (MQTT 3.1.1). TCP_NODELAY on both
 * ends (neither library sets it: without it QoS 1 round trips take ~80 ms). Client: clean: false with a
 * fixed clientId (a persistent session: the broker keeps its subscription and queues QoS 1 while it is
 * away), reconnectPeriod 100 ms, resubscribe and queueQoSZero at their defaults (true).
 *   mqtt-qos0  publish and subscribe at QoS 0
 *   mqtt-qos1  publish and subscribe at QoS 1 (PUBACK; the client resends unacknowledged on reconnect)
 * Flow control: the publish callback (QoS 0: written; QoS 1: PUBACK received; server side: aedes
 * processed it) releases the Window.
 * `mqtt-qos0-tls`, `mqtt-qos1-tls`: the same broker behind a tls.Server and the client connecting with
 * an `mqtts://` URL (mqtt.connect, which makes the TLS socket itself: setNoDelay once each connection
 * is up, as tls.connect ignores net's `noDelay` option), bench/tls.ts.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { type IClientOptions, MqttClient, connect as mqttConnect } from 'mqtt';
import type { Aedes, AedesPublishPacket } from 'aedes';
import { type Adapter, BaseConn, type ConnectOptions, type ListenOptions, Registry, type Server, listenLocal, within } from '../adapter';
import { TLS_SETTINGS, benchTls } from '../tls';

type QoS = 0 | 1;

/** The broker side of one client id: survives the client's reconnections, as a session does. */
class BrokerConn extends BaseConn {
  constructor(
    private readonly broker: Aedes,
    private readonly topic: string,
    private readonly qos: QoS,
  ) {
    super();
  }

  send(msg: Buffer): boolean {
    if (this.closed || this.window.full) return false;
    const n = msg.length;
    this.window.add(n);
    this.broker.publish({ cmd: 'publish', topic: this.topic, payload: msg, qos: this.qos, retain: false, dup: false }, () => this.window.done(n));
    return true;
  }

  /** A message the client published to its c2s topic. */
  arrived(m: Buffer): void {
    this.deliver(m);
  }

  async close(): Promise<void> {
    this.ended();
  }
}

class ClientConn extends BaseConn {
  constructor(
    private readonly client: MqttClient,
    private readonly topic: string,
    private readonly qos: QoS,
  ) {
    super();
    client.on('message', (_t: string, payload: Buffer) => this.deliver(payload));
    client.on('error', () => {});
    client.on('end', () => this.ended());
  }

  send(msg: Buffer): boolean {
    if (this.closed || this.window.full) return false;
    const n = msg.length;
    this.window.add(n);
    this.client.publish(this.topic, msg, { qos: this.qos }, () => this.window.done(n));
    return true;
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => this.client.end(false, {}, () => resolve()));
    await within(done, timeoutMs, 'mqtt close').catch(() => this.client.end(true));
    this.ended();
  }
}

function mqtt(name: string, qos: QoS, secure: boolean): Adapter {
  return {
    name,
    settings: `aedes broker (app inside it) + mqtt client v3.1.1, QoS ${qos} both ways, setNoDelay both ends, clean: false, reconnectPeriod: 100${secure ? `; tls.Server + mqtts:// URL; ${TLS_SETTINGS}` : ''}`,
    reconnects: true,
    windowed: true,
    plain: secure ? `mqtt-qos${qos}` : undefined,
    async listen(_opts: ListenOptions): Promise<Server> {
      // aedes is an ES module (and needs Node >= 20): loaded when used.
      const { Aedes } = await import('aedes');
      const broker = await Aedes.createBroker();
      const conns = new Registry<BrokerConn>();
      const byId = new Map<string, BrokerConn>();
      const connOf = (id: string): BrokerConn => {
        let c = byId.get(id);
        if (c === undefined) {
          c = new BrokerConn(broker, `d/${id}/s2c`, qos);
          byId.set(id, c);
          conns.add(c);
        }
        return c;
      };
      broker.on('clientReady', (client) => connOf(client.id));
      await new Promise<void>((resolve) =>
        broker.subscribe(
          'd/+/c2s',
          (packet: AedesPublishPacket, cb: () => void) => {
            const id = packet.topic.slice(2, -4);
            connOf(id).arrived(packet.payload as Buffer);
            cb();
          },
          resolve,
        ),
      );
      const sockets = new Set<net.Socket>();
      const onSocket = (s: net.Socket): void => {
        s.setNoDelay(true);
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        broker.handle(s);
      };
      const server = secure ? tls.createServer({ cert: benchTls().cert, key: benchTls().key }, onSocket) : net.createServer(onSocket);
      const port = await listenLocal(server);
      return {
        ports: { main: port },
        onConnection: (fn) => conns.onConnection(fn),
        get size() {
          return broker.connectedClients;
        },
        close: () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy();
            broker.close(() => server.close(() => resolve()));
          }),
      };
    },
    async connect(ports, opts: ConnectOptions): Promise<ClientConn> {
      const build = (): net.Socket => {
        const s = net.createConnection({ host: '127.0.0.1', port: ports.main });
        s.setNoDelay(true);
        return s;
      };
      const common: IClientOptions = { clientId: opts.id, clean: false, reconnectPeriod: 100, protocolVersion: 4, keepalive: 60 };
      const client = secure ? mqttConnect(`mqtts://127.0.0.1:${ports.main}`, { ...common, ca: benchTls().ca }) : new MqttClient(build, common);
      // On every (re)connection, before the first PUBLISH: CONNACK has just arrived.
      if (secure) client.on('connect', () => (client.stream as net.Socket).setNoDelay(true));
      const conn = new ClientConn(client, `d/${opts.id}/c2s`, qos);
      try {
        await within(
          new Promise<void>((resolve, reject) => {
            client.once('connect', () => {
              client.subscribe(`d/${opts.id}/s2c`, { qos }, (err) => (err ? reject(err) : resolve()));
            });
            client.once('error', reject);
          }),
          opts.timeoutMs,
          `${name} connect`,
        );
      } catch (e) {
        client.end(true);
        throw e;
      }
      return conn;
    },
  };
}

export const mqttQos0 = mqtt('mqtt-qos0', 0, false);
export const mqttQos1 = mqtt('mqtt-qos1', 1, false);
export const mqttQos0Tls = mqtt('mqtt-qos0-tls', 0, true);
export const mqttQos1Tls = mqtt('mqtt-qos1-tls', 1, true);
