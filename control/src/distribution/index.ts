// Mesh distribution: the control plane's server side of the sidecar protocol (../../../common/src/distribution/README.md).
export { MeshDistributor, DEFAULT_DISTRIBUTION_DEBOUNCE_MS, DEFAULT_DISTRIBUTION_MAX_DELAY_MS, DEFAULT_ROOT_NAMESPACE, DEFAULT_TRUST_DOMAIN, type DistributionObserver, type DistributorStatus, type MeshDistributorOptions } from './distributor.js';
export type { ConnectionStatus, NackMark, VersionMark } from './connection.js';
export { SnapshotViews, type ScopedView, type WorkloadIdentity } from './views.js';
export { projectSnapshot, type WireObject } from './project.js';
export { parseWorkloadId, workloadOf } from './identity.js';
export { createDistributionServer, servingContextOptions, DEFAULT_SERVER_KEEPALIVE_MS, type DistributionServerOptions, type ServingTls } from './transport.js';
export { createDebugServer } from './debug.js';
export { CONTROL_DISTRIBUTION_ERRORS, type DistributionErrorCode } from '../errors.js';
