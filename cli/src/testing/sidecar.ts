// `tsmesh proxy` as a child process for the CLI's tests: a one-Service mesh file in local mode
// (`--outbound-target`), ports picked by the kernel, and the ports the sidecar reports once ready.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly ports: { outbound: number; health: number; admin: number };
  readonly exited: Promise<number | null>;
  /** Everything the sidecar wrote to stderr so far. */
  stderr(): string;
}

/** A Service `name` at `clusterIP:80` whose one endpoint is 127.0.0.1:`targetPort`, as mesh-file YAML. */
export function oneServiceMesh(name: string, clusterIP: string, targetPort: number, appProtocol?: string): string {
  const protocol = appProtocol ? `, appProtocol: ${appProtocol}` : '';
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  clusterIP: ${clusterIP}
  ports: [{ name: web, port: 80, targetPort: ${targetPort}, protocol: TCP${protocol} }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-1, namespace: default, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: web, port: ${targetPort}, protocol: TCP }]
endpoints: [{ addresses: [127.0.0.1], conditions: { ready: true } }]
`;
}

/**
 * Starts `tsmesh proxy --config meshFile` on 127.0.0.1 with every port picked by the kernel, plus
 * `args`; resolves once it logs "sidecar ready". `nodeArgs` go to node before the CLI.
 */
export async function startSidecar(meshFile: string, args: readonly string[], env: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<SidecarProcess> {
  const child = spawn(process.execPath, [...nodeArgs, MAIN, 'proxy', '--config', meshFile, '--bind', '127.0.0.1', '--outbound-port', '0', '--inbound-port', '0', '--admin-port', '0', '--health-port', '0', ...args], {
    env: { PATH: process.env.PATH, TSMESH_LOG_LEVEL: 'info', TSMESH_POD_NAME: 'cli-test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports = await new Promise<SidecarProcess['ports']>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`sidecar not ready: ${buffered.slice(-1000)} ${said(stderr).slice(-1000)}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        if (!line.includes('"sidecar ready"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { ports: SidecarProcess['ports'] }).ports);
      }
    });
    // 'close', not 'exit': by then both pipes are drained, so the reason the sidecar gave is in hand.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited ${code ?? signal}: ${buffered.slice(-1000)} ${said(stderr).slice(-1000)}`));
    });
  });
  return { child, ports, exited, stderr: () => stderr };
}

/** stderr without the lines a test's module hook writes (`tsmesh-loaded …`), which would crowd out the sidecar's own words. */
function said(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => !line.startsWith('tsmesh-loaded '))
    .join('\n');
}
