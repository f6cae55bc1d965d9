// Starts the mesh in one pod exactly as the injected containers would: `tsmesh iptables`
// (the init container, as root) and then `tsmesh proxy` as uid 1337.
import { fileURLToPath } from 'node:url';
import { SIDECAR_NODE_FLAGS } from '@tsmesh/common';
import type { ChildProcess } from 'node:child_process';
import { PROXY_UID, waitForLine, type Pod } from './topology.js';

/** The built CLI entry point (dist/main.js) next to this file's folder. */
export const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
/** The sample workload entry point. */
export const WORKLOAD_MAIN = fileURLToPath(new URL('./workload-main.js', import.meta.url));

export interface SidecarOptions {
  readonly meshFile: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Extra `tsmesh iptables` flags (exclusions). */
  readonly iptablesFlags?: readonly string[];
  readonly env?: Record<string, string>;
  readonly logLevel?: string;
  /** Extra `tsmesh proxy` flags. */
  readonly args?: readonly string[];
}

export async function startSidecar(pod: Pod, options: SidecarOptions): Promise<ChildProcess> {
  await pod.exec(process.execPath, [CLI_MAIN, 'iptables', ...(options.iptablesFlags ?? [])]);
  const child = pod.spawn(process.execPath, [...SIDECAR_NODE_FLAGS, CLI_MAIN, 'proxy', '--config', options.meshFile, ...(options.args ?? [])], {
    uid: PROXY_UID,
    env: {
      TSMESH_POD_NAME: pod.name,
      TSMESH_POD_NAMESPACE: options.namespace,
      TSMESH_POD_IP: pod.ip,
      TSMESH_SERVICE_ACCOUNT: options.serviceAccount,
      TSMESH_LOG_LEVEL: options.logLevel ?? 'info',
      ...options.env,
    },
  });
  await waitForLine(child, (l) => l.includes('"sidecar ready"'), 15_000, `sidecar of ${pod.name}`);
  return child;
}

/** Starts a sample workload (`grpc-server`, `http-server`, `banner-server`) and waits for `ready`. */
export async function startWorkload(pod: Pod, kind: string, args: readonly string[]): Promise<ChildProcess> {
  const child = pod.spawn(process.execPath, [WORKLOAD_MAIN, kind, ...args]);
  await waitForLine(child, (l) => l === 'ready', 15_000, `${kind} in ${pod.name}`);
  return child;
}

/** Runs a client workload in a pod and parses its JSON result line. */
export async function runClient<T>(pod: Pod, kind: string, args: readonly string[]): Promise<T> {
  const out = await pod.exec(process.execPath, [WORKLOAD_MAIN, kind, ...args]);
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"result"'));
  if (!line) throw new Error(`${kind} in ${pod.name} printed no result: ${out.slice(-500)}`);
  return (JSON.parse(line) as { result: T }).result;
}
