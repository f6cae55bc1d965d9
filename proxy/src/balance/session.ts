// Session persistence (Gateway API GEP-1619, BackendTrafficPolicy `sessionPersistence`): the first
// answer of a session carries a cookie (or a header) naming the endpoint that served it; later
// requests that carry it go to that endpoint while it is in the Service and not ejected, else they
// are balanced as usual and the answer names the new endpoint. The value is an opaque digest of
// the cluster and the endpoint, resolved only against the cluster's own endpoints: a client can
// steer at most to another endpoint of the same Service, never to an address of its choosing.
import { createHash } from 'node:crypto';
import type { SessionPersistence } from '@tsmesh/common';
import type { HttpRequestInfo } from '../http/context.js';
import type { BalancedEndpoint, PickContext } from './balancer.js';
import { cookieValue } from './hash-key.js';

/** The cookie (or header) name when `sessionName` is not given. */
export const DEFAULT_SESSION_NAME = 'tsmesh-session';

/** The opaque value naming `endpointKey` in cluster `cluster`: 128 bits of SHA-256, base64url. */
export function sessionToken(cluster: string, endpointKey: string): string {
  return createHash('sha256').update(cluster).update('\0').update(endpointKey).digest().subarray(0, 16).toString('base64url');
}

export class SessionAffinity {
  readonly type: 'Cookie' | 'Header';
  /** The cookie name as written, or the header name in lower case. */
  readonly name: string;
  private readonly attributes: string;
  private readonly tokens = new Map<string, string>();
  private lookupFor: readonly BalancedEndpoint[] | undefined;
  private lookup = new Map<string, string>();

  /** `cluster` names the Service port (the cluster key): the same endpoint has another token in another Service. */
  constructor(
    private readonly cluster: string,
    settings: SessionPersistence,
  ) {
    this.type = settings.type;
    const name = settings.sessionName ?? DEFAULT_SESSION_NAME;
    this.name = settings.type === 'Header' ? name.toLowerCase() : name;
    // A Session cookie ends with the browser session; otherwise absoluteTimeout is its lifetime.
    const maxAge = settings.cookieLifetimeType !== 'Session' && settings.absoluteTimeoutMs !== undefined ? Math.floor(settings.absoluteTimeoutMs / 1000) : undefined;
    this.attributes = `${maxAge === undefined ? '' : `; Max-Age=${maxAge}`}; Path=/; HttpOnly`;
  }

  /** The token of one endpoint (memoized). */
  token(endpointKey: string): string {
    let token = this.tokens.get(endpointKey);
    if (token === undefined) {
      token = sessionToken(this.cluster, endpointKey);
      if (this.tokens.size > 4096) this.tokens.clear();
      this.tokens.set(endpointKey, token);
    }
    return token;
  }

  /**
   * `base` (the consistent-hash context, if any) with `prefer` set to the endpoint the request's
   * session names among `endpoints`; `base` itself when it names none of them.
   */
  pickContext(request: HttpRequestInfo, endpoints: readonly BalancedEndpoint[], base: PickContext | undefined): PickContext | undefined {
    const value = this.type === 'Cookie' ? cookieValue(request.header('cookie'), this.name) : request.header(this.name);
    if (value === undefined || value === '') return base;
    if (this.lookupFor !== endpoints) {
      this.lookup = new Map(endpoints.map((e) => [this.token(e.key), e.key]));
      this.lookupFor = endpoints;
    }
    const prefer = this.lookup.get(value.trim());
    if (prefer === undefined) return base;
    return base === undefined ? { prefer } : { ...base, prefer };
  }

  /**
   * The response header that (re-)issues the session: undefined when the request was already
   * bound to `answeredBy` (`preferred`, from pickContext), else `[name, value]`, the name in lower case.
   */
  responseHeader(preferred: string | undefined, answeredBy: string): [string, string] | undefined {
    if (preferred === answeredBy) return undefined;
    const token = this.token(answeredBy);
    if (this.type === 'Header') return [this.name, token];
    return ['set-cookie', `${this.name}=${token}${this.attributes}`];
  }
}
