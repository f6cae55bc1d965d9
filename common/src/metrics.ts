// The registration shape the control plane, the CA and the injector share for their /metrics: a
// registry of their own (never prom-client's global one) carrying `tsmesh_build_info` and, by
// default, the process's standard metrics. Imported as `@tsmesh/common/metrics`, so programs that
// serve no metrics never load prom-client.
import { readFileSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export const BUILD_INFO_METRIC = 'tsmesh_build_info';

/** What a server answers a scrape with: Prometheus text format 0.0.4. */
export interface RenderedMetrics {
  readonly contentType: string;
  readonly body: string;
}

export interface ComponentRegistryOptions {
  /** The `component` label of tsmesh_build_info: control, ca, injector. */
  readonly component: string;
  /** The program's version (its package.json's; see packageVersion). */
  readonly version: string;
  /** Collect the process's default metrics (`process_*`, `nodejs_*`). Default true. */
  readonly defaultMetrics?: boolean;
}

/** A registry with tsmesh_build_info{component,version,node_version} 1 and the default metrics. */
export function componentRegistry(options: ComponentRegistryOptions): Registry {
  const registry = new Registry();
  const info = new Gauge({
    name: BUILD_INFO_METRIC,
    help: 'Always 1: the running component, its tsmesh version and its Node.js version as labels.',
    labelNames: ['component', 'version', 'node_version'],
    registers: [registry],
  });
  info.set({ component: options.component, version: options.version, node_version: process.version }, 1);
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

/** The registry's metrics as a scrape answer. */
export async function renderMetrics(registry: Registry): Promise<RenderedMetrics> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** The `version` of the package.json at `url` (resolved by the caller from its import.meta.url); "unknown" without one. */
export function packageVersion(url: URL): string {
  try {
    const { version } = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
    return typeof version === 'string' && version !== '' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}
