// The findings `tsmesh analyze` can report: one stable code per mistake, its severity, and the fix
// docs/operations.md gives for it. A code is never reused for another mistake once released.

export type Severity = 'Error' | 'Warning' | 'Info';

export const SEVERITIES: readonly Severity[] = ['Error', 'Warning', 'Info'];

export interface MessageType {
  /** `TSM0101`: stable, for scripts and for searching the docs. */
  readonly code: string;
  /** A short CamelCase name, like Istio's message names. */
  readonly name: string;
  readonly severity: Severity;
}

export const MESSAGE_TYPES = Object.freeze({
  invalidObject: { code: 'TSM0001', name: 'InvalidObject', severity: 'Error' },
  backendServiceNotFound: { code: 'TSM0101', name: 'BackendServiceNotFound', severity: 'Error' },
  backendPortNotFound: { code: 'TSM0102', name: 'BackendPortNotFound', severity: 'Error' },
  parentNotFound: { code: 'TSM0103', name: 'ParentNotFound', severity: 'Error' },
  gatewayBackendNotGranted: { code: 'TSM0104', name: 'GatewayBackendNotGranted', severity: 'Error' },
  meshBackendNotGranted: { code: 'TSM0105', name: 'MeshBackendNotGranted', severity: 'Info' },
  conflictingPeerAuthentications: { code: 'TSM0201', name: 'ConflictingPeerAuthentications', severity: 'Error' },
  overlappingPeerAuthentications: { code: 'TSM0202', name: 'OverlappingPeerAuthentications', severity: 'Warning' },
  uninjectedCallersOfStrict: { code: 'TSM0301', name: 'UninjectedCallersOfStrict', severity: 'Warning' },
  strictWithoutSidecars: { code: 'TSM0302', name: 'StrictWithoutSidecars', severity: 'Warning' },
  unknownAnnotation: { code: 'TSM0401', name: 'UnknownAnnotation', severity: 'Warning' },
  badInjectionLabel: { code: 'TSM0402', name: 'BadInjectionLabel', severity: 'Warning' },
  authorizationPolicySelectsNothing: { code: 'TSM0501', name: 'AuthorizationPolicySelectsNothing', severity: 'Warning' },
  rateLimitPolicySelectsNothing: { code: 'TSM0502', name: 'RateLimitPolicySelectsNothing', severity: 'Warning' },
} as const satisfies Record<string, MessageType>);

export type MessageTypeKey = keyof typeof MESSAGE_TYPES;

/** One finding: which mistake, on which object, in one human line. */
export interface Message {
  readonly code: string;
  readonly name: string;
  readonly severity: Severity;
  readonly kind: string;
  /** undefined for cluster-scoped objects (Namespace). */
  readonly namespace: string | undefined;
  readonly objectName: string;
  readonly text: string;
}

export interface ObjectRef {
  readonly kind: string;
  readonly namespace?: string | undefined;
  readonly name: string;
}

export function message(type: MessageTypeKey, object: ObjectRef, text: string): Message {
  const { code, name, severity } = MESSAGE_TYPES[type];
  return Object.freeze({ code, name, severity, kind: object.kind, namespace: object.namespace, objectName: object.name, text });
}

/** `HTTPRoute shop/web`, `Namespace shop`. */
export function objectLabel(object: { readonly kind: string; readonly namespace?: string | undefined; readonly objectName?: string; readonly name?: string }): string {
  const name = object.objectName ?? object.name ?? '';
  return object.namespace === undefined ? `${object.kind} ${name}` : `${object.kind} ${object.namespace}/${name}`;
}
