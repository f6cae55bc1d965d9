// Outbound routing at connection level: the original destination becomes a typed target.
// OriginalDst → a Service port (balanced per request/connection), a known pod endpoint, or
// passthrough to the address as it was (outside the mesh).
import type { DestinationMatch, MeshService, MeshSnapshot, ServicePort } from '@tsmesh/common';
import type { OriginalDst } from '../capture/original-dst.js';

export type OutboundTarget =
  | { readonly kind: 'service'; readonly service: MeshService; readonly port: ServicePort; readonly key: string; readonly dst: OriginalDst }
  | { readonly kind: 'endpoint'; readonly address: string; readonly port: number; readonly dst: OriginalDst; readonly podName: string | undefined }
  | { readonly kind: 'passthrough'; readonly dst: OriginalDst };

/** `namespace/name:port`, the name of a Service port's cluster in logs, metrics and /clusters. */
export function serviceKey(service: MeshService, port: ServicePort): string {
  return `${service.namespace}/${service.name}:${port.port}`;
}

export function outboundTarget(snapshot: MeshSnapshot | undefined, dst: OriginalDst): OutboundTarget {
  const match: DestinationMatch = snapshot ? snapshot.resolve(dst.address, dst.port) : { kind: 'passthrough' };
  switch (match.kind) {
    case 'service':
      return { kind: 'service', service: match.service, port: match.port, key: serviceKey(match.service, match.port), dst };
    case 'endpoint':
      return { kind: 'endpoint', address: match.address, port: match.port, dst, podName: match.pod?.name };
    default:
      return { kind: 'passthrough', dst };
  }
}
