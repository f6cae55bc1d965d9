// The workload identity as an event loop in a worker thread holds it: the PEMs the main thread's
// WorkloadIdentityManager obtained, sent to every loop on each renewal and made into that thread's
// own TLS contexts (a SecureContext cannot cross threads). A loop never talks to the CA.
import { createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { ok } from '@tsmesh/common';
import type { MeshTlsSource } from '../tls/mesh-tls.js';
import { meshSecureContextOptions, type IdentityMaterial } from './material.js';
import { peerIdentityFromCertificate } from './spiffe.js';

/** What crosses to a loop (structured clone): the identity and its PEMs. The key stays in the process. */
export interface SharedMaterial {
  readonly spiffeId: string;
  readonly keyPem: string;
  readonly certChainPem: readonly string[];
  readonly trustBundlePem: readonly string[];
}

export function sharedMaterial(material: IdentityMaterial): SharedMaterial {
  return {
    spiffeId: material.spiffeId,
    keyPem: material.keyPem,
    certChainPem: [...material.certChainPem],
    trustBundlePem: [...material.trustBundlePem],
  };
}

/** A MeshTlsSource over material checked elsewhere (buildMaterial in the main thread). */
export class SharedIdentity implements MeshTlsSource {
  readonly trustDomain: string;
  private spiffeId: string | undefined;
  private server: SecureContext | undefined;
  private client: SecureContext | undefined;

  constructor(trustDomain: string, material?: SharedMaterial) {
    this.trustDomain = trustDomain;
    if (material !== undefined) this.install(material);
  }

  /** Replaces the contexts (new connections use them). Throws if the PEMs make no TLS context. */
  install(material: SharedMaterial): void {
    const options = meshSecureContextOptions(material);
    const server = createSecureContext(options);
    const client = createSecureContext(options);
    this.server = server;
    this.client = client;
    this.spiffeId = material.spiffeId;
  }

  identity(): string | undefined {
    return this.spiffeId;
  }

  clientContext(): SecureContext | undefined {
    return this.client;
  }

  serverContext(): SecureContext | undefined {
    return this.server;
  }

  peerIdentity(cert: PeerCertificate): ReturnType<MeshTlsSource['peerIdentity']> {
    const peer = peerIdentityFromCertificate(cert, this.trustDomain);
    return peer.ok ? ok(peer.value.spiffeId) : peer;
  }
}
