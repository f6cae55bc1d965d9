// HTTP/2 header-block validation (RFC 9113 §8.2–8.3): one pass over a decoded field list rejects a
// malformed block and collects the pseudo-headers and content-length the relay needs.

export type HeaderBlockKind = 'request' | 'response' | 'trailers';

export interface RequestHead {
  method: string;
  /** Absent only on a plain CONNECT. */
  scheme: string | undefined;
  authority: string | undefined;
  /** Absent only on a plain CONNECT. */
  path: string | undefined;
  /** Extended CONNECT (RFC 8441), e.g. `websocket`. */
  protocol: string | undefined;
  contentLength: number | undefined;
}

export interface ResponseHead {
  status: number;
  contentLength: number | undefined;
  /** A 1xx response: the final response is still to come on the stream. */
  informational: boolean;
}

export type ValidateResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Header names a proxy must not forward (connection-specific, RFC 9113 8.2.2), lowercase.
 * `te` is not here: `te: trailers` is valid HTTP/2 and gRPC needs it to cross the proxy; any other
 * `te` value is rejected by the validators.
 */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade',
]);

const COLON = 0x3a;
const SLASH = 0x2f;
const AT = 0x40;
const COMMA = 0x2c;
/** Content-length digits: 15 always fit a safe integer (2^53 has 16). */
const MAX_LENGTH_DIGITS = 15;

/** Per octet: 0 = not a tchar (RFC 9110 5.6.2), 1 = tchar, 2 = uppercase tchar (barred from HTTP/2 names). */
const TOKEN = new Uint8Array(256);
/** Per octet: 1 = allowed in an RFC 3986 authority ('@' excepted: userinfo is reported on its own). */
const AUTHORITY = new Uint8Array(256);
/** Per octet: 1 = allowed after the first letter of an RFC 3986 scheme. */
const SCHEME = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = AUTHORITY[c] = SCHEME[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = AUTHORITY[c] = SCHEME[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) {
  TOKEN[c] = 2;
  AUTHORITY[c] = SCHEME[c] = 1;
}
for (const ch of "!#$%&'*+-.^_`|~") TOKEN[ch.charCodeAt(0)] = 1;
for (const ch of "-._~%!$&'()*+,;=:[]") AUTHORITY[ch.charCodeAt(0)] = 1;
for (const ch of '+-.') SCHEME[ch.charCodeAt(0)] = 1;

// Fault texts are constants so a valid block allocates nothing for them.
const NAME_UPPERCASE = 'has uppercase';
const NAME_NOT_TOKEN = 'has a character outside tchar';
const VALUE_BAD_OCTET = 'contains NUL, CR, LF or a non-octet character';
const VALUE_EDGE_SPACE = 'starts or ends with SP or HTAB';

/** What one pass collected; undefined = absent. */
interface Collected {
  method: string | undefined;
  scheme: string | undefined;
  authority: string | undefined;
  path: string | undefined;
  protocol: string | undefined;
  status: number | undefined;
  contentLength: number | undefined;
  host: string | undefined;
}

// Validation is synchronous, so one record serves every call.
const scratch: Collected = {
  method: undefined, scheme: undefined, authority: undefined, path: undefined,
  protocol: undefined, status: undefined, contentLength: undefined, host: undefined,
};

function reset(): Collected {
  scratch.method = scratch.scheme = scratch.authority = scratch.path = scratch.protocol = scratch.host = undefined;
  scratch.status = scratch.contentLength = undefined;
  return scratch;
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/** A name for a reason: JSON-quoted so control octets show, cut short so a hostile name cannot flood a log. */
function q(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

function nameFault(name: string, from: number): string | undefined {
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const t = c < 256 ? TOKEN[c] : 0;
    if (t !== 1) return t === 2 ? NAME_UPPERCASE : NAME_NOT_TOKEN;
  }
  return undefined;
}

function valueFault(value: string): string | undefined {
  const n = value.length;
  if (n === 0) return undefined;
  let c = value.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return VALUE_EDGE_SPACE;
  c = value.charCodeAt(n - 1);
  if (c === 0x20 || c === 0x09) return VALUE_EDGE_SPACE;
  for (let i = 0; i < n; i++) {
    c = value.charCodeAt(i);
    if (c === 0x00 || c === 0x0a || c === 0x0d || c > 0xff) return VALUE_BAD_OCTET;
  }
  return undefined;
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TOKEN[c] === 0) return false;
  }
  return true;
}

function isScheme(s: string): boolean {
  const first = s.length === 0 ? 0 : s.charCodeAt(0) | 0x20;
  if (first < 0x61 || first > 0x7a) return false;
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || SCHEME[c] === 0) return false;
  }
  return true;
}

function equalsIgnoreAsciiCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** Why an `:authority` or `host` value is malformed (`label` names it), or undefined. */
function authorityFault(label: string, value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === AT) return `${label} contains userinfo ("@") (RFC 9113 8.3.1)`;
    if (c > 0xff || AUTHORITY[c] === 0) return `${label} has a character outside the authority syntax (RFC 3986 3.2)`;
  }
  return undefined;
}

/**
 * A content-length value as a number: one decimal length, or a comma list of equal ones (RFC 9110
 * 8.6); -1 if an element is not 1–15 digits, -2 if the elements differ.
 */
function parseContentLength(v: string): number {
  const n = v.length;
  let result = -1;
  let i = 0;
  for (;;) {
    while (i < n && (v.charCodeAt(i) === 0x20 || v.charCodeAt(i) === 0x09)) i++;
    const start = i;
    let x = 0;
    while (i < n) {
      const d = v.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      x = x * 10 + d;
      i++;
    }
    if (i === start || i - start > MAX_LENGTH_DIGITS) return -1;
    if (result !== -1 && x !== result) return -2;
    result = x;
    while (i < n && (v.charCodeAt(i) === 0x20 || v.charCodeAt(i) === 0x09)) i++;
    if (i === n) return result;
    if (v.charCodeAt(i) !== COMMA) return -1;
    i++;
  }
}

/** `:status` as a number, or a reason: three digits, 100–599, and never 101 in HTTP/2. */
function parseStatus(v: string): number | string {
  if (v.length === 3) {
    const a = v.charCodeAt(0) - 0x30;
    const b = v.charCodeAt(1) - 0x30;
    const c = v.charCodeAt(2) - 0x30;
    if (a >= 1 && a <= 5 && b >= 0 && b <= 9 && c >= 0 && c <= 9) {
      const status = a * 100 + b * 10 + c;
      return status === 101 ? 'pseudo-header ":status" is 101, which HTTP/2 does not allow (RFC 9113 8.6)' : status;
    }
  }
  return `pseudo-header ":status" ${q(v)} is not three digits 100-599 (RFC 9113 8.3.2)`;
}

function duplicate(name: string): string {
  return `duplicate pseudo-header ${q(name)} (RFC 9113 8.3)`;
}

/** Records one pseudo-header of a request or response; returns why it is malformed, or undefined. */
function pseudo(name: string, value: string, kind: HeaderBlockKind, out: Collected): string | undefined {
  if (name === ':status') {
    if (kind !== 'response') return `response pseudo-header ":status" in a request (RFC 9113 8.3)`;
    if (out.status !== undefined) return duplicate(name);
    const status = parseStatus(value);
    if (typeof status === 'string') return status;
    out.status = status;
    return undefined;
  }
  switch (name) {
    case ':method':
    case ':scheme':
    case ':authority':
    case ':path':
    case ':protocol':
      if (kind !== 'request') return `request pseudo-header ${q(name)} in a response (RFC 9113 8.3)`;
      break;
    default:
      return nameFault(name, 1) === NAME_UPPERCASE
        ? `pseudo-header name ${q(name)} has uppercase (RFC 9113 8.2.1)`
        : `unknown pseudo-header ${q(name)} (RFC 9113 8.3)`;
  }
  switch (name) {
    case ':method':
      if (out.method !== undefined) return duplicate(name);
      out.method = value;
      return isToken(value) ? undefined : 'pseudo-header ":method" is not a token (RFC 9110 9.1)';
    case ':scheme':
      if (out.scheme !== undefined) return duplicate(name);
      out.scheme = value;
      return isScheme(value) ? undefined : 'pseudo-header ":scheme" is not a URI scheme (RFC 3986 3.1)';
    case ':authority':
      if (out.authority !== undefined) return duplicate(name);
      out.authority = value;
      if (value.length === 0) return 'pseudo-header ":authority" is empty (RFC 9113 8.3.1)';
      return authorityFault('pseudo-header ":authority"', value);
    case ':path':
      if (out.path !== undefined) return duplicate(name);
      out.path = value;
      return undefined;
    default:
      if (out.protocol !== undefined) return duplicate(name);
      out.protocol = value;
      return isToken(value) ? undefined : 'pseudo-header ":protocol" is not a token (RFC 8441 4)';
  }
}

/** Checks a regular field with a special rule (name already validated); returns why it is malformed. */
function special(name: string, value: string, kind: HeaderBlockKind, out: Collected): string | undefined {
  switch (name) {
    case 'connection':
    case 'proxy-connection':
    case 'keep-alive':
    case 'transfer-encoding':
    case 'upgrade':
      return `connection-specific header ${q(name)} (RFC 9113 8.2.2)`;
    case 'te':
      return value === 'trailers' ? undefined : 'header "te" has a value other than "trailers" (RFC 9113 8.2.2)';
    case 'content-length': {
      const length = parseContentLength(value);
      if (length === -1) return 'header "content-length" is not a decimal length of 1-15 digits (RFC 9110 8.6)';
      if (length === -2 || (out.contentLength !== undefined && out.contentLength !== length)) {
        return 'header "content-length" has differing values (RFC 9110 8.6)';
      }
      out.contentLength = length;
      return undefined;
    }
    case 'host': {
      if (kind !== 'request') return undefined;
      if (out.host !== undefined) return 'duplicate header "host" (RFC 9112 3.2)';
      out.host = value;
      // Pseudo-headers all precede this field, so :authority is final here.
      if (out.authority !== undefined && !equalsIgnoreAsciiCase(value, out.authority)) {
        return 'header "host" differs from ":authority" (RFC 9113 8.3.1)';
      }
      return authorityFault('header "host"', value);
    }
    default:
      return undefined;
  }
}

/** The single pass shared by all three kinds: every per-field rule; returns why the block is malformed. */
function scan(fields: readonly string[], kind: HeaderBlockKind, out: Collected): string | undefined {
  const n = fields.length;
  if ((n & 1) !== 0) return 'header block has a name without a value';
  let regularSeen = false;
  for (let i = 0; i < n; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    if (name.length === 0) return 'header name is empty (RFC 9113 8.2.1)';
    const isPseudo = name.charCodeAt(0) === COLON;
    if (isPseudo) {
      if (kind === 'trailers') return `pseudo-header ${q(name)} in trailers (RFC 9113 8.3)`;
      if (regularSeen) return `pseudo-header ${q(name)} follows a regular header (RFC 9113 8.3)`;
    } else {
      const nf = nameFault(name, 0);
      if (nf !== undefined) return `header name ${q(name)} ${nf} (RFC 9113 8.2.1)`;
      regularSeen = true;
    }
    const vf = valueFault(value);
    if (vf !== undefined) return `header ${q(name)} value ${vf} (RFC 9113 8.2.1)`;
    const fault = isPseudo ? pseudo(name, value, kind, out) : special(name, value, kind, out);
    if (fault !== undefined) return fault;
  }
  return undefined;
}

function isHttpScheme(scheme: string): boolean {
  return equalsIgnoreAsciiCase(scheme, 'https') || equalsIgnoreAsciiCase(scheme, 'http');
}

function pathFault(path: string, scheme: string, method: string): string | undefined {
  if (path.length === 0) return 'pseudo-header ":path" is empty (RFC 9113 8.3.1)';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    // Whitespace or a control octet would split the request line when relayed to HTTP/1.1.
    if (c <= 0x20 || c === 0x7f) return 'pseudo-header ":path" contains a space or control character (RFC 3986 3.3)';
  }
  if (isHttpScheme(scheme) && path.charCodeAt(0) !== SLASH && !(path === '*' && method === 'OPTIONS')) {
    return 'pseudo-header ":path" of an http(s) request neither starts with "/" nor is "*" for OPTIONS (RFC 9113 8.3.1)';
  }
  return undefined;
}

/**
 * Validates a request header block (RFC 9113 §8.2, §8.3.1, §8.5; RFC 8441 §4; RFC 9110 §8.6).
 * On failure the stream is malformed: answer PROTOCOL_ERROR and forward nothing. Whether extended
 * CONNECT was enabled by SETTINGS is the caller's check.
 */
export function validateRequest(fields: readonly string[]): ValidateResult<RequestHead> {
  const s = reset();
  const fault = scan(fields, 'request', s);
  if (fault !== undefined) return fail(fault);
  const { method, scheme, authority, path, protocol } = s;
  if (method === undefined) return fail('request has no ":method" (RFC 9113 8.3.1)');
  if (method === 'CONNECT' && protocol === undefined) {
    if (scheme !== undefined || path !== undefined) return fail('CONNECT request has ":scheme" or ":path" (RFC 9113 8.5)');
    if (authority === undefined) return fail('CONNECT request has no ":authority" (RFC 9113 8.5)');
  } else {
    if (protocol !== undefined && method !== 'CONNECT') return fail('":protocol" on a request whose method is not CONNECT (RFC 8441 4)');
    if (scheme === undefined) return fail('request has no ":scheme" (RFC 9113 8.3.1)');
    if (path === undefined) return fail('request has no ":path" (RFC 9113 8.3.1)');
    const pf = pathFault(path, scheme, method);
    if (pf !== undefined) return fail(pf);
  }
  return { ok: true, value: { method, scheme, authority, path, protocol, contentLength: s.contentLength } };
}

/**
 * Validates a response header block, 1xx included (RFC 9113 §8.2, §8.3.2; RFC 9110 §8.6). On
 * failure: PROTOCOL_ERROR, forward nothing. Framing rules by status (204, 304, HEAD) are the caller's.
 */
export function validateResponse(fields: readonly string[]): ValidateResult<ResponseHead> {
  const s = reset();
  const fault = scan(fields, 'response', s);
  if (fault !== undefined) return fail(fault);
  const status = s.status;
  if (status === undefined) return fail('response has no ":status" (RFC 9113 8.3.2)');
  return { ok: true, value: { status, contentLength: s.contentLength, informational: status < 200 } };
}

/** Validates a trailer block (RFC 9113 §8.1, §8.2): no pseudo-headers, every field well-formed. */
export function validateTrailers(fields: readonly string[]): ValidateResult<null> {
  const fault = scan(fields, 'trailers', reset());
  return fault === undefined ? { ok: true, value: null } : fail(fault);
}
