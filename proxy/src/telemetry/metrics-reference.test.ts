// docs/reference.md's metrics table against what the sidecar registers: every tsmesh_* family of
// ProxyMetrics, with its type and labels, and no family the sidecar does not have.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { ISTIO_METRIC_NAMES, ISTIO_REQUEST_LABELS, ISTIO_TCP_LABELS, METRIC_NAMES, ProxyMetrics, REQUEST_LABELS, TCP_LABELS } from './metrics.js';

const doc = readFileSync(new URL('../../../docs/reference.md', import.meta.url), 'utf8');

interface Family {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
}

/** The rows of the tables under "## Metrics" whose metric starts with `prefix`, as families. */
function documented(prefix = 'tsmesh_'): Family[] {
  const start = doc.indexOf('\n## Metrics\n');
  const end = doc.indexOf('\n## ', start + 1);
  const text = doc.slice(start, end < 0 ? undefined : end);
  const rows = text.split('\n').filter((line) => line.startsWith(`| \`${prefix}`));
  const byName = new Map<string, Family>();
  for (const row of rows) {
    const [name, type, labels] = row.slice(1, -1).split('|').map((cell) => cell.trim());
    const spans = [...(labels ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    // "as `tsmesh_requests_total`": the labels of a family listed above.
    const same = /^as `/.test(labels ?? '') ? byName.get(spans[0] ?? '') : undefined;
    const family = { name: name?.replaceAll('`', '') ?? '', type: type ?? '', labels: same ? same.labels : spans };
    byName.set(family.name, family);
  }
  return [...byName.values()];
}

/** What one ProxyMetrics registers: its prom-client metrics, and the request and TCP families of its series table. */
async function registered(): Promise<Family[]> {
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const families: Family[] = (await metrics.registry.getMetricsAsJSON()).map((m) => {
    const metric = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] };
    return { name: m.name, type: String(m.type), labels: metric.labelNames };
  });
  const series = [
    { name: METRIC_NAMES.requests, type: 'counter', labels: REQUEST_LABELS },
    { name: METRIC_NAMES.requestDuration, type: 'histogram', labels: REQUEST_LABELS },
    ...[METRIC_NAMES.tcpOpened, METRIC_NAMES.tcpClosed, METRIC_NAMES.tcpSentBytes, METRIC_NAMES.tcpReceivedBytes].map((name) => ({ name, type: 'counter', labels: TCP_LABELS })),
  ];
  return [...families, ...series];
}

describe('the metrics reference', () => {
  it('lists every tsmesh_* metric the sidecar registers, with its type and labels, and no other', async () => {
    const sortFamilies = (list: Family[]): Family[] => list.map((f) => ({ ...f, labels: [...f.labels] })).sort((a, b) => a.name.localeCompare(b.name));
    const mine = await registered();
    // Every name ProxyMetrics knows is in what it registers, so nothing is missed below.
    expect(new Set(mine.map((f) => f.name))).toEqual(new Set(Object.values(METRIC_NAMES)));
    expect(sortFamilies(documented())).toEqual(sortFamilies(mine));
  });

  it('reads the labels the series table actually renders, not only the constants', async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const peers = { reporter: 'source' as const, source: { workload: 'a', namespace: 'n' }, destination: { service: 's', workload: 'b', namespace: 'n' }, mtls: true };
    metrics.recordRequest({ ...peers, responseCode: 200, grpc: false, grpcStatus: undefined, durationSeconds: 0.01 });
    metrics.tcpConnection(peers).closed();
    const json = await metrics.json();
    const labelsOf = (name: string): string[] => Object.keys(json.find((m) => m.name === name)?.values[0]?.labels ?? {}).filter((l) => l !== 'le');
    expect(labelsOf(METRIC_NAMES.requests)).toEqual([...REQUEST_LABELS]);
    expect(labelsOf(METRIC_NAMES.requestDuration)).toEqual([...REQUEST_LABELS]);
    expect(labelsOf(METRIC_NAMES.tcpOpened)).toEqual([...TCP_LABELS]);
  });

  it("lists every istio_* metric with Istio's labels, which the sidecar renders", async () => {
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const peers = { reporter: 'source' as const, source: { workload: 'a', namespace: 'n' }, destination: { service: 's.n', workload: 'b', namespace: 'n' }, mtls: true };
    metrics.recordRequest({ ...peers, responseCode: 200, grpc: false, grpcStatus: undefined, durationSeconds: 0.01 });
    const conn = metrics.tcpConnection(peers);
    conn.bytes(1, 1);
    conn.closed();
    const json = await metrics.json();
    const typeOf = (name: string): string => String(json.find((m) => m.name === name)?.type);
    const labelsOf = (name: string): string[] => Object.keys(json.find((m) => m.name === name)?.values[0]?.labels ?? {}).filter((l) => l !== 'le');
    const rendered = Object.values(ISTIO_METRIC_NAMES).map((name) => ({ name, type: typeOf(name), labels: labelsOf(name) }));
    const byName = (list: Family[]): Family[] => list.map((f) => ({ ...f, labels: [...f.labels] })).sort((a, b) => a.name.localeCompare(b.name));
    expect(byName(documented('istio_'))).toEqual(byName(rendered));
    expect(labelsOf(ISTIO_METRIC_NAMES.requests)).toEqual([...ISTIO_REQUEST_LABELS]);
    expect(labelsOf(ISTIO_METRIC_NAMES.tcpOpened)).toEqual([...ISTIO_TCP_LABELS]);
  });
});
