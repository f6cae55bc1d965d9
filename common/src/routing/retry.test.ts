import { matchHttp } from './match.js';
import { backend, compile, httpRoute, parent, request, service, tableOf } from './testing/fixtures.js';
import type { CompiledRoutes } from './types.js';

const messages = (compiled: CompiledRoutes): string[] => compiled.warnings.map((w) => w.message);

/** HTTPRoute demo/r on Service demo/web: `/retry` goes to a rule with `retry`, the rest to a catch-all. */
function withRetry(retry: unknown): CompiledRoutes {
  return compile([
    service('demo', 'web', [80]),
    httpRoute('demo', 'r', {
      parentRefs: [parent('web')],
      rules: [{ matches: [{ path: { value: '/retry' } }], retry, backendRefs: [backend('web')] }, { backendRefs: [backend('web')] }],
    }),
  ]);
}

describe('HTTPRoute rules[].retry (GEP-1731)', () => {
  it('carries codes, attempts and backoff to the route decision the proxy reads', () => {
    const compiled = withRetry({ codes: [503, 500, 503], attempts: 3, backoff: '250ms' });
    expect(messages(compiled)).toEqual([]);
    const decision = matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/retry' }));
    expect(decision?.retry).toEqual({ codes: [500, 503], attempts: 3, backoffMs: 250 });
  });

  it('leaves attempts and backoff undefined when absent (the proxy defaults them), and a rule without retry has none', () => {
    const compiled = withRetry({ codes: [502] });
    const table = tableOf(compiled, 'demo', 'web');
    expect(matchHttp(table, request({ path: '/retry' }))?.retry).toEqual({ codes: [502], attempts: undefined, backoffMs: undefined });
    expect(matchHttp(table, request({ path: '/other' }))?.retry).toBeUndefined();
  });

  it('accepts an empty retry and zero attempts (retries off for this rule)', () => {
    expect(matchHttp(tableOf(withRetry({}), 'demo', 'web'), request({ path: '/retry' }))?.retry).toEqual({ codes: [], attempts: undefined, backoffMs: undefined });
    expect(matchHttp(tableOf(withRetry({ attempts: 0 }), 'demo', 'web'), request({ path: '/retry' }))?.retry?.attempts).toBe(0);
  });

  it.each<[string, unknown, string]>([
    ['a code below 400', { codes: [399] }, 'retry.codes[0] must be an HTTP status code from 400 to 599, got 399'],
    ['a code above 599', { codes: [500, 600] }, 'retry.codes[1] must be an HTTP status code from 400 to 599, got 600'],
    ['a code given as a string', { codes: ['503'] }, 'retry.codes[0] must be an HTTP status code from 400 to 599, got "503"'],
    ['codes that are not a list', { codes: 503 }, 'retry.codes must be a list, got 503'],
    ['negative attempts', { attempts: -1 }, 'retry.attempts must be an integer from 0 to 100, got -1'],
    ['fractional attempts', { attempts: 1.5 }, 'retry.attempts must be an integer from 0 to 100, got 1.5'],
    ['a backoff that is not a duration', { backoff: '1.5s' }, 'retry.backoff "1.5s" is not a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "100ms", "1s")'],
    ['a backoff given as a number', { backoff: 100 }, 'retry.backoff 100 is not a Gateway API duration (1 to 4 of a 1-5 digit number and h, m, s or ms, e.g. "100ms", "1s")'],
    ['a retry that is not a mapping', 'always', 'retry must be a mapping, got "always"'],
  ])('drops the rule with %s, naming the field', (_what, retry, detail) => {
    const compiled = withRetry(retry);
    expect(messages(compiled)).toEqual([`HTTPRoute demo/r: rule 0 ${detail} (rule dropped)`]);
    // The dropped rule no longer matches: the catch-all answers /retry.
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/retry' }))?.ruleIndex).toBe(1);
  });

  it('reports an unknown field of retry and keeps the rest', () => {
    const compiled = withRetry({ codes: [503], perTryTimeout: '1s' });
    expect(messages(compiled)).toEqual(['HTTPRoute demo/r: rule 0 retry.perTryTimeout is not a field tsmesh knows (ignored)']);
    expect(matchHttp(tableOf(compiled, 'demo', 'web'), request({ path: '/retry' }))?.retry?.codes).toEqual([503]);
  });
});
