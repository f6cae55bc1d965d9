// The first step of starting a sidecar or a gateway: the workload identity from the configuration
// (none without TSMESH_CA_ADDR), its first certificate asked for, and the mesh TLS source the data
// path dials and accepts with. A program without a certificate yet still starts (not ready).
import { ok, type Logger } from '@tsmesh/common';
import type { MeshTlsSource } from '../tls/mesh-tls.js';
import { peerIdentityFromCertificate } from './spiffe.js';
import { identityOptionsFromConfig, WorkloadIdentityManager, type IdentitySettings } from './workload-identity.js';

export interface StartedIdentity {
  /** Undefined without TSMESH_CA_ADDR: the program runs without mesh identity. */
  readonly identity: WorkloadIdentityManager | undefined;
  /** mTLS as this workload; undefined when there is no identity. */
  readonly tls: MeshTlsSource | undefined;
}

/**
 * Starts the workload identity the settings describe and waits for its first answer (a failure is
 * logged and retried in the background). Throws the IdentityError of settings that name a CA but
 * not its token or trust bundle file. `withoutIdentity` is what `log` warns when no CA is set.
 */
export async function startIdentity(settings: IdentitySettings, log: Logger, withoutIdentity: string): Promise<StartedIdentity> {
  const identityOptions = identityOptionsFromConfig(settings);
  if (!identityOptions.ok) throw identityOptions.error;
  const identity = identityOptions.value ? new WorkloadIdentityManager(identityOptions.value) : undefined;
  if (identity) {
    const first = await identity.start();
    if (!first.ok) log.warn({ err: first.error.message }, 'no workload certificate yet; retrying in the background (not ready)');
  } else {
    log.warn(withoutIdentity);
  }
  const tls: MeshTlsSource | undefined = identity && {
    trustDomain: settings.trustDomain,
    identity: () => identity.current()?.spiffeId,
    clientContext: () => identity.clientContext(),
    serverContext: () => identity.serverContext(),
    peerIdentity: (cert) => {
      const peer = peerIdentityFromCertificate(cert, settings.trustDomain);
      return peer.ok ? ok(peer.value.spiffeId) : peer;
    },
  };
  return { identity, tls };
}
