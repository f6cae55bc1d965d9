// Shared vocabulary of the telemetry library: who reports, who talks to whom.

/** Which side of a call a sidecar is: the caller's (outbound) or the callee's (inbound). */
export type Reporter = 'source' | 'destination';
export type Direction = 'outbound' | 'inbound';
export type HttpProtocol = 'http1' | 'http2' | 'grpc';

/**
 * One end of a call, as far as the proxy knows it. Fields left out become `unknown` in metrics.
 * `service` is a mesh Service's name (e.g. `reviews.default.svc.cluster.local`); never put a raw
 * `Host` header, an IP or a path here: metric labels must stay low-cardinality.
 */
export interface PeerInfo {
  readonly workload?: string | undefined;
  readonly namespace?: string | undefined;
  readonly service?: string | undefined;
  /** SPIFFE ID, `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`; known when the hop used mTLS. */
  readonly identity?: string | undefined;
  /** The pod's `app` (or `app.kubernetes.io/name`) label: Istio's `*_app` metric labels. */
  readonly app?: string | undefined;
  /** The pod's `version` (or `app.kubernetes.io/version`) label: Istio's `*_version` metric labels. */
  readonly version?: string | undefined;
}

/** A pod's `app` label (Istio's `*_app`): `app`, else `app.kubernetes.io/name`. */
export function appOf(labels: Readonly<Record<string, string>> | undefined): string | undefined {
  return nonEmpty(labels?.['app']) ?? nonEmpty(labels?.['app.kubernetes.io/name']);
}

/** A pod's `version` label (Istio's `*_version`): `version`, else `app.kubernetes.io/version`. */
export function versionOf(labels: Readonly<Record<string, string>> | undefined): string | undefined {
  return nonEmpty(labels?.['version']) ?? nonEmpty(labels?.['app.kubernetes.io/version']);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

export function directionOf(reporter: Reporter): Direction {
  return reporter === 'source' ? 'outbound' : 'inbound';
}
