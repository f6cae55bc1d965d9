// `tsmesh demo`: a whole mesh on one machine from a built-in mesh file. As root with iptables
// every workload gets its own network namespace and the same `tsmesh iptables` capture as in
// a cluster; elsewhere it falls back to explicit loopback ports and says why.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProxyConfig, startProxy, type RunningProxy } from '@tsmesh/proxy';
import { meshYaml, type MeshPodSpec, type MeshServiceSpec } from './mesh.js';
import { runClient, startSidecar, startWorkload, WORKLOAD_MAIN } from './sidecar.js';
import { canUseNetns, Topology, waitForLine, type Pod } from './topology.js';
import { writeDemoState, type DemoSidecar } from '../dashboard/demo-state.js';
import { untilSignal } from '../command.js';
import { caEnv, publishTrustBundle, startCa, writeCaTokens } from './ca.js';
import { readCollectedSpans, type CollectedSpan } from './collector.js';
import { listenGrpcServer, runGrpcClient, type SpreadResult } from './workloads.js';

export interface DemoOptions {
  readonly calls: number;
  readonly replicas: number;
  /** Leave the mesh running until SIGINT/SIGTERM. */
  readonly keep: boolean;
  /** Force the loopback fallback even where namespaces are available. */
  readonly loopback: boolean;
  readonly out: (line: string) => void;
}

const NAMESPACE = 'demo';
/** The sidecar's health port, where /metrics answers (SPEC). */
const HEALTH_PORT = 15020;
/** With --keep the client goes on calling, one call every this many ms, so a dashboard has traffic to show. */
const KEEP_INTERVAL_MS = 100;
/** The relay that lets the host reach a pod's port (see dashboard/relay-main.ts). */
const RELAY_MAIN = fileURLToPath(new URL('../dashboard/relay-main.js', import.meta.url));
const GREETER_IP = '10.96.0.10';
const GREETER_PORT = 50051;

function greeterService(backends: string[], portFor: (pod: string) => number): MeshServiceSpec {
  return {
    name: 'greeter',
    namespace: NAMESPACE,
    clusterIP: GREETER_IP,
    ports: [{ name: 'grpc', port: GREETER_PORT, targetPort: portFor(backends[0] ?? '') }],
    annotations: { 'tsmesh.io/load-balancer': 'round-robin' },
    backends: backends.map((pod) => ({ pod })),
  };
}

export function renderSpread(result: SpreadResult, total: number): string[] {
  const lines: string[] = [];
  const width = 40;
  for (const [server, count] of Object.entries(result.counts).sort()) {
    const bar = '#'.repeat(Math.round((count / Math.max(1, total)) * width));
    lines.push(`  ${server.padEnd(12)} ${String(count).padStart(5)}  ${bar}`);
  }
  lines.push(`  ${'failed'.padEnd(12)} ${String(result.failed).padStart(5)}`);
  return lines;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const netns = options.loopback ? { ok: false, reason: '--loopback was given' } : await canUseNetns();
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-demo-'));
  chmodSync(dir, 0o755);
  try {
    if (netns.ok) return await namespaceDemo(options, dir);
    options.out(`Network namespaces unavailable (${netns.reason}): falling back to explicit loopback ports, no iptables capture.`);
    return await loopbackDemo(options, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function namespaceDemo(options: DemoOptions, dir: string): Promise<number> {
  const out = options.out;
  const topology = await Topology.create('tsm-demo', '10.234.0');
  try {
    out('Building the mesh: one network namespace per pod, `tsmesh iptables` capture, sidecars as uid 1337.');
    // The CA and a trace collector are pods of their own, outside the mesh.
    const caPod = await topology.addPod({ name: 'ca', hostId: 2 });
    const collectorPod = await topology.addPod({ name: 'tracing', hostId: 3 });
    const client = await topology.addPod({ name: 'client', hostId: 10 });
    const replicas = [];
    for (let i = 1; i <= options.replicas; i++) replicas.push(await topology.addPod({ name: `greeter-${i}`, hostId: 10 + i }));
    const pods: MeshPodSpec[] = [client, ...replicas].map((p) => ({
      name: p.name,
      namespace: NAMESPACE,
      serviceAccount: p.name === 'client' ? 'client' : 'greeter',
      ip: p.ip,
      labels: { app: p.name === 'client' ? 'client' : 'greeter' },
      meshed: true,
    }));
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, meshYaml(pods, [greeterService(replicas.map((r) => r.name), () => GREETER_PORT)]));

    const stateDir = join(dir, 'ca-state');
    const { tokenFile, sidecarTokenFiles } = writeCaTokens(dir, [
      { namespace: NAMESPACE, serviceAccount: 'client' },
      { namespace: NAMESPACE, serviceAccount: 'greeter' },
    ]);
    await startCa(caPod, { stateDir, tokenFile });
    const bundle = join(dir, 'trust-bundle.pem');
    publishTrustBundle(join(stateDir, 'root-cert.pem'), bundle);
    out(`  pod ${'ca'.padEnd(10)} ${caPod.ip}  tsmesh ca (SPIFFE certificates for the sidecars)`);
    const spansFile = join(dir, 'spans.jsonl');
    await startWorkload(collectorPod, 'collector', ['--port', '9411', '--out', spansFile]);
    out(`  pod ${'tracing'.padEnd(10)} ${collectorPod.ip}  Zipkin-compatible trace collector`);
    const sidecarEnv = (token: string): Record<string, string> => ({
      ...caEnv(caPod, token, bundle),
      TSMESH_TRACING: 'zipkin',
      TSMESH_TRACING_ENDPOINT: `http://${collectorPod.ip}:9411/api/v2/spans`,
      // Every call traced, so the few calls of the demo show up (the sidecar's default is 1 %).
      TSMESH_TRACING_SAMPLE_RATE: '1',
    });
    for (const pod of replicas) {
      await startWorkload(pod, 'grpc-server', ['--port', String(GREETER_PORT), '--name', pod.name]);
      await startSidecar(pod, { meshFile, namespace: NAMESPACE, serviceAccount: 'greeter', env: sidecarEnv(sidecarTokenFiles[1] ?? '') });
      out(`  pod ${pod.name.padEnd(10)} ${pod.ip}  gRPC greeter + sidecar`);
    }
    await startSidecar(client, { meshFile, namespace: NAMESPACE, serviceAccount: 'client', env: sidecarEnv(sidecarTokenFiles[0] ?? '') });
    out(`  pod ${'client'.padEnd(10)} ${client.ip}  gRPC client + sidecar`);
    out('');
    out(`The client opens ONE gRPC channel to greeter.demo (${GREETER_IP}:${GREETER_PORT}, a cluster IP that exists only in the mesh)`);
    out(`and makes ${options.calls} calls. Its sidecar balances every call (HTTP/2 stream), round-robin:`);
    const result = await runClient<SpreadResult>(client, 'grpc-client', ['--target', `${GREETER_IP}:${GREETER_PORT}`, '--calls', String(options.calls)]);
    for (const line of renderSpread(result, options.calls)) out(line);
    out('');
    const xfcc = result.sample?.meta['x-forwarded-client-cert'];
    out('Identity: each hop between sidecars is mutual TLS 1.3; the server sidecar verified the caller and told the app:');
    out(`  x-forwarded-client-cert: ${xfcc ?? '(missing)'}`);
    const traces = await waitForSpans(spansFile, 2, 10_000);
    const traceIds = new Set(traces.map((t) => t.traceId));
    out('');
    out(`Traces: ${traces.length} spans in ${traceIds.size} traces reached the Zipkin collector (one client span in the calling`);
    out(`sidecar and one server span in the receiving sidecar per call). They are in ${spansFile}`);
    out(options.keep ? '(kept while the mesh runs).' : '(removed when the demo exits; use --keep to look at them).');
    const ok = result.failed === 0 && Object.keys(result.counts).length === options.replicas && xfcc !== undefined;
    if (options.keep) {
      // Traffic goes on, and the sidecars' /metrics are relayed to Unix sockets the host can reach.
      client.spawn(process.execPath, [WORKLOAD_MAIN, 'grpc-client', '--target', `${GREETER_IP}:${GREETER_PORT}`, '--calls', '1000000000', '--interval-ms', String(KEEP_INTERVAL_MS)]);
      const sidecars: DemoSidecar[] = [];
      for (const pod of [client, ...replicas]) sidecars.push({ name: pod.name, namespace: NAMESPACE, metrics: `unix:${await relayMetrics(pod, dir)}` });
      keptState(out, dir, sidecars, spansFile);
      out(`Mesh left running (namespaces ${[...topology.pods.values()].map((p) => p.netns).join(', ')}). Ctrl-C to tear it down.`);
      await untilSignal();
    }
    return ok ? 0 : 1;
  } finally {
    await topology.destroy();
  }
}

/** Starts a relay in the pod from a Unix socket in `dir` to the pod's health port; resolves the socket's path. */
async function relayMetrics(pod: Pod, dir: string): Promise<string> {
  const socket = join(dir, `metrics-${pod.name}.sock`);
  const relay = pod.spawn(process.execPath, [RELAY_MAIN, socket, String(HEALTH_PORT)]);
  await waitForLine(relay, (l) => l === 'ready', 15_000, `metrics relay in ${pod.name}`);
  return socket;
}

/** Writes the state file `tsmesh dashboard --from-demo` reads and says how to open the dashboard. */
function keptState(out: (line: string) => void, dir: string, sidecars: readonly DemoSidecar[], spansFile: string | undefined): void {
  const file = join(dir, 'demo.json');
  writeDemoState(file, { sidecars, ...(spansFile === undefined ? {} : { spansFile }) });
  out('');
  out(`The client keeps calling greeter.demo, ${1000 / KEEP_INTERVAL_MS} calls a second. Sidecars' metrics: ${sidecars.map((s) => `${s.name} ${s.metrics}`).join(', ')}.`);
  out(`Dashboard: tsmesh dashboard --from-demo ${file}`);
}

/** Polls the collector's file until it holds at least `count` spans or time runs out. */
async function waitForSpans(file: string, count: number, timeoutMs: number): Promise<CollectedSpan[]> {
  const deadline = Date.now() + timeoutMs;
  let spans: CollectedSpan[] = [];
  while (Date.now() < deadline) {
    spans = existsSync(file) ? readCollectedSpans(file) : [];
    if (spans.length >= count) return spans;
    await new Promise((r) => setTimeout(r, 250));
  }
  return spans;
}

async function loopbackDemo(options: DemoOptions, dir: string): Promise<number> {
  const out = options.out;
  const names = Array.from({ length: options.replicas }, (_, i) => `greeter-${i + 1}`);
  // Ports the kernel picks: a fixed or random range could be taken already.
  const listening = await Promise.all(names.map((name) => listenGrpcServer('127.0.0.1', 0, name)));
  const servers = listening.map((l) => l.server);
  const ports = listening.map((l) => l.port);
  let proxy: RunningProxy | undefined;
  try {
    const pods: MeshPodSpec[] = names.map((name) => ({ name, namespace: NAMESPACE, serviceAccount: 'greeter', ip: '127.0.0.1', labels: { app: 'greeter' }, meshed: false }));
    // One EndpointSlice per replica: every replica shares 127.0.0.1 and differs by port.
    const docs = names.map((name, i) => meshYaml(pods.filter((p) => p.name === name), [{ ...greeterService([name], () => ports[i] as number), name: 'greeter' }]));
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, mergeSlices(docs));
    proxy = await startProxy(
      parseProxyConfig(
        ['--config', meshFile, '--bind', '127.0.0.1', '--outbound-port', '0', '--inbound-port', '0', '--admin-port', '0', '--health-port', '0', '--outbound-target', `${GREETER_IP}:${GREETER_PORT}`],
        { TSMESH_LOG_LEVEL: 'warn', TSMESH_POD_NAMESPACE: NAMESPACE, TSMESH_SERVICE_ACCOUNT: 'client' },
      ),
    );
    out(`Replicas on 127.0.0.1 ports ${ports.join(', ')}; the client's sidecar listens on 127.0.0.1:${proxy.ports.outbound} for greeter.demo.`);
    out(`The client opens ONE gRPC channel and makes ${options.calls} calls; the sidecar balances every call, round-robin:`);
    const result = await runGrpcClient({ target: `127.0.0.1:${proxy.ports.outbound}`, calls: options.calls });
    for (const line of renderSpread(result, options.calls)) out(line);
    out('Identity: no CA in this demo yet (plaintext). Traces: not enabled in this demo yet.');
    if (options.keep) {
      let stopped = false;
      const target = `127.0.0.1:${proxy.ports.outbound}`;
      const traffic = runGrpcClient({
        target,
        calls: 1_000_000_000,
        intervalMs: KEEP_INTERVAL_MS,
        onProgress: () => {
          if (stopped) throw new Error('stopped');
        },
      }).catch(() => undefined);
      keptState(out, dir, [{ name: 'client', namespace: NAMESPACE, metrics: `127.0.0.1:${proxy.ports.health}` }], undefined);
      out('Mesh left running. Ctrl-C to stop.');
      await untilSignal();
      stopped = true;
      await traffic;
    }
    return result.failed === 0 && Object.keys(result.counts).length === options.replicas ? 0 : 1;
  } finally {
    await proxy?.close();
    for (const s of servers) s.forceShutdown();
  }
}

/** Keeps one Service and every EndpointSlice from per-replica mesh files (slices renamed apart). */
function mergeSlices(docs: string[]): string {
  const parts: string[] = [];
  docs.forEach((doc, i) => {
    for (const part of doc.split(/^---\n/m)) {
      // Replicas share 127.0.0.1: no Pod objects (they would claim one IP), one Service.
      if (/^kind: Pod$/m.test(part) || (i > 0 && /^kind: (Service|Namespace|ServiceAccount)$/m.test(part))) continue;
      parts.push(part.replace(/^(\s+name: greeter)-1$/m, `$1-${i + 1}`));
    }
  });
  return parts.join('---\n');
}
