// The one request view routing reads and the endpoint receives: the path normalised as Istio's
// default (`BASE`: RFC 3986 §5.2.4 dot segments, percent-decoded unreserved characters) with slashes
// merged, encoded slashes refused, and the host taken from `:authority` (or Host) without case,
// port or trailing dot. Whoever matches on this view must forward `target`, so the endpoint sees
// the path the route saw.
import type { HttpRequestInfo } from './types.js';

/**
 * What to do with `%2F` (encoded `/`), `%5C` (encoded `\`) and a raw `\` in a path.
 * - `reject`: refuse the request (400). The default: an endpoint that decodes them (nginx, most
 *   frameworks) would find new segments, and new `..`, behind the route's back.
 * - `keep`: forward them as they are (hex digits upper-cased), as one segment character.
 */
export type EscapedSlashPolicy = 'reject' | 'keep';

export interface NormalizeOptions {
  readonly escapedSlashes: EscapedSlashPolicy;
}

export const DEFAULT_NORMALIZE_OPTIONS: NormalizeOptions = Object.freeze({ escapedSlashes: 'reject' });

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;
const HEX_DIGITS = '0123456789ABCDEF';

/** Per octet: 1 = unreserved (RFC 3986 §2.3), decoded wherever it is percent-encoded. */
const UNRESERVED = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) UNRESERVED[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) UNRESERVED[c] = UNRESERVED[c + 0x20] = 1;
for (const ch of '-._~') UNRESERVED[ch.charCodeAt(0)] = 1;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * Normalises an origin-form path (no query): percent-encodings checked, unreserved characters
 * decoded and the other escapes upper-cased (RFC 3986 §6.2.2.1-2), escaped slashes handled by
 * `options.escapedSlashes`, runs of `/` merged into one, then `.` and `..` segments removed (RFC
 * 3986 §5.2.4; `..` above the root stays at the root). A `.` or `..` segment with `;` parameters
 * is refused. Idempotent. A path that needs nothing is returned as the same string, without
 * allocating.
 */
export function normalizePath(path: string, options: NormalizeOptions = DEFAULT_NORMALIZE_OPTIONS): NormalizedPath {
  if (path.charCodeAt(0) !== SLASH) return { ok: false, reason: 'the path does not start with "/"' };
  if (isNormal(path)) return { ok: true, path };
  const reject = options.escapedSlashes === 'reject';
  let decoded = '';
  let from = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === BACKSLASH && reject) return { ok: false, reason: 'the path contains "\\"' };
    if (c !== PERCENT) continue;
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return { ok: false, reason: 'the path has a "%" not followed by two hex digits' };
    const octet = hi * 16 + lo;
    if (reject && (octet === SLASH || octet === BACKSLASH)) return { ok: false, reason: `the path contains an encoded "${octet === SLASH ? '/' : '\\'}" (%${HEX_DIGITS[hi]}${HEX_DIGITS[lo]})` };
    decoded += path.slice(from, i) + (UNRESERVED[octet] === 1 ? String.fromCharCode(octet) : `%${HEX_DIGITS[hi]}${HEX_DIGITS[lo]}`);
    from = i + 3;
    i += 2;
  }
  decoded += path.slice(from);
  const normalised = removeDotSegments(decoded);
  if (normalised === undefined) return { ok: false, reason: 'the path has a "." or ".." segment with ";" parameters' };
  return { ok: true, path: normalised };
}

/**
 * RFC 3986 §5.2.4 on an absolute path whose empty segments are dropped first (merged slashes):
 * `.` goes, `..` takes the segment before it (none above the root), and a path that ended in a
 * slash or a dot segment keeps its trailing `/`. undefined for a `.;…` or `..;…` segment: servers
 * that strip `;` parameters before resolving dots (Tomcat, Jetty) read it as a dot segment.
 */
function removeDotSegments(path: string): string | undefined {
  const segments = path.split('/');
  const out: string[] = [];
  let trailing = false;
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.startsWith('.;') || segment.startsWith('..;')) return undefined;
    trailing = segment === '' || segment === '.' || segment === '..';
    if (segment === '..') out.pop();
    else if (!trailing) out.push(segment);
  }
  return out.length === 0 ? '/' : `/${out.join('/')}${trailing ? '/' : ''}`;
}

/** True when the path has no `%`, no `\`, no `//` and no segment `.`, `..`, `.;…` or `..;…`: normalising changes nothing. */
function isNormal(path: string): boolean {
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) return false;
    if (c !== SLASH) continue;
    const next = path.charCodeAt(i + 1);
    if (next === SLASH) return false;
    if (next !== DOT) continue;
    const after = i + 2 < n ? path.charCodeAt(i + 2) : SLASH;
    if (after === SLASH || after === SEMICOLON) return false;
    if (after !== DOT) continue;
    const third = i + 3 < n ? path.charCodeAt(i + 3) : SLASH;
    if (third === SLASH || third === SEMICOLON) return false;
  }
  return true;
}

/**
 * The host a route's Host matches compare with: lower-case, without the port and without a
 * trailing dot (`VIP.RT.:80` → `vip.rt`; `[::1]:80` → `[::1]`).
 */
export function normalizeHost(authority: string): string {
  let host = authority;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const end = host.indexOf(']');
    if (end > 0) host = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0 && colon === host.lastIndexOf(':') && /^[0-9]*$/.test(host.slice(colon + 1))) host = host.slice(0, colon);
  }
  if (host.length > 1 && host.charCodeAt(host.length - 1) === DOT) host = host.slice(0, -1);
  return host.toLowerCase();
}

/** A request as the proxy received it, before normalisation. */
export interface RawHttpRequest {
  readonly method: string;
  /** The request target as sent: origin form (`/a/b?x=1`), or `*`. */
  readonly target: string;
  /** `:authority`, or the Host header for HTTP/1; '' when neither was sent. */
  readonly authority: string;
  /** A header's value by lower-case name (repeats joined). */
  header(name: string): string | undefined;
}

/** The normalised view: what routes match (`request`) and the target to forward (`target`). */
export type RequestView =
  | { readonly ok: true; readonly request: HttpRequestInfo; readonly target: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Builds the one view of a request that routing matches and the endpoint receives. The path is
 * normalised (normalizePath) and a fragment dropped; the query string is kept as sent. The `host`
 * header reads as normalizeHost(authority); a Host header that names another host than
 * `:authority` is refused (RFC 9113 §8.3.1). `*` (OPTIONS) passes unchanged; an absolute-form
 * target (`http://h/p`) is refused: its authority would have to replace Host.
 */
export function requestView(raw: RawHttpRequest, clientNamespace?: string, options: NormalizeOptions = DEFAULT_NORMALIZE_OPTIONS): RequestView {
  let target = raw.target;
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const rawPath = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q + 1) : undefined;
  let path = rawPath;
  if (rawPath !== '*') {
    const normal = normalizePath(rawPath, options);
    if (!normal.ok) return normal;
    path = normal.path;
    if (path !== rawPath) target = query === undefined ? path : `${path}?${query}`;
  }
  const host = raw.authority === '' ? undefined : normalizeHost(raw.authority);
  const hostHeader = raw.header('host');
  if (hostHeader !== undefined && host !== undefined && normalizeHost(hostHeader) !== host) {
    return { ok: false, reason: 'the Host header names another host than :authority' };
  }
  const request: HttpRequestInfo = {
    method: raw.method,
    path,
    query: query === undefined ? undefined : new URLSearchParams(query),
    headers: (name) => (name === 'host' ? host : raw.header(name)),
    clientNamespace,
  };
  return { ok: true, request, target };
}
