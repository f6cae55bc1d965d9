import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { connect, createServer, TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { err, ok } from '@tsmesh/common';
import {
  CA_SETUP_ERRORS,
  CaRequestError,
  parseCaConfig,
  requestCertificate,
  startCa,
  verifyCsr,
  type CertificateRequestOptions,
  type RunningCa,
} from '@tsmesh/ca';
import { IDENTITY_ERRORS } from '../errors.js';
import type { IdentityMaterial } from './material.js';
import { peerIdentityFromCertificate } from './spiffe.js';
import { capturedLog, opensslCertificate } from './testing/certs.js';
import { stablePort } from '../testing/servers.js';
import { identityOptionsFromConfig, WorkloadIdentityManager, type WorkloadIdentityOptions } from './workload-identity.js';

const quiet = pino({ level: 'silent' });
const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
const API_ID = 'spiffe://cluster.local/ns/shop/sa/api';
// Captured before any test fakes timers (and Date): polling must use real time.
const realSetTimeout = setTimeout;
const realNow = Date.now;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => realSetTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = realNow() + timeoutMs;
  while (!condition()) {
    if (realNow() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The next certificate the manager installs. */
function nextCertificate(manager: WorkloadIdentityManager): Promise<IdentityMaterial> {
  return new Promise((resolve) => {
    const off = manager.onChange((material) => {
      off();
      resolve(material);
    });
  });
}

class TestCa {
  ca!: RunningCa;
  readonly dir = mkdtempSync(join(tmpdir(), 'tsmesh-identity-ca-'));
  readonly tokens = join(this.dir, 'tokens.yaml');
  readonly webToken = join(this.dir, 'web-token');
  readonly apiToken = join(this.dir, 'api-token');

  async start(port = 0): Promise<void> {
    writeFileSync(this.tokens, ['- {token: web-token, namespace: shop, serviceAccount: web}', '- {token: api-token, namespace: shop, serviceAccount: api}', ''].join('\n'));
    writeFileSync(this.webToken, 'web-token\n');
    writeFileSync(this.apiToken, 'api-token');
    const config = parseCaConfig(['--state-dir', join(this.dir, 'state'), '--token-file', this.tokens, '--listen', `127.0.0.1:${port}`], {});
    this.ca = await startCa(config, { log: quiet, auditLog: quiet });
  }

  get bundleFile(): string {
    return join(this.dir, 'state', 'root-cert.pem');
  }

  options(overrides: Partial<WorkloadIdentityOptions> = {}): WorkloadIdentityOptions {
    return {
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'web',
      caAddr: `127.0.0.1:${this.ca.address.port}`,
      tokenFile: this.webToken,
      trustBundleFile: this.bundleFile,
      log: quiet,
      ...overrides,
    };
  }

  async close(): Promise<void> {
    await this.ca.close();
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const managers: WorkloadIdentityManager[] = [];
function manage(options: WorkloadIdentityOptions): WorkloadIdentityManager {
  const manager = new WorkloadIdentityManager(options);
  managers.push(manager);
  return manager;
}

afterEach(() => {
  for (const manager of managers.splice(0)) manager.stop();
  jest.useRealTimers();
});

describe('WorkloadIdentityManager with a real CA', () => {
  const ca = new TestCa();
  beforeAll(() => ca.start());
  afterAll(async () => {
    await ca.close();
    ca.cleanup();
  });

  it('gets a certificate for its SPIFFE ID and its in-memory key', async () => {
    const manager = manage(ca.options());
    expect(manager.current()).toBeUndefined();
    const started = await manager.start();
    if (!started.ok) throw started.error;
    const material = manager.current();
    expect(material).toBe(started.value);
    await expect(manager.ready()).resolves.toBe(material);

    const leaf = new X509Certificate(material!.certChainPem[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkPrivateKey(createPrivateKey(material!.keyPem))).toBe(true);
    expect(material!.spiffeId).toBe(WEB_ID);
    expect(material!.serialNumber).toBe(leaf.serialNumber);
    expect(material!.expiresAt.getTime()).toBe(new Date(leaf.validTo).getTime());
    expect(manager.secondsUntilExpiry()).toBeGreaterThan(23 * 3600);
    expect(manager.serverContext()).toBeDefined();
    expect(manager.clientContext()).toBeDefined();
    expect(manager.secureContextOptions()).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
  });

  it('trusts the union of the CA answer\'s bundle and the trust bundle file', async () => {
    const extraRoot = opensslCertificate({ ca: true });
    const bundle = join(ca.dir, 'bundle-with-extra.pem');
    writeFileSync(bundle, readFileSync(ca.bundleFile, 'utf8') + extraRoot.pem);
    const manager = manage(ca.options({ trustBundleFile: bundle }));
    const started = await manager.start();
    if (!started.ok) throw started.error;
    const fingerprints = started.value.trustBundlePem.map((pem) => new X509Certificate(pem).fingerprint256);
    const caRoot = new X509Certificate(ca.ca.trustBundlePem).fingerprint256;
    expect(fingerprints).toEqual([caRoot, extraRoot.cert.fingerprint256]);
  });

  it('describes its certificates for /certs without the key', async () => {
    const manager = manage(ca.options());
    await manager.start();
    const description = manager.describe();
    expect(description).toMatchObject({ spiffeId: WEB_ID, state: 'valid', consecutiveFailures: 0, lastError: undefined });
    expect(description.certificate?.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(description.certificate?.serialNumber).toBe(manager.current()?.serialNumber);
    expect(description.chain).toHaveLength(manager.current()!.certChainPem.length);
    expect(description.trustBundle.map((c) => c.subject)).toEqual([new X509Certificate(ca.ca.trustBundlePem).subject]);
    expect(Date.parse(description.renewAt!)).toBeGreaterThan(Date.now() + 11 * 3600_000);
    expect(JSON.stringify(description)).not.toMatch(/PRIVATE KEY/);
  });

  it('gives the data path TLS 1.3 contexts that authenticate both sides', async () => {
    const web = manage(ca.options());
    const api = manage(ca.options({ serviceAccount: 'api', tokenFile: ca.apiToken }));
    await Promise.all([web.start(), api.start()]);

    const server = createNetServer();
    // The inbound side wraps an accepted TCP connection (after detection) with the server context.
    const seenByServer = new Promise<unknown>((resolve, reject) => {
      server.once('connection', (raw: Socket) => {
        const socket = new TLSSocket(raw, { isServer: true, secureContext: api.serverContext()!, requestCert: true, rejectUnauthorized: true });
        socket.once('secure', () => {
          resolve(peerIdentityFromCertificate(socket.getPeerX509Certificate(), 'cluster.local'));
          socket.end();
        });
        socket.once('error', reject);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const client = connect({
        host: '127.0.0.1',
        port,
        secureContext: web.clientContext()!,
        // Mesh peers are named by SPIFFE ID, not host name: the data path checks the identity instead.
        checkServerIdentity: () => undefined,
      });
      await new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject));
      expect(client.authorized).toBe(true);
      expect(client.getProtocol()).toBe('TLSv1.3');
      const seenByClient = peerIdentityFromCertificate(client.getPeerCertificate(), 'cluster.local');
      client.end();
      expect(seenByClient.ok && seenByClient.value.spiffeId).toBe(API_ID);
      expect(await seenByServer).toMatchObject({ ok: true, value: { spiffeId: WEB_ID } });
    } finally {
      server.close();
    }
  });

  it('gives options a tls.Server can use, refusing a client without a mesh certificate', async () => {
    const api = manage(ca.options({ serviceAccount: 'api', tokenFile: ca.apiToken }));
    await api.start();
    const server = createServer({ ...api.secureContextOptions(), requestCert: true, rejectUnauthorized: true });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const client = connect({ host: '127.0.0.1', port, ca: api.current()!.trustBundlePem.join(''), checkServerIdentity: () => undefined });
      // TLS 1.3: the client may see its side of the handshake complete before the server's alert.
      const outcome = await new Promise<string>((resolve) => {
        client.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        client.once('secureConnect', () => client.once('close', () => resolve('closed')));
      });
      expect(outcome).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    } finally {
      server.close();
    }
  });

  it('renews at half the lifetime with a fresh key', async () => {
    const manager = manage(ca.options({ ttlSeconds: 4 }));
    const started = await manager.start();
    if (!started.ok) throw started.error;
    const first = started.value;
    const lifetime = first.expiresAt.getTime() - first.issuedAt.getTime();
    expect(lifetime).toBeGreaterThan(2900);
    expect(lifetime).toBeLessThanOrEqual(4000);

    // Scheduled at half the lifetime (the timer is set for the whole milliseconds just after it).
    const scheduledAfter = Date.parse(manager.describe().renewAt!) - first.issuedAt.getTime();
    expect(scheduledAfter).toBeGreaterThanOrEqual(lifetime / 2);
    expect(scheduledAfter).toBeLessThan(lifetime / 2 + 1);
    const second = await nextCertificate(manager);
    // Not before then (how late a loaded machine runs the timer is not ours to bound: the fake-timer
    // test below checks that the renewal comes from that timer at exactly that time).
    const renewedAfter = second.issuedAt.getTime() - first.issuedAt.getTime();
    expect(renewedAfter).toBeGreaterThanOrEqual(lifetime / 2 - 5);
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.keyPem).not.toBe(first.keyPem);
    expect(manager.current()).toBe(second);
    expect(manager.serverContext()).toBeDefined();
  });

  it('refuses to be ready with a bad token, says why, and recovers once the token file is fixed', async () => {
    const tokenFile = join(ca.dir, 'rotating-token');
    writeFileSync(tokenFile, 'not-a-token');
    const manager = manage(ca.options({ tokenFile, backoff: { baseMs: 100, maxMs: 200 } }));
    let ready = false;
    void manager.ready().then(() => (ready = true));

    const started = await manager.start();
    expect(started.ok).toBe(false);
    if (started.ok) return;
    expect(started.error).toBeInstanceOf(CaRequestError);
    expect(started.error).toMatchObject({ code: CA_SETUP_ERRORS.CA_REFUSED, status: 401, serverCode: 'TSMESH_ERR_TOKEN_INVALID' });
    expect(started.error.message).toMatch(/token/);
    await waitFor(() => manager.describe().consecutiveFailures >= 2, 5000, 'a retry with the same bad token');
    expect(ready).toBe(false);
    expect(manager.current()).toBeUndefined();
    expect(manager.serverContext()).toBeUndefined();
    expect(manager.describe()).toMatchObject({ state: 'pending', lastError: { code: CA_SETUP_ERRORS.CA_REFUSED } });
    expect(manager.describe().consecutiveFailures).toBeGreaterThanOrEqual(2);

    // Projected tokens rotate: the file is read again before every request.
    writeFileSync(tokenFile, 'web-token');
    await expect(manager.ready()).resolves.toMatchObject({ spiffeId: WEB_ID });
    expect(manager.lastError()).toBeUndefined();
  });

  it('fails with TSMESH_ERR_TOKEN_FILE when the token file is missing or empty', async () => {
    const missing = manage(ca.options({ tokenFile: join(ca.dir, 'no-such-token') }));
    expect(await missing.start()).toMatchObject({ ok: false, error: { code: IDENTITY_ERRORS.TOKEN_FILE } });
    const emptyFile = join(ca.dir, 'empty-token');
    writeFileSync(emptyFile, '  \n');
    const empty = manage(ca.options({ tokenFile: emptyFile }));
    expect(await empty.start()).toMatchObject({ ok: false, error: { code: IDENTITY_ERRORS.TOKEN_FILE } });
  });

  it('fails with TSMESH_ERR_TRUST_BUNDLE_FILE when the bundle file holds no certificate', async () => {
    const bundle = join(ca.dir, 'empty-bundle.pem');
    writeFileSync(bundle, 'nothing here\n');
    const manager = manage(ca.options({ trustBundleFile: bundle }));
    expect(await manager.start()).toMatchObject({ ok: false, error: { code: IDENTITY_ERRORS.TRUST_BUNDLE_FILE } });
  });

  it('does not trust a CA that its trust bundle does not verify', async () => {
    const bundle = join(ca.dir, 'other-root.pem');
    writeFileSync(bundle, opensslCertificate({ ca: true }).pem);
    const manager = manage(ca.options({ trustBundleFile: bundle }));
    expect(await manager.start()).toMatchObject({ ok: false, error: { code: CA_SETUP_ERRORS.CA_UNREACHABLE } });
  });

  it('rejects ready() when stopped before the first certificate', async () => {
    const manager = manage(ca.options({ tokenFile: join(ca.dir, 'no-such-token') }));
    await manager.start();
    manager.stop();
    await expect(manager.ready()).rejects.toMatchObject({ code: IDENTITY_ERRORS.IDENTITY_STOPPED });
    expect(manager.describe().state).toBe('stopped');
  });
});

describe('WorkloadIdentityManager when the CA goes away', () => {
  const ca = new TestCa();
  // The CA comes back on the same port seconds after it stopped: a port-0 port could be taken meanwhile.
  beforeAll(async () => ca.start(await stablePort()));
  afterAll(() => ca.cleanup());

  it('keeps its certificate, retries with backoff, and recovers when the CA comes back', async () => {
    const { log, lines } = capturedLog();
    const manager = manage(ca.options({ ttlSeconds: 5, backoff: { baseMs: 100, maxMs: 400 }, requestTimeoutMs: 500, log }));
    const started = await manager.start();
    if (!started.ok) throw started.error;
    const first = started.value;
    const port = ca.ca.address.port;
    await ca.close();

    const renewAt = first.issuedAt.getTime() + (first.expiresAt.getTime() - first.issuedAt.getTime()) / 2;
    await waitFor(() => manager.describe().consecutiveFailures >= 3, 5000, 'three failed renewals');
    expect(Date.now()).toBeGreaterThanOrEqual(renewAt - 5);
    expect(manager.current()).toBe(first);
    expect(manager.serverContext()).toBeDefined();
    expect(manager.lastError()?.code).toBe(CA_SETUP_ERRORS.CA_UNREACHABLE);
    expect(manager.describe().state).toBe('valid');
    // The failure warning is rate-limited: one line for several failures.
    const warnings = lines.filter((line) => line['msg'] === 'cannot renew the workload certificate; still serving the current one');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, code: CA_SETUP_ERRORS.CA_UNREACHABLE, spiffeId: WEB_ID });

    // A CA on the same state directory and port: same root, so the new chain verifies as before.
    const renewed = nextCertificate(manager);
    await ca.start(port);
    const second = await renewed;
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(second.trustBundlePem).toEqual(first.trustBundlePem);
    expect(manager.lastError()).toBeUndefined();
    expect(lines.some((line) => line['msg'] === 'workload certificate issued' && line['recovered'] === true)).toBe(true);
    manager.stop();
    await ca.close();
  });
});

describe('WorkloadIdentityManager timing (fake timers)', () => {
  const ca = new TestCa();
  beforeAll(() => ca.start());
  afterAll(async () => {
    await ca.close();
    ca.cleanup();
  });

  /** A CA call that fails `failures` times, then issues in-process from the real CA's authority. */
  function scriptedCa(failures: number): { request: typeof requestCertificate; calls: number[] } {
    const calls: number[] = [];
    const request = async (options: CertificateRequestOptions): ReturnType<typeof requestCertificate> => {
      calls.push(Date.now());
      if (calls.length <= failures) return err(new CaRequestError(CA_SETUP_ERRORS.CA_UNREACHABLE, 'cannot reach the CA: scripted'));
      const csr = verifyCsr(options.csrPem);
      if (!csr.ok) throw csr.error;
      const issued = ca.ca.authority.issueWorkload({ namespace: 'shop', serviceAccount: 'web' }, csr.value, options.ttlSeconds);
      if (!issued.ok) throw issued.error;
      return ok({ certChain: issued.value.certChain, trustBundle: issued.value.trustBundle, expiresAt: issued.value.expiresAt });
    };
    return { request, calls };
  }

  /**
   * Advances fake time by `ms`, stopping at each attempt the manager has scheduled. An attempt does
   * real I/O (it reads the token and bundle files), so after its timer fires the clock stays put
   * until the manager is idle again (its next attempt scheduled): each attempt runs, fails and
   * schedules the next one at exactly the fake time it was due, however slow the machine. (Advancing
   * in fixed steps let the clock run on to the end of the step while the files were being read, so
   * the times seen by the manager depended on the speed of the I/O.)
   */
  async function advance(manager: WorkloadIdentityManager, ms: number): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const renewAt = manager.describe().renewAt;
      const due = renewAt === undefined ? Infinity : Date.parse(renewAt);
      if (due > until) break;
      await jest.advanceTimersByTimeAsync(due - Date.now());
      await waitFor(() => manager.describe().renewAt !== undefined, 5000, 'the attempt to finish');
    }
    await jest.advanceTimersByTimeAsync(until - Date.now());
  }

  it('retries with exponential backoff, then renews at half the lifetime', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const { request, calls } = scriptedCa(4);
    const manager = manage(ca.options({ ttlSeconds: 3600, random: () => 0, requestCertificate: request }));
    const t0 = Date.now();
    const started = manager.start();
    await waitFor(() => calls.length === 1, 2000, 'the first request');
    await started;
    await advance(manager, 500 + 1000 + 2000 + 4000 + 200);
    await waitFor(() => manager.current() !== undefined, 2000, 'the certificate');
    // random() = 0: each delay is half its ceiling (1 s, 2 s, 4 s, 8 s).
    expect(calls.map((at) => at - t0)).toEqual([0, 500, 1500, 3500, 7500]);

    const material = manager.current()!;
    const lifetime = material.expiresAt.getTime() - material.issuedAt.getTime();
    // The last advance ended 200 ms after the certificate was asked for.
    await advance(manager, lifetime / 2 - 400);
    expect(calls).toHaveLength(5);
    await advance(manager, 400);
    await waitFor(() => calls.length === 6, 2000, 'the renewal');
    expect(calls[5]! - calls[4]!).toBeGreaterThanOrEqual(lifetime / 2);
    expect(calls[5]! - calls[4]!).toBeLessThanOrEqual(lifetime / 2 + 400);
  });

  it('keeps an expired certificate readable, says so, and keeps retrying', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const { log, lines } = capturedLog();
    let up = true;
    const scripted = scriptedCa(0);
    const refusedAt: number[] = [];
    const request: typeof requestCertificate = (options) => {
      if (up) return scripted.request(options);
      refusedAt.push(Date.now());
      return Promise.resolve(err(new CaRequestError(CA_SETUP_ERRORS.CA_UNREACHABLE, 'down')));
    };
    const manager = manage(ca.options({ ttlSeconds: 60, random: () => 0, requestCertificate: request, log, failureLogIntervalMs: 1000 }));
    await manager.start();
    const material = manager.current()!;
    const expiresAt = material.expiresAt.getTime();
    up = false;
    await advance(manager, expiresAt - Date.now() + 5000);
    expect(manager.current()).toBe(material);
    expect(manager.secondsUntilExpiry()).toBeLessThan(0);
    expect(manager.describe().state).toBe('expired');
    expect(lines.some((line) => line['level'] === 50 && String(line['msg']).includes('expired'))).toBe(true);
    // Said at the first failure after expiry, even though a warning was logged less than the rate
    // limit's interval before it.
    const firstExpired = refusedAt.find((at) => at >= expiresAt);
    expect(firstExpired).toBeDefined();
    const expiredLines = lines.filter((line) => String(line['msg']).includes('expired'));
    expect(expiredLines.map((line) => line['time'])).toEqual([firstExpired]);
    const lastWarning = lines.filter((line) => line['level'] === 40).at(-1);
    expect(firstExpired! - Number(lastWarning?.['time'])).toBeLessThan(1000);
    // Retries come closer together as expiry nears (each waits at most half of what is left).
    expect(manager.describe().consecutiveFailures).toBeGreaterThanOrEqual(5);
  });
});

describe('identityOptionsFromConfig', () => {
  const base = { trustDomain: 'cluster.local', podNamespace: 'shop', serviceAccount: 'web', caTokenFile: '/t', trustBundleFile: '/b' };

  it('runs without identity when TSMESH_CA_ADDR is unset', () => {
    expect(identityOptionsFromConfig({ ...base, caAddr: undefined })).toEqual({ ok: true, value: undefined });
  });

  it('maps the sidecar settings', () => {
    expect(identityOptionsFromConfig({ ...base, caAddr: 'ca:15012' }, { ttlSeconds: 60 })).toEqual({
      ok: true,
      value: {
        trustDomain: 'cluster.local',
        namespace: 'shop',
        serviceAccount: 'web',
        caAddr: 'ca:15012',
        tokenFile: '/t',
        trustBundleFile: '/b',
        ttlSeconds: 60,
      },
    });
  });

  it('names the missing file variable', () => {
    const noToken = identityOptionsFromConfig({ ...base, caAddr: 'ca:1', caTokenFile: undefined });
    expect(!noToken.ok && noToken.error.message).toContain('TSMESH_CA_TOKEN_FILE');
    const noBundle = identityOptionsFromConfig({ ...base, caAddr: 'ca:1', trustBundleFile: undefined });
    expect(!noBundle.ok && noBundle.error.message).toContain('TSMESH_TRUST_BUNDLE_FILE');
  });
});

describe('WorkloadIdentityManager construction', () => {
  it('refuses an invalid identity or renew fraction', () => {
    const options: WorkloadIdentityOptions = {
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'web',
      caAddr: '127.0.0.1:1',
      tokenFile: '/t',
      trustBundleFile: '/b',
    };
    expect(() => new WorkloadIdentityManager({ ...options, namespace: 'Bad_NS' })).toThrow(TypeError);
    expect(() => new WorkloadIdentityManager({ ...options, renewFraction: 1 })).toThrow(TypeError);
    expect(new WorkloadIdentityManager(options).spiffeId).toBe(WEB_ID);
  });
});
