// The control plane's Prometheus metrics (GET /metrics on its admin server): sidecars connected,
// snapshots pushed and how long a change took to reach them, ACKs and NACKs, the snapshot in force,
// and the Kubernetes watch events behind it. Counted through the distributor's observer and the
// Kubernetes source's onWatchEvent; the gauges are read when scraped.
import type { ClientMessage } from '@tsmesh/common';
import { componentRegistry, packageVersion, renderMetrics, type RenderedMetrics } from '@tsmesh/common/metrics';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DistributionObserver, MeshDistributor } from './distribution/distributor.js';
import type { WatchEventType } from './kube/informer.js';

export const CONTROL_METRIC_NAMES = {
  connectedProxies: 'tsmesh_control_connected_proxies',
  pushes: 'tsmesh_control_pushes_total',
  pushDuration: 'tsmesh_control_push_duration_seconds',
  acks: 'tsmesh_control_acks_total',
  nacks: 'tsmesh_control_nacks_total',
  snapshotInfo: 'tsmesh_control_snapshot_info',
  snapshots: 'tsmesh_control_snapshots_published_total',
  watchEvents: 'tsmesh_control_watch_events_total',
} as const;

/** Push latency buckets in seconds: 1 ms (a connect) to 30 s (a change stuck behind a slow reader). */
export const PUSH_BUCKETS: readonly number[] = Object.freeze([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);

/**
 * The `kind` label of a NACK, from the reason the sidecar gave: `too_large` a snapshot over its size
 * limit, `unparsable` one it could not read, `invalid` one it read and refused.
 */
export type NackKind = 'too_large' | 'unparsable' | 'invalid';

export function nackKind(reason: string): NackKind {
  if (/over the size limit/i.test(reason)) return 'too_large';
  if (/not (valid )?JSON|cannot (be )?(parse|decode)|unparsable|malformed/i.test(reason)) return 'unparsable';
  return 'invalid';
}

export interface ControlMetricsOptions {
  /** Collect the process's default metrics. Default true. */
  readonly defaultMetrics?: boolean;
}

export class ControlMetrics implements DistributionObserver {
  readonly registry: Registry;
  private readonly pushes: Counter<'trigger'>;
  private readonly pushDuration: Histogram<'trigger'>;
  private readonly acks: Counter;
  private readonly nacks: Counter<'kind'>;
  private readonly watchEvents: Counter<'kind' | 'type'>;
  private distributor: MeshDistributor | undefined;

  constructor(options: ControlMetricsOptions = {}) {
    const registry = componentRegistry({
      component: 'control',
      version: packageVersion(new URL('../package.json', import.meta.url)),
      ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
    });
    this.registry = registry;
    const registers = [registry];
    const read = (): MeshDistributor | undefined => this.distributor;
    new Gauge({
      name: CONTROL_METRIC_NAMES.connectedProxies,
      help: 'Sidecars with an open mesh stream to this control plane.',
      registers,
      collect() {
        this.set(read()?.connections().length ?? 0);
      },
    });
    this.pushes = new Counter({
      name: CONTROL_METRIC_NAMES.pushes,
      help: 'Mesh snapshots written to sidecar streams, by trigger: connect (the first of a stream) or change (a new snapshot).',
      labelNames: ['trigger'],
      registers,
    });
    this.pushDuration = new Histogram({
      name: CONTROL_METRIC_NAMES.pushDuration,
      help: 'Seconds from a change reaching the control plane (or a stream opening) to the snapshot written to the sidecar, debounce included.',
      labelNames: ['trigger'],
      buckets: [...PUSH_BUCKETS],
      registers,
    });
    this.acks = new Counter({ name: CONTROL_METRIC_NAMES.acks, help: 'Snapshots sidecars acknowledged.', registers });
    this.nacks = new Counter({
      name: CONTROL_METRIC_NAMES.nacks,
      help: 'Snapshots sidecars refused (they keep their last good one), by kind: too_large, unparsable, invalid.',
      labelNames: ['kind'],
      registers,
    });
    let reportedPublishes = 0;
    new Gauge({
      name: CONTROL_METRIC_NAMES.snapshotInfo,
      help: 'Always 1: the version of the mesh snapshot in force as a label (none before the first).',
      labelNames: ['version'],
      registers,
      collect() {
        this.reset();
        const version = read()?.status().sourceVersion;
        if (version !== undefined) this.set({ version }, 1);
      },
    });
    new Counter({
      name: CONTROL_METRIC_NAMES.snapshots,
      help: 'Mesh snapshots published to sidecars (after debouncing).',
      registers,
      collect() {
        const publishes = read()?.status().publishes ?? 0;
        if (publishes > reportedPublishes) this.inc(publishes - reportedPublishes);
        reportedPublishes = Math.max(reportedPublishes, publishes);
      },
    });
    this.watchEvents = new Counter({
      name: CONTROL_METRIC_NAMES.watchEvents,
      help: 'Kubernetes list and watch events the control plane heard, by kind and type (added, modified, deleted).',
      labelNames: ['kind', 'type'],
      registers,
    });
  }

  /** Reads connected sidecars and the snapshot in force from `distributor` at each scrape. */
  follow(distributor: MeshDistributor): void {
    this.distributor = distributor;
  }

  pushed(trigger: 'connect' | 'change', seconds: number): void {
    this.pushes.inc({ trigger });
    this.pushDuration.observe({ trigger }, seconds);
  }

  answered(message: ClientMessage): void {
    if (message.type === 'ack') this.acks.inc();
    else this.nacks.inc({ kind: nackKind(message.error) });
  }

  watchEvent(kind: string, type: WatchEventType): void {
    this.watchEvents.inc({ kind, type });
  }

  render(): Promise<RenderedMetrics> {
    return renderMetrics(this.registry);
  }
}
