/**
 * A cluster gateway alone in a process, for tests that kill one with SIGKILL: argv[2] is JSON
 * {servers, node, mode, prefix, bucket, placement, ackAfter, deviceSubjects}; it echoes every
 * message ("echo:" + text), prints "ready <http address>" and lives until killed (SIGTERM: a clean
 * stop).
 */
import { Gateway, type GatewayChannel } from '../../targets/host/gateway/gateway';

void (async () => {
  const o = JSON.parse(process.argv[2]);
  const gw = await Gateway.start({
    http: '127.0.0.1:0',
    devices: null,
    ackAfter: o.ackAfter ?? 'standby',
    cluster: {
      servers: o.servers,
      node: o.node,
      mode: o.mode,
      prefix: o.prefix,
      bucket: o.bucket,
      placement: o.placement ?? 'hash',
      heartbeatMs: o.heartbeatMs ?? 100,
      misses: o.misses ?? 5,
      deviceSubjects: o.deviceSubjects === true,
    },
  });
  gw.on('session', (ch: GatewayChannel) => ch.on('message', (m: Uint8Array) => ch.send(Buffer.from(`echo:${Buffer.from(m).toString()}`))));
  process.stdout.write(`ready ${gw.http?.address}\n`);
  process.on('SIGTERM', () => void gw.close().then(() => process.exit(0)));
})();
