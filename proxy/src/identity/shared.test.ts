import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { parseCaConfig, startCa, type RunningCa } from '@tsmesh/ca';
import { acceptMeshTls, dialMeshTls } from '../tls/mesh-tls.js';
import { SharedIdentity, sharedMaterial } from './shared.js';
import { WorkloadIdentityManager } from './workload-identity.js';

const quiet = pino({ level: 'silent' });
const WEB_ID = 'spiffe://cluster.local/ns/shop/sa/web';
const API_ID = 'spiffe://cluster.local/ns/shop/sa/api';

describe('SharedIdentity (a worker thread\'s copy of the workload certificate)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmesh-shared-identity-'));
  let ca: RunningCa;
  const managers: WorkloadIdentityManager[] = [];

  const manager = async (serviceAccount: string): Promise<WorkloadIdentityManager> => {
    writeFileSync(join(dir, `${serviceAccount}-token`), `${serviceAccount}-token`);
    const m = new WorkloadIdentityManager({
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount,
      caAddr: `127.0.0.1:${ca.address.port}`,
      tokenFile: join(dir, `${serviceAccount}-token`),
      trustBundleFile: join(dir, 'state', 'root-cert.pem'),
      log: quiet,
    });
    managers.push(m);
    const started = await m.start();
    if (!started.ok) throw started.error;
    return m;
  };

  beforeAll(async () => {
    writeFileSync(join(dir, 'tokens.yaml'), ['- {token: web-token, namespace: shop, serviceAccount: web}', '- {token: api-token, namespace: shop, serviceAccount: api}', ''].join('\n'));
    ca = await startCa(parseCaConfig(['--state-dir', join(dir, 'state'), '--token-file', join(dir, 'tokens.yaml'), '--listen', '127.0.0.1:0'], {}), { log: quiet, auditLog: quiet });
  });

  afterAll(async () => {
    for (const m of managers) m.stop();
    await ca?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has no identity and no contexts until it is given material', () => {
    const shared = new SharedIdentity('cluster.local');
    expect(shared.identity()).toBeUndefined();
    expect(shared.clientContext()).toBeUndefined();
    expect(shared.serverContext()).toBeUndefined();
  });

  it('speaks mesh mTLS from material that crossed a thread boundary (structured clone), both ways, with the manager it came from', async () => {
    const web = await manager('web');
    const api = await manager('api');
    const material = structuredClone(sharedMaterial(web.current()!));
    expect(JSON.stringify(material)).toContain('PRIVATE KEY');
    const shared = new SharedIdentity('cluster.local', material);
    expect(shared.identity()).toBe(WEB_ID);

    const server = net.createServer({ pauseOnConnect: true });
    const accepted = new Promise<string>((resolve, reject) => {
      server.once('connection', (socket: net.Socket) => {
        acceptMeshTls(shared, socket, 5000).then((a) => {
          a.socket.on('error', () => undefined);
          a.socket.end();
          resolve(a.peerIdentity);
        }, reject);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const apiTls = { trustDomain: 'cluster.local', identity: () => API_ID, clientContext: () => api.clientContext(), serverContext: () => api.serverContext(), peerIdentity: shared.peerIdentity.bind(shared) };
      const client = dialMeshTls(apiTls, { host: '127.0.0.1', port, inner: 'http1', expectedIdentity: WEB_ID });
      await new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject));
      expect(await accepted).toBe(API_ID);
      client.destroy();
    } finally {
      server.close();
    }
  });

  it('takes renewed material: new connections present the new certificate', async () => {
    const web = await manager('web');
    const shared = new SharedIdentity('cluster.local');
    shared.install(sharedMaterial(web.current()!));
    const first = shared.serverContext();
    const renewed = await manager('web');
    shared.install(sharedMaterial(renewed.current()!));
    expect(shared.serverContext()).not.toBe(first);
    expect(shared.identity()).toBe(WEB_ID);
    expect(() => shared.install({ ...sharedMaterial(renewed.current()!), keyPem: 'not a key' })).toThrow();
    // A refused install leaves the contexts in force.
    expect(shared.identity()).toBe(WEB_ID);
  });
});
