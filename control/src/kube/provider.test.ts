import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { MeshFileSource } from '@tsmesh/common';
import { CONTROL_ERRORS } from '../errors.js';
import { KubernetesSource } from './kubernetes.js';
import { createMeshProvider, loadKubeConfig } from './provider.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;

describe('createMeshProvider', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmesh-control-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes a MeshFileSource for a mesh file', () => {
    const provider = createMeshProvider({ kind: 'file', path: join(dir, 'mesh.yaml') });
    expect(provider.ok && provider.value).toBeInstanceOf(MeshFileSource);
  });

  it('makes a KubernetesSource from a kubeconfig file', async () => {
    await writeFile(join(dir, 'kubeconfig'), KUBECONFIG);
    const provider = createMeshProvider({ kind: 'kubernetes', kubeconfig: join(dir, 'kubeconfig') });
    expect(provider.ok && provider.value).toBeInstanceOf(KubernetesSource);
  });

  it('refuses a kubeconfig that cannot be read, naming it', () => {
    const result = loadKubeConfig(join(dir, 'missing'));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe(CONTROL_ERRORS.KUBE_CONFIG);
      expect(result.error.message).toContain(join(dir, 'missing'));
    }
  });

  it('refuses a kubeconfig without a current cluster', async () => {
    await writeFile(join(dir, 'kubeconfig'), KUBECONFIG.replace('current-context: x', 'current-context: nowhere'));
    const result = loadKubeConfig(join(dir, 'kubeconfig'));
    expect(!result.ok && result.error.message).toContain('has no current cluster');
  });
});
