// The Grafana dashboards the chart ships: ConfigMaps Grafana's sidecar picks up, JSON that parses,
// and PromQL that asks only for what the sidecars export. The exported names and labels come from
// the proxy's own metrics registry (a real exposition), the allowed labels from SPEC.md *Telemetry*.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { render, REPO_ROOT, type KubeObject } from './helm.js';
import { all } from './objects.js';

type ConfigMap = KubeObject & { data: Record<string, string> };

/** SPEC.md *Telemetry*: the labels of the request and TCP metrics. */
const SPEC_LABELS = [
  'reporter',
  'source_workload',
  'source_namespace',
  'destination_service',
  'destination_workload',
  'destination_namespace',
  'response_code',
  'grpc_status',
  'connection_security_policy',
];
/** Labels Prometheus itself gives histogram series. */
const HISTOGRAM_LABELS = ['le'];

/** PromQL functions, aggregations and keywords the dashboards may use (anything else is a typo or a metric). */
const FUNCTIONS = new Set([
  'sum', 'avg', 'min', 'max', 'count', 'topk', 'bottomk', 'rate', 'irate', 'increase', 'histogram_quantile',
  'clamp_min', 'clamp_max', 'abs', 'round', 'vector', 'label_values', 'sort_desc', 'delta',
]);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

interface Exported {
  /** Series name → its label names, from the proxy's exposition text. */
  readonly series: Map<string, Set<string>>;
}

/** Records one request, one TCP connection and one of each proxy-health event on a real ProxyMetrics, and reads the exposition. */
async function exportedByTheProxy(): Promise<Exported> {
  // The proxy package exports only its entry point; its metrics module is loaded from the build.
  const metricsModule = pathToFileURL(join(REPO_ROOT, 'proxy', 'dist', 'telemetry', 'metrics.js')).href;
  const { ProxyMetrics } = (await import(metricsModule)) as {
    ProxyMetrics: new (options: { defaultMetrics: boolean }) => {
      recordRequest(sample: unknown): void;
      tcpConnection(peers: unknown): { bytes(sent: number, received: number): void; closed(): void };
      protocolDetectTimeout(direction: string): void;
      upstreamConnectFailure(service: string): void;
      setCertExpiry(notAfter: Date, identity: string): void;
      render(): Promise<string>;
    };
  };
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  const peers = {
    reporter: 'destination',
    source: { workload: 'cart', namespace: 'shop' },
    destination: { workload: 'web', namespace: 'shop', service: 'web.shop' },
    mtls: true,
  };
  metrics.recordRequest({ ...peers, responseCode: 200, grpc: true, grpcStatus: 0, durationSeconds: 0.01 });
  const tcp = metrics.tcpConnection(peers);
  tcp.bytes(10, 20);
  tcp.closed();
  metrics.protocolDetectTimeout('inbound');
  metrics.upstreamConnectFailure('web.shop');
  metrics.setCertExpiry(new Date(Date.now() + 3_600_000), 'spiffe://cluster.local/ns/shop/sa/web');
  const series = new Map<string, Set<string>>();
  for (const line of (await metrics.render()).split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (match === null || match[1] === undefined) continue;
    const labels = series.get(match[1]) ?? new Set<string>();
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(pair[1] as string);
    series.set(match[1], labels);
  }
  return { series };
}

/** What one PromQL expression refers to. */
interface Refs {
  readonly metrics: string[];
  /** Labels in selectors, with the metric they select on. */
  readonly matchers: { metric: string; label: string }[];
  /** Labels of by/without/on/ignoring clauses. */
  readonly grouping: string[];
  readonly functions: string[];
  readonly problems: string[];
}

type Token = { kind: 'ident' | 'string' | 'number' | 'duration' | 'op' | 'punct'; text: string };

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /\s+|("(?:[^"\\]|\\.)*")|(\[[^\]]*\])|([a-zA-Z_:][a-zA-Z0-9_:]*)|(\d+(?:\.\d+)?(?:e[+-]?\d+)?)|(=~|!~|!=|==|>=|<=|[-+*/%^=<>])|([(){},])/gy;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < expr.length && (match = pattern.exec(expr)) !== null) {
    if (match[1] !== undefined) tokens.push({ kind: 'string', text: match[1] });
    else if (match[2] !== undefined) tokens.push({ kind: 'duration', text: match[2] });
    else if (match[3] !== undefined) tokens.push({ kind: 'ident', text: match[3] });
    else if (match[4] !== undefined) tokens.push({ kind: 'number', text: match[4] });
    else if (match[5] !== undefined) tokens.push({ kind: 'op', text: match[5] });
    else if (match[6] !== undefined) tokens.push({ kind: 'punct', text: match[6] });
  }
  if (pattern.lastIndex < expr.length) throw new Error(`cannot read "${expr.slice(pattern.lastIndex)}" in ${expr}`);
  return tokens;
}

/** The names an expression refers to: a small reader of the PromQL the dashboards use, strict about what it does not know. */
function references(expr: string): Refs {
  const refs: Refs = { metrics: [], matchers: [], grouping: [], functions: [], problems: [] };
  const tokens = tokenize(expr.replaceAll('$__rate_interval', '5m'));
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    const next = tokens[i + 1];
    if (token.kind === 'punct' && token.text === '(') depth++;
    if (token.kind === 'punct' && token.text === ')') depth--;
    if (depth < 0) refs.problems.push(`unbalanced ")" in ${expr}`);
    if (token.kind === 'duration' && !/^\[\d+[smhd]\]$/.test(token.text)) refs.problems.push(`bad range ${token.text}`);
    if (token.kind === 'punct' && token.text === '{') refs.problems.push(`a selector without a metric name in ${expr}`);
    if (token.kind !== 'ident') continue;
    if (KEYWORDS.has(token.text)) {
      if (['by', 'without', 'on', 'ignoring'].includes(token.text)) {
        if (next?.text !== '(') refs.problems.push(`${token.text} without a label list`);
        let j = i + 2;
        for (; j < tokens.length && tokens[j]?.text !== ')'; j++) {
          const label = tokens[j] as Token;
          if (label.kind === 'ident') refs.grouping.push(label.text);
          else if (label.text !== ',') refs.problems.push(`unexpected ${label.text} in ${token.text} (...)`);
        }
        i = j;
      }
      continue;
    }
    // An aggregation may put its grouping before its argument: sum by (le) (...).
    if (next?.text === '(' || (FUNCTIONS.has(token.text) && (next?.text === 'by' || next?.text === 'without'))) {
      refs.functions.push(token.text);
      if (!FUNCTIONS.has(token.text)) refs.problems.push(`unknown function ${token.text}`);
      continue;
    }
    refs.metrics.push(token.text);
    if (next?.text === '{') {
      let j = i + 2;
      while (j < tokens.length && tokens[j]?.text !== '}') {
        const [label, op, value] = [tokens[j], tokens[j + 1], tokens[j + 2]];
        if (label?.kind !== 'ident' || op?.kind !== 'op' || !['=', '!=', '=~', '!~'].includes(op.text) || value?.kind !== 'string') {
          refs.problems.push(`bad matcher in ${expr}`);
          break;
        }
        refs.matchers.push({ metric: token.text, label: label.text });
        j += 3;
        if (tokens[j]?.text === ',') j++;
      }
      i = j;
    }
  }
  if (depth !== 0) refs.problems.push(`unbalanced parentheses in ${expr}`);
  return refs;
}

interface Dashboard {
  uid: string;
  title: string;
  tags?: string[];
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string | { query: string }; datasource?: unknown }[] };
}

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; legendFormat?: string; datasource?: { uid: string } }[];
  fieldConfig?: { defaults?: { links?: { url: string }[] } };
}

/** Every expression of a dashboard: panel targets and the label_values(...) of its variables, with what names its series. */
function expressions(dashboard: Dashboard): { where: string; expr: string; legendLabels: string[]; extraLabels: string[] }[] {
  const out: { where: string; expr: string; legendLabels: string[]; extraLabels: string[] }[] = [];
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
    const match = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query);
    if (match === null) throw new Error(`${dashboard.uid} variable ${variable.name}: not label_values(selector, label): ${query}`);
    out.push({ where: `${dashboard.uid} $${variable.name}`, expr: match[1] as string, legendLabels: [], extraLabels: [match[2] as string] });
  }
  for (const panel of dashboard.panels) {
    const linkLabels = (panel.fieldConfig?.defaults?.links ?? []).flatMap((l) => [...l.url.matchAll(/__field\.labels\.([a-zA-Z_]+)/g)].map((m) => m[1] as string));
    for (const target of panel.targets ?? []) {
      const legendLabels = [...(target.legendFormat ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1] as string);
      out.push({ where: `${dashboard.uid} "${panel.title}"`, expr: target.expr, legendLabels: [...legendLabels, ...linkLabels], extraLabels: [] });
    }
  }
  return out;
}

describe('the Grafana dashboards', () => {
  let maps: ConfigMap[];
  let dashboards: Dashboard[];
  let exported: Exported;

  beforeAll(async () => {
    maps = all<ConfigMap>(await render(), 'ConfigMap').filter((m) => m.metadata.name.startsWith('tsmesh-dashboard-'));
    dashboards = maps.flatMap((m) => Object.values(m.data).map((text) => JSON.parse(text) as Dashboard));
    exported = await exportedByTheProxy();
  });

  test('are three ConfigMaps with the label Grafana\'s dashboard sidecar looks for, each one JSON dashboard', () => {
    expect(maps.map((m) => m.metadata.name).sort()).toEqual(['tsmesh-dashboard-mesh', 'tsmesh-dashboard-service', 'tsmesh-dashboard-workload']);
    for (const map of maps) {
      expect(map.metadata.labels?.['grafana_dashboard']).toBe('1');
      expect(Object.keys(map.data)).toEqual([expect.stringMatching(/^tsmesh-[a-z]+\.json$/)]);
    }
    expect(dashboards.map((d) => d.uid).sort()).toEqual(['tsmesh-mesh', 'tsmesh-service', 'tsmesh-workload']);
    for (const dashboard of dashboards) {
      expect(dashboard.title).toMatch(/^tsmesh \/ /);
      expect(dashboard.tags).toContain('tsmesh');
    }
  });

  test('every panel but the rows queries the Prometheus of the datasource variable', () => {
    for (const dashboard of dashboards) {
      expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toEqual(expect.objectContaining({ type: 'datasource', query: 'prometheus' }));
      for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
        expect([panel.title, panel.datasource]).toEqual([panel.title, { type: 'prometheus', uid: '${datasource}' }]);
        expect([panel.title, (panel.targets ?? []).length]).toEqual([panel.title, expect.any(Number)]);
        expect((panel.targets ?? []).length).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) expect(target.datasource?.uid).toBe('${datasource}');
      }
    }
  });

  test('the proxy exports the SPEC labels on its request and TCP metrics (what the check below relies on)', () => {
    for (const name of ['tsmesh_requests_total', 'tsmesh_request_duration_seconds_bucket']) {
      expect([...(exported.series.get(name) ?? [])].sort()).toEqual([...SPEC_LABELS, ...(name.endsWith('_bucket') ? HISTOGRAM_LABELS : [])].sort());
    }
    for (const name of ['tsmesh_tcp_opened_total', 'tsmesh_tcp_closed_total', 'tsmesh_tcp_sent_bytes_total', 'tsmesh_tcp_received_bytes_total']) {
      expect([...(exported.series.get(name) ?? [])].sort()).toEqual(SPEC_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_status').sort());
    }
  });

  test('every PromQL expression reads, and names only metrics the proxy exports and labels of SPEC.md that those metrics have', () => {
    const used = new Set<string>();
    let count = 0;
    for (const dashboard of dashboards) {
      for (const { where, expr, legendLabels, extraLabels } of expressions(dashboard)) {
        count++;
        const refs = references(expr);
        expect([where, refs.problems]).toEqual([where, []]);
        expect([where, refs.metrics.length]).toEqual([where, expect.any(Number)]);
        expect(refs.metrics.length).toBeGreaterThan(0);
        for (const metric of refs.metrics) {
          used.add(metric);
          expect([where, metric, exported.series.has(metric)]).toEqual([where, metric, true]);
        }
        const allowed = (metric: string) => [...(exported.series.get(metric) ?? [])].filter((l) => SPEC_LABELS.includes(l) || HISTOGRAM_LABELS.includes(l));
        for (const { metric, label } of refs.matchers) expect([where, metric, label, allowed(metric).includes(label)]).toEqual([where, metric, label, true]);
        const labelsOfExpr = new Set(refs.metrics.flatMap(allowed));
        for (const label of [...refs.grouping, ...extraLabels]) expect([where, label, labelsOfExpr.has(label)]).toEqual([where, label, true]);
        // A legend or link label must survive the aggregation, or Grafana shows it empty.
        for (const label of legendLabels) expect([where, label, refs.grouping.includes(label)]).toEqual([where, label, true]);
        if (refs.functions.includes('histogram_quantile')) expect([where, refs.grouping.includes('le')]).toEqual([where, true]);
      }
    }
    expect(count).toBeGreaterThan(40);
    // Every SPEC metric is on some dashboard.
    for (const metric of ['tsmesh_requests_total', 'tsmesh_request_duration_seconds_bucket', 'tsmesh_tcp_opened_total', 'tsmesh_tcp_closed_total', 'tsmesh_tcp_sent_bytes_total', 'tsmesh_tcp_received_bytes_total']) {
      expect([metric, used.has(metric)]).toEqual([metric, true]);
    }
  });

  test('the PromQL check catches an unknown metric, a label the metric lacks, a typo in a function and a lost legend label', () => {
    expect(references('sum(rate(tsmesh_request_total{reporter="source"}[5m]))').metrics).toEqual(['tsmesh_request_total']);
    expect(references('sum by (pod) (rate(tsmesh_requests_total{pod="x"}[$__rate_interval]))')).toEqual(
      expect.objectContaining({ grouping: ['pod'], matchers: [{ metric: 'tsmesh_requests_total', label: 'pod' }] }),
    );
    expect(references('histogram_quantil(0.9, sum by (le) (rate(tsmesh_request_duration_seconds_bucket[5m])))').problems).toEqual(['unknown function histogram_quantil']);
    expect(references('sum(rate(tsmesh_requests_total[5m])').problems).toEqual([expect.stringContaining('unbalanced')]);
    expect(references('sum by (le) (rate({reporter="source"}[5m]))').problems).toEqual([expect.stringContaining('without a metric name')]);
    expect(exported.series.has('tsmesh_request_total')).toBe(false);
  });

  test('follow dashboards.namespace, .labels and .annotations, and are left out with dashboards.enabled false', async () => {
    const objects = await render({
      set: { 'dashboards.namespace': 'monitoring', 'dashboards.labels.team': 'mesh', 'dashboards.annotations.grafana_folder': 'tsmesh' },
    });
    const moved = all<ConfigMap>(objects, 'ConfigMap').filter((m) => m.metadata.name.startsWith('tsmesh-dashboard-'));
    expect(moved).toHaveLength(3);
    for (const map of moved) {
      expect(map.metadata.namespace).toBe('monitoring');
      expect(map.metadata.labels).toEqual(expect.objectContaining({ grafana_dashboard: '1', team: 'mesh' }));
      expect(map.metadata.annotations).toEqual({ grafana_folder: 'tsmesh' });
    }
    const off = await render({ set: { 'dashboards.enabled': 'false' } });
    expect(off.some((o) => o.metadata.name.startsWith('tsmesh-dashboard-'))).toBe(false);
  });
});
