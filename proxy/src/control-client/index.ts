// The sidecar's mesh from the control plane (protocol: common/src/distribution/README.md).
export {
  ControlPlaneSource,
  parseControlAddr,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_CONTROL_BACKOFF,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_SNAPSHOT_DECODE,
  DEFAULT_START_TIMEOUT_MS,
  type ControlPlaneSourceOptions,
  type ControlPlaneStatus,
  type ControlTlsSource,
} from './control-client.js';
export { snapshotFromMessage } from './apply.js';
export type { SnapshotDecodeLimits } from './decode.js';
export { DISCOVERY_ERRORS, DiscoveryError, type DiscoveryErrorCode } from '../errors.js';
