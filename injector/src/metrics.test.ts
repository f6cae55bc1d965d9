import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { injectorConfig } from './config.js';
import { INJECTOR_METRIC_NAMES } from './metrics.js';
import { staticNamespaceLabels } from './namespaces.js';
import { startInjector, type RunningInjector } from './server.js';
import { loadReview } from './testdata/fixtures.js';

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}

function call(at: number, ca: Buffer, method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: at, path, method, ca, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the injector /metrics, scraped from a running injector', () => {
  let dir: string;
  let injector: RunningInjector | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-injector-metrics-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=injector', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')],
      { stdio: 'ignore' },
    );
  });
  afterEach(async () => {
    await injector?.close();
    injector = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts AdmissionReviews by result, with their latency and the patch size', async () => {
    const config = injectorConfig(
      ['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--listen', '127.0.0.1:0', '--native-sidecars', 'false', '--log-level', 'silent'],
      {},
    );
    injector = await startInjector(config, { namespaceLabels: staticNamespaceLabels({ plain: {} }, { 'tsmesh-injection': 'enabled' }) });
    const at = Number(new URL(injector.address).port);
    const ca = readFileSync(join(dir, 'tls.crt'));
    const scrape = async (): Promise<string> => {
      const answer = await call(at, ca, 'GET', '/metrics');
      expect(answer.status).toBe(200);
      expect(answer.type).toMatch(/^text\/plain; version=0\.0\.4/);
      return answer.text;
    };
    const before = await scrape();
    expect(sample(before, 'tsmesh_build_info', { component: 'injector' })).toBe(1);
    expect(sample(before, INJECTOR_METRIC_NAMES.admissions, { result: 'injected' })).toBeUndefined();

    const review = loadReview('review-bare-pod') as { request: { namespace?: string; object: { metadata: { annotations?: Record<string, string> } } } };
    const injected = await call(at, ca, 'POST', '/inject', JSON.stringify(review));
    const patch = (JSON.parse(injected.text) as { response: { patch: string } }).response.patch;
    const skipped = structuredClone(review);
    skipped.request.namespace = 'plain';
    expect((await call(at, ca, 'POST', '/inject', JSON.stringify(skipped))).status).toBe(200);
    const denied = structuredClone(review);
    denied.request.object.metadata.annotations = { ...denied.request.object.metadata.annotations, 'tsmesh.io/proxy-cpu': 'lots' };
    expect(JSON.parse((await call(at, ca, 'POST', '/inject', JSON.stringify(denied))).text)).toMatchObject({ response: { allowed: false } });
    expect((await call(at, ca, 'POST', '/inject', '{"kind":"Pod"}')).status).toBe(400);

    const after = await scrape();
    for (const result of ['injected', 'skipped', 'denied', 'invalid']) {
      expect([result, sample(after, INJECTOR_METRIC_NAMES.admissions, { result })]).toEqual([result, 1]);
      expect([result, sample(after, `${INJECTOR_METRIC_NAMES.admissionDuration}_count`, { result })]).toEqual([result, 1]);
    }
    expect(sample(after, `${INJECTOR_METRIC_NAMES.patchSize}_count`)).toBe(1);
    expect(sample(after, `${INJECTOR_METRIC_NAMES.patchSize}_sum`)).toBe(Buffer.from(patch, 'base64').length);
  });
});
