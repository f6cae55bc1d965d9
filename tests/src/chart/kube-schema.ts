// Offline validation of rendered objects against the Kubernetes API: the JSON schemas that
// kubernetes-models generates from the Kubernetes OpenAPI document (types, enums, required
// fields, formats), plus a check for unknown fields, which those schemas let through and
// `kubectl apply` refuses, walked over the field lists of @kubernetes/client-node's models.
import * as k8s from '@kubernetes/client-node';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { KubeObject } from './helm.js';

interface Validatable {
  validate(): void;
}

/** Every kind the chart may render, by `apiVersion/kind`: its kubernetes-models class and client-node model. */
const KINDS: Readonly<Record<string, { model: new (data: never) => Validatable; fields: string }>> = {
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': { model: MutatingWebhookConfiguration, fields: 'V1MutatingWebhookConfiguration' },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': { model: CustomResourceDefinition, fields: 'V1CustomResourceDefinition' },
  'apps/v1/Deployment': { model: Deployment, fields: 'V1Deployment' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, fields: 'V1PodDisruptionBudget' },
  'rbac.authorization.k8s.io/v1/ClusterRole': { model: ClusterRole, fields: 'V1ClusterRole' },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { model: ClusterRoleBinding, fields: 'V1ClusterRoleBinding' },
  'rbac.authorization.k8s.io/v1/Role': { model: Role, fields: 'V1Role' },
  'rbac.authorization.k8s.io/v1/RoleBinding': { model: RoleBinding, fields: 'V1RoleBinding' },
  'v1/ConfigMap': { model: ConfigMap, fields: 'V1ConfigMap' },
  'v1/Secret': { model: Secret, fields: 'V1Secret' },
  'v1/Service': { model: Service, fields: 'V1Service' },
  'v1/ServiceAccount': { model: ServiceAccount, fields: 'V1ServiceAccount' },
};

interface FieldInfo {
  readonly baseName: string;
  readonly type: string;
}

const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => FieldInfo[] } | undefined>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Paths of the fields of `value` that its type (a client-node model name or type expression) does not have. */
function unknownFields(value: unknown, type: string, path: string, found: string[]): void {
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1] !== undefined) {
    if (Array.isArray(value)) value.forEach((item, i) => unknownFields(item, array[1] as string, `${path}[${i}]`, found));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1] !== undefined) {
    if (isRecord(value)) for (const [key, item] of Object.entries(value)) unknownFields(item, map[1], `${path}[${JSON.stringify(key)}]`, found);
    return;
  }
  const fields = models[type]?.getAttributeTypeMap?.();
  if (fields === undefined || !isRecord(value)) return; // a scalar, IntOrString, Date or free-form `any`
  for (const [key, item] of Object.entries(value)) {
    const field = fields.find((f) => f.baseName === key);
    if (field === undefined) {
      found.push(`${path}.${key}`);
      continue;
    }
    // Nested schemas of a CRD are typed `any` in the model, but are JSONSchemaProps again.
    const nestedSchema = type === 'V1JSONSchemaProps' && (key === 'additionalProperties' || key === 'items') && isRecord(item);
    unknownFields(item, nestedSchema ? 'V1JSONSchemaProps' : field.type, `${path}.${key}`, found);
  }
}

/** What is wrong with one rendered object, as readable lines; empty when it is valid. */
export function kubernetesProblems(object: KubeObject): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  const name = `${object.kind} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? '?'}`;
  const kind = KINDS[key];
  if (kind === undefined) return [`${name}: no schema known for ${key}; add it to kube-schema.ts`];
  const problems: string[] = [];
  try {
    new kind.model(object as never).validate();
  } catch (error) {
    const details = (error as { details?: { instancePath: string; message?: string }[] }).details;
    if (details === undefined) problems.push(`${name}: ${(error as Error).message}`);
    else for (const d of details) problems.push(`${name}: ${d.instancePath || '/'} ${d.message ?? 'is invalid'}`);
  }
  const unknown: string[] = [];
  unknownFields(object, kind.fields, '', unknown);
  for (const path of unknown) problems.push(`${name}: unknown field ${path.slice(1)}`);
  return problems;
}
