// What one supported kind contributes: its apiVersion, scope, name format and a normaliser from
// the raw object (already known to be a mapping with valid metadata) to its typed model value.
import type { FieldChecker } from '../fields.js';

/** Metadata every kind shares, checked and defaulted (namespace `default`; '' for cluster-scoped kinds). */
export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface KindDefinition<V> {
  readonly apiVersion: string;
  readonly namespaced: boolean;
  /** Which Kubernetes name rule `metadata.name` follows. */
  readonly nameRule: 'dns1035Label' | 'dnsLabel' | 'dnsSubdomain';
  /** Checks the kind-specific fields, recording problems on `check`; the value is discarded when any were recorded. */
  normalize(check: FieldChecker, meta: ObjectMeta, raw: Readonly<Record<string, unknown>>): V;
}
