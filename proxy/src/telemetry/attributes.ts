// Span attribute names (OpenTelemetry semantic conventions, plus tsmesh's own) and the builders
// that turn a request or connection into attributes. Names are spelled here rather than imported
// so libraries depend on @opentelemetry/api alone.
import type { Attributes } from '@opentelemetry/api';
import type { RequestInfo, TcpInfo } from './observer.js';
import type { PeerInfo } from './types.js';

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
  // RPC names as semantic conventions 1.40+ have them (stable): `rpc.system`, `rpc.service`,
  // `rpc.grpc.status_code` and `rpc.response.status_code` are deprecated there.
  RPC_SYSTEM_NAME: 'rpc.system.name',
  /** Fully qualified: `pkg.Service/Method`, or `_OTHER` for a path that is not a gRPC method. */
  RPC_METHOD: 'rpc.method',
  RPC_METHOD_ORIGINAL: 'rpc.method_original',
  /** The gRPC status as its name (`OK`, `UNAVAILABLE`). */
  RPC_STATUS_CODE: 'rpc.status_code',
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

const GRPC_STATUS_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** `rpc.status_code` of a gRPC status: its name (`UNAVAILABLE`), or the number for one outside 0..16. */
export function grpcStatusName(status: number): string {
  return GRPC_STATUS_NAMES[status] ?? String(status);
}

/** Adds `network.peer.address` (and `.port`) from an `ip:port`. */
export function peerAttributes(target: Attributes, address: string | undefined): void {
  if (address === undefined) return;
  const { host, port } = splitHostPort(address);
  target[ATTR.NETWORK_PEER_ADDRESS] = host;
  if (port !== undefined) target[ATTR.NETWORK_PEER_PORT] = port;
}

function identityAttributes(target: Attributes, source: PeerInfo, destination: PeerInfo, mtls: boolean): void {
  if (source.identity !== undefined) target[ATTR.TSMESH_SOURCE_IDENTITY] = source.identity;
  if (destination.identity !== undefined) target[ATTR.TSMESH_DESTINATION_IDENTITY] = destination.identity;
  if (destination.service !== undefined) target[ATTR.TSMESH_DESTINATION_SERVICE] = destination.service;
  target[ATTR.TSMESH_MTLS] = mtls;
}

/** The attributes of a request span known when it starts. */
export function requestAttributes(info: RequestInfo): Attributes {
  const attributes: Attributes = {};
  const method = info.method.toUpperCase();
  attributes[ATTR.HTTP_REQUEST_METHOD] = methodAttribute(method);
  if (!isKnownMethod(method)) attributes[ATTR.HTTP_REQUEST_METHOD_ORIGINAL] = info.method;
  attributes[ATTR.URL_PATH] = pathOnly(info.path);
  attributes[ATTR.URL_SCHEME] = 'http';
  const { host, port } = splitHostPort(info.authority);
  if (host !== '') attributes[ATTR.SERVER_ADDRESS] = host;
  if (port !== undefined) attributes[ATTR.SERVER_PORT] = port;
  attributes[ATTR.NETWORK_PROTOCOL_NAME] = 'http';
  attributes[ATTR.NETWORK_PROTOCOL_VERSION] = info.protocol === 'http1' ? '1.1' : '2';
  if (info.protocol === 'grpc') {
    attributes[ATTR.RPC_SYSTEM_NAME] = 'grpc';
    const rpc = grpcMethod(info.path);
    if (rpc) {
      attributes[ATTR.RPC_METHOD] = `${rpc.service}/${rpc.method}`;
    } else {
      attributes[ATTR.RPC_METHOD] = '_OTHER';
      attributes[ATTR.RPC_METHOD_ORIGINAL] = pathOnly(info.path);
    }
  }
  // The server span's peer is the caller; the client span's peer is the endpoint, known at `end`.
  if (info.reporter === 'destination') peerAttributes(attributes, info.downstream);
  identityAttributes(attributes, info.source, info.destination, info.mtls);
  return attributes;
}

/** Span name: `pkg.Service/Method` for gRPC, else the method (semantic conventions: low cardinality). */
export function requestSpanName(info: RequestInfo): string {
  if (info.protocol === 'grpc') {
    const rpc = grpcMethod(info.path);
    if (rpc) return `${rpc.service}/${rpc.method}`;
  }
  const method = methodAttribute(info.method.toUpperCase());
  return method === '_OTHER' ? 'HTTP' : method;
}

/** The attributes of an opaque TCP connection span. */
export function tcpAttributes(info: TcpInfo): Attributes {
  const attributes: Attributes = { [ATTR.NETWORK_TRANSPORT]: 'tcp' };
  peerAttributes(attributes, info.reporter === 'source' ? info.upstream : info.downstream);
  identityAttributes(attributes, info.source, info.destination, info.mtls);
  return attributes;
}
