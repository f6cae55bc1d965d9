// Classifies upstream socket errors: a connect failure (nothing reached the endpoint, safe to
// try another) versus a reset after the exchange began.

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECTTIMEOUT', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

export function isConnectFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECT_CODES.has(code);
}
