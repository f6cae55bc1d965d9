// Rewrites the application's HTTP, TCP and gRPC probes to the sidecar's :15020/app-health endpoints, so
// the kubelet's probes are not caught by inbound capture (and mTLS); the sidecar runs the originals,
// which it reads from TSMESH_APP_PROBES.
import type { V1Container, V1ContainerPort, V1Probe } from '@kubernetes/client-node';
import { HEALTH_PORT } from '@tsmesh/common';

export { HEALTH_PORT };

const PROBES = [
  ['livenessProbe', 'livez'],
  ['readinessProbe', 'readyz'],
  ['startupProbe', 'startupz'],
] as const;

/** One original probe action as the sidecar runs it: named ports already resolved to numbers. */
export type AppProbe =
  | { httpGet: Record<string, unknown> & { port: number }; timeoutSeconds?: number }
  | { tcpSocket: Record<string, unknown> & { port: number }; timeoutSeconds?: number }
  | { grpc: Record<string, unknown> & { port: number }; timeoutSeconds?: number };

export interface ProbeRewrite {
  /** The containers with their probes rewritten (copies; the input is not changed). */
  readonly containers: V1Container[];
  /** Keyed `<container>/<livez|readyz|startupz>`. */
  readonly appProbes: Record<string, AppProbe>;
  /** Probes left as they were although they could have been rewritten, with the reason. */
  readonly warnings: string[];
}

export function appHealthPath(container: string, kind: 'livez' | 'readyz' | 'startupz'): string {
  return `/app-health/${container}/${kind}`;
}

function resolvePort(port: unknown, ports: readonly V1ContainerPort[] | undefined): number | undefined {
  if (typeof port === 'number') return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
  if (typeof port !== 'string') return undefined;
  const named = ports?.find((candidate) => candidate.name === port);
  if (named) return named.containerPort;
  if (/^\d+$/.test(port)) return resolvePort(Number(port), undefined);
  return undefined;
}

/** The action of a probe in the form the sidecar runs it, or a reason why it cannot be moved. */
function original(probe: V1Probe, container: V1Container): AppProbe | string | undefined {
  const timing = probe.timeoutSeconds === undefined ? {} : { timeoutSeconds: probe.timeoutSeconds };
  const actions = [
    ['httpGet', probe.httpGet],
    ['tcpSocket', probe.tcpSocket],
    ['grpc', probe.grpc],
  ] as const;
  for (const [kind, action] of actions) {
    if (action === undefined || action === null) continue;
    const port = resolvePort(action.port, container.ports);
    if (port === undefined) return `its port ${JSON.stringify(action.port)} is not a port of the container`;
    const resolved = { ...(action as unknown as Record<string, unknown>), port };
    if (kind === 'httpGet') return { httpGet: resolved, ...timing };
    if (kind === 'tcpSocket') return { tcpSocket: resolved, ...timing };
    return { grpc: resolved, ...timing };
  }
  return undefined; // exec, or no action: the kubelet runs it inside the container, nothing to move
}

function rewritten(probe: V1Probe, path: string): V1Probe {
  const { httpGet: _h, tcpSocket: _t, grpc: _g, exec: _e, ...timing } = probe;
  return { ...timing, httpGet: { path, port: HEALTH_PORT, scheme: 'HTTP' } };
}

/** Rewrites the probes of the given containers; exec probes and unresolvable ports are left alone. */
export function rewriteProbes(containers: readonly V1Container[]): ProbeRewrite {
  const appProbes: Record<string, AppProbe> = {};
  const warnings: string[] = [];
  const result = containers.map((container) => {
    const copy: V1Container = { ...container };
    for (const [field, kind] of PROBES) {
      const probe = container[field];
      if (probe === undefined || probe === null) continue;
      const action = original(probe, container);
      if (action === undefined) continue;
      if (typeof action === 'string') {
        warnings.push(`tsmesh: ${field} of container ${container.name} is not rewritten: ${action}`);
        continue;
      }
      appProbes[`${container.name}/${kind}`] = action;
      copy[field] = rewritten(probe, appHealthPath(container.name, kind));
    }
    return copy;
  });
  return { containers: result, appProbes, warnings };
}
