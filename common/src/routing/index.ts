// GAMMA routing: HTTPRoute/GRPCRoute compiled per Service port, matched per request.
export * from './types.js';
export { compileRoutes, GATEWAY_API_VERSION, type RouteSource } from './compile.js';
export { matchGrpc, matchHttp, pathMatches, routeSetFor, splitGrpcPath } from './match.js';
export { pickBackend } from './weights.js';
export { applyHeaderModifier, type HeaderRecord } from './headers.js';
export { redirectLocation, rewritePath, withQuery, type RedirectSource } from './filters.js';
export { formatGatewayDuration, parseGatewayDuration } from './duration.js';
export { compileRegex, regexMatches, MAX_REGEX_INPUT, MAX_REGEX_LENGTH, MAX_REGEX_PROGRAM_SIZE, type RegexResult } from './regex.js';
export {
  DEFAULT_NORMALIZE_OPTIONS,
  normalizeHost,
  normalizePath,
  requestView,
  type EscapedSlashPolicy,
  type NormalizedPath,
  type NormalizeOptions,
  type RawHttpRequest,
  type RequestView,
} from './normalize.js';
export {
  compileGateways,
  coveredBy,
  GATEWAY_CONTROLLER,
  intersectHostnames,
  referenceGranted,
  type CompiledGateways,
  type CompiledListener,
  type GatewayCompileOptions,
  type GatewayCondition,
  type GatewayParentRef,
  type GatewayPort,
  type GatewayRouteKind,
  type GatewayRouteRef,
  type GatewayRouteStatus,
  type HttpGatewayPort,
  type TlsDestination,
  type StreamGatewayPort,
  type TcpGatewayPort,
  type TlsGatewayPort,
  type ListenerCertificate,
} from './gateway.js';
export { TLS_ROUTE_API_VERSION, type TlsRouteRef } from './gateway-tls.js';
