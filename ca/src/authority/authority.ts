// The issuing step: turns an authenticated identity and a verified CSR into a workload
// certificate chain, and makes the CA's own serving certificate.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { err, ok, type Result } from '@tsmesh/common';
import { CaError } from '../errors.js';
import { spiffeIdOf, type WorkloadIdentity } from '../identity.js';
import {
  authorityKeyIdExtension,
  basicConstraintsExtension,
  encodeName,
  extKeyUsageExtension,
  KEY_USAGE,
  keyIdentifier,
  keyUsageExtension,
  randomSerial,
  serialHex,
  signCertificate,
  subjectAltNameExtension,
  subjectKeyIdExtension,
  certificatePem,
  EXTENDED_KEY_USAGE,
  type SubjectAltName,
} from '../x509/certificate.js';
import type { VerifiedCsr } from '../x509/csr.js';
import { BACKDATE_MS, issuerOf, newKey, privateKeyPem, type SigningMaterial } from './material.js';

export interface AuthorityOptions {
  readonly trustDomain: string;
  /** Lifetime when the caller asks for none. */
  readonly defaultTtlSeconds: number;
  /** Upper bound: longer requests are clamped to it. */
  readonly maxTtlSeconds: number;
  /** Injected clock for tests. */
  readonly now?: () => Date;
}

/** One issued workload certificate. */
export interface IssuedCertificate {
  readonly spiffeId: string;
  /** Upper-case hex, as Node's X509Certificate.serialNumber shows it. */
  readonly serial: string;
  /** Leaf PEM first, then the intermediates. */
  readonly certChain: readonly string[];
  readonly trustBundle: readonly string[];
  readonly notBefore: Date;
  readonly expiresAt: Date;
}

/** A serving certificate and its key for the CA's own HTTPS listener. */
export interface ServingCredentials {
  /** Leaf PEM followed by the intermediates, as `tls` wants `cert`. */
  readonly certChainPem: string;
  readonly keyPem: string;
  readonly expiresAt: Date;
}

/** Subject of every certificate the CA issues: no identity claim, the identity is the URI SAN. */
const LEAF_SUBJECT = encodeName([{ type: 'O', value: 'tsmesh' }]);
/** What every workload certificate may be used for; the same bytes each time, so encoded once. */
const WORKLOAD_USAGE = [
  basicConstraintsExtension(false),
  keyUsageExtension([KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment]),
  extKeyUsageExtension([EXTENDED_KEY_USAGE.serverAuth, EXTENDED_KEY_USAGE.clientAuth]),
];

export class CertificateAuthority {
  private material: SigningMaterial;
  private readonly options: AuthorityOptions;

  constructor(material: SigningMaterial, options: AuthorityOptions) {
    if (options.defaultTtlSeconds > options.maxTtlSeconds) {
      throw new RangeError('default TTL must not exceed the maximum TTL');
    }
    this.material = material;
    this.options = options;
  }

  get trustDomain(): string {
    return this.options.trustDomain;
  }

  /** The material signing right now. */
  get signingMaterial(): SigningMaterial {
    return this.material;
  }

  /** Swaps in renewed signing material; certificates issued before stay valid under the old chain. */
  replaceMaterial(material: SigningMaterial): void {
    this.material = material;
  }

  /** The roots a peer should trust, PEM each. */
  trustBundle(): string[] {
    return this.material.roots.map((r) => r.pem);
  }

  /** The lifetime granted for a request: the default when none is asked, never above the maximum. */
  grantedTtlSeconds(requested: number | undefined): number {
    return Math.min(requested ?? this.options.defaultTtlSeconds, this.options.maxTtlSeconds);
  }

  /**
   * Issues a certificate for `identity` carrying the CSR's public key. The CSR may ask for the
   * identity's SPIFFE ID as its only URI SAN or for nothing; any other name is refused
   * (TSMESH_ERR_CSR_IDENTITY), as is a request for CA rights (TSMESH_ERR_CSR_CA).
   */
  issueWorkload(identity: WorkloadIdentity, csr: VerifiedCsr, requestedTtlSeconds?: number): Result<IssuedCertificate, CaError> {
    const spiffeId = spiffeIdOf(this.options.trustDomain, identity);
    for (const name of csr.requestedNames) {
      if (name.type !== 'uri' || name.value !== spiffeId) {
        return err(
          new CaError('CSR_IDENTITY', `CSR asks for ${describeName(name)}, but the token only entitles it to ${spiffeId}`),
        );
      }
    }
    if (csr.requestsCa) return err(new CaError('CSR_CA', 'CSR asks for CA rights, which workload certificates never get'));

    const now = this.now();
    const ttlMs = this.grantedTtlSeconds(requestedTtlSeconds) * 1000;
    const serial = randomSerial();
    const notBefore = new Date(now.getTime() - BACKDATE_MS);
    const expiresAt = wholeSeconds(this.clampToChain(new Date(now.getTime() + ttlMs)));
    const leafDer = signCertificate(
      {
        serial,
        subject: LEAF_SUBJECT,
        spkiDer: csr.spkiDer,
        notBefore,
        notAfter: expiresAt,
        extensions: [
          ...WORKLOAD_USAGE,
          subjectKeyIdExtension(keyIdentifier(csr.spkiDer)),
          authorityKeyIdExtension(this.material.signer.facts.keyId),
          subjectAltNameExtension([{ type: 'uri', value: spiffeId }]),
        ],
      },
      issuerOf(this.material.signer),
    );
    return ok({
      spiffeId,
      serial: serialHex(serial),
      certChain: [certificatePem(leafDer), ...this.material.chain.map((c) => c.pem)],
      trustBundle: this.trustBundle(),
      notBefore,
      expiresAt,
    });
  }

  /** A fresh EC P-256 key and server certificate for the CA's own listener. */
  issueServing(names: readonly SubjectAltName[], ttlSeconds: number): ServingCredentials {
    const key: KeyObject = newKey();
    const spkiDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const now = this.now();
    const expiresAt = wholeSeconds(this.clampToChain(new Date(now.getTime() + ttlSeconds * 1000)));
    const der = signCertificate(
      {
        serial: randomSerial(),
        subject: encodeName([
          { type: 'O', value: 'tsmesh' },
          { type: 'CN', value: 'tsmesh-ca' },
        ]),
        spkiDer,
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter: expiresAt,
        extensions: [
          basicConstraintsExtension(false),
          keyUsageExtension([KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment]),
          extKeyUsageExtension([EXTENDED_KEY_USAGE.serverAuth]),
          subjectKeyIdExtension(keyIdentifier(spkiDer)),
          authorityKeyIdExtension(this.material.signer.facts.keyId),
          subjectAltNameExtension(names),
        ],
      },
      issuerOf(this.material.signer),
    );
    return {
      certChainPem: [certificatePem(der), ...this.material.chain.map((c) => c.pem)].join(''),
      keyPem: privateKeyPem(key),
      expiresAt,
    };
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** No certificate outlives any certificate of the chain above it. */
  private clampToChain(notAfter: Date): Date {
    const limit = Math.min(...this.material.chain.map((c) => new Date(c.cert.validTo).getTime()));
    return new Date(Math.min(notAfter.getTime(), limit));
  }
}

/** Certificates carry whole seconds; so does what the CA reports. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function describeName(name: { type: string; value: string }): string {
  switch (name.type) {
    case 'uri':
      return `URI "${name.value}"`;
    case 'dns':
      return `DNS name "${name.value}"`;
    case 'ip':
      return `IP address ${name.value}`;
    case 'email':
      return `email address "${name.value}"`;
    default:
      return `a ${name.value} subject alternative name`;
  }
}
