// Stable error codes of the sidecar's control-plane client. Callers match on `code`, never on the message.
import { TsmeshError } from '@tsmesh/common';

export const DISCOVERY_ERRORS = {
  /** TSMESH_CONTROL_ADDR (or the option) is not host:port, or the expected server identity is not a SPIFFE ID. */
  CONTROL_ADDR: 'TSMESH_ERR_CONTROL_ADDR',
  /** No workload certificate yet: the control plane only talks mTLS. */
  CONTROL_NO_IDENTITY: 'TSMESH_ERR_CONTROL_NO_IDENTITY',
  /** Connecting failed (network, TLS, server identity), timed out, or the connection was lost. */
  CONTROL_UNREACHABLE: 'TSMESH_ERR_CONTROL_UNREACHABLE',
  /** The control plane answered the stream with an error status (401/403: our certificate). */
  CONTROL_REFUSED: 'TSMESH_ERR_CONTROL_REFUSED',
  /** The control plane sent something that is not the protocol. */
  CONTROL_PROTOCOL: 'TSMESH_ERR_CONTROL_PROTOCOL',
  /** No snapshot could be applied before start() gave up. */
  CONTROL_START_TIMEOUT: 'TSMESH_ERR_CONTROL_START_TIMEOUT',
  /** A snapshot holds objects that do not validate: it was refused (NACK) and the last good one kept. */
  SNAPSHOT_REJECTED: 'TSMESH_ERR_SNAPSHOT_REJECTED',
  /** A snapshot line over the size limit, or whose parse needed more memory or time than allowed: refused (NACK), not read. */
  SNAPSHOT_TOO_LARGE: 'TSMESH_ERR_SNAPSHOT_TOO_LARGE',
  /** A snapshot whose objects nest deeper than the depth limit: refused (NACK) before parsing. */
  SNAPSHOT_TOO_DEEP: 'TSMESH_ERR_SNAPSHOT_TOO_DEEP',
  /** close() came first. */
  CONTROL_CLOSED: 'TSMESH_ERR_CONTROL_CLOSED',
} as const;

export type DiscoveryErrorCode = (typeof DISCOVERY_ERRORS)[keyof typeof DISCOVERY_ERRORS];

export class DiscoveryError extends TsmeshError {
  declare readonly code: DiscoveryErrorCode;
  constructor(code: DiscoveryErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'DiscoveryError';
  }
}
