// The Prometheus scrape annotations of an injected pod: the common `prometheus.io/*` convention
// (Prometheus's kubernetes_sd example configuration, the Helm chart's default jobs) pointed at the
// sidecar's metrics, unless the application has scrape annotations of its own.
import { HEALTH_PORT } from './probes.js';

export const PROMETHEUS_ANNOTATIONS = {
  scrape: 'prometheus.io/scrape',
  port: 'prometheus.io/port',
  path: 'prometheus.io/path',
  scheme: 'prometheus.io/scheme',
} as const;

/** Where the sidecar serves its metrics (plain HTTP, never captured). */
export const METRICS_PATH = '/metrics';

/**
 * Adds `prometheus.io/scrape: "true"`, `port: "15020"` and `path: "/metrics"` to `annotations`
 * (mutated) when it has none of the `prometheus.io/*` scrape annotations. One of them present means
 * the application set its own (or asked not to be scraped): they are left exactly as they are, and
 * the sidecar stays reachable by its container port name `tsmesh-health`.
 */
export function addScrapeAnnotations(annotations: Record<string, string>): boolean {
  if (Object.values(PROMETHEUS_ANNOTATIONS).some((name) => annotations[name] !== undefined)) return false;
  annotations[PROMETHEUS_ANNOTATIONS.scrape] = 'true';
  annotations[PROMETHEUS_ANNOTATIONS.port] = String(HEALTH_PORT);
  annotations[PROMETHEUS_ANNOTATIONS.path] = METRICS_PATH;
  return true;
}
