// Where a namespace's pods find the mesh's trust bundle: the control plane publishes this ConfigMap
// in every namespace, and the injector mounts it into each sidecar.

/** The ConfigMap, in each namespace, holding the PEM roots every workload certificate chains to. */
export const TRUST_BUNDLE_CONFIGMAP = 'tsmesh-ca-root-cert';
/** Its key: the roots, PEM, one after another (several while a root is rotated). */
export const TRUST_BUNDLE_KEY = 'root-cert.pem';
