// The protocol a Service port declares, from `appProtocol` or from the port's name (`http-web`, `grpc`).
// Undefined means "not declared": the proxy detects it from the first bytes.
import type { AppProtocol } from './types.js';

const BY_APP_PROTOCOL: ReadonlyMap<string, AppProtocol> = new Map<string, AppProtocol>([
  ['http', 'http'],
  ['http2', 'http2'],
  ['kubernetes.io/h2c', 'http2'],
  ['grpc', 'grpc'],
  ['grpc-web', 'http'],
  ['tcp', 'tcp'],
  ['tls', 'tls'],
  ['https', 'tls'],
  ['kubernetes.io/ws', 'http'],
  ['kubernetes.io/wss', 'tls'],
]);

const BY_NAME_PREFIX: ReadonlyMap<string, AppProtocol> = new Map<string, AppProtocol>([
  ['http', 'http'],
  ['http2', 'http2'],
  ['grpc', 'grpc'],
  ['tcp', 'tcp'],
  ['tls', 'tls'],
  ['https', 'tls'],
]);

/**
 * The declared protocol of a Service port. A recognised `appProtocol` wins; an unrecognised one
 * falls back to the name, whose prefix before the first `-` (or the whole name) is looked up.
 * `grpc-web` is plain HTTP/1.1 on the wire, so it is checked before the `grpc` prefix.
 */
export function declaredProtocol(appProtocol: string | undefined, portName: string): AppProtocol | undefined {
  if (appProtocol !== undefined) {
    const declared = BY_APP_PROTOCOL.get(appProtocol.toLowerCase());
    if (declared !== undefined) return declared;
  }
  const name = portName.toLowerCase();
  if (name === 'grpc-web' || name.startsWith('grpc-web-')) return 'http';
  const dash = name.indexOf('-');
  return BY_NAME_PREFIX.get(dash === -1 ? name : name.slice(0, dash));
}
