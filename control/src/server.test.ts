import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '@tsmesh/common';
import { pino } from 'pino';
import { controlPlaneConfig } from './distribution/config.js';
import { startControlPlane, type RunningControlPlane } from './server.js';
import { MESH_CONTROLLER_NAME } from './status/parents.js';
import { eventually } from './testing/eventually.js';
import { FakeApiServer } from './testing/fake-apiserver.js';
import { namespace, route, service } from './testing/fixtures.js';

const silent = pino({ level: 'silent' });

describe('startControlPlane: route status', () => {
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

  it('writes no status when the mesh comes from a file', async () => {
    const meshFile = join(dir, 'mesh.yaml');
    writeFileSync(meshFile, '');
    plane = await startControlPlane(controlPlaneConfig([...tlsFlags, '--config', meshFile], {}), { log: silent, tlsReloadMs: 0 });
    expect(plane.routeStatus).toBeUndefined();
  });
});
