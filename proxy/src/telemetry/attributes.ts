// Span attribute names (OpenTelemetry semantic conventions, plus tsmesh's own) and the small
// parsers that turn request fields into attribute values. Names are spelled here rather than
// imported so libraries depend on @opentelemetry/api alone.

export const ATTR = {
  HTTP_REQUEST_METHOD: 'http.request.method',
  HTTP_REQUEST_METHOD_ORIGINAL: 'http.request.method_original',
  HTTP_RESPONSE_STATUS_CODE: 'http.response.status_code',
  URL_PATH: 'url.path',
  URL_SCHEME: 'url.scheme',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  NETWORK_PEER_ADDRESS: 'network.peer.address',
  NETWORK_PEER_PORT: 'network.peer.port',
  NETWORK_PROTOCOL_NAME: 'network.protocol.name',
  NETWORK_PROTOCOL_VERSION: 'network.protocol.version',
  NETWORK_TRANSPORT: 'network.transport',
  RPC_SYSTEM: 'rpc.system',
  RPC_SERVICE: 'rpc.service',
  RPC_METHOD: 'rpc.method',
  RPC_GRPC_STATUS_CODE: 'rpc.grpc.status_code',
  ERROR_TYPE: 'error.type',
  TSMESH_SOURCE_IDENTITY: 'tsmesh.source.identity',
  TSMESH_DESTINATION_IDENTITY: 'tsmesh.destination.identity',
  TSMESH_DESTINATION_SERVICE: 'tsmesh.destination.service',
  TSMESH_MTLS: 'tsmesh.mtls',
  TSMESH_RESPONSE_FLAGS: 'tsmesh.response_flags',
  TSMESH_BYTES_SENT: 'tsmesh.bytes_sent',
  TSMESH_BYTES_RECEIVED: 'tsmesh.bytes_received',
} as const;

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** `http.request.method`: a known method as is, anything else `_OTHER` (semantic conventions). */
export function methodAttribute(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

export function isKnownMethod(method: string): boolean {
  return KNOWN_METHODS.has(method);
}

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`; `port` is absent when missing or invalid. */
export function splitHostPort(hostPort: string): { host: string; port?: number } {
  let host = hostPort;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close > 0) {
      host = hostPort.slice(1, close);
      if (hostPort[close + 1] === ':') portText = hostPort.slice(close + 2);
    }
  } else {
    const colon = hostPort.lastIndexOf(':');
    // More than one colon and no brackets: a bare IPv6 address, no port.
    if (colon >= 0 && hostPort.indexOf(':') === colon) {
      host = hostPort.slice(0, colon);
      portText = hostPort.slice(colon + 1);
    }
  }
  if (portText === undefined || !/^\d{1,5}$/.test(portText)) return { host };
  const port = Number(portText);
  return port > 0 && port <= 65535 ? { host, port } : { host };
}

/** The path without its query string (queries may carry secrets and never go into telemetry). */
export function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/** `/pkg.Service/Method` → service and method; `undefined` if the path is not a gRPC method. */
export function grpcMethod(path: string): { service: string; method: string } | undefined {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(pathOnly(path));
  if (!match || match[1] === undefined || match[2] === undefined) return undefined;
  return { service: match[1], method: match[2] };
}
