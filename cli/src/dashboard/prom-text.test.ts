import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { PROM_LIMITS, parsePrometheusText, parseSampleLine, parseValue } from './prom-text.js';

/** A label value as the text format writes it: backslash, double quote and line feed escaped. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

describe('the Prometheus text format (exposition format 0.0.4)', () => {
  test('reads a sample with labels, one without, and skips comments and blank lines', () => {
    const text = [
      '# HELP tsmesh_requests_total Requests.',
      '# TYPE tsmesh_requests_total counter',
      'tsmesh_requests_total{reporter="source",source_workload="client",response_code="200"} 42',
      '',
      'process_uptime_seconds 12.5 1700000000000',
    ].join('\n');
    const { samples, skipped } = parsePrometheusText(text);
    expect(skipped).toBe(0);
    expect(samples).toEqual([
      { name: 'tsmesh_requests_total', labels: { reporter: 'source', source_workload: 'client', response_code: '200' }, value: 42 },
      { name: 'process_uptime_seconds', labels: {}, value: 12.5 },
    ]);
  });

  test('reads the value spellings NaN, +Inf, -Inf and exponents', () => {
    expect(parseValue('NaN')).toBeNaN();
    expect(parseValue('+Inf')).toBe(Infinity);
    expect(parseValue('-Inf')).toBe(-Infinity);
    expect(parseValue('1.5e3')).toBe(1500);
    expect(parseValue('0x10')).toBeUndefined();
    expect(parseValue('')).toBeUndefined();
  });

  test('unescapes \\\\, \\" and \\n in label values, and a bucket label le="+Inf" stays a string', () => {
    const s = parseSampleLine('m_bucket{a="x\\"y\\\\z\\nw",le="+Inf"} 3');
    expect(s?.labels).toEqual({ a: 'x"y\\z\nw', le: '+Inf' });
  });

  test('a line that does not parse is skipped and counted, the others kept', () => {
    const { samples, skipped } = parsePrometheusText('good 1\nbad{a="unterminated} 1\nm{a="1"}\nm{a="1" 2\nm{a="\\q"} 1\nm{a="1",a="2"} 1\n9bad 1\ngood 2');
    expect(samples.map((s) => s.value)).toEqual([1, 2]);
    expect(skipped).toBe(6);
  });

  test('property: any label value written with the format escapes reads back unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.double({ noNaN: true }), (value, number) => {
        const rendered = `m{v="${escapeLabel(value)}"} ${Number.isFinite(number) ? String(number) : number > 0 ? '+Inf' : '-Inf'}`;
        const s = parseSampleLine(rendered);
        expect(s?.labels.v).toBe(value);
        expect(s?.value).toBe(number === 0 ? 0 : number);
      }),
    );
  });

  test('property: arbitrary text never throws', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 500 }), (text) => void parsePrometheusText(text)));
  });

  test('adversarial: a label named __proto__ is a plain label, not the prototype', () => {
    const s = parseSampleLine('m{__proto__="x",constructor="y"} 1');
    expect(s?.labels.__proto__).toBe('x');
    expect(Object.keys(s?.labels ?? {})).toEqual(['__proto__', 'constructor']);
  });

  test('adversarial: an overlong line and a sample with too many labels are skipped', () => {
    const long = `m{a="${'x'.repeat(PROM_LIMITS.maxLineLength)}"} 1`;
    const many = `m{${Array.from({ length: PROM_LIMITS.maxLabels + 1 }, (_, i) => `l${i}="v"`).join(',')}} 1`;
    expect(parsePrometheusText(`${long}\n${many}\nok 1`)).toEqual({ samples: [{ name: 'ok', labels: {}, value: 1 }], skipped: 2 });
  });
});
