import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY, type KubeObject } from '@tsmesh/common';
import { pino } from 'pino';
import { controlPlaneConfig } from './config.js';
import { startControlPlane, type RunningControlPlane } from './server.js';
import { MESH_CONTROLLER_NAME } from './status/parents.js';
import { eventually } from './testing/eventually.js';
import { FakeApiServer } from './testing/fake-apiserver.js';
import { namespace, route, service } from './testing/fixtures.js';

const silent = pino({ level: 'silent' });

describe('startControlPlane: the Kubernetes-side writers', () => {
  let dir: string;
  let tlsFlags: string[];
  let fake: FakeApiServer | undefined;
  let plane: RunningControlPlane | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsmesh-server-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=control'], {
      stdio: 'ignore',
    });
    tlsFlags = ['--tls-cert', cert, '--tls-key', key, '--trust-bundle', cert, '--listen', '127.0.0.1:0', '--debug-listen', 'off'];
  });

  afterEach(async () => {
    await plane?.close();
    await fake?.close();
    plane = undefined;
    fake = undefined;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes route status when the mesh comes from Kubernetes', async () => {
    fake = await FakeApiServer.start();
    fake.create(namespace('shop'));
    fake.create(service('web'));
    fake.create(route('HTTPRoute', 'canary', 'web'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    plane = await startControlPlane(controlPlaneConfig([...tlsFlags, '--kubeconfig', kubeconfig], {}), { log: silent, tlsReloadMs: 0, routeStatus: { debounceMs: 10 } });
    expect(plane.routeStatus).toBeDefined();
    const parents = await eventually(() => {
      const stored: KubeObject | undefined = fake?.list('httproutes', 'shop')[0];
      const written = (stored?.['status'] as { parents?: { controllerName: string }[] } | undefined)?.parents;
      return written !== undefined && written.length > 0 ? written : undefined;
    }, 'the route status');
    expect(parents.map((p) => p.controllerName)).toEqual([MESH_CONTROLLER_NAME]);
  });

  it('writes no status and publishes no trust bundle when the mesh comes from a file', async () => {
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, '');
    plane = await startControlPlane(controlPlaneConfig([...tlsFlags, '--config', meshFile], {}), { log: silent, tlsReloadMs: 0 });
    expect(plane.routeStatus).toBeUndefined();
    expect(plane.trustBundle).toBeUndefined();
  });

  it('publishes its trust bundle file in every namespace, and the new one when the file changes', async () => {
    fake = await FakeApiServer.start();
    for (const ns of ['shop', 'kube-system']) fake.create(namespace(ns));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    // Its own file: the test rewrites it.
    const bundleFile = join(dir, 'bundle.pem');
    const first = readFileSync(tlsFlags[1] as string, 'utf8');
    writeFileSync(bundleFile, first);
    const flags = [...tlsFlags.slice(0, 4), '--trust-bundle', bundleFile, ...tlsFlags.slice(6), '--kubeconfig', kubeconfig];
    plane = await startControlPlane(controlPlaneConfig(flags, {}), { log: silent, tlsReloadMs: 0, routeStatus: false, trustBundle: { debounceMs: 10 } });
    const held = (ns: string): unknown =>
      (fake?.list('configmaps', ns).find((cm) => cm.metadata.name === TRUST_BUNDLE_CONFIGMAP)?.['data'] as Record<string, unknown> | undefined)?.[TRUST_BUNDLE_KEY];
    await eventually(() => held('shop') === first, 'the bundle in shop');
    expect(held('kube-system')).toBeUndefined();

    // A second root next to the first, as during a root rotation.
    const second = join(dir, 'second.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'second.key'), '-out', second, '-days', '1', '-subj', '/CN=second'], {
      stdio: 'ignore',
    });
    const both = `${first}${readFileSync(second, 'utf8')}`;
    writeFileSync(bundleFile, both);
    expect(await plane.reloadTls()).toBe(true);
    await eventually(() => held('shop') === both, 'the new bundle in shop');
  });

  it('publishes no trust bundle with --trust-bundle-configmap off', async () => {
    fake = await FakeApiServer.start();
    fake.create(namespace('shop'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, fake.kubeConfig().exportConfig());
    plane = await startControlPlane(controlPlaneConfig([...tlsFlags, '--kubeconfig', kubeconfig, '--trust-bundle-configmap', 'off'], {}), { log: silent, tlsReloadMs: 0, routeStatus: false });
    expect(plane.trustBundle).toBeUndefined();
    expect(fake.requestsFor('/api/v1/configmaps')).toEqual([]);
  });
});
