// What the RequestRedirect and URLRewrite filters do to one request, as pure functions the proxy
// calls per request: the path a backend receives (or a redirect names), and a redirect's Location.
// Inputs are the normalised view routing matched (requestView); outputs stay normalised.
import { normalizeHost, normalizePath } from './normalize.js';
import type { PathModifier, RequestRedirect } from './types.js';

/**
 * The path `modifier` makes of the normalised `path` (no query). ReplacePrefixMatch replaces the
 * matched PathPrefix element by element (`/foo` replaced by `/` turns `/foo/bar` into `/bar`,
 * `/foo` into `/`). The result is a normalised absolute path, or undefined when the outcome
 * could not be one (never for a normalised input and a parsed modifier).
 */
export function rewritePath(path: string, modifier: PathModifier, matchedPrefix: string | undefined): string | undefined {
  let out: string;
  if (modifier.type === 'ReplaceFullPath') out = modifier.value;
  else {
    const prefix = matchedPrefix ?? '';
    const matched = path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f);
    // The value is held without a trailing `/`, and the rest is '' or starts with `/`: no `//` at the seam.
    out = modifier.value + (matched ? path.slice(prefix.length) : path);
  }
  if (out === '') return '/';
  // A guard, not a transformation: parsed values and normalised paths are already normal.
  const normal = normalizePath(out, { escapedSlashes: 'keep' });
  return normal.ok ? normal.path : undefined;
}

/** `path` and `query` as a request target (`/a?x=1`); the query is kept as sent. */
export function withQuery(path: string, query: string | undefined): string {
  return query === undefined ? path : `${path}?${query}`;
}

/** What a redirect's Location is built from. */
export interface RedirectSource {
  /** The scheme the client used to reach the Service (the mesh's app traffic is `http`). */
  readonly scheme: 'http' | 'https';
  /** `:authority` or Host as sent ('' when neither was). */
  readonly authority: string;
  /** The host to name when the request named none. */
  readonly fallbackHost: string;
  /** The normalised path routing matched. */
  readonly path: string;
  readonly query: string | undefined;
  /** The Service port the client addressed (GAMMA's stand-in for a Gateway listener's port). */
  readonly servicePort: number;
  /** The PathPrefix the rule matched, for ReplacePrefixMatch. */
  readonly matchedPrefix: string | undefined;
}

const DEFAULT_PORTS = { http: 80, https: 443 } as const;
/** A host a Location may name as sent: a DNS-like name or a bracketed IPv6 address (lower-case, normalizeHost made it so). */
const PLAIN_HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)$/;

/**
 * The Location of `redirect` for a request, per the Gateway API: each part not set is the
 * request's own; the port, when not set, is the scheme's well-known port if the filter sets a
 * scheme, else the Service port; a port that is its scheme's default (80 for http, 443 for https)
 * is left out. undefined when the path cannot be rewritten (see rewritePath).
 */
export function redirectLocation(redirect: RequestRedirect, source: RedirectSource): string | undefined {
  const scheme = redirect.scheme ?? source.scheme;
  const requestHost = source.authority === '' ? '' : normalizeHost(source.authority);
  // A Host that is not a plain host name (`a.b/c`, `x@y`, spaces) would make the Location point elsewhere.
  const host = redirect.hostname ?? (PLAIN_HOST.test(requestHost) ? requestHost : source.fallbackHost);
  const port = redirect.port ?? (redirect.scheme !== undefined ? DEFAULT_PORTS[redirect.scheme] : source.servicePort);
  const path = redirect.path === undefined ? source.path : rewritePath(source.path, redirect.path, source.matchedPrefix);
  if (path === undefined) return undefined;
  const portPart = port === DEFAULT_PORTS[scheme] ? '' : `:${port}`;
  return `${scheme}://${host}${portPart}${withQuery(path, source.query)}`;
}
