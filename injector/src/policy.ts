// Whether a pod gets the sidecar (SPEC.md *Injection*): never-injected cases first, then the pod's own
// label or annotation, then its namespace's label.
import type { V1Pod } from '@kubernetes/client-node';
import { err, ok, type Result } from '@tsmesh/common';
import { ANNOTATIONS, INJECTION_NAMESPACE_LABEL, parseBoolean } from './annotations.js';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import type { InjectionSettings } from './settings.js';

/** The namespace a pod is created in, as the decision needs it. */
export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Decision {
  readonly inject: boolean;
  /** A sentence for logs and the `inject` command: why the pod is or is not injected. */
  readonly reason: string;
}

export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public'];

/**
 * The pod's own say, from label and annotation `tsmesh.io/inject`: true, false, or undefined when it
 * has neither. Both present and disagreeing is an error, like any value but "true" and "false".
 */
export function injectOverride(pod: V1Pod): Result<boolean | undefined> {
  const label = pod.metadata?.labels?.[ANNOTATIONS.inject];
  const annotation = pod.metadata?.annotations?.[ANNOTATIONS.inject];
  let fromLabel: boolean | undefined;
  let fromAnnotation: boolean | undefined;
  if (label !== undefined) {
    const parsed = parseBoolean(label);
    if (!parsed.ok) {
      return err(injectorError(INJECTOR_ERRORS.BAD_ANNOTATION, `label ${ANNOTATIONS.inject}: "${label}" is not valid (${parsed.error})`));
    }
    fromLabel = parsed.value;
  }
  if (annotation !== undefined) {
    const parsed = parseBoolean(annotation.trim());
    if (!parsed.ok) {
      return err(
        injectorError(INJECTOR_ERRORS.BAD_ANNOTATION, `annotation ${ANNOTATIONS.inject}: "${annotation}" is not valid (${parsed.error})`),
      );
    }
    fromAnnotation = parsed.value;
  }
  if (fromLabel !== undefined && fromAnnotation !== undefined && fromLabel !== fromAnnotation) {
    return err(
      injectorError(
        INJECTOR_ERRORS.BAD_ANNOTATION,
        `label ${ANNOTATIONS.inject}: "${label}" and annotation ${ANNOTATIONS.inject}: "${annotation}" disagree`,
      ),
    );
  }
  return ok(fromLabel ?? fromAnnotation);
}

/** The cases where the pod is never injected, whatever it or its namespace asks; undefined otherwise. */
export function neverInjectReason(pod: V1Pod, namespace: string, settings: InjectionSettings): string | undefined {
  if (pod.spec?.hostNetwork === true) return 'the pod uses hostNetwork';
  if (pod.metadata?.annotations?.[ANNOTATIONS.status] !== undefined) {
    return `the pod is already injected (annotation ${ANNOTATIONS.status} is present)`;
  }
  if (SYSTEM_NAMESPACES.includes(namespace)) return `namespace ${namespace} is never injected`;
  if (namespace === settings.controlPlaneNamespace) return `namespace ${namespace} is the control plane's`;
  return undefined;
}

/** Decides for one pod; an error only for a malformed `tsmesh.io/inject` label or annotation. */
export function decideInjection(pod: V1Pod, namespace: NamespaceInfo, settings: InjectionSettings): Result<Decision> {
  const never = neverInjectReason(pod, namespace.name, settings);
  if (never !== undefined) return ok({ inject: false, reason: never });
  const override = injectOverride(pod);
  if (!override.ok) return override;
  if (override.value !== undefined) {
    return ok({ inject: override.value, reason: `the pod sets ${ANNOTATIONS.inject}: "${override.value}"` });
  }
  const label = namespace.labels[INJECTION_NAMESPACE_LABEL];
  if (label === 'enabled') {
    return ok({ inject: true, reason: `namespace ${namespace.name} has ${INJECTION_NAMESPACE_LABEL}=enabled` });
  }
  return ok({
    inject: false,
    reason:
      label === undefined
        ? `namespace ${namespace.name} has no ${INJECTION_NAMESPACE_LABEL} label`
        : `namespace ${namespace.name} has ${INJECTION_NAMESPACE_LABEL}=${label}`,
  });
}
