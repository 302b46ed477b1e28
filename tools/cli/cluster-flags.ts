/**
 * The gateway's flags for a cluster on NATS (targets/host/gateway/cluster/): --cluster names the NATS
 * servers, --node this node (shared with the pair flags), --node-label and --node-service what the
 * label and service placement policies match, --placement the policy, --cluster-mode direct or relay,
 * --cluster-rebalance how many sessions a second this node hands a node that joins (0: none),
 * --cluster-device-subjects the devices' messages on NATS subjects (<prefix>.dev.<id>.up/.down).
 */
import * as os from 'node:os';
import { ErrorCode, hfError } from '../../firmware/errors';
import { formatTarget, parseTarget } from '../../firmware/mux';
import { checkClusterOptions, type ClusterOptions } from '../../targets/host/gateway/cluster/cluster-node';
import { placementPolicy } from '../../targets/host/gateway/placement/policies';
import type { Flag, Values } from './args';
import { labelsOf } from './common';

export const CLUSTER_FLAGS: Flag[] = [
  { name: 'cluster', meta: 'nats://HOST:PORT[,...]', help: 'join the cluster of gateways on these NATS servers (JetStream on): sessions are placed on nodes by their hello and relayed to their node' },
  { name: 'node-label', meta: 'KEY=VALUE', repeat: true, help: 'with --cluster: a label of this node (site=berlin): the label policy places devices of that site here' },
  {
    name: 'node-service',
    meta: 'NAME[=HOST:PORT[+HOST:PORT...]]',
    repeat: true,
    help: "with --cluster: a service this node reaches: the service policy places devices naming it (their service label) here; its targets, given, are behind this node: other nodes' devices forwarding to them are connected through it",
  },
  {
    name: 'cluster-mode',
    meta: 'direct|relay',
    help: "with --cluster: direct (default): devices are told to come to their session's node; relay: devices reach one address (a balancer), nodes relay to each other",
  },
  { name: 'cluster-prefix', meta: 'NAME', help: 'with --cluster: the NATS subject prefix, and the name of its streams and buckets (default holdfast): clusters on one NATS stay apart' },
  { name: 'cluster-replicas', type: 'number', help: "with --cluster: replicas of the session directory's bucket (default 1; 3 on a 3-server NATS cluster)" },
  {
    name: 'cluster-rebalance',
    meta: 'N',
    type: 'number',
    help: 'with --cluster: a node that joins is handed the sessions placement puts on it now, at most N a second from this node (default 50; 0: none)',
  },
  {
    name: 'cluster-device-subjects',
    type: 'bool',
    help: 'with --cluster: every device message is published on <prefix>.dev.<id>.up, and a NATS request on <prefix>.dev.<id>.down (header Hf-Msg-Id) sends one to the device, answered ok once its node holds it (give it on every node)',
  },
];

const CLUSTER_ONLY = ['node-label', 'node-service', 'cluster-mode', 'cluster-prefix', 'cluster-replicas', 'cluster-rebalance', 'cluster-device-subjects'];

/** The names of the cluster flags (what --workers refuses). */
export const CLUSTER_FLAG_NAMES = CLUSTER_FLAGS.map((f) => f.name);

/** --node-service NAME[=HOST:PORT[+HOST:PORT...]]: the service names and the targets behind this node. */
function servicesOf(list: string[]): { services: string[]; reach: string[] } {
  const services: string[] = [];
  const reach: string[] = [];
  for (const s of list) {
    const i = s.indexOf('=');
    const name = i < 0 ? s : s.slice(0, i);
    if (name === '') throw hfError(ErrorCode.OPTION, `--node-service ${JSON.stringify(s)}: the service needs a name`);
    services.push(name);
    if (i < 0) continue;
    for (const t of s.slice(i + 1).split('+')) {
      try {
        const { host, port } = parseTarget(t);
        reach.push(formatTarget(host, port));
      } catch (e) {
        throw hfError(ErrorCode.OPTION, `--node-service ${JSON.stringify(s)}: ${JSON.stringify(t)} is not HOST:PORT (${(e as Error).message})`, e);
      }
    }
  }
  return { services, reach };
}

/** The cluster the flags describe, or null without --cluster. HF_ERR_OPTION naming the flag otherwise. */
export function clusterOptionsOf(v: Values): ClusterOptions | null {
  if (v.cluster === undefined) {
    const stray = CLUSTER_ONLY.find((n) => v[n] !== undefined);
    if (stray !== undefined) throw hfError(ErrorCode.OPTION, `--${stray} needs --cluster nats://HOST:PORT`);
    return null;
  }
  const mode = v['cluster-mode'] ?? 'direct';
  if (mode !== 'direct' && mode !== 'relay') throw hfError(ErrorCode.OPTION, `--cluster-mode must be direct or relay, got ${JSON.stringify(mode)}`);
  const replicas = v['cluster-replicas'] as number | undefined;
  if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)) throw hfError(ErrorCode.OPTION, `--cluster-replicas must be 1..5, got ${replicas}`);
  const perSecond = v['cluster-rebalance'] as number | undefined;
  if (perSecond !== undefined && (!Number.isInteger(perSecond) || perSecond < 0 || perSecond > 10_000))
    throw hfError(ErrorCode.OPTION, `--cluster-rebalance must be 0..10000 sessions a second (0: none), got ${perSecond}`);
  const o: ClusterOptions = {
    servers: String(v.cluster),
    node:
      v.node === undefined
        ? os
            .hostname()
            .replace(/[^A-Za-z0-9_-]/g, '-')
            .slice(0, 64)
        : String(v.node),
    labels: labelsOf(v, 'node-label'),
    ...servicesOf((v['node-service'] as string[] | undefined) ?? []),
    placement: placementPolicy((v.placement as string | undefined) ?? 'hash'),
    mode,
    replicas,
    ...(perSecond === undefined ? {} : { rebalance: perSecond === 0 ? { enabled: false } : { perSecond } }),
    ...(v['cluster-device-subjects'] === true ? { deviceSubjects: true } : {}),
    ...(v['cluster-prefix'] === undefined ? {} : { prefix: String(v['cluster-prefix']), bucket: `${v['cluster-prefix']}_sessions` }),
  };
  checkClusterOptions(o);
  return o;
}
