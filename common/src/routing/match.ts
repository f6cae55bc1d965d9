// Per-request matching: picks the RouteSet that applies to the client, then returns the prebuilt
// decision of the first entry (entries are in precedence order) whose conditions all hold.
// Synchronous, and allocation-free for HTTPRoutes.
import { regexMatches } from './regex.js';
import type {
  GrpcMatch,
  GrpcRequestInfo,
  HeaderMatch,
  HttpMatch,
  HttpRequestInfo,
  PathMatch,
  RouteDecision,
  RouteSet,
  RouteTable,
  ValueMatch,
} from './types.js';

/**
 * The routes that apply to a client: its namespace's consumer routes when it has any, else the
 * producer routes. undefined: no route applies, so the request goes to the Service as if it had
 * no routes (Kubernetes' implicit routing).
 */
export function routeSetFor(table: RouteTable | undefined, clientNamespace?: string): RouteSet | undefined {
  if (table === undefined) return undefined;
  return (clientNamespace === undefined ? undefined : table.consumers.get(clientNamespace)) ?? table.producer;
}

/**
 * The decision for an HTTP request to a Service port, or undefined when none matches. When
 * routeSetFor(table, clientNamespace) is defined, undefined means "answer 404"; otherwise no route
 * applies and the request goes to the Service itself. On a port held by GRPCRoutes the path is
 * read as `/service/method`.
 */
export function matchHttp(table: RouteTable | undefined, request: HttpRequestInfo): RouteDecision | undefined {
  const set = routeSetFor(table, request.clientNamespace);
  if (set === undefined) return undefined;
  if (set.kind === 'GRPCRoute') {
    const call = splitGrpcPath(request.path);
    return matchGrpcSet(set, call?.service, call?.method, request.headers);
  }
  for (const entry of set.entries) {
    if (entry.kind === 'HTTPRoute' && httpMatches(entry.match, request)) return entry.decision;
  }
  return undefined;
}

/**
 * The decision for a gRPC call, or undefined when none matches (see matchHttp for what that means).
 * On a port held by HTTPRoutes the call is matched as what it is on the wire: `POST /service/method`.
 */
export function matchGrpc(table: RouteTable | undefined, request: GrpcRequestInfo): RouteDecision | undefined {
  const set = routeSetFor(table, request.clientNamespace);
  if (set === undefined) return undefined;
  if (set.kind === 'GRPCRoute') return matchGrpcSet(set, request.service, request.method, request.headers);
  return matchHttp(table, { method: 'POST', path: `/${request.service}/${request.method}`, headers: request.headers, clientNamespace: request.clientNamespace });
}

/** `/pkg.Service/Method` → its parts; undefined for any other path. */
export function splitGrpcPath(path: string): { service: string; method: string } | undefined {
  const slash = path.indexOf('/', 1);
  if (!path.startsWith('/') || slash <= 1 || slash === path.length - 1 || path.indexOf('/', slash + 1) !== -1) return undefined;
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

function matchGrpcSet(set: RouteSet, service: string | undefined, method: string | undefined, headers: (name: string) => string | undefined): RouteDecision | undefined {
  for (const entry of set.entries) {
    if (entry.kind === 'GRPCRoute' && grpcMatches(entry.match, service, method, headers)) return entry.decision;
  }
  return undefined;
}

function httpMatches(match: HttpMatch, request: HttpRequestInfo): boolean {
  if (match.method !== undefined && match.method !== request.method) return false;
  if (!pathMatches(match.path, request.path)) return false;
  if (!headersMatch(match.headers, request.headers)) return false;
  for (const param of match.queryParams) {
    const value = request.query?.get(param.name);
    if (value === null || value === undefined || !valueMatches(param.match, value)) return false;
  }
  return true;
}

function grpcMatches(match: GrpcMatch, service: string | undefined, method: string | undefined, headers: (name: string) => string | undefined): boolean {
  if (match.service !== undefined && (service === undefined || !valueMatches(match.service, service))) return false;
  if (match.method !== undefined && (method === undefined || !valueMatches(match.method, method))) return false;
  return headersMatch(match.headers, headers);
}

/** Exact is case-sensitive and whole; PathPrefix matches whole path elements (`/foo` matches `/foo/bar`, not `/foobar`). */
export function pathMatches(match: PathMatch, path: string): boolean {
  switch (match.type) {
    case 'Exact':
      return path === match.value;
    case 'PathPrefix': {
      const { prefix } = match;
      return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f /* / */);
    }
    case 'RegularExpression':
      return regexMatches(match.regex, path);
  }
}

function headersMatch(matches: readonly HeaderMatch[], headers: (name: string) => string | undefined): boolean {
  for (const header of matches) {
    const value = headers(header.name);
    if (value === undefined || !valueMatches(header.match, value)) return false;
  }
  return true;
}

function valueMatches(match: ValueMatch, value: string): boolean {
  return match.type === 'Exact' ? value === match.value : regexMatches(match.regex, value);
}
