// The core of injection, shared by the webhook and `tsmesh inject`: decide, read the pod's annotations,
// build the sidecar, and return the injected pod with the JSONPatch that makes it from the original.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { err, ok, type Result } from '@tsmesh/common';
import { ANNOTATIONS, readPodOptions } from './annotations.js';
import { addScrapeAnnotations } from './prometheus.js';
import { INJECTOR_ERRORS, injectorError } from './errors.js';
import { diff, type PatchOperation } from './jsonpatch.js';
import { readPod } from './pod.js';
import { decideInjection, type NamespaceInfo } from './policy.js';
import { rewriteProbes } from './probes.js';
import {
  INIT_CONTAINER_NAME,
  PROXY_BOUND_PORTS,
  PROXY_CONTAINER_NAME,
  PROXY_PORTS,
  initContainer,
  proxyContainer,
  volumes,
} from './sidecar.js';
import { INJECTOR_VERSION, useNativeSidecars, type InjectionSettings } from './settings.js';

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export interface Injection {
  /** The injected pod, or the pod unchanged when it is not injected. */
  readonly pod: V1Pod;
  /** Turns the original into `pod`; empty when the pod is not injected. */
  readonly patch: PatchOperation[];
  readonly injected: boolean;
  /** Why the pod is, or is not, injected (for logs). */
  readonly reason: string;
  /** Things the pod's author should know, e.g. a probe that could not be rewritten. */
  readonly warnings: string[];
}

/** What `tsmesh.io/status` records, so a second review sees the pod is done. */
export interface InjectionStatus {
  readonly version: string;
  readonly initContainers: string[];
  readonly containers: string[];
  readonly volumes: string[];
  readonly nativeSidecar: boolean;
  readonly rewrittenProbes: string[];
}

function collisions(pod: V1Pod, addedVolumes: readonly string[]): string[] {
  const spec = pod.spec;
  const containers: V1Container[] = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
  const problems: string[] = [];
  const ourContainers = [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME];
  for (const name of [...containers.map((c) => c.name), ...(spec?.ephemeralContainers ?? []).map((c) => c.name)]) {
    if (ourContainers.includes(name)) problems.push(`the pod already has a container named ${name}`);
  }
  for (const volume of spec?.volumes ?? []) {
    if (addedVolumes.includes(volume.name)) problems.push(`the pod already has a volume named ${volume.name}`);
  }
  const ourPortNames: readonly string[] = PROXY_PORTS.map((port) => port.name);
  for (const container of containers) {
    for (const port of container.ports ?? []) {
      if (port.name !== undefined && ourPortNames.includes(port.name)) {
        problems.push(`container ${container.name} already has a port named ${port.name}`);
      }
      if ((port.protocol ?? 'TCP') === 'TCP' && PROXY_BOUND_PORTS.includes(port.containerPort)) {
        problems.push(`container ${container.name} declares port ${port.containerPort}, which the tsmesh sidecar uses`);
      }
    }
  }
  return problems;
}

/**
 * Injects the sidecar into one pod, as SPEC.md *Injection* says. Pure: the input is not changed and
 * nothing is looked up. An error value when the pod cannot be injected as it stands (bad annotation,
 * name collision, not a pod); the webhook denies such a pod.
 */
export function injectPod(input: unknown, namespace: NamespaceInfo, settings: InjectionSettings): Result<Injection> {
  const read = readPod(input);
  if (!read.ok) return read;
  const original = read.value;
  const decision = decideInjection(original, namespace, settings);
  if (!decision.ok) return decision;
  if (!decision.value.inject) {
    return ok({ pod: original, patch: [], injected: false, reason: decision.value.reason, warnings: [] });
  }
  const options = readPodOptions(original.metadata?.annotations ?? {});
  if (!options.ok) return options;

  const added = volumes();
  const problems = collisions(original, added.map((volume) => volume.name));
  if (problems.length > 0) {
    return err(injectorError(INJECTOR_ERRORS.NAME_COLLISION, `cannot inject the tsmesh sidecar: ${problems.join('; ')}`));
  }

  const pod = structuredClone(original);
  const spec = pod.spec!; // readPod checked it
  const native = useNativeSidecars(settings);
  const appInit = spec.initContainers ?? [];
  // A native app sidecar starts after ours and runs beside the app, so its probes go through the proxy too.
  const rewriteInit = options.value.rewriteAppProbes && native;
  const app = options.value.rewriteAppProbes
    ? rewriteProbes(spec.containers)
    : { containers: spec.containers, appProbes: {}, warnings: [] };
  const init = rewriteInit
    ? rewriteProbes(appInit.filter((container) => container.restartPolicy === 'Always'))
    : { containers: [], appProbes: {}, warnings: [] };
  const appProbes = { ...init.appProbes, ...app.appProbes };
  const rewrittenInit = new Map(init.containers.map((container) => [container.name, container]));
  const appInitAfter = appInit.map((container) => rewrittenInit.get(container.name) ?? container);

  const proxy = proxyContainer({ settings, options: options.value, appProbes, native });
  const iptables = initContainer(settings, options.value);
  spec.initContainers = native ? [iptables, proxy, ...appInitAfter] : [iptables, ...appInitAfter];
  spec.containers = native ? app.containers : [proxy, ...app.containers];
  spec.volumes = [...(spec.volumes ?? []), ...added];

  const status: InjectionStatus = {
    version: INJECTOR_VERSION,
    initContainers: native ? [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME] : [INIT_CONTAINER_NAME],
    containers: native ? [] : [PROXY_CONTAINER_NAME],
    volumes: added.map((volume) => volume.name),
    nativeSidecar: native,
    rewrittenProbes: Object.keys(appProbes),
  };
  pod.metadata = { ...pod.metadata };
  const annotations: Record<string, string> = { ...pod.metadata.annotations };
  annotations[ANNOTATIONS.status] = JSON.stringify(status);
  const firstApp = app.containers[0];
  if (!native && firstApp && annotations[DEFAULT_CONTAINER_ANNOTATION] === undefined) {
    // The sidecar comes first, so kubectl logs/exec would pick it without this.
    annotations[DEFAULT_CONTAINER_ANNOTATION] = firstApp.name;
  }
  addScrapeAnnotations(annotations);
  pod.metadata.annotations = annotations;

  return ok({
    pod,
    patch: diff(original, pod),
    injected: true,
    reason: decision.value.reason,
    warnings: [...init.warnings, ...app.warnings],
  });
}

/** Reads the `tsmesh.io/status` annotation of an injected pod; undefined when absent or unreadable. */
export function injectionStatus(pod: V1Pod): InjectionStatus | undefined {
  const raw = pod.metadata?.annotations?.[ANNOTATIONS.status];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as InjectionStatus;
  } catch {
    return undefined;
  }
}
