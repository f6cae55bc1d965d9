// Where the mesh comes from: one factory per source kind. A new provider is one file plus one line in
// PROVIDERS.
import { KubeConfig } from '@kubernetes/client-node';
import { MeshFileSource, err, ok, type MeshProvider, type Result, type TsmeshError } from '@tsmesh/common';
import type { MeshSourceConfig } from '../config.js';
import { CONTROL_ERRORS, controlError, describeError } from '../errors.js';
import { KubernetesSource, type KubernetesSourceOptions } from './kubernetes.js';

export interface ProviderOptions {
  readonly kubernetes?: KubernetesSourceOptions;
}

type Factory<K extends MeshSourceConfig['kind']> = (
  source: Extract<MeshSourceConfig, { kind: K }>,
  options: ProviderOptions,
) => Result<MeshProvider, TsmeshError>;

const PROVIDERS: { readonly [K in MeshSourceConfig['kind']]: Factory<K> } = {
  file: (source) => ok(new MeshFileSource(source.path, { limits: source.limits })),
  kubernetes: (source, options) => {
    const config = loadKubeConfig(source.kubeconfig);
    return config.ok ? ok(new KubernetesSource(config.value, options.kubernetes)) : config;
  },
};

/** The provider for a source; fails when its configuration cannot be read (e.g. a bad kubeconfig file). */
export function createMeshProvider(source: MeshSourceConfig, options: ProviderOptions = {}): Result<MeshProvider, TsmeshError> {
  const factory = PROVIDERS[source.kind] as Factory<MeshSourceConfig['kind']>;
  return factory(source, options);
}

/** A KubeConfig from the file, else the usual places ($KUBECONFIG, ~/.kube/config, in-cluster). */
export function loadKubeConfig(path?: string): Result<KubeConfig, TsmeshError> {
  const config = new KubeConfig();
  try {
    if (path === undefined) config.loadFromDefault();
    else config.loadFromFile(path);
  } catch (cause) {
    return err(controlError(CONTROL_ERRORS.KUBE_CONFIG, `cannot read the kubeconfig${path === undefined ? '' : ` ${path}`}: ${describeError(cause)}`, cause));
  }
  if (config.getCurrentCluster() === null) {
    return err(controlError(CONTROL_ERRORS.KUBE_CONFIG, `the kubeconfig${path === undefined ? '' : ` ${path}`} has no current cluster`));
  }
  return ok(config);
}
