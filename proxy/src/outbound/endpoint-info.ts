// What discovery says runs at an endpoint: the SPIFFE ID outbound mTLS must verify (meshed pods
// whose PeerAuthentication for that port is not DISABLE) and the workload, for telemetry.
import { appOf, versionOf } from '../telemetry/types.js';
import { workloadFromPodName, type MeshEndpoint, type MeshPod, type MeshSnapshot, type ServicePort } from '@tsmesh/common';
import { spiffeIdFor } from '../identity/index.js';
import { compilePolicies, peerAuthenticationsOf, type InboundMtlsPolicy, type PeerAuthenticationPolicy } from '../policy/index.js';
import type { UpstreamEndpoint } from '../upstream/selector.js';

/** Identity and workload of an endpoint from discovery: mTLS only to meshed pods whose policy is not DISABLE. */
export function endpointInfo(trustDomain: string, rootNamespace: string): (snapshot: MeshSnapshot, e: MeshEndpoint, port: ServicePort) => Pick<UpstreamEndpoint, 'identity' | 'peer'> {
  // Called for every endpoint of every Service on each mesh update: the pod index, the parsed
  // PeerAuthentications and each pod's compiled policy are built once per snapshot, not per endpoint.
  interface PerSnapshot {
    readonly pods: Map<string, MeshPod>;
    readonly policies: readonly PeerAuthenticationPolicy[];
    readonly compiled: Map<string, InboundMtlsPolicy>;
  }
  const memo = new WeakMap<MeshSnapshot, PerSnapshot>();
  return (snapshot, e) => {
    let per = memo.get(snapshot);
    if (!per) {
      per = { pods: new Map(snapshot.pods.map((p) => [`${p.namespace}/${p.name}`, p])), policies: peerAuthenticationsOf(snapshot).policies, compiled: new Map() };
      memo.set(snapshot, per);
    }
    const pod = (e.pod && per.pods.get(`${e.pod.namespace}/${e.pod.name}`)) || snapshot.podByIp(e.address);
    if (!pod) return {};
    const identity = spiffeIdFor(trustDomain, pod.namespace, pod.serviceAccount);
    const peer = { workload: workloadFromPodName(pod.name), namespace: pod.namespace, identity, app: appOf(pod.labels), version: versionOf(pod.labels) };
    if (!pod.meshed) return { peer };
    const key = `${pod.namespace}/${pod.name}`;
    let policy = per.compiled.get(key);
    if (!policy) {
      policy = compilePolicies(per.policies, { namespace: pod.namespace, labels: pod.labels }, { rootNamespace });
      per.compiled.set(key, policy);
    }
    return policy.modeFor(e.port) === 'DISABLE' ? { peer } : { identity, peer };
  };
}
