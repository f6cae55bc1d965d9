// Typed views of the rendered objects the chart tests look into, and lookups over a rendering.
import type { KubeObject } from './helm.js';

export interface Container {
  readonly name: string;
  readonly image?: string;
  readonly args?: string[];
  readonly env?: { name: string; value?: string }[];
  readonly ports?: { name?: string; containerPort: number }[];
  readonly readinessProbe?: Record<string, unknown>;
  readonly livenessProbe?: Record<string, unknown>;
  readonly resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readonly securityContext?: Record<string, unknown>;
  readonly volumeMounts?: { name: string; mountPath: string }[];
}

export interface PodSpec {
  readonly serviceAccountName?: string;
  readonly securityContext?: Record<string, unknown>;
  readonly affinity?: { podAntiAffinity?: Record<string, unknown> };
  readonly initContainers?: Container[];
  readonly containers: Container[];
  readonly volumes?: { name: string; secret?: { secretName: string } }[];
}

export interface Deployment extends KubeObject {
  readonly spec: {
    readonly replicas: number;
    readonly selector: { matchLabels: Record<string, string> };
    readonly template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

export interface PolicyRule {
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly resourceNames?: string[];
  readonly nonResourceURLs?: string[];
  readonly verbs: string[];
}

export interface RoleObject extends KubeObject {
  readonly rules: PolicyRule[];
}

export interface RoleBinding extends KubeObject {
  readonly roleRef: { kind: string; name: string };
  readonly subjects: { kind: string; name: string; namespace?: string }[];
}

export interface LabelSelector {
  readonly matchLabels?: Record<string, string>;
  readonly matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface MutatingWebhook {
  readonly name: string;
  readonly admissionReviewVersions: string[];
  readonly sideEffects: string;
  readonly failurePolicy: string;
  readonly timeoutSeconds: number;
  readonly reinvocationPolicy?: string;
  readonly clientConfig: { service?: { name: string; namespace: string; path?: string; port?: number }; caBundle?: string };
  readonly rules: { operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[]; scope?: string }[];
  readonly namespaceSelector?: LabelSelector;
  readonly objectSelector?: LabelSelector;
}

export interface WebhookConfiguration extends KubeObject {
  readonly webhooks: MutatingWebhook[];
}

/** The one object of a kind and name; throws naming what is missing or doubled. */
export function one<T extends KubeObject>(objects: readonly KubeObject[], kind: string, name: string, namespace?: string): T {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
}

/** Every object of a kind. */
export function all<T extends KubeObject>(objects: readonly KubeObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

/** Every container of every Deployment, init containers included, with where it is. */
export function containersOf(objects: readonly KubeObject[]): { where: string; container: Container; pod: PodSpec }[] {
  return all<Deployment>(objects, 'Deployment').flatMap((d) => {
    const pod = d.spec.template.spec;
    return [...(pod.initContainers ?? []), ...pod.containers].map((container) => ({ where: `${d.metadata.name}/${container.name}`, container, pod }));
  });
}

/** The value after `flag` in an argument list, or undefined. */
export function flagValue(args: readonly string[] | undefined, flag: string): string | undefined {
  const at = (args ?? []).indexOf(flag);
  return at === -1 ? undefined : args?.[at + 1];
}
