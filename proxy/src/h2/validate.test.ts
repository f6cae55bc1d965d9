import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import {
  CONNECTION_SPECIFIC,
  validateRequest,
  validateResponse,
  validateTrailers,
  type RequestHead,
  type ValidateResult,
} from './validate.js';

const GET = [':method', 'GET', ':scheme', 'https', ':authority', 'example.com', ':path', '/'];
const OK_200 = [':status', '200'];

function request(...extra: string[]): string[] {
  return [...GET, ...extra];
}

/** Asserts a rejection whose reason mentions every fragment (field name, rule). */
function expectRejected(result: ValidateResult<unknown>, ...fragments: string[]): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  for (const f of fragments) expect(result.reason).toContain(f);
}

function expectHead(result: ValidateResult<RequestHead>): RequestHead {
  if (!result.ok) throw new Error(`rejected: ${result.reason}`);
  return result.value;
}

describe('RFC 9113 8.2.1 field validity', () => {
  test('accepts a well-formed request and returns its pseudo-header fields', () => {
    expect(validateRequest(request('accept', '*/*', 'user-agent', 'curl/8'))).toEqual({
      ok: true,
      value: { method: 'GET', scheme: 'https', authority: 'example.com', path: '/', protocol: undefined, contentLength: undefined },
    });
  });

  test('rejects an uppercase header name', () => {
    expect(validateRequest(request('Foo', 'x'))).toEqual({ ok: false, reason: 'header name "Foo" has uppercase (RFC 9113 8.2.1)' });
  });

  test('rejects an empty header name', () => {
    expectRejected(validateRequest(request('', 'x')), 'empty', '8.2.1');
  });

  test.each([
    ['a space', 'x y'],
    ['a colon after the first character', 'x:y'],
    ['a DEL', 'x\x7f'],
    ['a non-ASCII octet', 'caf\xe9'],
    ['a NUL', 'x\x00'],
    ['a separator', 'x(y)'],
  ])('rejects a header name with %s', (_what, name) => {
    expectRejected(validateRequest(request(name, 'v')), 'outside tchar', '8.2.1');
  });

  test('accepts every lowercase tchar in a header name', () => {
    expect(validateRequest(request("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz", 'v')).ok).toBe(true);
  });

  test.each([
    ['NUL', 'a\x00b'],
    ['LF', 'a\nb'],
    ['CR', 'a\rb'],
    ['a character above 0xff', 'a\u0100b'],
  ])('rejects a field value containing %s', (_what, value) => {
    expectRejected(validateRequest(request('x-test', value)), 'header "x-test" value', '8.2.1');
  });

  test.each([['leading SP', ' a'], ['trailing SP', 'a '], ['leading HTAB', '\ta'], ['trailing HTAB', 'a\t'], ['only SP', ' ']])(
    'rejects a field value with %s',
    (_what, value) => {
      expectRejected(validateRequest(request('x-test', value)), 'x-test', 'SP or HTAB', '8.2.1');
    },
  );

  test('accepts an empty value, inner whitespace and obs-text octets', () => {
    expect(validateRequest(request('x-a', '', 'x-b', 'a \t b', 'x-c', '\x80\xff\x01')).ok).toBe(true);
  });

  test('checks pseudo-header values too', () => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '/a\nb']), '":path" value', '8.2.1');
  });

  test('applies the field rules to responses and trailers', () => {
    expectRejected(validateResponse([...OK_200, 'Server', 'x']), 'uppercase');
    expectRejected(validateTrailers(['grpc-status', '0\r\n']), 'grpc-status');
  });

  test('rejects a block with a name but no value', () => {
    expectRejected(validateRequest(request('x-test')), 'without a value');
  });

  test('quotes control characters and shortens long names in the reason', () => {
    const result = validateRequest(request('x\ny', 'v'));
    expectRejected(result, '"x\\ny"');
    const long = validateRequest(request(`${'a'.repeat(500)}B`, 'v'));
    expectRejected(long, 'uppercase');
    if (!long.ok) expect(long.reason.length).toBeLessThan(120);
  });

  test('allows cookie to appear several times', () => {
    expect(validateRequest(request('cookie', 'a=1', 'cookie', 'b=2', 'cookie', 'c=3')).ok).toBe(true);
  });

  test('does not carry state from one block to the next', () => {
    const first = validateRequest(request('content-length', '5', 'host', 'example.com'));
    expect(expectHead(first).contentLength).toBe(5);
    expect(expectHead(validateRequest(request('host', 'example.com'))).contentLength).toBeUndefined();
    expect(expectHead(validateRequest([':method', 'GET', ':scheme', 'http', ':path', '/b'])).authority).toBeUndefined();
    expect(expectHead(first)).toEqual({ method: 'GET', scheme: 'https', authority: 'example.com', path: '/', protocol: undefined, contentLength: 5 });
  });
});

describe('RFC 9113 8.2.2 connection-specific fields', () => {
  test('lists the connection-specific names in lowercase', () => {
    expect([...CONNECTION_SPECIFIC].sort()).toEqual(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
  });

  test.each([...CONNECTION_SPECIFIC])('rejects %s in requests, responses and trailers', (name) => {
    expectRejected(validateRequest(request(name, 'x')), `"${name}"`, '8.2.2');
    expectRejected(validateResponse([...OK_200, name, 'x']), `"${name}"`, '8.2.2');
    expectRejected(validateTrailers([name, 'x']), `"${name}"`, '8.2.2');
  });

  test('accepts te: trailers', () => {
    expect(validateRequest(request('te', 'trailers')).ok).toBe(true);
  });

  test.each(['gzip', 'trailers, deflate', 'Trailers', ''])('rejects te: %j', (value) => {
    expectRejected(validateRequest(request('te', value)), '"te"', '8.2.2');
  });
});

describe('RFC 9113 8.3 pseudo-header fields', () => {
  test('rejects a pseudo-header after a regular field', () => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', 'accept', '*/*', ':path', '/']), '":path"', 'follows', '8.3');
    expectRejected(validateResponse(['server', 'x', ':status', '200']), '":status"', 'follows');
  });

  test('rejects an unknown pseudo-header', () => {
    expectRejected(validateRequest(request(':foo', 'x')), 'unknown pseudo-header ":foo"', '8.3');
    expectRejected(validateRequest([':', 'x', ...GET]), 'unknown pseudo-header ":"');
  });

  test('rejects an uppercase pseudo-header name', () => {
    expectRejected(validateRequest([':Method', 'GET', ':scheme', 'https', ':path', '/']), '":Method" has uppercase', '8.2.1');
  });

  test.each([':method', ':scheme', ':authority', ':path'])('rejects a duplicate %s', (name) => {
    const value = GET[GET.indexOf(name) + 1] as string;
    expectRejected(validateRequest([name, value, ...GET]), `duplicate pseudo-header "${name}"`, '8.3');
  });

  test('rejects a duplicate :protocol and a duplicate :status', () => {
    const ws = [':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':path', '/', ':authority', 'a'];
    expectRejected(validateRequest([':protocol', 'websocket', ...ws]), 'duplicate pseudo-header ":protocol"');
    expectRejected(validateResponse([':status', '200', ':status', '200']), 'duplicate pseudo-header ":status"');
  });

  test('rejects :status in a request and request pseudo-headers in a response', () => {
    expectRejected(validateRequest([...GET, ':status', '200']), '":status" in a request', '8.3');
    expectRejected(validateResponse([...OK_200, ':path', '/']), '":path" in a response', '8.3');
  });

  test('rejects any pseudo-header in trailers', () => {
    expectRejected(validateTrailers([':status', '200']), 'in trailers', '8.3');
    expectRejected(validateTrailers(['grpc-status', '0', ':path', '/']), 'in trailers');
  });

  test('accepts regular trailers and an empty trailer block', () => {
    expect(validateTrailers(['grpc-status', '0', 'grpc-message', 'ok'])).toEqual({ ok: true, value: null });
    expect(validateTrailers([])).toEqual({ ok: true, value: null });
  });
});

describe('RFC 9113 8.3.1 request pseudo-header fields', () => {
  test.each([':method', ':scheme', ':path'])('requires %s', (name) => {
    const i = GET.indexOf(name);
    const fields = [...GET.slice(0, i), ...GET.slice(i + 2)];
    expectRejected(validateRequest(fields), `no "${name}"`, '8.3.1');
  });

  test('accepts a request without :authority', () => {
    expect(expectHead(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'h'])).authority).toBeUndefined();
  });

  test('rejects an empty :path', () => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '']), '":path" is empty', '8.3.1');
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'foo', ':path', '']), '":path" is empty');
  });

  test.each(['http', 'https', 'HTTPS'])('rejects a %s :path that does not start with "/"', (scheme) => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', scheme, ':path', 'index.html']), '":path"', '8.3.1');
  });

  test('accepts "*" as the :path of OPTIONS only', () => {
    expect(validateRequest([':method', 'OPTIONS', ':scheme', 'https', ':path', '*']).ok).toBe(true);
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '*']), '"*" for OPTIONS');
  });

  test('accepts a :path that starts with "//" and a non-http scheme without "/"', () => {
    expect(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '//a/b?c=d']).ok).toBe(true);
    expect(validateRequest([':method', 'GET', ':scheme', 'urn', ':path', 'isbn:123']).ok).toBe(true);
  });

  test.each([['a space', '/a b'], ['an HTAB', '/a\tb'], ['a control octet', '/a\x01'], ['a DEL', '/a\x7f']])(
    'rejects a :path containing %s',
    (_what, path) => {
      expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':path', path]), '":path"');
    },
  );

  test.each(['GE T', 'GET(', '', 'G\xe9T'])('rejects the :method %j, which is not a token', (method) => {
    expectRejected(validateRequest([':method', method, ':scheme', 'https', ':path', '/']), '":method"');
  });

  test('accepts an extension method', () => {
    expect(expectHead(validateRequest([':method', 'PROPFIND', ':scheme', 'https', ':path', '/'])).method).toBe('PROPFIND');
  });

  test.each(['', '1http', 'ht tp', 'h_t'])('rejects the :scheme %j', (scheme) => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', scheme, ':path', '/']), '":scheme"');
  });

  test('rejects an :authority with userinfo', () => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':authority', 'user:pw@example.com', ':path', '/']), '":authority"', 'userinfo', '8.3.1');
  });

  test('rejects an empty :authority', () => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':authority', '', ':path', '/']), '":authority" is empty', '8.3.1');
  });

  test.each(['a/b', 'a?b', 'a#b', 'a b', 'a\\b', 'caf\xe9'])('rejects the :authority %j outside the authority syntax', (authority) => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':authority', authority, ':path', '/']), '":authority"', 'RFC 3986');
  });

  test('accepts an IPv6 literal :authority with a port', () => {
    expect(validateRequest([':method', 'GET', ':scheme', 'https', ':authority', '[::1]:8443', ':path', '/']).ok).toBe(true);
  });

  test('rejects a host header that differs from :authority', () => {
    expectRejected(validateRequest(request('host', 'internal.admin')), '"host" differs from ":authority"', '8.3.1');
  });

  test('accepts a host header equal to :authority up to ASCII case', () => {
    expect(validateRequest(request('host', 'EXAMPLE.com')).ok).toBe(true);
  });

  test('rejects a second host header', () => {
    expectRejected(validateRequest(request('host', 'example.com', 'host', 'example.com')), 'duplicate header "host"');
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'a', 'host', 'b']), 'duplicate header "host"');
  });

  test('rejects a host header with userinfo when there is no :authority', () => {
    expectRejected(validateRequest([':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'u@h']), '"host"', 'userinfo');
  });
});

describe('RFC 9113 8.3.2 response pseudo-header fields', () => {
  test('accepts a final response', () => {
    expect(validateResponse([...OK_200, 'content-type', 'text/plain'])).toEqual({
      ok: true,
      value: { status: 200, contentLength: undefined, informational: false },
    });
  });

  test.each([100, 103, 199])('marks %d as informational', (status) => {
    expect(validateResponse([':status', String(status)])).toEqual({ ok: true, value: { status, contentLength: undefined, informational: true } });
  });

  test('accepts the bounds 100 and 599', () => {
    expect(validateResponse([':status', '599']).ok).toBe(true);
    expect(validateResponse([':status', '100']).ok).toBe(true);
  });

  test('requires :status', () => {
    expectRejected(validateResponse(['content-type', 'text/plain']), 'no ":status"', '8.3.2');
  });

  test.each(['20', '2000', '099', '600', '+20', '2x0', '', '20\xb2'])('rejects the :status %j', (status) => {
    expectRejected(validateResponse([':status', status]), '":status"', '8.3.2');
  });

  test('rejects 101, which HTTP/2 removed', () => {
    expectRejected(validateResponse([':status', '101']), '101', '8.6');
  });
});

describe('RFC 9113 8.5 CONNECT', () => {
  test('accepts CONNECT with only :method and :authority', () => {
    expect(validateRequest([':method', 'CONNECT', ':authority', 'db.internal:5432'])).toEqual({
      ok: true,
      value: { method: 'CONNECT', scheme: undefined, authority: 'db.internal:5432', path: undefined, protocol: undefined, contentLength: undefined },
    });
  });

  test('rejects CONNECT with :scheme or :path', () => {
    expectRejected(validateRequest([':method', 'CONNECT', ':scheme', 'https', ':authority', 'a:1']), 'CONNECT', '8.5');
    expectRejected(validateRequest([':method', 'CONNECT', ':path', '/', ':authority', 'a:1']), 'CONNECT', '8.5');
  });

  test('rejects CONNECT without :authority', () => {
    expectRejected(validateRequest([':method', 'CONNECT']), 'no ":authority"', '8.5');
  });

  test('accepts extended CONNECT with :protocol, :scheme and :path (RFC 8441)', () => {
    const head = expectHead(validateRequest([':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':path', '/chat', ':authority', 'a']));
    expect(head).toEqual({ method: 'CONNECT', scheme: 'https', authority: 'a', path: '/chat', protocol: 'websocket', contentLength: undefined });
  });

  test('rejects extended CONNECT without :scheme or :path', () => {
    expectRejected(validateRequest([':method', 'CONNECT', ':protocol', 'websocket', ':path', '/', ':authority', 'a']), 'no ":scheme"');
    expectRejected(validateRequest([':method', 'CONNECT', ':protocol', 'websocket', ':scheme', 'https', ':authority', 'a']), 'no ":path"');
  });

  test('rejects :protocol on a method other than CONNECT', () => {
    expectRejected(validateRequest([...GET, ':protocol', 'websocket']), '":protocol"', 'RFC 8441');
  });

  test('rejects a :protocol that is not a token', () => {
    expectRejected(validateRequest([':method', 'CONNECT', ':protocol', 'web socket', ':scheme', 'https', ':path', '/']), '":protocol"');
  });
});

describe('RFC 9110 8.6 content-length', () => {
  test('parses content-length in requests and responses', () => {
    expect(expectHead(validateRequest(request('content-length', '1234'))).contentLength).toBe(1234);
    expect(validateResponse([...OK_200, 'content-length', '0'])).toEqual({ ok: true, value: { status: 200, contentLength: 0, informational: false } });
  });

  test('accepts repeated fields and comma lists whose values are equal', () => {
    expect(expectHead(validateRequest(request('content-length', '42', 'content-length', '42'))).contentLength).toBe(42);
    expect(expectHead(validateRequest(request('content-length', '42, 42,42'))).contentLength).toBe(42);
    expect(expectHead(validateRequest(request('content-length', '007', 'content-length', '7'))).contentLength).toBe(7);
  });

  test('rejects repeated fields or a comma list with differing values', () => {
    expectRejected(validateRequest(request('content-length', '42', 'content-length', '43')), '"content-length"', 'differing', '8.6');
    expectRejected(validateRequest(request('content-length', '42, 43')), 'differing');
    expectRejected(validateResponse([...OK_200, 'content-length', '1', 'content-length', '1,2']), 'differing');
  });

  test.each(['', '-1', '+1', '1.0', '0x10', '1 2', '42,', ',42', '42,,42', '1e3', 'abc'])('rejects the content-length %j', (value) => {
    expectRejected(validateRequest(request('content-length', value)), '"content-length"', '8.6');
  });

  test('accepts 15 digits and rejects 16', () => {
    expect(expectHead(validateRequest(request('content-length', '999999999999999'))).contentLength).toBe(999_999_999_999_999);
    expectRejected(validateRequest(request('content-length', '1000000000000000')), '1-15 digits');
  });
});

// Generators of valid blocks, for the properties below.
const LOWER_TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
const SPECIAL_NAMES = new Set([...CONNECTION_SPECIFIC, 'te', 'host', 'content-length']);
const tchar = fc.constantFrom(...LOWER_TCHARS);
const name = fc.string({ unit: tchar, minLength: 1, maxLength: 16 }).filter((n) => !SPECIAL_NAMES.has(n));
const valueOctet = fc.integer({ min: 1, max: 0xff }).filter((c) => c !== 0x0a && c !== 0x0d).map((c) => String.fromCharCode(c));
const value = fc.string({ unit: valueOctet, maxLength: 24 }).map((v) => v.replace(/^[ \t]+|[ \t]+$/g, ''));
const token = fc.string({ unit: fc.constantFrom(...LOWER_TCHARS, 'A', 'Z', 'M'), minLength: 1, maxLength: 10 });
const alpha = fc.constantFrom(...'abcxyzABCXYZ');
const scheme = fc.oneof(
  fc.constantFrom('http', 'https', 'HTTP'),
  fc.tuple(alpha, fc.string({ unit: fc.constantFrom(...'az09+-.Q'), maxLength: 6 })).map(([a, b]) => a + b),
);
const authority = fc.string({ unit: fc.constantFrom(...'aZ09-._~%!$&\'()*+,;=:[]'), minLength: 1, maxLength: 20 });
const pathOctet = fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
const path = fc.string({ unit: pathOctet, maxLength: 20 }).map((p) => `/${p}`);
const contentLength = fc.option(fc.integer({ min: 0, max: 999_999_999_999_999 }), { nil: undefined });

interface Block<T> {
  readonly fields: string[];
  readonly expected: T;
}

/** Regular fields: random ones, repeated cookies, te: trailers, and content-length as one or several fields. */
function regularFields(length: number | undefined): fc.Arbitrary<string[]> {
  return fc
    .tuple(
      fc.array(fc.tuple(name, value), { maxLength: 6 }),
      fc.array(value, { maxLength: 3 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 3 }),
    )
    .map(([pairs, cookies, te, repeats]) => {
      const out = pairs.flat();
      for (const c of cookies) out.push('cookie', c);
      if (te) out.push('te', 'trailers');
      if (length !== undefined) for (let i = 0; i < repeats; i++) out.push('content-length', String(length));
      return out;
    });
}

/** A header block: the pseudo-header pairs in any order, then the regular fields. */
function block<T>(pseudo: [string, string][], length: number | undefined, expected: T): fc.Arbitrary<Block<T>> {
  return fc
    .tuple(fc.shuffledSubarray(pseudo, { minLength: pseudo.length, maxLength: pseudo.length }), regularFields(length))
    .map(([shuffled, regular]) => ({ fields: [...shuffled.flat(), ...regular], expected }));
}

const validRequest: fc.Arbitrary<Block<RequestHead>> = fc.oneof(
  fc
    .record({ method: token.filter((m) => m !== 'CONNECT'), scheme, authority: fc.option(authority, { nil: undefined }), path, contentLength })
    .chain((r) => {
      const pseudo: [string, string][] = [[':method', r.method], [':scheme', r.scheme], [':path', r.path]];
      if (r.authority !== undefined) pseudo.push([':authority', r.authority]);
      return block(pseudo, r.contentLength, { ...r, protocol: undefined });
    }),
  fc.record({ authority, contentLength }).chain((r) =>
    block([[':method', 'CONNECT'], [':authority', r.authority]], r.contentLength, {
      method: 'CONNECT', scheme: undefined, authority: r.authority, path: undefined, protocol: undefined, contentLength: r.contentLength,
    }),
  ),
  fc.record({ protocol: token, scheme, authority, path, contentLength }).chain((r) =>
    block([[':method', 'CONNECT'], [':protocol', r.protocol], [':scheme', r.scheme], [':path', r.path], [':authority', r.authority]], r.contentLength, {
      ...r, method: 'CONNECT',
    }),
  ),
);

const validResponse = fc
  .record({ status: fc.integer({ min: 100, max: 599 }).filter((s) => s !== 101), contentLength })
  .chain((r) => block([[':status', String(r.status)]], r.contentLength, { ...r, informational: r.status < 200 }));

const validTrailers = regularFields(undefined).map((fields) => ({ fields, expected: null }));

describe('RFC 9113 8.2-8.3 properties', () => {
  test('accepts every generated valid block and returns exactly its pseudo-header fields', () => {
    fc.assert(fc.property(validRequest, ({ fields, expected }) => {
      expect(validateRequest(fields)).toEqual({ ok: true, value: expected });
    }), { numRuns: 500 });
    fc.assert(fc.property(validResponse, ({ fields, expected }) => {
      expect(validateResponse(fields)).toEqual({ ok: true, value: expected });
    }), { numRuns: 300 });
    fc.assert(fc.property(validTrailers, ({ fields }) => {
      expect(validateTrailers(fields)).toEqual({ ok: true, value: null });
    }), { numRuns: 200 });
  });

  test('rejects a block once NUL, LF or CR is inserted into a value, or an uppercase letter into a name', () => {
    const kinds = [
      { validate: validateRequest, blocks: validRequest as fc.Arbitrary<Block<unknown>> },
      { validate: validateResponse, blocks: validResponse as fc.Arbitrary<Block<unknown>> },
      { validate: validateTrailers, blocks: validTrailers as fc.Arbitrary<Block<unknown>> },
    ];
    for (const { validate, blocks } of kinds) {
      const mutated = blocks
        .filter((b) => b.fields.length > 0)
        .chain((b) => fc.tuple(
          fc.constant(b.fields),
          fc.nat({ max: b.fields.length - 1 }),
          fc.nat(),
          fc.constantFrom('\x00', '\n', '\r'),
          fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
        ));
      fc.assert(fc.property(mutated, ([fields, index, at, bad, upper]) => {
        const copy = [...fields];
        const target = copy[index] as string;
        const pos = at % (target.length + 1);
        copy[index] = target.slice(0, pos) + (index % 2 === 0 ? upper : bad) + target.slice(pos);
        expect(validate(copy).ok).toBe(false);
      }), { numRuns: 300 });
    }
  });

  test('never throws on arbitrary string lists', () => {
    const field = fc.oneof(
      fc.constantFrom(':method', ':scheme', ':authority', ':path', ':protocol', ':status', 'host', 'content-length', 'te', 'CONNECT', '200', '/', ''),
      fc.string({ unit: 'binary-ascii', maxLength: 12 }),
      fc.string({ unit: 'binary', maxLength: 12 }),
    );
    fc.assert(fc.property(fc.array(field, { maxLength: 16 }), (fields) => {
      for (const validate of [validateRequest, validateResponse, validateTrailers]) {
        const result = validate(fields);
        if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
      }
    }), { numRuns: 1000 });
  });
});
