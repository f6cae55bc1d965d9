// TLS termination on a gateway port: which certificate answers a ClientHello's server name (SNI).
// The listener whose hostname fits the name best wins (exact, then the longest wildcard, then one
// without hostname); among its certificates, the first whose DNS names cover the name, else its
// first. A name no listener of the port serves is refused, so a client never gets a certificate
// for a host the Gateway does not serve.
import { coveredBy, type CompiledListener, type ListenerCertificate } from '@tsmesh/common';

/** The certificate for `servername` ('' when the client sent none) among a port's HTTPS listeners. */
export function pickCertificate(listeners: readonly CompiledListener[], servername: string): ListenerCertificate | undefined {
  const name = servername.toLowerCase().replace(/\.$/, '');
  const serving = listeners.filter((l) => l.certificates.length > 0);
  let best: CompiledListener | undefined;
  let bestRank = -1;
  for (const listener of serving) {
    const rank = hostnameRank(listener.hostname, name);
    if (rank > bestRank) {
      best = listener;
      bestRank = rank;
    }
  }
  if (best === undefined) return undefined;
  return best.certificates.find((c) => c.dnsNames.some((d) => d === name || (d.startsWith('*.') && coveredBy(name, d)))) ?? best.certificates[0];
}

/**
 * How well a listener hostname fits a server name: -1 not at all, 0 a listener for every host,
 * a wildcard by its length, an exact name above every wildcard. Without SNI only listeners
 * without hostname fit.
 */
function hostnameRank(hostname: string | undefined, name: string): number {
  if (hostname === undefined) return 0;
  if (name === '') return -1;
  if (hostname === name) return 1000;
  return hostname.startsWith('*.') && coveredBy(name, hostname) ? hostname.length : -1;
}
