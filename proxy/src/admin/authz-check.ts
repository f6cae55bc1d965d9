// GET /authz/check on the admin port: which AuthorizationPolicy decides a request (or a TCP
// connection) described in the query, and why, policy by policy. For operators; nothing is sent.
import { normalizeHost, normalizePath } from '@tsmesh/common';
import { principalOf, type AuthzExplanation, type AuthzRequest, type WorkloadAuthorization } from '../policy/authorization.js';

export interface AuthzCheckAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** The query parameters /authz/check reads. */
export const AUTHZ_CHECK_USAGE =
  'GET /authz/check?port=<workload port>[&principal=<cluster.local/ns/N/sa/S, spiffe:// optional; absent: plaintext>][&protocol=http|tcp][&method=GET][&path=/p][&host=h][&header.<name>=<value>...]';

/**
 * Builds the request from the query and explains the workload's verdict on it. A bad query is a
 * 400 naming the parameter; the explanation says the decision, the deciding policy and, for every
 * policy selecting the workload, the first rule that matched.
 */
export function authzCheck(authz: WorkloadAuthorization, query: URLSearchParams): AuthzCheckAnswer {
  const portText = query.get('port');
  const port = portText !== null && /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return bad(`port: must be a port number from 1 to 65535, got ${JSON.stringify(portText)}`);
  const protocol = query.get('protocol') ?? 'http';
  if (protocol !== 'http' && protocol !== 'tcp') return bad(`protocol: must be http or tcp, got ${JSON.stringify(protocol)}`);
  const principalText = query.get('principal');
  const identity = principalText === null || principalText === '' ? undefined : principalText.startsWith('spiffe://') ? principalText : `spiffe://${principalText}`;
  const caller = principalOf(identity);
  let request: AuthzRequest = { ...caller, port, http: undefined };
  if (protocol === 'http') {
    const path = normalizePath(query.get('path') ?? '/');
    if (!path.ok) return bad(`path: ${path.reason} (the sidecar answers such a request 400)`);
    const headers = new Map<string, string>();
    for (const [key, value] of query) if (key.startsWith('header.')) headers.set(key.slice('header.'.length).toLowerCase(), value);
    const host = query.get('host');
    request = { ...request, http: { method: query.get('method') ?? 'GET', path: path.path, host: host === null ? undefined : normalizeHost(host), header: (n) => headers.get(n) } };
  }
  const explanation: AuthzExplanation = authz.explain(request);
  return {
    status: 200,
    body: {
      request: { principal: caller.principal ?? null, namespace: caller.namespace ?? null, port, protocol, method: request.http?.method, path: request.http?.path, host: request.http?.host },
      allowed: explanation.decision.allowed,
      decidedBy: explanation.decision.policy ?? null,
      reason: describeReason(explanation),
      audited: explanation.audited,
      policies: explanation.policies.map((p) => ({ ...p, matchedRule: p.matchedRule ?? null })),
      problems: authz.problems,
    },
  };
}

function describeReason(explanation: AuthzExplanation): string {
  const { decision } = explanation;
  switch (decision.reason) {
    case 'no_policy':
      return 'no ALLOW policy selects this workload and no DENY policy matched: allowed';
    case 'deny_matched':
      return `DENY policy ${decision.policy ?? ''} matched: denied (a matching DENY wins over any ALLOW)`;
    case 'allow_matched':
      return `ALLOW policy ${decision.policy ?? ''} matched: allowed`;
    default:
      return 'ALLOW policies select this workload and none matched: denied';
  }
}

function bad(reason: string): AuthzCheckAnswer {
  return { status: 400, body: { error: reason, usage: AUTHZ_CHECK_USAGE } };
}
