// The control plane serving sidecars, end to end on loopback: a real tsmesh CA issues every
// certificate, `startControlPlane` serves a mesh file or a provider the test drives, and the sidecar's
// ControlPlaneSource streams from it over HTTP/2 and mutual TLS.
import { connect as connectHttp2 } from 'node:http2';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectTls, createSecureContext, type SecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { MESH_STREAM_PATH, setLogLevel, type MeshSnapshot } from '@tsmesh/common';
import { controlPlaneConfig, startControlPlane, type RunningControlPlane, type StartControlPlaneOptions } from '@tsmesh/control';
import { ControlPlaneSource, DISCOVERY_ERRORS, type ControlPlaneSourceOptions } from '@tsmesh/proxy';
import { CONTROL_ID, ManualProvider, TestCa, clientContext, meshFileText, meshSnapshot, silent, withOthers, type IssuedPem } from './mesh-fixture.js';

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(10);
  }
}

function endpointsOf(snapshot: MeshSnapshot | undefined): string[] {
  const web = snapshot?.service('shop', 'web');
  const port = web?.ports[0];
  if (snapshot === undefined || web === undefined || port === undefined) return [];
  return snapshot.endpoints(web, port).map((e) => `${e.address}:${e.port}`).sort();
}

const names = (snapshot: MeshSnapshot | undefined, kind: string): string[] =>
  (snapshot?.others ?? []).filter((o) => o.kind === kind).map((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`).sort();

describe('mesh distribution to sidecars', () => {
  let ca: TestCa;
  let web: IssuedPem;
  let other: IssuedPem;
  let files: { cert: string; key: string; bundle: string };
  let meshFile: string;
  let planes: RunningControlPlane[] = [];
  let sources: ControlPlaneSource[] = [];

  beforeAll(async () => {
    setLogLevel('silent');
    ca = await TestCa.start();
    web = await ca.issue('shop', 'web');
    other = await ca.issue('other', 'client');
    // The control plane's own certificate is a workload certificate of the same CA.
    files = ca.writeServingFiles('control', await ca.issue('tsmesh-system', 'tsmesh-control'));
    meshFile = join(ca.dir, 'mesh.yaml');
  });

  afterEach(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await Promise.all(planes.map((p) => p.close()));
    sources = [];
    planes = [];
  });

  afterAll(async () => {
    await ca.close();
  });

  async function controlPlane(flags: string[], options: StartControlPlaneOptions = {}): Promise<RunningControlPlane> {
    // Each flag may be given once: the test's own debounce replaces the default one.
    const debounce = flags.includes('--debounce') ? [] : ['--debounce', '50ms'];
    const argv = ['--tls-cert', files.cert, '--tls-key', files.key, '--trust-bundle', files.bundle, '--debug-listen', '127.0.0.1:0', ...debounce, ...flags];
    const plane = await startControlPlane(controlPlaneConfig(argv, {}), { log: silent, tlsReloadMs: 0, ...options });
    planes.push(plane);
    return plane;
  }

  function fromFile(webEndpoints: readonly string[], listen = '127.0.0.1:0'): Promise<RunningControlPlane> {
    writeFileSync(meshFile, meshFileText({ webEndpoints }));
    return controlPlane(['--config', meshFile, '--listen', listen]);
  }

  function sidecar(plane: RunningControlPlane | number, pem: IssuedPem | SecureContext, options: Partial<ControlPlaneSourceOptions> = {}): ControlPlaneSource {
    const port = typeof plane === 'number' ? plane : plane.address.port;
    const context = 'keyPem' in pem ? clientContext(pem) : pem;
    const source = new ControlPlaneSource({
      controlAddr: `127.0.0.1:${port}`,
      tlsSource: { clientContext: () => context },
      serverIdentity: CONTROL_ID,
      podName: 'web-0',
      backoff: { baseMs: 100, maxMs: 400 },
      startTimeoutMs: 5000,
      log: silent,
      ...options,
    });
    sources.push(source);
    return source;
  }

  async function started(source: ControlPlaneSource): Promise<MeshSnapshot> {
    const result = await source.start();
    if (!result.ok) throw result.error;
    return result.value;
  }

  async function debugConnections(plane: RunningControlPlane): Promise<Array<Record<string, unknown>>> {
    const address = plane.debugAddress;
    if (address === undefined) throw new Error('no debug server');
    const response = await fetch(`http://127.0.0.1:${address.port}/debug/connections`);
    expect(response.status).toBe(200);
    return ((await response.json()) as { connections: Array<Record<string, unknown>> }).connections;
  }

  it('sends a sidecar the mesh as its workload sees it, and records the acknowledgement', async () => {
    const plane = await fromFile(['10.0.0.1', '10.0.0.2']);
    const shop = sidecar(plane, web);
    const snapshot = await started(shop);

    expect(endpointsOf(snapshot)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(snapshot.service('shop', 'web')).toMatchObject({ clusterIPs: ['10.96.0.10'], loadBalancer: 'round-robin' });
    expect(snapshot.podByIp('10.0.0.2')).toMatchObject({ name: 'web-1', serviceAccount: 'web', meshed: true, labels: { app: 'web' } });
    expect(snapshot.resolve('10.96.0.10', 80)).toMatchObject({ kind: 'service' });
    // Its own namespace's PeerAuthentications and the root namespace's; not another namespace's.
    expect(names(snapshot, 'PeerAuthentication')).toEqual(['shop/shop-strict', 'tsmesh-system/mesh-wide']);
    expect(names(snapshot, 'HTTPRoute')).toEqual(['shop/web-canary']);
    expect(names(snapshot, 'Namespace')).toEqual(['/other', '/shop', '/tsmesh-system']);
    expect(names(snapshot, 'ServiceAccount')).toEqual([]);
    expect(shop.status()).toMatchObject({ connected: true, lastAppliedVersion: snapshot.version, lastError: undefined });

    const elsewhere = await started(sidecar(plane, other));
    expect(names(elsewhere, 'PeerAuthentication')).toEqual(['other/other-disable', 'tsmesh-system/mesh-wide']);
    expect(elsewhere.version).not.toBe(snapshot.version);

    const mine = await eventually(() => plane.distributor.connections().find((c) => c.namespace === 'shop' && c.lastAcked !== undefined), 'the ack');
    expect(mine).toMatchObject({
      spiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
      serviceAccount: 'web',
      pod: 'web-0',
      lastSent: { version: snapshot.version },
      lastAcked: { version: snapshot.version },
      lastNacked: undefined,
    });
    const connections = await debugConnections(plane);
    expect(connections.map((c) => c['spiffeId']).sort()).toEqual(['spiffe://cluster.local/ns/other/sa/client', 'spiffe://cluster.local/ns/shop/sa/web']);
  });

  it('strips pods to the fields the mesh needs', async () => {
    const plane = await fromFile(['10.0.0.1']);
    await started(sidecar(plane, web));
    const objects = JSON.stringify(plane.distributor.viewForNamespace('shop')?.parts.join(''));
    expect(objects).toContain('10.0.0.1');
    expect(objects).not.toContain('not for sidecars');
    expect(objects).not.toContain('web:1');
    expect(objects).not.toContain('Running');
  });

  it('delivers an EndpointSlice change to a connected sidecar within the debounce time', async () => {
    const plane = await fromFile(['10.0.0.1']);
    const shop = sidecar(plane, web);
    await started(shop);
    const updates: MeshSnapshot[] = [];
    shop.subscribe((s) => updates.push(s));

    const changedAt = Date.now();
    writeFileSync(meshFile, meshFileText({ webEndpoints: ['10.0.0.1', '10.0.0.3'] }));
    await eventually(() => endpointsOf(shop.current()).includes('10.0.0.3:8080'), 'the new endpoint');
    // The file's own debounce (100 ms) plus ours (50 ms), with room for a slow machine.
    expect(Date.now() - changedAt).toBeLessThan(1500);
    expect(updates).toHaveLength(1);
    await eventually(() => plane.distributor.connections()[0]?.lastAcked?.version === shop.current()?.version, 'the ack of the update');
  });

  it('refuses a client without a certificate, naming the reason', async () => {
    const plane = await fromFile(['10.0.0.1']);
    const anonymous = clientContextWithoutCertificate(ca.trustBundlePem);
    const source = sidecar(plane, anonymous, { startTimeoutMs: 800 });
    const result = await source.start();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(DISCOVERY_ERRORS.CONTROL_START_TIMEOUT);
    expect(result.error.message).toMatch(/HTTP 401.*TSMESH_ERR_CONTROL_UNAUTHENTICATED: a client certificate is required/);
    expect(plane.distributor.connections()).toEqual([]);

    const status = await rawStreamStatus(plane.address.port, anonymous);
    expect(status).toBe(401);
  });

  it('refuses a certificate from another CA', async () => {
    const plane = await fromFile(['10.0.0.1']);
    const stranger = await TestCa.start();
    try {
      const foreign = await stranger.issue('shop', 'web');
      // The stranger's client trusts our CA (so it reaches the HTTP layer) but presents its own chain.
      const context = clientContext({ ...foreign, trustBundlePem: ca.trustBundlePem });
      const result = await sidecar(plane, context, { startTimeoutMs: 800 }).start();
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.message).toMatch(/HTTP 401.*the client certificate is not trusted/);
      expect(plane.distributor.connections()).toEqual([]);
    } finally {
      await stranger.close();
    }
  });

  it('verifies the control plane is who the sidecar expects', async () => {
    const plane = await fromFile(['10.0.0.1']);
    const wrong = sidecar(plane, web, { serverIdentity: 'spiffe://cluster.local/ns/tsmesh-system/sa/impostor', startTimeoutMs: 800 });
    const result = await wrong.start();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toContain(`the control plane presented ${CONTROL_ID}, expected spiffe://cluster.local/ns/tsmesh-system/sa/impostor`);
    // Without an identity to expect, the host name is checked; a SPIFFE-only certificate has none.
    const byName = sidecar(plane, web, { serverIdentity: undefined, startTimeoutMs: 800 });
    const named = await byName.start();
    expect(named.ok).toBe(false);
    if (!named.ok) expect(named.error.message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
  });

  it('accepts a control plane whose serving certificate names its host', async () => {
    const serving = ca.ca.authority.issueServing([{ type: 'dns', value: 'tsmesh-control.tsmesh-system.svc' }], 3600);
    const named = ca.writeServingFiles('named', { keyPem: serving.keyPem, certPem: serving.certChainPem, trustBundlePem: ca.trustBundlePem });
    writeFileSync(meshFile, meshFileText({ webEndpoints: ['10.0.0.1'] }));
    const argv = ['--tls-cert', named.cert, '--tls-key', named.key, '--trust-bundle', named.bundle, '--config', meshFile, '--listen', '127.0.0.1:0', '--debug-listen', 'off'];
    const plane = await startControlPlane(controlPlaneConfig(argv, {}), { log: silent, tlsReloadMs: 0 });
    planes.push(plane);
    const snapshot = await started(sidecar(plane, web, { serverIdentity: undefined, serverName: 'tsmesh-control.tsmesh-system.svc' }));
    expect(endpointsOf(snapshot)).toEqual(['10.0.0.1:8080']);
  });

  it('serves a renewed certificate once its files change', async () => {
    const plane = await fromFile(['10.0.0.1']);
    const before = await servingSerial(plane.address.port);
    expect(await plane.reloadTls()).toBe(false);
    ca.writeServingFiles('control', await ca.issue('tsmesh-system', 'tsmesh-control'));
    expect(await plane.reloadTls()).toBe(true);
    const after = await servingSerial(plane.address.port);
    expect(after).not.toBe(before);
    expect(endpointsOf(await started(sidecar(plane, web)))).toEqual(['10.0.0.1:8080']);
  });

  it('NACKs a snapshot with an invalid object, keeps the last good one, and the server records why', async () => {
    const good = meshSnapshot({ webEndpoints: ['10.0.0.1'] });
    const provider = new ManualProvider(good);
    const plane = await controlPlane(['--listen', '127.0.0.1:0'], { provider });
    const shop = sidecar(plane, web);
    const first = await started(shop);

    // A version of a kind this sidecar does not know, as a newer control plane might send it.
    const unknown = { apiVersion: 'gateway.networking.k8s.io/v2', kind: 'HTTPRoute', metadata: { name: 'future', namespace: 'shop' }, spec: {} };
    provider.publish(withOthers(good, [unknown], 'bad-1'));
    plane.distributor.flush();
    const connection = await eventually(() => plane.distributor.connections().find((c) => c.lastNacked !== undefined), 'the NACK');
    const refusedVersion = plane.distributor.viewForNamespace('shop')?.version;
    expect(connection.lastNacked).toMatchObject({ version: refusedVersion });
    expect(connection.lastNacked?.error).toContain('HTTPRoute shop/future');
    expect(connection.lastAcked?.version).toBe(first.version);
    expect(shop.current()?.version).toBe(first.version);
    expect(shop.status().lastRejected).toMatchObject({ version: refusedVersion });
    expect(shop.status().lastRejected?.reason).toMatch(/1 invalid object: HTTPRoute shop\/future: apiVersion: unsupported apiVersion "gateway.networking.k8s.io\/v2"/);
    const debug = await debugConnections(plane);
    expect(debug[0]?.['lastNacked']).toMatchObject({ version: refusedVersion });

    // The next good snapshot is applied as usual.
    provider.publish(meshSnapshot({ webEndpoints: ['10.0.0.1', '10.0.0.4'] }));
    await eventually(() => endpointsOf(shop.current()).includes('10.0.0.4:8080'), 'the next good snapshot');
  });

  it('keeps serving the last snapshot while the control plane is down, and resynchronises when it returns', async () => {
    const plane = await fromFile(['10.0.0.1']);
    const port = plane.address.port;
    const shop = sidecar(plane, web);
    const first = await started(shop);

    await plane.close();
    await eventually(() => !shop.status().connected, 'the disconnection');
    // While it is down: the mesh changes, the sidecar keeps what it had and retries with backoff.
    writeFileSync(meshFile, meshFileText({ webEndpoints: ['10.0.0.1', '10.0.0.5'] }));
    await eventually(() => shop.status().consecutiveFailures >= 3, 'three failed attempts', 8000);
    expect(shop.current()?.version).toBe(first.version);
    expect(shop.status()).toMatchObject({ connected: false, lastAppliedVersion: first.version, lastError: { code: DISCOVERY_ERRORS.CONTROL_UNREACHABLE } });
    expect(shop.status().nextAttemptAt).toBeDefined();

    const back = await controlPlane(['--config', meshFile, '--listen', `127.0.0.1:${port}`]);
    await eventually(() => endpointsOf(shop.current()).includes('10.0.0.5:8080'), 'the current snapshot after reconnecting', 5000);
    expect(shop.status()).toMatchObject({ connected: true, consecutiveFailures: 0, lastError: undefined });
    await eventually(() => back.distributor.connections()[0]?.lastAcked?.version === shop.current()?.version, 'the ack on the new server');
  });

  it('debounces a burst of changes into few snapshots', async () => {
    const provider = new ManualProvider(meshSnapshot({ webEndpoints: ['10.0.0.1'] }));
    const plane = await controlPlane(['--listen', '127.0.0.1:0', '--debounce', '100ms'], { provider });
    const shop = sidecar(plane, web);
    await started(shop);
    const updates: string[] = [];
    shop.subscribe((s) => updates.push(s.version));
    const publishesBefore = plane.distributor.status().publishes;

    // The burst lands within one turn of the event loop, so it fits the debounce window however
    // loaded the machine is; the assertions below say it went out as at most two snapshots.
    for (let i = 2; i <= 11; i++) {
      provider.publish(meshSnapshot({ webEndpoints: Array.from({ length: i }, (_, j) => `10.0.1.${j + 1}`) }));
    }
    await eventually(() => endpointsOf(shop.current()).length === 11, 'the last change');
    await pause(300);
    expect(updates.length).toBeLessThanOrEqual(2);
    expect(plane.distributor.status().publishes - publishesBefore).toBeLessThanOrEqual(2);
    expect(plane.distributor.connections()[0]?.sent).toBeLessThanOrEqual(3);
  });
});

/** Trusts the mesh's roots but has no certificate of its own. */
function clientContextWithoutCertificate(trustBundlePem: string): SecureContext {
  return createSecureContext({ ca: trustBundlePem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
}

/** The serial number of the certificate the control plane serves now. */
function servingSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** The status a bare HTTP/2 client gets for the stream, with `context` as its TLS identity. */
function rawStreamStatus(port: number, context: SecureContext): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(`https://127.0.0.1:${port}`, {
      createConnection: () => connectTls({ host: '127.0.0.1', port, secureContext: context, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }),
    });
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': MESH_STREAM_PATH }, { endStream: true });
    stream.on('response', (headers) => {
      resolve(Number(headers[':status']));
      session.destroy();
    });
    stream.on('error', reject);
  });
}
