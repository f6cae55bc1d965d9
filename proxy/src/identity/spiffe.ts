// Workload identities as SPIFFE IDs (the rules are common's identity/spiffe.ts): reading a verified
// peer's identity from its leaf certificate (the only URI SAN, of our trust domain, not a CA).
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { err, formatSpiffeId, ok, parseSpiffeId as parseSpiffeIdText, type Result, type SpiffeIdentity } from '@tsmesh/common';
import { IDENTITY_ERRORS, IdentityError } from '../errors.js';

export type { SpiffeIdentity } from '@tsmesh/common';
export { isTrustDomain } from '@tsmesh/common';

/** A peer identity read from a certificate: the parsed parts and the ID as written. */
export interface PeerIdentity extends SpiffeIdentity {
  readonly spiffeId: string;
}

/**
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. Throws TypeError when a part is not
 * valid (configuration is checked at start-up; a bad name there is a fatal setting).
 */
export function spiffeIdFor(trustDomain: string, namespace: string, serviceAccount: string): string {
  return formatSpiffeId({ trustDomain, namespace, serviceAccount });
}

/** common's parseSpiffeId, failing with TSMESH_ERR_SPIFFE_ID. */
export function parseSpiffeId(uri: string): Result<SpiffeIdentity, IdentityError> {
  const parsed = parseSpiffeIdText(uri);
  return parsed.ok ? parsed : err(new IdentityError(IDENTITY_ERRORS.SPIFFE_ID, parsed.error));
}

/** One entry of a subjectAltName as Node prints it: `URI:...`, `DNS:...`, `IP Address:...`. */
export interface AltName {
  /** The text before the first colon: `URI`, `DNS`, `IP Address`, `email`, `DirName`, `othername`... */
  readonly type: string;
  /** The value, unquoted when Node quoted it. */
  readonly value: string;
}

/**
 * Splits Node's `subjectAltName` text (`URI:a, DNS:b`) into entries. Node JSON-quotes a value that
 * holds a comma, a quote, a backslash or a control character (`URI:"a\u002c b"`), so a comma
 * outside quotes always separates entries. Returns undefined for text that does not follow this
 * format (an unterminated quote, an entry without a type): callers must then refuse the peer.
 */
export function parseSubjectAltNames(text: string): AltName[] | undefined {
  const names: AltName[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    const comma = text.indexOf(',', i);
    if (colon === -1 || (comma !== -1 && comma < colon)) return undefined;
    const type = text.slice(i, colon);
    let value: string;
    i = colon + 1;
    if (text[i] === '"') {
      const end = closingQuote(text, i);
      if (end === -1) return undefined;
      try {
        value = JSON.parse(text.slice(i, end + 1)) as string;
      } catch {
        return undefined;
      }
      i = end + 1;
      // A quoted value is followed by the separator or the end; anything else is not Node's format.
      if (i < text.length && text[i] !== ',') return undefined;
    } else {
      const end = text.indexOf(',', i);
      value = end === -1 ? text.slice(i) : text.slice(i, end);
      // A stray quote in an unquoted value is something Node would have escaped.
      if (value.includes('"')) return undefined;
      i = end === -1 ? text.length : end;
    }
    if (type === '' || /[",]/.test(type)) return undefined;
    names.push({ type, value });
    if (i < text.length) {
      // Skip ", " (Node always writes the space; accept a bare comma too).
      i++;
      if (text[i] === ' ') i++;
      if (i >= text.length) return undefined;
    }
  }
  return names;
}

function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function isPeerCertificate(cert: PeerCertificate | X509Certificate): cert is PeerCertificate {
  return !(cert instanceof X509Certificate);
}

/**
 * The identity a verified peer presents. Call it only after the TLS stack verified the chain
 * against the mesh's trust bundle (`socket.authorized`): this reads the leaf, it does not verify
 * signatures or validity dates. The leaf must not be a CA certificate and must carry exactly one URI
 * SAN, a tsmesh SPIFFE ID of `trustDomain`; other SAN types (DNS, IP) are allowed and ignored.
 * Fails with TSMESH_ERR_PEER_NO_CERTIFICATE, _PEER_CA_CERTIFICATE, _PEER_SAN, _SPIFFE_ID or
 * _PEER_TRUST_DOMAIN.
 */
export function peerIdentityFromCertificate(
  cert: PeerCertificate | X509Certificate | undefined,
  trustDomain: string,
): Result<PeerIdentity, IdentityError> {
  let leaf: X509Certificate;
  if (cert === undefined) return err(new IdentityError(IDENTITY_ERRORS.PEER_NO_CERTIFICATE, 'the peer presented no certificate'));
  if (isPeerCertificate(cert)) {
    // getPeerCertificate() answers {} when the peer sent nothing.
    if (!Buffer.isBuffer(cert.raw) || cert.raw.length === 0) {
      return err(new IdentityError(IDENTITY_ERRORS.PEER_NO_CERTIFICATE, 'the peer presented no certificate'));
    }
    try {
      leaf = new X509Certificate(cert.raw);
    } catch (cause) {
      return err(new IdentityError(IDENTITY_ERRORS.PEER_NO_CERTIFICATE, 'the peer certificate cannot be parsed', { cause }));
    }
  } else {
    leaf = cert;
  }
  if (leaf.ca) {
    return err(new IdentityError(IDENTITY_ERRORS.PEER_CA_CERTIFICATE, `the peer's leaf certificate (serial ${leaf.serialNumber}) is a CA certificate`));
  }
  const sanText = leaf.subjectAltName;
  const names = sanText === undefined ? [] : parseSubjectAltNames(sanText);
  if (names === undefined) {
    return err(new IdentityError(IDENTITY_ERRORS.PEER_SAN, `the peer's subjectAltName cannot be read: ${JSON.stringify(sanText)}`));
  }
  const uris = names.filter((name) => name.type === 'URI');
  const [uri] = uris;
  if (uri === undefined || uris.length !== 1) {
    return err(
      new IdentityError(IDENTITY_ERRORS.PEER_SAN, `the peer certificate must carry exactly one URI SAN (a SPIFFE ID), found ${uris.length}`),
    );
  }
  const parsed = parseSpiffeId(uri.value);
  if (!parsed.ok) return parsed;
  if (parsed.value.trustDomain !== trustDomain) {
    return err(
      new IdentityError(
        IDENTITY_ERRORS.PEER_TRUST_DOMAIN,
        `the peer identity ${uri.value} is not of the mesh's trust domain "${trustDomain}"`,
      ),
    );
  }
  return ok({ ...parsed.value, spiffeId: uri.value });
}
