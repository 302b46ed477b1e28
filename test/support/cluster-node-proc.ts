/**
 * A cluster node alone in a process, for tests that kill one with SIGKILL: joins the cluster on
 * argv[2] (NATS servers) as argv[3] (node name), prints "ready" and then lives until killed.
 */
import { ClusterNode } from '../../targets/host/gateway/cluster/cluster-node';

void (async () => {
  const node = await ClusterNode.start(
    { servers: process.argv[2], node: process.argv[3], heartbeatMs: 100, misses: 3 },
    {
      url: '',
      tcp: '',
      sessions: () => 0,
      adopt: async () => 0,
      relayed: async () => ({ t: 'answer', status: 200, code: '', body: new Uint8Array(0) }),
      relayTimeoutMs: 1000,
      drain: async () => ({ t: 'drained', moved: 0, failed: 0, ms: 0, p50: 0, p99: 0 }),
    },
  );
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
})();
