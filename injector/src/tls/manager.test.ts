import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { setLogLevel } from '@tsmesh/common';
import { injectorConfig } from '../config.js';
import { staticNamespaceLabels } from '../namespaces.js';
import { startInjector, type InjectorDependencies, type RunningInjector } from '../server.js';
import { loadReview } from '../testdata/fixtures.js';
import { generateCa, splitPem } from './certificates.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';
import { CA_SECRET_KEYS, WebhookCertManager, type WebhookCertOptions } from './manager.js';
import { kubeWebhookApi } from './webhook-api.js';

const WEBHOOK = 'tsmesh-sidecar-injector';
const HOST = 'tsmesh-injector.tsmesh-system.svc';
const SECRET = 'tsmesh-system/tsmesh-injector-ca';
const DAY = 86_400_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(read: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > until) return value;
    await sleep(20);
  }
}

const pemOf = (base64: string) => Buffer.from(base64, 'base64').toString();
const printsOf = (base64: string) => splitPem(pemOf(base64)).map((pem) => new X509Certificate(pem).fingerprint256);

/** POST /inject trusting only `caBundle` (base64, as in the webhook configuration) and checking the host name, as the API server does. */
function inject(port: number, caBundle: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', servername: HOST, port, path: '/inject', method: 'POST', ca: pemOf(caBundle), agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(loadReview('review-bare-pod')));
  });
}

function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false }, () => {
      const peer = socket.getPeerX509Certificate();
      socket.end();
      if (peer === undefined) reject(new Error('no certificate'));
      else resolve(peer);
    });
    socket.on('error', reject);
  });
}

/** One HTTP/1.1 request on an already open TLS connection. */
function getOn(socket: TLSSocket, path: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString().split('\r\n')[0] ?? ''));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  });
}

describe('the self-managed webhook certificate', () => {
  let api: FakeApiServer;
  let injector: RunningInjector | undefined;
  const managers: WebhookCertManager[] = [];
  const sockets: TLSSocket[] = [];

  beforeAll(() => setLogLevel('silent'));
  beforeEach(async () => {
    api = await startFakeApiServer([WEBHOOK]);
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await injector?.close();
    injector = undefined;
    await Promise.all(managers.splice(0).map((m) => m.stop()));
    await api.close();
  });

  const start = async (tuning: InjectorDependencies['webhookCertTuning'] = {}) => {
    const config = injectorConfig(
      ['--manage-webhook-cert', WEBHOOK, '--listen', '127.0.0.1:0', '--native-sidecars', 'false', '--log-level', 'silent'],
      {},
    );
    injector = await startInjector(config, {
      namespaceLabels: staticNamespaceLabels({}, { 'tsmesh-injection': 'enabled' }),
      webhookCertApi: kubeWebhookApi(api.kubeConfig),
      webhookCertTuning: { retryMs: { initial: 20, max: 100 }, ...tuning },
    });
    return Number(new URL(injector.address).port);
  };

  const manager = (options: Partial<WebhookCertOptions> = {}) => {
    const made = new WebhookCertManager({
      api: kubeWebhookApi(api.kubeConfig),
      webhookConfiguration: WEBHOOK,
      secretNamespace: 'tsmesh-system',
      secretName: 'tsmesh-injector-ca',
      dnsNames: ['tsmesh-injector', 'tsmesh-injector.tsmesh-system', HOST],
      onCertificate: () => undefined,
      retryMs: { initial: 20, max: 100 },
      ...options,
    });
    managers.push(made);
    return made;
  };

  it('patches every webhook entry with its CA, and an HTTPS client trusting only that bundle can call /inject', async () => {
    const port = await start();
    const bundles = api.caBundles(WEBHOOK);
    expect(bundles).toHaveLength(2);
    expect(bundles[1]).toBe(bundles[0]);
    const secret = api.secrets.get(SECRET) as { data: Record<string, string> };
    expect(pemOf(bundles[0] ?? '')).toBe(pemOf(secret.data[CA_SECRET_KEYS.cert] ?? ''));
    expect(await inject(port, bundles[0] ?? '')).toBe(200);
    const served = await servedCertificate(port);
    expect(served.subjectAltName).toBe(`DNS:tsmesh-injector, DNS:tsmesh-injector.tsmesh-system, DNS:${HOST}`);
    expect(api.requests).toContain(`PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK}`);
  });

  it('renews the serving certificate before it expires without dropping the server or open connections', async () => {
    const port = await start({ servingTtlMs: 4_000 });
    const bundle = api.caBundles(WEBHOOK)[0] ?? '';
    const first = await servedCertificate(port);
    const open = connect({ host: '127.0.0.1', port, servername: HOST, ca: pemOf(bundle) });
    sockets.push(open);
    await new Promise((resolve) => open.once('secureConnect', resolve));
    const renewed = await eventually(() => servedCertificate(port), (c) => c.serialNumber !== first.serialNumber);
    expect(renewed.serialNumber).not.toBe(first.serialNumber);
    // Renewed at about two thirds of its life, long before it ran out.
    expect(Date.now()).toBeLessThan(new Date(first.validTo).getTime());
    expect(await inject(port, api.caBundles(WEBHOOK)[0] ?? '')).toBe(200);
    expect(api.caBundles(WEBHOOK)[0]).toBe(bundle); // same CA: the bundle did not move
    expect(await getOn(open, '/healthz/live')).toBe('HTTP/1.1 200 OK');
  });

  it('restores a caBundle someone overwrote', async () => {
    const port = await start({ resyncMs: 100 });
    const ours = api.caBundles(WEBHOOK)[0] ?? '';
    api.overwrite(WEBHOOK, Buffer.from(generateCa('someone else', DAY, Date.now()).certPem).toString('base64'));
    const restored = await eventually(() => api.caBundles(WEBHOOK), (b) => b.every((x) => x === ours));
    expect(restored).toEqual([ours, ours]);
    expect(await inject(port, ours)).toBe(200);
    api.overwrite(WEBHOOK, Buffer.from('not a certificate').toString('base64'));
    expect(await eventually(() => api.caBundles(WEBHOOK), (b) => b.every((x) => x === ours))).toEqual([ours, ours]);
  });

  it('gives replicas that share the Secret the same CA, so the bundle stays one CA', async () => {
    const issuers: X509Certificate[][] = [[], []];
    const [a, b] = [0, 1].map((i) =>
      manager({ onCertificate: (c) => issuers[i]?.push(new X509Certificate(c.certPem)) }),
    ) as [WebhookCertManager, WebhookCertManager];
    await Promise.all([a.start(), b.start()]);
    const ca = new X509Certificate(pemOf((api.secrets.get(SECRET) as { data: Record<string, string> }).data[CA_SECRET_KEYS.cert] ?? ''));
    for (const served of issuers.flat()) expect(served.checkIssued(ca) && served.verify(ca.publicKey)).toBe(true);
    expect(issuers.flat()).toHaveLength(2);
    expect(api.caBundles(WEBHOOK).map(printsOf)).toEqual([[ca.fingerprint256], [ca.fingerprint256]]);
    expect(api.requests.filter((r) => r.startsWith('POST /api/v1/namespaces/tsmesh-system/secrets')).length).toBeGreaterThanOrEqual(1);
  });

  it('retries API failures with backoff and keeps serving on its current certificate', async () => {
    const port = await start({ resyncMs: 50 });
    const ours = api.caBundles(WEBHOOK)[0] ?? '';
    api.down = true;
    api.overwrite(WEBHOOK, Buffer.from('garbage').toString('base64'));
    const before = api.requests.length;
    // It keeps trying: more requests arrive while the API is down.
    expect(await eventually(() => api.requests.length, (n) => n > before + 2)).toBeGreaterThan(before + 2);
    expect(await inject(port, ours)).toBe(200); // and kept serving
    api.down = false;
    expect(await eventually(() => api.caBundles(WEBHOOK), (b) => b.every((x) => x === ours))).toEqual([ours, ours]);
  });

  it('waits for the API server at start rather than serve a certificate nobody trusts', async () => {
    api.down = true;
    const made = manager();
    let started = false;
    const starting = made.start().then((c) => {
      started = true;
      return c;
    });
    // Not started after its first tries failed (the API server saw them), whatever the wall clock.
    const tried = api.requests.length;
    await eventually(() => api.requests.length, (n) => n >= tried + 2);
    expect(started).toBe(false);
    api.down = false;
    const certificate = await starting;
    expect(printsOf(api.caBundles(WEBHOOK)[0] ?? '')).toHaveLength(1);
    const ca = new X509Certificate(pemOf(api.caBundles(WEBHOOK)[0] ?? ''));
    expect(new X509Certificate(certificate.certPem).checkIssued(ca)).toBe(true);
  });

  it('rotates the CA at two thirds of its life, keeping the previous one in the bundle until it expires', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const served: X509Certificate[] = [];
    const made = manager({
      now: () => now,
      caTtlMs: 300 * DAY,
      servingTtlMs: 30 * DAY,
      resyncMs: 3_600_000,
      onCertificate: (c) => served.push(new X509Certificate(c.certPem)),
    });
    await made.start();
    const firstCa = printsOf(api.caBundles(WEBHOOK)[0] ?? '');
    expect(firstCa).toHaveLength(1);

    now += 25 * DAY; // past 2/3 of the serving certificate's life: renewed, same CA
    await made.sync();
    expect(served).toHaveLength(2);
    expect(printsOf(api.caBundles(WEBHOOK)[0] ?? '')).toEqual(firstCa);

    now += 200 * DAY; // past 2/3 of the CA's life: a new CA, the old one still trusted
    await made.sync();
    const rolled = api.caBundles(WEBHOOK).map(printsOf);
    expect(rolled[0]).toHaveLength(2);
    expect(rolled[0]?.[1]).toBe(firstCa[0]);
    expect(rolled[1]).toEqual(rolled[0]);
    const newCa = new X509Certificate(splitPem(pemOf(api.caBundles(WEBHOOK)[0] ?? ''))[0] ?? '');
    expect(served.at(-1)?.checkIssued(newCa)).toBe(true);

    now += 100 * DAY; // the old CA has expired: dropped from the bundle
    await made.sync();
    expect(api.caBundles(WEBHOOK).map(printsOf)).toEqual([[newCa.fingerprint256], [newCa.fingerprint256]]);
  });
});
