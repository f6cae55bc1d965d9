// What `tsmesh analyze` looks at: the objects of a mesh (from files or a cluster), indexed by kind
// and name, and which kinds it could see at all, so that a rule never concludes "nothing matches"
// from objects it was never shown.
import type {
  KubeObject,
  MeshAuthorizationPolicy,
  MeshGateway,
  MeshHTTPLocalRateLimitPolicy,
  MeshKind,
  MeshNamespace,
  MeshObject,
  MeshPeerAuthentication,
  MeshPodDetails,
  MeshReferenceGrant,
  MeshRoute,
  MeshService,
} from '@tsmesh/common';

/** An object the mesh refuses (it fails validation): the control plane and the sidecar leave it out. */
export interface InvalidObject {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly reason: string;
}

export interface AnalysisInput {
  readonly objects: readonly MeshObject[];
  readonly invalid: readonly InvalidObject[];
  /**
   * The kinds whose every object is in `objects`. From a cluster: all of them. From files: the files
   * are the whole mesh for Services, routes, Gateways and policies (a sidecar reading them sees no
   * more), but Pods and Namespaces count only when the files hold at least one.
   */
  readonly complete: ReadonlySet<MeshKind>;
  /** The control-plane namespace: a selector-less policy there is mesh-wide. */
  readonly rootNamespace: string;
}

/** A PeerAuthentication with its creation time (ms), which decides between competing policies. */
export type PeerAuthentication = MeshPeerAuthentication & { readonly createdAt: number | undefined };

const key = (namespace: string, name: string): string => `${namespace}/${name}`;

export class MeshIndex {
  readonly services = new Map<string, MeshService>();
  readonly gateways = new Map<string, MeshGateway>();
  readonly namespaces = new Map<string, MeshNamespace>();
  readonly pods: MeshPodDetails[] = [];
  readonly routes: MeshRoute[] = [];
  readonly peerAuthentications: PeerAuthentication[] = [];
  readonly authorizationPolicies: MeshAuthorizationPolicy[] = [];
  readonly rateLimitPolicies: MeshHTTPLocalRateLimitPolicy[] = [];
  readonly grants: MeshReferenceGrant[] = [];
  /** The raw objects people annotate, for the annotation rule. */
  readonly annotated: Array<{ readonly kind: 'Pod' | 'Namespace' | 'Service'; readonly object: KubeObject }> = [];

  constructor(readonly input: AnalysisInput) {
    for (const entry of input.objects) {
      switch (entry.kind) {
        case 'Service':
          this.services.set(key(entry.value.namespace, entry.value.name), entry.value);
          this.annotated.push({ kind: 'Service', object: entry.object });
          break;
        case 'Gateway':
          this.gateways.set(key(entry.value.namespace, entry.value.name), entry.value);
          break;
        case 'Namespace':
          this.namespaces.set(entry.value.name, entry.value);
          this.annotated.push({ kind: 'Namespace', object: entry.object });
          break;
        case 'Pod':
          this.pods.push(entry.value);
          this.annotated.push({ kind: 'Pod', object: entry.object });
          break;
        case 'HTTPRoute':
        case 'GRPCRoute':
          this.routes.push(entry.value);
          break;
        case 'PeerAuthentication':
          this.peerAuthentications.push({ ...entry.value, createdAt: creationTime(entry.object) });
          break;
        case 'AuthorizationPolicy':
          this.authorizationPolicies.push(entry.value);
          break;
        case 'HTTPLocalRateLimitPolicy':
          this.rateLimitPolicies.push(entry.value);
          break;
        case 'ReferenceGrant':
          this.grants.push(entry.value);
          break;
        default:
          break;
      }
    }
  }

  get rootNamespace(): string {
    return this.input.rootNamespace;
  }

  /** Whether every object of `kind` is known (else a rule must not conclude that one is absent). */
  knows(kind: MeshKind): boolean {
    return this.input.complete.has(kind);
  }

  service(namespace: string, name: string): MeshService | undefined {
    return this.services.get(key(namespace, name));
  }

  gateway(namespace: string, name: string): MeshGateway | undefined {
    return this.gateways.get(key(namespace, name));
  }

  podsIn(namespace: string): MeshPodDetails[] {
    return this.pods.filter((pod) => pod.namespace === namespace);
  }
}

function creationTime(object: KubeObject): number | undefined {
  const value = object.metadata['creationTimestamp'];
  const at = typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isNaN(at) ? undefined : at;
}

/** `a, b, c (+2 more)`: a short list for one human line. */
export function shortList(items: readonly string[], max = 3): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} (+${items.length - max} more)` : shown;
}
