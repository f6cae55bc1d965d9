// ServiceAccount and Namespace (v1): kept for identity and for namespace-wide settings (labels).
import type { KindDefinition } from './kind.js';

export interface MeshServiceAccount {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface MeshNamespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export const serviceAccountKind: KindDefinition<MeshServiceAccount> = {
  apiVersion: 'v1',
  namespaced: true,
  nameRule: 'dnsSubdomain',
  normalize: (_check, meta) =>
    Object.freeze({ namespace: meta.namespace, name: meta.name, labels: meta.labels, annotations: meta.annotations }),
};

export const namespaceKind: KindDefinition<MeshNamespace> = {
  apiVersion: 'v1',
  namespaced: false,
  nameRule: 'dnsLabel',
  normalize: (_check, meta) => Object.freeze({ name: meta.name, labels: meta.labels, annotations: meta.annotations }),
};
