// Header hygiene shared by the HTTP/1 and HTTP/2 forwarders: hop-by-hop headers never cross
// the proxy (RFC 9110 7.6.1), nor do the ones the mesh owns and a client could forge.

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade',
  'proxy-authenticate', 'proxy-authorization', 'http2-settings',
]);

/** Headers only the mesh may set; anything arriving with these names is dropped. */
export const MESH_OWNED = new Set(['x-forwarded-client-cert']);

/** Names listed in a Connection header are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  const list = Array.isArray(value) ? value.join(',') : (value ?? '');
  for (const token of list.split(',')) {
    const t = token.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

/**
 * Filters Node's rawHeaders list ([name, value, name, value ...]) for forwarding, keeping order,
 * case and repeats. `keepTe` keeps `te: trailers` (required by gRPC over HTTP/2).
 */
export function forwardableRawHeaders(raw: readonly string[], keepTrailersTe = false): string[] {
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === 'connection') connection.push(raw[i + 1] ?? '');
  }
  const extra = connectionTokens(connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    const value = raw[i + 1] ?? '';
    if (lower === 'te' && keepTrailersTe && value.trim().toLowerCase() === 'trailers') {
      out.push(name, value);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || extra.has(lower) || MESH_OWNED.has(lower)) continue;
    out.push(name, value);
  }
  return out;
}

/** For HTTP/2 header objects: drops pseudo-headers and hop-by-hop names, keeps `te: trailers`. */
export function forwardableH2Headers(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    if (name === 'te') {
      if (String(value).trim().toLowerCase() === 'trailers') out[name] = value;
      continue;
    }
    if (HOP_BY_HOP.has(name) || MESH_OWNED.has(name)) continue;
    out[name] = value;
  }
  return out;
}
