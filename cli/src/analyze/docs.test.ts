// docs/operations.md against the code: its table of analyze's findings lists every message type
// with its code, severity and name, and no other; the usage text names each code once.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { analyzeCommand } from '../commands/analyze.js';
import { codeSpans, section, tableRows } from '../reference/markdown.js';
import { MESSAGE_TYPES } from './messages.js';

const OPERATIONS = new URL('../../../docs/operations.md', import.meta.url);

describe('the documentation of tsmesh analyze', () => {
  const rows = tableRows(section(readFileSync(OPERATIONS, 'utf8'), 'Mistakes in the configuration: `tsmesh analyze`'));

  it('lists every message type in docs/operations.md with its severity, name and a fix', () => {
    const documented = rows.map((cells) => ({ code: codeSpans(cells[0] ?? '')[0], severity: cells[1], name: cells[2], hasFix: (cells[4] ?? '').length > 0 }));
    const expected = Object.values(MESSAGE_TYPES).map((t) => ({ code: t.code, severity: t.severity, name: t.name, hasFix: true }));
    expect(documented).toEqual(expected.sort((a, b) => a.code.localeCompare(b.code)));
  });

  it('names every code with its severity in the usage text', () => {
    for (const type of Object.values(MESSAGE_TYPES)) expect(analyzeCommand.help).toMatch(new RegExp(`^  ${type.code} ${type.severity} +\\S`, 'm'));
  });
});
