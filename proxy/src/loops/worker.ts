// The entry point of one event loop in a worker thread (`tsmesh proxy --concurrency N`, N ≥ 2): a
// data plane on the shared capture ports (SO_REUSEPORT), fed by the main thread with mesh snapshots
// (as objects, rebuilt here), the workload certificate's PEMs and log levels, and answering its
// questions (metrics, clusters, drain, close). It never talks to the control plane or the CA.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { buildSnapshot, logger, setLogLevel } from '@tsmesh/common';
import { SharedIdentity } from '../identity/shared.js';
import { SharedCounts } from '../upstream/shared-counts.js';
import { AccessLog, ProxyMetrics, ProxyTracer, RequestTelemetry, startTelemetrySdk, workloadFromPodName } from '../telemetry/index.js';
import { startDataPlane, type DataPlane } from './data-plane.js';
import type { FromLoop, LoopInit, LoopRequests, MeshMessage, RequestKind, ToLoop } from './messages.js';

const init = workerData as LoopInit;
if (parentPort === null) throw new Error('loops/worker.js runs in a worker thread started by the sidecar (loops/pool.ts)');
const port: MessagePort = parentPort;
setLogLevel(init.logLevel);
const log = logger('loop');
const post = (message: FromLoop): void => port.postMessage(message);

const config = init.config;
const tls = init.identity ? new SharedIdentity(config.trustDomain, init.material) : undefined;
const snapshotOf = (mesh: MeshMessage) => buildSnapshot(mesh.objects, mesh.version);
const sdk = await startTelemetrySdk({
  tracing: init.tracing,
  service: { name: config.podName ? workloadFromPodName(config.podName) : 'unknown', namespace: config.podNamespace, podName: config.podName },
});
// The process metrics (memory, CPU, handles) are the main thread's: the loops share one process.
const metrics = new ProxyMetrics({ defaultMetrics: false });
const telemetry = new RequestTelemetry({ metrics, tracer: new ProxyTracer({ sampleRate: init.tracing.sampleRate }), accessLog: new AccessLog(undefined, { enabled: init.accessLog }) });

async function start(): Promise<DataPlane | undefined> {
  try {
    // A loop started again clears what it had in flight before it ended.
    const shared = new SharedCounts(init.counts, init.loop);
    shared.reset();
    return await startDataPlane({ config, loop: init.loop, snapshot: snapshotOf(init.mesh), tls, telemetry, reusePort: true, ports: init.ports, shared, rateBuckets: init.rateBuckets });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    post({ type: 'failed', message: e.message, code: e.code });
    return undefined;
  }
}

function serve(dataPlane: DataPlane): void {
  const answers: { [K in RequestKind]: (ask: LoopRequests[K]['ask']) => Promise<LoopRequests[K]['answer']> | LoopRequests[K]['answer'] } = {
    metrics: () => metrics.json(),
    clusters: () => dataPlane.clusters(),
    stopAccepting: () => {
      dataPlane.stopAccepting();
      return null;
    },
    drain: (ask) => dataPlane.drain(ask.durationMs),
    close: async () => {
      await dataPlane.close();
      await sdk.shutdown();
      return null;
    },
  };
  port.on('message', (message: ToLoop) => {
    switch (message.type) {
      case 'mesh':
        dataPlane.update(snapshotOf(message.mesh));
        log.debug({ version: message.mesh.version }, 'mesh updated');
        return;
      case 'tls':
        tls?.install(message.material);
        return;
      case 'log-level':
        setLogLevel(message.level);
        return;
      case 'request': {
        const answer = answers[message.kind] as (ask: unknown) => unknown;
        Promise.resolve()
          .then(() => answer(message.ask))
          .then(
            (value) => post({ type: 'answer', id: message.id, ok: true, value }),
            (error: unknown) => post({ type: 'answer', id: message.id, ok: false, message: (error as Error).message }),
          );
        return;
      }
    }
  });
  post({ type: 'listening', ports: dataPlane.ports });
  log.debug({ ports: dataPlane.ports }, 'event loop listening');
}

const dataPlane = await start();
// Without a data plane the thread waits for the main thread, which ends it on 'failed'.
if (dataPlane === undefined) port.on('message', () => undefined);
else serve(dataPlane);
