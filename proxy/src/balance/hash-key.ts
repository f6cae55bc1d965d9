// The consistent-hash key of a request (ring-hash): one source, chosen per Service by its
// TrafficPolicy — a header, a cookie, a query parameter or the client's address. A request that
// lacks the source has no key and is balanced as if by random choice (ring-hash's own fallback).
import type { HashSource } from '@tsmesh/common';
import type { HttpRequestInfo } from '../http/context.js';
import type { PickContext } from './balancer.js';

export type { HashSource };

/** The key of `request` under `source`, or undefined when the request does not carry it. */
export function hashKeyOf(source: HashSource | undefined, request: HttpRequestInfo, clientAddress: string | undefined): string | undefined {
  switch (source?.type) {
    case undefined:
      return undefined;
    case 'header':
      return request.header(source.name.toLowerCase());
    case 'cookie':
      return cookieValue(request.header('cookie'), source.name);
    case 'queryParameter':
      return queryValue(request.url, source.name);
    case 'sourceIP':
      return clientAddress;
  }
}

/** The pick context of `request` under `source`: undefined when there is no key (no allocation then). */
export function pickContextOf(source: HashSource | undefined, request: HttpRequestInfo, clientAddress: string | undefined): PickContext | undefined {
  if (source === undefined) return undefined;
  const hashKey = hashKeyOf(source, request, clientAddress);
  return hashKey === undefined ? undefined : { hashKey };
}

/** The value of cookie `name` in a Cookie header (RFC 6265 §4.2: `a=1; b=2`), the first one if repeated. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  // Several Cookie fields are joined with ", " by the header accessors: split on both.
  for (const pair of header.split(/[;,]/)) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

/** The first value of query parameter `name` in a request target, decoded; undefined when absent. */
export function queryValue(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const hash = url.indexOf('#', q);
  try {
    return new URLSearchParams(url.slice(q + 1, hash < 0 ? undefined : hash)).get(name) ?? undefined;
  } catch {
    return undefined;
  }
}
