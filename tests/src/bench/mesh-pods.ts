// The two pods the mesh benchmarks run in (plus one for the CA), built with the end-to-end tests'
// helpers (tsmesh/demo): network namespaces on one veth bridge, `tsmesh iptables` in each, the CA,
// sidecars as uid 1337 with SPIFFE certificates (pod to pod is mTLS, STRICT at the server), the
// server app, and optionally the HAProxy pair. The plain app ports and HAProxy's TLS ports are
// excluded from capture so the direct and HAProxy paths bypass the sidecars.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  caEnv,
  meshYaml,
  PROXY_UID,
  publishTrustBundle,
  startCa,
  startSidecar,
  Topology,
  waitForLine,
  writeCaTokens,
  type Pod,
} from 'tsmesh/demo';
import { clientHaproxyConfig, makeHaproxyCerts, serverHaproxyConfig } from './mesh-haproxy.js';
import { APP_PORTS, CLUSTER_IPS, HAPROXY_PORTS } from './mesh-wire.js';
import type { Workspace } from './processes.js';

export const MESH_APP_MAIN = fileURLToPath(new URL('./mesh-app.js', import.meta.url));
export const OPEN_LOOP_MAIN = fileURLToPath(new URL('./open-loop-client.js', import.meta.url));

const NS = 'bench';

/** A process of a pod whose CPU and memory are read from /proc. */
export interface PodProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
}

export interface MeshPods {
  readonly topology: Topology;
  readonly client: Pod;
  readonly server: Pod;
  readonly app: PodProcess;
  readonly sidecars: { readonly client: PodProcess; readonly server: PodProcess };
  readonly haproxy?: { readonly client: PodProcess; readonly server: PodProcess };
  /** Kills every process and removes the namespaces; never throws. */
  destroy(): Promise<void>;
}

export interface MeshPodsOptions {
  readonly workspace: Workspace;
  /** The haproxy and openssl executables, for the HAProxy pair; without them, no pair. */
  readonly haproxy?: { readonly haproxy: string; readonly openssl: string };
  /** `--concurrency` of both sidecars. */
  readonly sidecarConcurrency: number;
}

function podProcess(name: string, child: ChildProcess): PodProcess {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  // `ip netns exec` and `setpriv` exec the command: the pid is the process itself.
  return { name, pid: child.pid, child };
}

/** Polls until `port` of the pod's `host` accepts a connection (from inside the pod). */
async function waitForPodPort(pod: Pod, host: string, port: number, what: string): Promise<void> {
  const script = `const s=require('net').connect(${port},'${host}',()=>process.exit(0));s.on('error',()=>process.exit(1))`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await pod.exec(process.execPath, ['-e', script]);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what} did not listen on ${host}:${port} in ${pod.name}`, { cause: error });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function startMeshPods(options: MeshPodsOptions): Promise<MeshPods> {
  const { workspace } = options;
  chmodSync(workspace.dir, 0o755); // uid 1337 reads the mesh file, its token, the bundle and HAProxy's files
  const topology = await Topology.create('tsm-bench', '10.236.0');
  try {
    const caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    const client = await topology.addPod({ name: 'client', hostId: 10 });
    const server = await topology.addPod({ name: 'server', hostId: 11 });

    const mesh = meshYaml(
      [
        { name: 'client', namespace: NS, serviceAccount: 'client', ip: client.ip, labels: { app: 'client' }, meshed: true },
        { name: 'server', namespace: NS, serviceAccount: 'server', ip: server.ip, labels: { app: 'server' }, meshed: true },
      ],
      [
        { name: 'echo-http', namespace: NS, clusterIP: CLUSTER_IPS.http, ports: [{ name: 'http', port: APP_PORTS.http.meshed, targetPort: APP_PORTS.http.meshed }], backends: [{ pod: 'server' }] },
        { name: 'echo-grpc', namespace: NS, clusterIP: CLUSTER_IPS.grpc, ports: [{ name: 'grpc', port: APP_PORTS.grpc.meshed, targetPort: APP_PORTS.grpc.meshed }], backends: [{ pod: 'server' }] },
      ],
    );
    const strict = stringify({
      apiVersion: 'security.tsmesh.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'server-strict', namespace: NS },
      spec: { selector: { matchLabels: { app: 'server' } }, mtls: { mode: 'STRICT' } },
    });
    const meshFile = workspace.path('mesh.yaml');
    writeFileSync(meshFile, `${mesh}---\n${strict}`, { mode: 0o644 });

    const tokens = writeCaTokens(workspace.dir, [
      { namespace: NS, serviceAccount: 'client' },
      { namespace: NS, serviceAccount: 'server' },
    ]);
    const [clientToken, serverToken] = tokens.sidecarTokenFiles as [string, string];
    const stateDir = workspace.path('ca-state');
    await startCa(caPod, { stateDir, tokenFile: tokens.tokenFile });
    const trustFile = workspace.path('trust-bundle.pem');
    publishTrustBundle(`${stateDir}/root-cert.pem`, trustFile);

    const appChild = server.spawn(process.execPath, [
      MESH_APP_MAIN,
      '--http-ports', `${APP_PORTS.http.meshed},${APP_PORTS.http.plain}`,
      '--grpc-ports', `${APP_PORTS.grpc.meshed},${APP_PORTS.grpc.plain}`,
    ]);
    await waitForLine(appChild, (l) => l === 'ready', 15_000, 'the server app');

    const plainPorts = [APP_PORTS.http.plain, APP_PORTS.grpc.plain];
    const haproxyTls = [HAPROXY_PORTS.http.tls, HAPROXY_PORTS.grpc.tls];
    // Telemetry as shipped: no TSMESH_ACCESS_LOG, TSMESH_TRACING or log level set here.
    const [clientSidecar, serverSidecar] = await Promise.all([
      startSidecar(client, { meshFile, namespace: NS, serviceAccount: 'client', args: ['--concurrency', String(options.sidecarConcurrency)], iptablesFlags: ['--exclude-outbound-ports', plainPorts.join(',')], env: caEnv(caPod, clientToken, trustFile) }),
      startSidecar(server, { meshFile, namespace: NS, serviceAccount: 'server', args: ['--concurrency', String(options.sidecarConcurrency)], iptablesFlags: ['--exclude-inbound-ports', [...plainPorts, ...haproxyTls].join(',')], env: caEnv(caPod, serverToken, trustFile) }),
    ]);

    let haproxy: MeshPods['haproxy'];
    if (options.haproxy) {
      const certs = await makeHaproxyCerts(options.haproxy.openssl, workspace.dir, server.ip);
      const clientConf = workspace.path('haproxy-client.cfg');
      const serverConf = workspace.path('haproxy-server.cfg');
      writeFileSync(clientConf, clientHaproxyConfig(server.ip, certs), { mode: 0o644 });
      writeFileSync(serverConf, serverHaproxyConfig(certs), { mode: 0o644 });
      // As the sidecar's uid: the client side's own connections are not captured, as the sidecar's are not.
      const serverHaproxy = server.spawn(options.haproxy.haproxy, ['-db', '-f', serverConf], { uid: PROXY_UID });
      const clientHaproxy = client.spawn(options.haproxy.haproxy, ['-db', '-f', clientConf], { uid: PROXY_UID });
      await waitForPodPort(server, server.ip, HAPROXY_PORTS.grpc.tls, 'server-side haproxy');
      await waitForPodPort(client, '127.0.0.1', HAPROXY_PORTS.grpc.local, 'client-side haproxy');
      haproxy = { client: podProcess('client haproxy', clientHaproxy), server: podProcess('server haproxy', serverHaproxy) };
    }

    return {
      topology,
      client,
      server,
      app: podProcess('server app', appChild),
      sidecars: { client: podProcess('client sidecar', clientSidecar), server: podProcess('server sidecar', serverSidecar) },
      ...(haproxy ? { haproxy } : {}),
      destroy: () => topology.destroy(),
    };
  } catch (error) {
    await topology.destroy();
    throw error;
  }
}
