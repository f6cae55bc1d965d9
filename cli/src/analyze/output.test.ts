// The printed forms of analyze's findings: the table with its count line, JSON and YAML records.
import { describe, expect, it } from '@jest/globals';
import YAML from 'yaml';
import { message } from './messages.js';
import { formatMessages, summary } from './output.js';

const found = [
  message('backendServiceNotFound', { kind: 'HTTPRoute', namespace: 'shop', name: 'web' }, 'rule 0 backendRef 0 names Service shop/gone, which does not exist'),
  message('badInjectionLabel', { kind: 'Namespace', name: 'legacy' }, 'has label\ntsmesh-injection=yes'),
];

describe('analyze output', () => {
  it('prints a table with one line per finding and a count line', () => {
    expect(formatMessages(found, 'table')).toBe(
      [
        'CODE     SEVERITY  OBJECT              MESSAGE',
        'TSM0101  Error     HTTPRoute shop/web  rule 0 backendRef 0 names Service shop/gone, which does not exist',
        'TSM0402  Warning   Namespace legacy    has label tsmesh-injection=yes',
        '1 error, 1 warning, 0 info.',
        '',
      ].join('\n'),
    );
  });

  it('says so when there is nothing to report, in every format', () => {
    expect(formatMessages([], 'table')).toBe('No problems found.\n');
    expect(formatMessages([], 'json')).toBe('[]\n');
    expect(formatMessages([], 'yaml')).toBe('[]\n');
    expect(summary([])).toBe('No problems found.');
  });

  it('gives JSON and YAML records with the code, type, severity, object and message', () => {
    const records = [
      { code: 'TSM0101', type: 'BackendServiceNotFound', severity: 'Error', object: { kind: 'HTTPRoute', namespace: 'shop', name: 'web' }, message: 'rule 0 backendRef 0 names Service shop/gone, which does not exist' },
      { code: 'TSM0402', type: 'BadInjectionLabel', severity: 'Warning', object: { kind: 'Namespace', name: 'legacy' }, message: 'has label\ntsmesh-injection=yes' },
    ];
    expect(JSON.parse(formatMessages(found, 'json'))).toEqual(records);
    expect(YAML.parse(formatMessages(found, 'yaml'))).toEqual(records);
  });
});
