// The Kubernetes side of the operator commands (`tsmesh proxy-status`, `tsmesh check`): the
// kubeconfig, and GETs to a pod's loopback-only admin port through the API server's port-forward
// (as `kubectl port-forward` does: the control plane's admin server listens on 127.0.0.1 only).
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
import { adminRequest, type AdminResponse } from './admin-client.js';

/** The kubeconfig from `file`, else $KUBECONFIG, ~/.kube/config or the in-cluster account; throws a one-line reason. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  try {
    if (file !== undefined) config.loadFromFile(file);
    else config.loadFromDefault();
  } catch (cause) {
    throw new Error(`cannot read the kubeconfig${file === undefined ? '' : ` ${file}`}: ${(cause as Error).message}`, { cause });
  }
  const cluster = config.getCurrentCluster();
  // client-node falls back to an unauthenticated http://localhost:8080 when it finds nothing at all.
  if (cluster === null || (file === undefined && cluster.server === 'http://localhost:8080' && process.env['KUBECONFIG'] === undefined)) {
    throw new Error('no Kubernetes cluster configured (no --kubeconfig, no KUBECONFIG, no ~/.kube/config, not in a pod)');
  }
  return config;
}

/** The API server's address, for messages. */
export function serverOf(config: KubeConfig): string {
  return config.getCurrentCluster()?.server ?? '(no cluster)';
}

/**
 * GETs `path` from `port` of pod `namespace/pod` through a port-forward. Rejects with a one-line
 * reason naming the pod when the forward or the request fails.
 */
export async function podGet(config: KubeConfig, namespace: string, pod: string, port: number, path: string, timeoutMs: number): Promise<AdminResponse> {
  const forward = new PortForward(config, true);
  const sockets = new Set<Socket>();
  const sessions: Array<{ close(): void }> = [];
  let failure: Error | undefined;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    forward.portForward(namespace, pod, [port], socket, null, socket).then(
      (ws) => {
        if (typeof ws === 'object' && ws !== null && 'close' in ws) sessions.push(ws as { close(): void });
      },
      (error: unknown) => {
        // The ws package rejects with an ErrorEvent ({ message, error }), not an Error.
        const event = error as { message?: unknown; error?: unknown } | null;
        const message = typeof event?.message === 'string' ? event.message : event?.error instanceof Error ? event.error.message : String(error);
        failure = new Error(message);
        socket.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const local = (server.address() as AddressInfo).port;
  try {
    return await adminRequest({ host: '127.0.0.1', port: local }, 'GET', path, { timeoutMs });
  } catch (error) {
    const why = failure === undefined ? (error as Error).message : describeForwardError(failure);
    throw new Error(`cannot reach pod ${namespace}/${pod} port ${port} through a port-forward (${serverOf(config)}): ${why}`, { cause: error });
  } finally {
    for (const session of sessions) session.close();
    for (const socket of sockets) socket.destroy();
    server.close();
  }
}

function describeForwardError(error: Error): string {
  // The ws package's errors for a refused upgrade: "Unexpected server response: 404".
  const status = /Unexpected server response: (\d+)/.exec(error.message)?.[1];
  if (status === '404') return 'the API server answered 404 (no such pod, or it does not forward that port)';
  if (status === '401' || status === '403') return `the API server refused the port-forward (${status}): check your credentials and RBAC (pods/portforward)`;
  return error.message;
}
