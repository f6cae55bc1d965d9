// Label and field selectors as the API server reads them from `labelSelector` and `fieldSelector`,
// for the fake API server. Labels: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`;
// fields: `path=v`, `path==v`, `path!=v` over dotted paths such as `status.phase`.

/** Whether an object matches; throws an Error naming the bad term when the selector does not parse. */
export type Selector = (object: Record<string, unknown>) => boolean;

const MATCH_ALL: Selector = () => true;

/** Splits on commas outside parentheses (`a in (x,y),b` is two terms). */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else {
      current += char;
    }
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

function labelsOf(object: Record<string, unknown>): Record<string, unknown> {
  const metadata = object['metadata'];
  const labels = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>)['labels'] : undefined;
  return typeof labels === 'object' && labels !== null ? (labels as Record<string, unknown>) : {};
}

export function parseLabelSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return MATCH_ALL;
  const checks = terms(text).map((term): Selector => {
    const set = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (set !== null) {
      const [, key = '', operator, list = ''] = set;
      const values = new Set(list.split(',').map((v) => v.trim()));
      return (object) => {
        const value = labelsOf(object)[key];
        const inSet = typeof value === 'string' && values.has(value);
        return operator === 'in' ? inSet : !inSet;
      };
    }
    const comparison = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(term);
    if (comparison !== null) {
      const [, key = '', operator, expected] = comparison;
      return (object) => (labelsOf(object)[key] === expected) === (operator !== '!=');
    }
    const exists = /^(!?)([^\s!=(),]+)$/.exec(term);
    if (exists !== null) {
      const [, negated, key = ''] = exists;
      return (object) => Object.hasOwn(labelsOf(object), key) !== (negated === '!');
    }
    throw new Error(`unable to parse requirement: "${term}"`);
  });
  return (object) => checks.every((check) => check(object));
}

/** A field's value as the API server compares it: strings as they are, numbers and booleans as text. */
function fieldValue(object: Record<string, unknown>, path: string): string {
  let value: unknown = object;
  for (const part of path.split('.')) {
    value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  // An unset boolean such as spec.hostNetwork compares as its default.
  return path === 'spec.hostNetwork' ? 'false' : '';
}

export function parseFieldSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return MATCH_ALL;
  const checks = terms(text).map((term): Selector => {
    const comparison = /^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (comparison === null) throw new Error(`invalid field selector term: "${term}"`);
    const [, path = '', operator, expected = ''] = comparison;
    return (object) => (fieldValue(object, path) === expected) === (operator !== '!=');
  });
  return (object) => checks.every((check) => check(object));
}
