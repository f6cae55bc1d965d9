// Inbound mTLS policy: which PeerAuthentication mode applies to a connection for (this workload,
// port), following the precedence port > workload > namespace > mesh, with UNSET inheriting.
import {
  DEFAULT_ROOT_NAMESPACE,
  describeObject,
  validateObject,
  type KubeObject,
  type MeshKind,
  type MeshKindValues,
  type MeshPeerAuthentication,
  type MeshSnapshot,
  type MtlsMode,
} from '@tsmesh/common';

/** A mode after inheritance: what the inbound side enforces. */
export type EffectiveMtlsMode = Exclude<MtlsMode, 'UNSET'>;

/** The mode when no policy decides. */
export const DEFAULT_MTLS_MODE: EffectiveMtlsMode = 'PERMISSIVE';
/** The control-plane namespace: a selector-less policy there is mesh-wide. */
export { DEFAULT_ROOT_NAMESPACE };

/** A validated PeerAuthentication with its creation time (ms since epoch), when known. */
export type PeerAuthenticationPolicy = MeshPeerAuthentication & { readonly createdAt?: number | undefined };

/** The workload a sidecar protects. */
export interface PolicyWorkload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PolicyOptions {
  /** Default `tsmesh-system`. */
  readonly rootNamespace?: string;
}

/** An object left out: `PeerAuthentication <namespace>/<name>` and why. */
export interface PolicyProblem {
  readonly object: string;
  readonly reason: string;
}

/** Which policy decided at each level (`namespace/name`), for the admin endpoints and logs. */
export interface PolicySources {
  readonly mesh: string | undefined;
  readonly namespace: string | undefined;
  readonly workload: string | undefined;
}

/** The policy of one workload, compiled: `modeFor` is a map lookup, cheap on every connection. */
export interface InboundMtlsPolicy {
  /** The mode for connections to `port` (the workload's own port, as the inbound side sees it). */
  modeFor(port: number): EffectiveMtlsMode;
  /** The mode of every port without a port-level override. */
  readonly defaultMode: EffectiveMtlsMode;
  /** Ports whose mode differs by a port-level override (UNSET overrides already resolved). */
  readonly portModes: ReadonlyMap<number, EffectiveMtlsMode>;
  readonly sources: PolicySources;
  /** PeerAuthentication objects of the snapshot that did not validate and were left out. */
  readonly problems: readonly PolicyProblem[];
}

/** A selector without labels selects nothing in particular: it is treated as no selector (as in Istio). */
function hasSelector(policy: MeshPeerAuthentication): policy is MeshPeerAuthentication & { selector: Record<string, string> } {
  return policy.selector !== undefined && Object.keys(policy.selector).length > 0;
}

function matches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([key, value]) => Object.hasOwn(labels, key) && labels[key] === value);
}

/**
 * The oldest policy wins a level: by creation time, a policy without one counting as newer than any
 * with one; ties by namespace then name. Deterministic whatever order the objects arrive in.
 */
function oldest(candidates: readonly PeerAuthenticationPolicy[]): PeerAuthenticationPolicy | undefined {
  let best: PeerAuthenticationPolicy | undefined;
  for (const candidate of candidates) {
    if (best === undefined || compareAge(candidate, best) < 0) best = candidate;
  }
  return best;
}

function compareAge(a: PeerAuthenticationPolicy, b: PeerAuthenticationPolicy): number {
  const at = a.createdAt ?? Number.POSITIVE_INFINITY;
  const bt = b.createdAt ?? Number.POSITIVE_INFINITY;
  if (at !== bt) return at < bt ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

interface Levels {
  readonly mesh: PeerAuthenticationPolicy | undefined;
  readonly namespace: PeerAuthenticationPolicy | undefined;
  readonly workload: PeerAuthenticationPolicy | undefined;
}

/**
 * The winning policy of each level for a workload:
 * - mesh: no selector, in the root namespace;
 * - namespace: no selector, in the workload's namespace (unless that is the root namespace);
 * - workload: a selector matching the workload's labels, in the workload's namespace (a selector
 *   policy in the root namespace selects only workloads of the root namespace).
 */
function selectLevels(policies: readonly PeerAuthenticationPolicy[], workload: PolicyWorkload, rootNamespace: string): Levels {
  const mesh: PeerAuthenticationPolicy[] = [];
  const namespace: PeerAuthenticationPolicy[] = [];
  const selected: PeerAuthenticationPolicy[] = [];
  for (const policy of policies) {
    if (hasSelector(policy)) {
      if (policy.namespace === workload.namespace && matches(policy.selector, workload.labels)) selected.push(policy);
    } else if (policy.namespace === rootNamespace) {
      mesh.push(policy);
    } else if (policy.namespace === workload.namespace) {
      namespace.push(policy);
    }
  }
  return { mesh: oldest(mesh), namespace: oldest(namespace), workload: oldest(selected) };
}

/** The first mode that is not UNSET, else the default. */
function inherit(...modes: ReadonlyArray<MtlsMode | undefined>): EffectiveMtlsMode {
  for (const mode of modes) if (mode !== undefined && mode !== 'UNSET') return mode;
  return DEFAULT_MTLS_MODE;
}

const label = (policy: PeerAuthenticationPolicy | undefined): string | undefined =>
  policy === undefined ? undefined : `${policy.namespace}/${policy.name}`;

/**
 * The mTLS mode a workload enforces on `port`. Precedence: the port-level mode of the workload-level
 * policy > the workload-level mode > the namespace-wide mode > the mesh-wide mode > PERMISSIVE; an
 * UNSET mode (or an absent policy) at one level inherits from the next. `portLevelMtls` counts only on
 * a workload-level (selector) policy, as in Istio: on a namespace- or mesh-wide policy it is ignored.
 * When several policies compete at one level, the oldest wins (creationTimestamp, then name) — even
 * if its mode is UNSET, in which case the level inherits.
 */
export function effectiveMtlsMode(
  policies: readonly PeerAuthenticationPolicy[],
  target: PolicyWorkload & { readonly port: number },
  options: PolicyOptions = {},
): EffectiveMtlsMode {
  const levels = selectLevels(policies, target, options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE);
  return inherit(levels.workload?.portLevelMtls.get(target.port), levels.workload?.mode, levels.namespace?.mode, levels.mesh?.mode);
}

/** Compiles the policy of one workload from a list of policies (see effectiveMtlsMode for the rules). */
export function compilePolicies(
  policies: readonly PeerAuthenticationPolicy[],
  workload: PolicyWorkload,
  options: PolicyOptions = {},
): InboundMtlsPolicy {
  return compileLevels(selectLevels(policies, workload, options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE), []);
}

function compileLevels(levels: Levels, problems: InboundMtlsPolicy['problems']): InboundMtlsPolicy {
  const defaultMode = inherit(levels.workload?.mode, levels.namespace?.mode, levels.mesh?.mode);
  const portModes = new Map<number, EffectiveMtlsMode>();
  for (const [port, mode] of levels.workload?.portLevelMtls ?? []) {
    const resolved = inherit(mode, defaultMode);
    if (resolved !== defaultMode) portModes.set(port, resolved);
  }
  return Object.freeze({
    modeFor: (port: number): EffectiveMtlsMode => portModes.get(port) ?? defaultMode,
    defaultMode,
    portModes,
    sources: Object.freeze({ mesh: label(levels.mesh), namespace: label(levels.namespace), workload: label(levels.workload) }),
    problems,
  });
}

/**
 * The PeerAuthentication policies of a snapshot (its `others`), validated, with their creation
 * times. Objects that do not validate are left out and reported in `problems`.
 */
export function peerAuthenticationsOf(snapshot: Pick<MeshSnapshot, 'others'>): {
  policies: PeerAuthenticationPolicy[];
  problems: PolicyProblem[];
} {
  return policiesOf(snapshot, 'PeerAuthentication', (value, raw) => ({ ...value, createdAt: creationTime(raw.metadata['creationTimestamp']) }));
}

/**
 * The objects of one policy kind in a snapshot (its `others`), validated and made into what the
 * compiler takes by `make`. Objects that do not validate are left out and reported in `problems`.
 */
export function policiesOf<K extends MeshKind, P>(
  snapshot: Pick<MeshSnapshot, 'others'>,
  kind: K,
  make: (value: MeshKindValues[K], raw: KubeObject) => P,
): { policies: P[]; problems: PolicyProblem[] } {
  const policies: P[] = [];
  const problems: PolicyProblem[] = [];
  for (const raw of snapshot.others) {
    if (raw.kind !== kind) continue;
    const checked = validateObject(raw);
    if (!checked.ok) {
      const { kind, namespace, objectName: name } = checked.error;
      problems.push({ object: describeObject({ kind, namespace, name }), reason: checked.error.reason });
      continue;
    }
    if (checked.value.kind === kind) policies.push(make(checked.value.value as MeshKindValues[K], raw));
  }
  return { policies, problems };
}

function creationTime(value: unknown): number | undefined {
  const time = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(time) ? time : undefined;
}

/**
 * The compiled inbound policy of `workload` in `snapshot`. Build it once per snapshot (and per
 * change of the workload's labels); `modeFor(port)` is then a map lookup.
 */
export function compileInboundPolicy(
  snapshot: Pick<MeshSnapshot, 'others'>,
  workload: PolicyWorkload,
  rootNamespace: string = DEFAULT_ROOT_NAMESPACE,
): InboundMtlsPolicy {
  const { policies, problems } = peerAuthenticationsOf(snapshot);
  return compileLevels(selectLevels(policies, workload, rootNamespace), Object.freeze(problems));
}

/**
 * This sidecar's workload in a snapshot: its pod's labels, found by namespace and name, else by IP.
 * Without a pod in the snapshot the workload has no labels (only namespace and mesh policies apply).
 */
export function workloadOf(
  snapshot: Pick<MeshSnapshot, 'pods' | 'podByIp'>,
  self: { readonly namespace: string; readonly podName?: string | undefined; readonly podIp?: string | undefined },
): PolicyWorkload {
  const pod =
    (self.podName === undefined ? undefined : snapshot.pods.find((p) => p.namespace === self.namespace && p.name === self.podName)) ??
    (self.podIp === undefined ? undefined : snapshot.podByIp(self.podIp));
  return { namespace: self.namespace, labels: pod !== undefined && pod.namespace === self.namespace ? pod.labels : {} };
}

/** The compiled inbound policy of the sidecar's own workload (workloadOf, then compileInboundPolicy). */
export function compileWorkloadPolicy(
  snapshot: Pick<MeshSnapshot, 'others' | 'pods' | 'podByIp'>,
  self: { readonly namespace: string; readonly podName?: string | undefined; readonly podIp?: string | undefined },
  rootNamespace: string = DEFAULT_ROOT_NAMESPACE,
): InboundMtlsPolicy {
  return compileInboundPolicy(snapshot, workloadOf(snapshot, self), rootNamespace);
}
