// Workload identities as SPIFFE IDs, the one place the mesh reads and writes them:
// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` (the form Istio and Linkerd use for
// Kubernetes workloads). The CA issues them, the control plane and the sidecars read them from
// verified certificates, AuthorizationPolicy compares their principal (the ID without the scheme).
import { err, ok, type Result } from '../errors.js';

/** Who a workload is: a Kubernetes ServiceAccount in a trust domain. */
export interface SpiffeIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export const SPIFFE_SCHEME = 'spiffe://';
/** Longer IDs are refused before they are looked at (the SPIFFE spec's URI limit). */
export const MAX_SPIFFE_ID_LENGTH = 2048;

// SPIFFE trust domain names: lowercase letters, digits, '.', '-', '_' (no port, no userinfo).
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
// Kubernetes names: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isTrustDomain(value: string): boolean {
  return TRUST_DOMAIN.test(value);
}

export function isNamespaceName(value: string): boolean {
  return DNS1123_LABEL.test(value);
}

export function isServiceAccountName(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

/**
 * `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. Throws TypeError when a part is not
 * valid (callers check names at their edge; a bad one here is a programming or configuration error).
 */
export function formatSpiffeId(identity: SpiffeIdentity): string {
  if (!isTrustDomain(identity.trustDomain)) throw new TypeError(`"${identity.trustDomain}" is not a valid SPIFFE trust domain`);
  if (!isNamespaceName(identity.namespace)) throw new TypeError(`"${identity.namespace}" is not a valid Kubernetes namespace name`);
  if (!isServiceAccountName(identity.serviceAccount)) throw new TypeError(`"${identity.serviceAccount}" is not a valid service account name`);
  return `${SPIFFE_SCHEME}${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
}

/**
 * Parses a tsmesh SPIFFE ID, strictly: lowercase `spiffe` scheme, a trust domain without port or
 * userinfo, no query, fragment or percent-encoding, and a path of exactly
 * `/ns/<namespace>/sa/<service-account>` with valid Kubernetes names. The error says what was wrong,
 * quoting at most 256 characters of the input.
 */
export function parseSpiffeId(uri: string): Result<SpiffeIdentity, string> {
  const parsed = parseSpiffeIdParts(uri);
  return parsed.ok ? parsed : err(`${JSON.stringify(uri.slice(0, 256))} is not a tsmesh SPIFFE ID: ${parsed.error}`);
}

/** parseSpiffeId with the bare reason as the error (`a port is not allowed`), for callers that word their own. */
export function parseSpiffeIdParts(uri: string): Result<SpiffeIdentity, string> {
  const refuse = (reason: string): Result<never, string> => err(reason);
  if (uri.length > MAX_SPIFFE_ID_LENGTH) return refuse(`longer than ${MAX_SPIFFE_ID_LENGTH} characters`);
  if (!uri.startsWith(SPIFFE_SCHEME)) return refuse('the scheme must be "spiffe://"');
  const rest = uri.slice(SPIFFE_SCHEME.length);
  if (/[?#]/.test(rest)) return refuse('a query or fragment is not allowed');
  if (rest.includes('%')) return refuse('percent-encoding is not allowed');
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  if (authority.includes('@')) return refuse('userinfo is not allowed');
  if (authority.includes(':')) return refuse('a port is not allowed');
  if (!isTrustDomain(authority)) return refuse('the trust domain must be lowercase letters, digits, ".", "-" or "_"');
  const segments = slash === -1 ? [] : rest.slice(slash + 1).split('/');
  const [nsKey, namespace, saKey, serviceAccount] = segments;
  if (segments.length !== 4 || nsKey !== 'ns' || saKey !== 'sa' || namespace === undefined || serviceAccount === undefined) {
    return refuse('the path must be /ns/<namespace>/sa/<service-account>');
  }
  if (!isNamespaceName(namespace)) return refuse(`${quoted(namespace)} is not a valid namespace name`);
  if (!isServiceAccountName(serviceAccount)) return refuse(`${quoted(serviceAccount)} is not a valid service account name`);
  return ok({ trustDomain: authority, namespace, serviceAccount });
}

/** A name in an error, cut at 64 characters (the whole ID is quoted already). */
function quoted(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}

/**
 * The principal AuthorizationPolicy rules compare (Istio's form: the ID without the scheme,
 * `cluster.local/ns/shop/sa/frontend`) and the namespace, of an ID already verified; both
 * undefined for anything that is not a tsmesh SPIFFE ID.
 */
export function principalOf(spiffeId: string | undefined): { principal: string | undefined; namespace: string | undefined } {
  if (spiffeId === undefined) return { principal: undefined, namespace: undefined };
  const parsed = parseSpiffeId(spiffeId);
  if (!parsed.ok) return { principal: undefined, namespace: undefined };
  return { principal: spiffeId.slice(SPIFFE_SCHEME.length), namespace: parsed.value.namespace };
}
