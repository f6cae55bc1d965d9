import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { basicConstraintsExtension, EXTENDED_KEY_USAGE, KEY_USAGE, keyUsageExtension, type SubjectAltName } from '../x509/certificate.js';
import { id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_keyUsage, id_ce_subjectKeyIdentifier } from '@peculiar/asn1-x509';
import { x509 } from '../x509/x509-lib.js';
import { buildCsr, verifyCsr, type VerifiedCsr } from '../x509/csr.js';
import { generateWorkloadCsr } from '../client.js';
import { ecKey, extensionsOf, memoryMaterial, namesOf, rsaKey, testAuthority, WEB, WEB_ID } from '../testing/fixtures.js';
import type { IssuedCertificate } from './authority.js';

function csrFor(names: SubjectAltName[] = [{ type: 'uri', value: WEB_ID }], extensions: Buffer[] = [], key = ecKey()): VerifiedCsr {
  const result = verifyCsr(buildCsr(key, { names, extensions }));
  if (!result.ok) throw result.error;
  return result.value;
}

function issue(...args: Parameters<ReturnType<typeof testAuthority>['issueWorkload']>): IssuedCertificate {
  const result = testAuthority().issueWorkload(...args);
  if (!result.ok) throw result.error;
  return result.value;
}

describe('CertificateAuthority.issueWorkload', () => {
  const now = new Date('2030-01-01T12:00:00Z');
  const authority = testAuthority({ now: () => now }, memoryMaterial(now));
  const csr = csrFor();
  const issued = authority.issueWorkload(WEB, csr);
  if (!issued.ok) throw issued.error;
  const leaf = new X509Certificate(issued.value.certChain[0] as string);
  const intermediate = new X509Certificate(issued.value.certChain[1] as string);
  const root = new X509Certificate(issued.value.trustBundle[0] as string);
  const extensions = extensionsOf(leaf);

  it('returns the leaf followed by the intermediate, and the root as trust bundle', () => {
    expect(issued.value.certChain).toHaveLength(2);
    expect(issued.value.trustBundle).toHaveLength(1);
    expect(intermediate.ca).toBe(true);
    expect(root.ca).toBe(true);
  });

  it('issues a chain that verifies up to the root', () => {
    expect(leaf.checkIssued(intermediate)).toBe(true);
    expect(leaf.verify(intermediate.publicKey)).toBe(true);
    expect(intermediate.checkIssued(root)).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);
    expect(namesOf(leaf).issuer).toEqual(namesOf(intermediate).subject);
  });

  it('carries the CSR public key, an EC P-256 key', () => {
    expect(leaf.publicKey.export({ format: 'der', type: 'spki' })).toEqual(csr.spkiDer);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('names the SPIFFE ID as its only subject alternative name', () => {
    expect(leaf.subjectAltName).toBe(`URI:${WEB_ID}`);
    expect(issued.value.spiffeId).toBe(WEB_ID);
  });

  it('has a subject without identity claims', () => {
    expect(leaf.subject).toBe('O=tsmesh');
  });

  it('is not a CA, and says so in a critical basicConstraints', () => {
    expect(leaf.ca).toBe(false);
    const basic = extensions.get(id_ce_basicConstraints);
    expect(basic).toBeInstanceOf(x509.BasicConstraintsExtension);
    expect(basic?.critical).toBe(true);
    // An empty SEQUENCE: cA FALSE is the DEFAULT and so absent in DER, no pathLenConstraint.
    expect(Buffer.from(basic?.value ?? new ArrayBuffer(0)).toString('hex')).toBe('3000');
  });

  it('allows digitalSignature and keyEncipherment only, in a critical keyUsage', () => {
    const usage = extensions.get(id_ce_keyUsage) as x509.KeyUsagesExtension | undefined;
    expect(usage?.critical).toBe(true);
    expect(usage?.usages).toBe(KEY_USAGE.digitalSignature | KEY_USAGE.keyEncipherment);
  });

  it('is for both TLS servers and clients', () => {
    expect(leaf.keyUsage).toEqual([EXTENDED_KEY_USAGE.serverAuth, EXTENDED_KEY_USAGE.clientAuth]);
  });

  it('links subject and authority key identifiers', () => {
    const authorityKeyId = (extensions.get(id_ce_authorityKeyIdentifier) as x509.AuthorityKeyIdentifierExtension | undefined)?.keyId;
    const intermediateKeyId = (extensionsOf(intermediate).get(id_ce_subjectKeyIdentifier) as x509.SubjectKeyIdentifierExtension | undefined)?.keyId;
    expect(authorityKeyId).toMatch(/^[0-9a-f]{40}$/);
    expect(authorityKeyId).toBe(intermediateKeyId);
    expect(extensions.get(id_ce_subjectKeyIdentifier)).toBeDefined();
  });

  it('lives 24 hours by default and starts five minutes early for clock skew', () => {
    expect(new Date(leaf.validFrom).toISOString()).toBe('2030-01-01T11:55:00.000Z');
    expect(new Date(leaf.validTo).toISOString()).toBe('2030-01-02T12:00:00.000Z');
    expect(issued.value.expiresAt.toISOString()).toBe('2030-01-02T12:00:00.000Z');
  });

  it('has a random positive serial of up to 128 bits that matches the reported one', () => {
    expect(leaf.serialNumber).toBe(issued.value.serial);
    expect(BigInt(`0x${leaf.serialNumber}`)).toBeGreaterThan(0n);
    expect(BigInt(`0x${leaf.serialNumber}`)).toBeLessThan(2n ** 128n);
  });

  it('gives a different serial to every certificate', () => {
    const again = authority.issueWorkload(WEB, csr);
    expect(again.ok && again.value.serial).not.toBe(issued.value.serial);
  });

  it('certifies an RSA key as well', () => {
    const rsa = issue(WEB, csrFor(undefined, [], rsaKey(2048)));
    expect(new X509Certificate(rsa.certChain[0] as string).publicKey.asymmetricKeyType).toBe('rsa');
  });

  it('issues for a CSR that asks for no name at all, from the token identity', () => {
    const plain = issue({ namespace: 'shop', serviceAccount: 'cart' }, csrFor([]));
    expect(new X509Certificate(plain.certChain[0] as string).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/cart');
  });

  it('uses the configured trust domain', () => {
    const other = testAuthority({ trustDomain: 'prod.example' }).issueWorkload(WEB, csrFor([]));
    expect(other.ok && other.value.spiffeId).toBe('spiffe://prod.example/ns/default/sa/web');
  });
});

describe('CertificateAuthority refusals', () => {
  const authority = testAuthority();

  it.each<[string, SubjectAltName[]]>([
    ['another service account', [{ type: 'uri', value: 'spiffe://cluster.local/ns/default/sa/admin' }]],
    ['another trust domain', [{ type: 'uri', value: 'spiffe://evil.example/ns/default/sa/web' }]],
    ['an extra DNS name', [{ type: 'uri', value: WEB_ID }, { type: 'dns', value: 'web.default.svc' }]],
    ['an extra IP address', [{ type: 'uri', value: WEB_ID }, { type: 'ip', value: '10.0.0.1' }]],
    ['an email address', [{ type: 'email', value: 'web@example.com' }]],
    ['a second URI', [{ type: 'uri', value: WEB_ID }, { type: 'uri', value: 'https://example.com' }]],
  ])('refuses a CSR asking for %s with 403', (_what, names) => {
    const result = authority.issueWorkload(WEB, csrFor(names));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('TSMESH_ERR_CSR_IDENTITY');
    expect(result.error.status).toBe(403);
    expect(result.error.message).toContain(WEB_ID);
  });

  it('refuses a CSR asking for CA rights with 403', () => {
    const result = authority.issueWorkload(WEB, csrFor(undefined, [basicConstraintsExtension(true, 0)]));
    expect(!result.ok && [result.error.code, result.error.status]).toEqual(['TSMESH_ERR_CSR_CA', 403]);
  });

  it('refuses a CSR asking for the certificate-signing key usage with 403', () => {
    const result = authority.issueWorkload(WEB, csrFor(undefined, [keyUsageExtension([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign])]));
    expect(!result.ok && result.error.code).toBe('TSMESH_ERR_CSR_CA');
  });
});

describe('certificate lifetime', () => {
  const now = new Date('2030-06-01T00:00:00Z');
  const lifetime = (issued: IssuedCertificate): number => (issued.expiresAt.getTime() - now.getTime()) / 1000;
  const authority = testAuthority({ now: () => now, defaultTtlSeconds: 3600, maxTtlSeconds: 7200 }, memoryMaterial(now));
  const granted = (ttl?: number): number => {
    const result = authority.issueWorkload(WEB, csrFor(), ttl);
    if (!result.ok) throw result.error;
    return lifetime(result.value);
  };

  it('uses the default when no lifetime is asked', () => {
    expect(granted()).toBe(3600);
  });

  it('grants a shorter lifetime when asked', () => {
    expect(granted(600)).toBe(600);
  });

  it('clamps a longer request to the maximum', () => {
    expect(granted(30 * 24 * 3600)).toBe(7200);
  });

  it('never outlives the intermediate', () => {
    const material = memoryMaterial(new Date('2029-06-01T12:00:00Z'));
    const end = new Date(material.signer.cert.validTo);
    const late = new Date(end.getTime() - 600_000);
    const result = testAuthority({ now: () => late }, material).issueWorkload(WEB, csrFor());
    expect(result.ok && result.value.expiresAt.getTime()).toBe(end.getTime());
  });

  it('refuses a default lifetime above the maximum', () => {
    expect(() => testAuthority({ defaultTtlSeconds: 7200, maxTtlSeconds: 3600 })).toThrow(RangeError);
  });
});

describe('certificates in a real TLS handshake', () => {
  it('lets two workloads authenticate each other over TLS 1.3 with mutual certificates', async () => {
    const authority = testAuthority();
    const credentials = (namespace: string, serviceAccount: string): { key: string; cert: string; id: string } => {
      const id = `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`;
      const { keyPem, csrPem } = generateWorkloadCsr(id);
      const csr = verifyCsr(csrPem);
      if (!csr.ok) throw csr.error;
      const issued = authority.issueWorkload({ namespace, serviceAccount }, csr.value);
      if (!issued.ok) throw issued.error;
      expect(new X509Certificate(issued.value.certChain[0] as string).checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
      return { key: keyPem, cert: issued.value.certChain.join(''), id };
    };
    const server = credentials('shop', 'backend');
    const client = credentials('shop', 'frontend');
    const ca = authority.trustBundle();
    // Mesh peers are named by their URI SAN, not by host name.
    const expectPeer = (expected: string) => (_host: string, cert: tls.PeerCertificate): Error | undefined =>
      cert.subjectaltname === `URI:${expected}` ? undefined : new Error(`unexpected peer ${cert.subjectaltname}`);

    const listener = tls.createServer({
      key: server.key,
      cert: server.cert,
      ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    const accepted = once(listener, 'secureConnection') as Promise<[tls.TLSSocket]>;
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const { port } = listener.address() as AddressInfo;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      key: client.key,
      cert: client.cert,
      ca,
      minVersion: 'TLSv1.3',
      checkServerIdentity: expectPeer(server.id),
    });
    try {
      await once(socket, 'secureConnect');
      const [serverSide] = await accepted;
      expect(socket.authorized).toBe(true);
      expect(socket.getProtocol()).toBe('TLSv1.3');
      expect(socket.getPeerCertificate().subjectaltname).toBe(`URI:${server.id}`);
      expect(serverSide.authorized).toBe(true);
      expect(serverSide.getPeerCertificate().subjectaltname).toBe(`URI:${client.id}`);
      serverSide.end('pong');
      const [reply] = (await once(socket, 'data')) as [Buffer];
      expect(reply.toString()).toBe('pong');
    } finally {
      socket.destroy();
      listener.close();
    }
  });

  it('fails the handshake against a peer from another CA', async () => {
    const ours = testAuthority();
    const theirs = testAuthority();
    const { keyPem, csrPem } = generateWorkloadCsr(WEB_ID);
    const csr = verifyCsr(csrPem);
    if (!csr.ok) throw csr.error;
    const foreign = theirs.issueWorkload(WEB, csr.value);
    if (!foreign.ok) throw foreign.error;
    const listener = tls.createServer({ key: keyPem, cert: foreign.value.certChain.join('') });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const { port } = listener.address() as AddressInfo;
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ours.trustBundle(), checkServerIdentity: () => undefined });
    try {
      const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      expect(error.code).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    } finally {
      socket.destroy();
      listener.close();
    }
  });
});
