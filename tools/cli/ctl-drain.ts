/**
 * `holdfast ctl drain NODE --cluster nats://HOST:PORT[,...]`: asks cluster node NODE (over NATS, on
 * its control subject) to hand every session to the other nodes, and waits for its answer: one line
 * `drained NODE: N sessions moved, M stay, in T ms`. Exit 0 when none stayed, 1 otherwise (or when
 * the node does not answer: HF_ERR_NATS).
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import { decodeClusterMessage, encodeClusterMessage } from '../../targets/host/gateway/cluster/cluster-messages';
import { checkNodeName } from '../../targets/host/gateway/cluster/members';
import { type Flag, parseArgs, usage } from './args';
import { EXIT } from './run';

const FLAGS: Flag[] = [
  { name: 'cluster', meta: 'nats://HOST:PORT[,...]', help: "the cluster's NATS servers (required)" },
  { name: 'cluster-prefix', meta: 'NAME', help: "the cluster's subject prefix (default holdfast)" },
  { name: 'timeout-ms', type: 'number', help: 'how long to wait for the node to finish, ms (default 120000)' },
];

export async function ctlDrain(argv: string[]): Promise<number> {
  const { values: v, help, rest } = parseArgs(argv, FLAGS);
  if (help) {
    process.stdout.write(
      usage('holdfast ctl drain NODE --cluster nats://HOST:PORT', 'Hands every session of cluster node NODE to the other nodes (a rolling upgrade), and waits until it is done.', FLAGS),
    );
    return EXIT.OK;
  }
  if (rest.length !== 1) throw hfError(ErrorCode.OPTION, 'ctl drain takes one node name: holdfast ctl drain NODE --cluster nats://HOST:PORT');
  const node = checkNodeName(rest[0], 'NODE');
  if (v.cluster === undefined) throw hfError(ErrorCode.OPTION, 'ctl drain needs --cluster nats://HOST:PORT');
  const prefix = (v['cluster-prefix'] as string | undefined) ?? 'holdfast';
  const timeout = (v['timeout-ms'] as number | undefined) ?? 120_000;
  const { connect } = await import('@nats-io/transport-node');
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: String(v.cluster).split(','), timeout: 5000 });
  } catch (e) {
    throw hfError(ErrorCode.NATS, `cannot reach NATS at ${String(v.cluster)}: ${(e as Error).message}`, e);
  }
  try {
    let reply: Uint8Array;
    try {
      reply = (await nc.request(`${prefix}.node.${node}.ctl`, encodeClusterMessage({ t: 'drain' }), { timeout })).data;
    } catch (e) {
      throw hfError(ErrorCode.NATS, `node ${node} did not answer the drain: ${(e as Error).message}`, e);
    }
    const a = decodeClusterMessage(reply);
    if (a.t === 'err') throw hfError(a.code as typeof ErrorCode.NODE, a.message);
    if (a.t !== 'drained') throw hfError(ErrorCode.PEER, `node ${node} answered ${a.t}`);
    process.stdout.write(`drained ${node}: ${a.moved} sessions moved, ${a.failed} stay, in ${a.ms} ms (one handoff: p50 ${a.p50} ms, p99 ${a.p99} ms)\n`);
    return a.failed === 0 ? EXIT.OK : EXIT.FAILED;
  } finally {
    await nc.close();
  }
}
